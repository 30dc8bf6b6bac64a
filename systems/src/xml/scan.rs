//! The byte-level pieces of XML 1.0 (with Namespaces in XML) that every reader here shares:
//! the character check of a whole input, byte classes, names and QNames, character and entity
//! references, attribute values, processing instructions and the XML declaration.

use std::borrow::Cow;

use super::{Error, Fault, encoding};

/// XML 1.0 §2.2: the body is UTF-8 and holds no C0 control other than TAB, LF and CR. One pass
/// eight bytes at a time; UTF-8 is validated only when a byte is not ASCII. Returns whether the
/// body is plain ASCII.
pub fn check_chars(b: &[u8]) -> Result<bool, Error> {
    if b.len() > u32::MAX as usize {
        return Err(nwf(0, "document too large"));
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let bad = |c: u8| c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r');
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    let mut high = 0u64;
    let mut control = None;
    for chunk in chunks.by_ref() {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        high |= w;
        // "hasless(w, 0x20)": some byte of w is below 0x20.
        if w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0
            && let Some(i) = chunk.iter().position(|&c| bad(c))
        {
            control = Some(at + i);
            break;
        }
        at += 8;
    }
    if control.is_none() {
        for (i, &c) in chunks.remainder().iter().enumerate() {
            high |= c as u64;
            if bad(c) {
                control = Some(at + i);
                break;
            }
        }
    }
    let ascii = high & HIGH == 0 && control.is_none();
    if !ascii {
        std::str::from_utf8(b).map_err(|e| Error {
            at: e.valid_up_to(),
            reason: "invalid UTF-8",
            fault: Fault::NotUtf8,
        })?;
        // XML 1.0 §2.2 Char excludes U+FFFE and U+FFFF (EF BF BE, EF BF BF in UTF-8).
        if let Some(at) = memchr::memmem::find_iter(b, b"\xef\xbf")
            .find(|&k| matches!(b.get(k + 2), Some(0xbe | 0xbf)))
            && control.is_none_or(|c| at < c)
        {
            return Err(nwf(at, "invalid character"));
        }
    }
    match control {
        Some(at) => Err(nwf(at, "invalid character")),
        None => Ok(ascii),
    }
}

fn nwf(at: usize, reason: &'static str) -> Error {
    Error::syntax(at, reason)
}

/// [`CLASS`] bit: may start a name (XML 1.0 §2.3 NameStartChar, `:` apart).
pub const C_NAME_START: u8 = 1;
/// [`CLASS`] bit: may be in a name (NameChar, `:` apart).
pub const C_NAME: u8 = 2;
/// [`CLASS`] bit: XML white space (S).
pub const C_SPACE: u8 = 4;
/// Needs a closer look in character data: `&` and `]`.
pub const C_TEXT: u8 = 8;
/// Anything but XML white space.
pub const C_NOT_SPACE: u8 = 16;

/// XML 1.0 §2.3 name characters (non-ASCII accepted without checking their Unicode class, `:`
/// apart: it separates prefix and local part), white space, and `&` / `]`.
pub static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() || b == b'_' || b >= 0x80 {
            t[c] = C_NAME_START | C_NAME | C_NOT_SPACE;
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            t[c] = C_NAME | C_NOT_SPACE;
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            t[c] = C_SPACE;
        } else if b == b'&' || b == b']' {
            t[c] = C_TEXT | C_NOT_SPACE;
        } else {
            t[c] = C_NOT_SPACE;
        }
        c += 1;
    }
    t
};

/// Scans `NCName (':' NCName)?` (Namespaces in XML 1.0 §4) from `start`: where the name chars
/// end, the colon if any, and whether the name is a well-formed QName.
pub fn scan_qname(b: &[u8], start: usize) -> (usize, Option<usize>, bool) {
    let mut j = start;
    let mut colon = None;
    let mut ok = true;
    while j < b.len() {
        let c = b[j];
        if CLASS[c as usize] & C_NAME == 0 {
            if c != b':' {
                break;
            }
            ok &= colon.is_none();
            colon = Some(j);
        }
        j += 1;
    }
    let starts = |k: usize| k < j && CLASS[b[k] as usize] & C_NAME_START != 0;
    ok &= match colon {
        Some(c) => c > start && starts(start) && starts(c + 1),
        None => starts(start),
    };
    (j, colon, ok)
}

/// Byte-slice equality for the short names compared here (no call into `memcmp`).
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// XML declarations as nearly every client writes them, accepted without a closer look.
pub const COMMON_DECLS: [&[u8]; 4] = [
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    b"<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    b"<?xml version='1.0' encoding='UTF-8'?>",
    b"<?xml version=\"1.0\"?>",
];

/// Text with its references expanded, or the text itself when one is bad.
pub fn unescaped(raw: &str) -> Cow<'_, str> {
    unescape(raw).unwrap_or(Cow::Borrowed(raw))
}

/// Text with its references expanded (`None` when one is not well-formed).
pub fn unescape(raw: &str) -> Option<Cow<'_, str>> {
    expand(raw, Expand::References)
}

/// Character data as an application sees it: references expanded and line ends (CR LF, lone
/// CR) read as LF (XML 1.0 §2.11). References are assumed checked (the walker does).
pub fn text_value(raw: &str) -> Cow<'_, str> {
    expand(raw, Expand::Text).unwrap_or(Cow::Borrowed(raw))
}

/// An attribute value as an application sees it (XML 1.0 §3.3.3, CDATA): line ends and each
/// white space character read as a space, then references expanded (a character reference to
/// white space stays what it is).
pub fn attr_value(raw: &str) -> Cow<'_, str> {
    expand(raw, Expand::Attribute).unwrap_or(Cow::Borrowed(raw))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expand {
    References,
    Text,
    Attribute,
}

fn expand(raw: &str, how: Expand) -> Option<Cow<'_, str>> {
    let special = |c: u8| match how {
        Expand::References => c == b'&',
        Expand::Text => c == b'&' || c == b'\r',
        Expand::Attribute => matches!(c, b'&' | b'\r' | b'\n' | b'\t'),
    };
    let b = raw.as_bytes();
    let Some(first) = b.iter().position(|&c| special(c)) else {
        return Some(Cow::Borrowed(raw));
    };
    let mut out = String::with_capacity(raw.len());
    let (mut i, mut last) = (first, 0);
    while i < b.len() {
        let c = b[i];
        if !special(c) {
            i += 1;
            continue;
        }
        out.push_str(&raw[last..i]);
        match c {
            b'&' => {
                let semi = i + 1 + memchr::memchr(b';', &b[i + 1..])?;
                out.push(reference_char(&b[i + 1..semi])?);
                i = semi + 1;
            }
            b'\r' => {
                out.push(if how == Expand::Attribute { ' ' } else { '\n' });
                i += 1 + (b.get(i + 1) == Some(&b'\n')) as usize;
            }
            _ => {
                out.push(' ');
                i += 1;
            }
        }
        last = i;
    }
    out.push_str(&raw[last..]);
    Some(Cow::Owned(out))
}

/// XML white space (S production).
pub fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic()
        || c == '_'
        || matches!(c as u32,
            0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
            | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
            | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || c.is_ascii_digit()
        || c == '-'
        || c == '.'
        || matches!(c as u32, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

/// Whether `s` is an NCName (Namespaces in XML §3: an XML 1.0 §2.3 Name without a colon).
pub fn is_ncname(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        return matches!(b.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    }
    let mut it = s.chars();
    matches!(it.next(), Some(c) if is_name_start(c)) && it.all(is_name_char)
}

/// Splits a QName into (prefix, local), or None when it is not a valid QName.
pub fn split_qname(s: &str) -> Option<(Option<&str>, &str)> {
    match s.split_once(':') {
        Some((p, l)) if is_ncname(p) && is_ncname(l) => Some((Some(p), l)),
        Some(_) => None,
        None if is_ncname(s) => Some((None, s)),
        None => None,
    }
}

/// Name of a general reference without `&` and `;`: predefined entity or character reference to
/// a legal character (XML 1.0 §4.1, §2.2). No DTD, so no other entity is declared.
pub fn is_valid_reference(name: &[u8]) -> bool {
    reference_char(name).is_some()
}

/// The character a reference stands for, from its name without `&` and `;` (`None` when it is
/// not one of those [`is_valid_reference`] allows).
pub fn reference_char(name: &[u8]) -> Option<char> {
    if let Some(num) = name.strip_prefix(b"#") {
        let code = match num.strip_prefix(b"x") {
            Some(hex) if !hex.is_empty() && hex.iter().all(u8::is_ascii_hexdigit) => {
                hex.iter().try_fold(0u32, |acc, &h| {
                    let d = (h as char).to_digit(16)?;
                    acc.checked_mul(16)?.checked_add(d)
                })
            }
            None if !num.is_empty() && num.iter().all(u8::is_ascii_digit) => {
                num.iter().try_fold(0u32, |acc, &d| {
                    acc.checked_mul(10)?.checked_add((d - b'0') as u32)
                })
            }
            _ => None,
        };
        return code
            .filter(|c| {
                matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
            })
            .and_then(char::from_u32);
    }
    match name {
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"amp" => Some('&'),
        b"apos" => Some('\''),
        b"quot" => Some('"'),
        _ => None,
    }
}

/// XML 1.0 §3.1 WFC: No < in Attribute Values, and every `&` starts a valid reference.
pub fn is_valid_attr_value(raw: &[u8]) -> bool {
    let Some(first) = memchr::memchr2(b'<', b'&', raw) else {
        return true;
    };
    if memchr::memchr(b'<', &raw[first..]).is_some() {
        return false;
    }
    let mut rest = &raw[first..];
    while let Some(amp) = memchr::memchr(b'&', rest) {
        rest = &rest[amp + 1..];
        let Some(semi) = memchr::memchr(b';', rest) else {
            return false;
        };
        if !is_valid_reference(&rest[..semi]) {
            return false;
        }
        rest = &rest[semi + 1..];
    }
    true
}

/// The XML declaration `<?xml ...?>` follows XML 1.0 §2.8 (quick-xml is lenient there) and, for
/// a non-ASCII body, names UTF-8: elements are copied byte for byte into UTF-8 documents.
pub fn check_decl(
    decl: &str,
    ascii: bool,
    used: encoding::DeclarationUse,
    at: usize,
) -> Result<(), Error> {
    let bad = || nwf(at, "bad XML declaration");
    let mut rest = decl
        .strip_prefix("<?xml")
        .and_then(|s| s.strip_suffix("?>"))
        .ok_or_else(bad)?;
    let version = decl_attr(&mut rest, "version").ok_or_else(bad)?;
    if !version
        .strip_prefix("1.")
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let encoding = decl_attr(&mut rest, "encoding");
    if let Some(standalone) = decl_attr(&mut rest, "standalone")
        && standalone != "yes"
        && standalone != "no"
    {
        return Err(bad());
    }
    if !rest.bytes().all(is_xml_space) {
        return Err(bad());
    }
    match encoding {
        None => Ok(()),
        Some(enc)
            if !enc.as_bytes()[0].is_ascii_alphabetic()
                || !enc
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            Err(bad())
        }
        Some(enc) => encoding::check_label(enc, ascii, used, at),
    }
}

/// XML 1.0 §2.6: `<?target ...?>` where the target is a name other than `xml` (any case),
/// followed by white space or the end; a colon-free one (Namespaces in XML §7).
pub fn is_valid_pi(raw: &str) -> bool {
    let Some(inner) = raw.strip_prefix("<?").and_then(|s| s.strip_suffix("?>")) else {
        return false;
    };
    let target = inner
        .split([' ', '\t', '\n', '\r'])
        .next()
        .unwrap_or_default();
    is_ncname(target) && !target.eq_ignore_ascii_case("xml")
}

/// Reads ` name="value"` (or single quotes, XML 1.0 §2.8 `S name Eq value`) from the front of
/// `rest`, advancing it; leaves `rest` alone and returns `None` when it does not start that way.
fn decl_attr<'a>(rest: &mut &'a str, name: &str) -> Option<&'a str> {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    let s = rest.trim_start_matches(ws);
    if s.len() == rest.len() {
        return None;
    }
    let s = s.strip_prefix(name)?.trim_start_matches(ws);
    let s = s.strip_prefix('=')?.trim_start_matches(ws);
    let quote = s.chars().next().filter(|&q| q == '"' || q == '\'')?;
    let (value, after) = s[1..].split_once(quote)?;
    (!value.is_empty()).then_some(())?;
    *rest = after;
    Some(value)
}
