//! The one pass over a document: markup and short character data scanned byte by byte with a
//! class table, long character data with `memchr`, well-formedness checked as it goes (XML 1.0
//! §2-§4 without a DTD, plus the name rules of Namespaces in XML), and what it finds handed to a
//! [`Handler`] as byte offsets. Nothing is allocated per element; the handler decides what to
//! keep (PIDF: a few ranges; the XCAP DOM: a tree).

use super::encoding::DeclarationUse;
use super::scan::*;
use super::{Error, Fault};
use crate::inline::Inline;

/// An attribute of a start tag, as byte offsets into the document.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawAttr {
    /// Start of its qualified name.
    pub key_start: usize,
    /// End of its qualified name.
    pub key_end: usize,
    /// Offset of the `:` in the name, when it is prefixed.
    pub colon: Option<usize>,
    /// Start of its value (after the opening quote).
    pub value_start: usize,
    /// End of its value (the closing quote).
    pub value_end: usize,
    /// The value holds a reference (`&`), checked well-formed.
    pub amp: bool,
}

/// The name of a start tag: `[start, end)`, with the colon's offset when prefixed.
#[derive(Debug, Clone, Copy)]
pub struct TagName {
    /// Start of the qualified name (after `<`).
    pub start: usize,
    /// End of the qualified name.
    pub end: usize,
    /// Offset of the `:`, when prefixed.
    pub colon: Option<usize>,
}

/// A start tag whose attributes are read: its name, where it starts (`<`), where its content
/// starts, and whether it was empty (`/>`).
#[derive(Debug, Clone, Copy)]
pub struct StartTag {
    /// Its name.
    pub name: TagName,
    /// Offset of its `<`.
    pub lt: usize,
    /// Offset after its `>`.
    pub after: usize,
    /// It ends with `/>` (and [`Handler::close`] follows at once).
    pub empty: bool,
}

/// Markup other than elements and character data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// `<!--...-->`.
    Comment,
    /// `<?target ...?>`.
    Pi,
    /// The XML declaration `<?xml ...?>`.
    Decl,
    /// `<![CDATA[...]]>` (inside the root only).
    CData,
    /// `<!DOCTYPE ...>`, when the handler accepts it.
    Doctype,
}

/// What a reader does with the pieces of a document. Offsets are into the walked bytes; depth
/// counts the root as 1. Everything but the element callbacks is ignored unless overridden.
pub trait Handler {
    /// The reader's error; the walker's own faults convert into it.
    type Error: From<Error>;

    /// What the reader does with the XML declaration ([`encoding`](super::encoding) decides
    /// the labels it may carry from this).
    const DECLARATION: DeclarationUse = DeclarationUse::Replaced;

    /// A start tag begins at `lt` (element at `depth`), before its attributes.
    fn open(&mut self, name: TagName, lt: usize, depth: u32) -> Result<(), Self::Error>;

    /// One attribute of the start tag at `lt`, in document order.
    fn attribute(&mut self, a: RawAttr, lt: usize, depth: u32) -> Result<(), Self::Error>;

    /// A start tag is complete (every attribute handed over).
    fn start(&mut self, tag: StartTag, depth: u32) -> Result<(), Self::Error>;

    /// The element at `depth` ends: its end tag is `[at, after)` (for an empty element, `at` is
    /// its start tag's `<`).
    fn close(&mut self, depth: u32, at: usize, after: usize) -> Result<(), Self::Error>;

    /// Character data `[start, end)` at `depth` (0: white space outside the root), references
    /// checked but not expanded.
    #[inline(always)]
    fn text(&mut self, _start: usize, _end: usize, _depth: u32) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Markup `[start, end)` at `depth` (for CDATA, the whole section).
    #[inline(always)]
    fn markup(
        &mut self,
        _kind: Markup,
        _start: usize,
        _end: usize,
        _depth: u32,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    /// A `<!DOCTYPE` at `at`: refused unless a reader says otherwise (no reader expands a DTD's
    /// entities, and PIDF elements are copied verbatim, so their meaning must not hang on one).
    #[inline(always)]
    fn doctype(&mut self, at: usize) -> Result<(), Self::Error> {
        Err(Error {
            at,
            reason: "DOCTYPE not allowed",
            fault: Fault::Doctype,
        }
        .into())
    }
}

fn nwf(at: usize, reason: &'static str) -> Error {
    Error::syntax(at, reason)
}

/// Walks the document `b` from `start` (after a byte order mark; an XML declaration may only
/// stand there). `ascii`: [`check_chars`] found the document plain ASCII (names then need no
/// Unicode check, and the declaration may name an ASCII superset).
pub fn walk<H: Handler>(b: &[u8], start: usize, ascii: bool, h: &mut H) -> Result<(), H::Error> {
    let mut open: Inline<(u32, u32), 16> = Inline::new();
    let mut i = start;
    let mut depth: u32 = 0;
    let mut root_seen = false;
    while i < b.len() {
        let lt = char_data(b, i, depth)?;
        if lt > i {
            h.text(i, lt, depth)?;
        }
        if lt == b.len() {
            break;
        }
        i = match b.get(lt + 1) {
            Some(b'/') => {
                let (name_start, name_end) = open.last().unwrap_or_default();
                let name = &b[name_start as usize..name_end as usize];
                // Nearly always exactly `</name>` of the innermost open element.
                let after_name = lt + 2 + name.len();
                let exact = b.get(after_name) == Some(&b'>') && same(&b[lt + 2..after_name], name);
                let gt = if exact {
                    after_name
                } else {
                    memchr::memchr(b'>', &b[lt + 2..])
                        .map(|k| lt + 2 + k)
                        .ok_or(nwf(lt, "syntax error"))?
                };
                if open.pop().is_none() {
                    return Err(nwf(lt, "unmatched end tag").into());
                }
                if !exact {
                    // XML 1.0 §3.1: `</` Name S? `>`, the name of the innermost open element.
                    let mut written = &b[lt + 2..gt];
                    while let [rest @ .., last] = written
                        && is_xml_space(*last)
                    {
                        written = rest;
                    }
                    if !same(written, name) {
                        return Err(nwf(lt, "mismatched end tag").into());
                    }
                }
                h.close(depth, lt, gt + 1)?;
                depth -= 1;
                gt + 1
            }
            Some(b'?') => {
                let (after, kind) = pi(b, lt, start, ascii, H::DECLARATION)?;
                h.markup(kind, lt, after, depth)?;
                after
            }
            Some(b'!') => {
                let (after, kind) = match bang(b, lt, depth)? {
                    Some(found) => found,
                    None => {
                        h.doctype(lt)?;
                        if depth > 0 || root_seen {
                            return Err(nwf(lt, "DOCTYPE after the root element").into());
                        }
                        (doctype_end(b, lt)?, Markup::Doctype)
                    }
                };
                h.markup(kind, lt, after, depth)?;
                after
            }
            _ => {
                if depth == 0 && root_seen {
                    return Err(nwf(lt, "content after root element").into());
                }
                root_seen = true;
                let d = depth + 1;
                let (name, after, empty) = start_tag(b, lt, d, ascii, h)?;
                if empty {
                    h.close(d, lt, after)?;
                } else {
                    open.push((name.start as u32, name.end as u32));
                    depth = d;
                }
                after
            }
        };
    }
    if !root_seen {
        return Err(nwf(b.len(), "no root element").into());
    }
    if depth != 0 {
        return Err(nwf(b.len(), "unexpected end of document").into());
    }
    Ok(())
}

/// A qualified name from `start` that is well-formed (for a non-ASCII document, by the Unicode
/// classes of XML 1.0 §2.3); `None` when it is not.
#[inline(always)]
fn qname(b: &[u8], start: usize, ascii: bool) -> Option<(usize, Option<usize>)> {
    let (end, colon, ok) = scan_qname(b, start);
    let ok = ok
        && (ascii
            || b[start..end].is_ascii()
            || std::str::from_utf8(&b[start..end]).is_ok_and(|s| split_qname(s).is_some()));
    ok.then_some((end, colon))
}

/// The start tag at `lt` for an element at depth `d`: its name, then each attribute handed to
/// `h` as read. Returns the name, the offset after the tag and whether it was empty (`/>`).
#[inline(always)]
fn start_tag<H: Handler>(
    b: &[u8],
    lt: usize,
    d: u32,
    ascii: bool,
    h: &mut H,
) -> Result<(TagName, usize, bool), H::Error> {
    let bad_name = || nwf(lt, "invalid element name");
    let (mut j, colon) = qname(b, lt + 1, ascii).ok_or_else(bad_name)?;
    if !matches!(
        b.get(j),
        None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>')
    ) || colon.is_some_and(|c| same(&b[lt + 1..c], b"xmlns"))
    {
        return Err(bad_name().into());
    }
    let name = TagName {
        start: lt + 1,
        end: j,
        colon,
    };
    h.open(name, lt, d)?;
    let (after, empty) = loop {
        let ws = j;
        while j < b.len() && CLASS[b[j] as usize] & C_SPACE != 0 {
            j += 1;
        }
        match b.get(j) {
            None => return Err(nwf(lt, "syntax error").into()),
            Some(b'>') => break (j + 1, false),
            Some(b'/') if b.get(j + 1) == Some(&b'>') => break (j + 2, true),
            Some(b'/') => return Err(nwf(lt, "syntax error").into()),
            // XML 1.0 §3.1: attributes are separated by white space.
            _ if j == ws => return Err(nwf(lt, "malformed attribute").into()),
            _ => {}
        }
        let a = attribute(b, j, lt, ascii)?;
        j = a.value_end + 1;
        h.attribute(a, lt, d)?;
    };
    h.start(
        StartTag {
            name,
            lt,
            after,
            empty,
        },
        d,
    )?;
    Ok((name, after, empty))
}

/// `name = "value"` from `ks` in the start tag at `lt` (XML 1.0 §3.1 Attribute, Eq, AttValue).
#[inline(always)]
fn attribute(b: &[u8], ks: usize, lt: usize, ascii: bool) -> Result<RawAttr, Error> {
    let (ke, colon) = qname(b, ks, ascii).ok_or(nwf(lt, "invalid attribute name"))?;
    if !matches!(
        b.get(ke),
        None | Some(b'=' | b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/')
    ) {
        return Err(nwf(lt, "malformed attribute"));
    }
    let mut j = ke;
    while j < b.len() && CLASS[b[j] as usize] & C_SPACE != 0 {
        j += 1;
    }
    if b.get(j) != Some(&b'=') {
        return Err(nwf(lt, "malformed attribute"));
    }
    j += 1;
    while j < b.len() && CLASS[b[j] as usize] & C_SPACE != 0 {
        j += 1;
    }
    let quote = match b.get(j) {
        Some(&q @ (b'"' | b'\'')) => q,
        _ => return Err(nwf(lt, "malformed attribute")),
    };
    // One pass to the closing quote that also finds `<` and `&` (nearly every value has
    // neither).
    let vs = j + 1;
    let (ve, amp) = match memchr::memchr3(quote, b'<', b'&', &b[vs..]) {
        Some(k) if b[vs + k] == quote => (vs + k, false),
        Some(_) => {
            let ve = memchr::memchr(quote, &b[vs..])
                .map(|k| vs + k)
                .ok_or(nwf(lt, "syntax error"))?;
            // XML 1.0 §3.1 WFC: No < in Attribute Values; references must be well-formed.
            if !is_valid_attr_value(&b[vs..ve]) {
                return Err(nwf(lt, "invalid attribute value"));
            }
            (ve, b[vs..ve].contains(&b'&'))
        }
        None => return Err(nwf(lt, "syntax error")),
    };
    Ok(RawAttr {
        key_start: ks,
        key_end: ke,
        colon,
        value_start: vs,
        value_end: ve,
        amp,
    })
}

/// Character data from `i` to the next `<` (returned; the input's length if none): only white
/// space outside the root; inside, every `&` starts a well-formed reference and `]]>` does not
/// occur (XML 1.0 §2.4).
#[inline(always)]
fn char_data(b: &[u8], i: usize, depth: u32) -> Result<usize, Error> {
    let mut lt = i;
    let mut seen = 0u8;
    // Short runs (most of a presence document) byte by byte; long ones with memchr.
    let short = b.len().min(i + 64);
    while lt < short {
        let c = b[lt];
        if c == b'<' {
            break;
        }
        seen |= CLASS[c as usize];
        lt += 1;
    }
    if lt == short && lt < b.len() {
        lt = memchr::memchr(b'<', &b[lt..]).map_or(b.len(), |k| lt + k);
        seen = 0xff;
    }
    if lt == i {
        return Ok(lt);
    }
    if depth == 0 {
        if seen & C_NOT_SPACE != 0 && !b[i..lt].iter().all(|&c| is_xml_space(c)) {
            return Err(nwf(i, "text outside root element"));
        }
        return Ok(lt);
    }
    if seen & C_TEXT != 0 {
        text_references(b, i, lt)?;
    }
    Ok(lt)
}

/// References and `]]>` in the character data `[i, lt)`.
fn text_references(b: &[u8], i: usize, lt: usize) -> Result<(), Error> {
    let s = &b[i..lt];
    let mut k = 0;
    while let Some(off) = memchr::memchr2(b'&', b']', &s[k..]) {
        let j = k + off;
        if s[j] == b']' {
            if s[j..].starts_with(b"]]>") {
                return Err(nwf(i + j, "']]>' in text"));
            }
            k = j + 1;
            continue;
        }
        let rest = &s[j + 1..];
        match memchr::memchr2(b';', b'&', rest) {
            Some(e) if rest[e] == b';' => {
                if !is_valid_reference(&rest[..e]) {
                    return Err(nwf(i + j, "invalid reference"));
                }
                k = j + 1 + e + 1;
            }
            _ => return Err(nwf(i + j, "unclosed reference")),
        }
    }
    Ok(())
}

/// `<?...?>` at `lt`: the XML declaration (only at `start`, the very beginning) or a
/// processing instruction. Returns the offset after it and which it was.
fn pi(
    b: &[u8],
    lt: usize,
    start: usize,
    ascii: bool,
    used: DeclarationUse,
) -> Result<(usize, Markup), Error> {
    let mut k = lt + 2;
    let end = loop {
        match memchr::memchr(b'?', &b[k..]) {
            Some(q) if b.get(k + q + 1) == Some(&b'>') => break k + q,
            Some(q) => k += q + 1,
            None => return Err(nwf(lt, "syntax error")),
        }
    };
    let after = end + 2;
    let content = &b[lt + 2..end];
    let raw = &b[lt..after];
    // the walked bytes are UTF-8 (checked) and `lt`, `after` are at ASCII delimiters
    let text = || std::str::from_utf8(raw).unwrap_or_default();
    if content.starts_with(b"xml") && (content.len() == 3 || is_xml_space(content[3])) {
        if lt != start {
            return Err(nwf(lt, "XML declaration not at start"));
        }
        if !COMMON_DECLS.iter().any(|d| same(d, raw)) {
            check_decl(text(), ascii, used, lt)?;
        }
        Ok((after, Markup::Decl))
    } else if !is_valid_pi(text()) {
        Err(nwf(lt, "invalid processing instruction"))
    } else {
        Ok((after, Markup::Pi))
    }
}

/// `<!` at `lt`: a comment or a CDATA section (only inside the root), with the offset after it;
/// `None` for a DOCTYPE.
fn bang(b: &[u8], lt: usize, depth: u32) -> Result<Option<(usize, Markup)>, Error> {
    let rest = &b[lt..];
    if rest.starts_with(b"<!--") {
        let end = memchr::memmem::find(&b[lt + 4..], b"-->")
            .map(|k| lt + 4 + k)
            .ok_or(nwf(lt, "syntax error"))?;
        // XML 1.0 §2.5: no `--` inside, and no `-` just before the closing `-->`.
        let content = &b[lt + 4..end];
        if let Some(k) = memchr::memmem::find(content, b"--") {
            return Err(nwf(lt + 4 + k, "'--' in comment"));
        }
        if content.ends_with(b"-") {
            return Err(nwf(end - 1, "'--' in comment"));
        }
        Ok(Some((end + 3, Markup::Comment)))
    } else if rest.starts_with(b"<![CDATA[") {
        let end = memchr::memmem::find(&b[lt + 9..], b"]]>")
            .map(|k| lt + 9 + k)
            .ok_or(nwf(lt, "syntax error"))?;
        if depth == 0 {
            return Err(nwf(lt, "text outside root element"));
        }
        Ok(Some((end + 3, Markup::CData)))
    } else if rest.len() >= 9 && rest[2..9].eq_ignore_ascii_case(b"DOCTYPE") {
        Ok(None)
    } else {
        Err(nwf(lt, "syntax error"))
    }
}

/// The offset after the `<!DOCTYPE ...>` at `lt`: its `>`, past quoted literals and an internal
/// subset in brackets (whose markup declarations are not read).
fn doctype_end(b: &[u8], lt: usize) -> Result<usize, Error> {
    let mut k = lt + 9;
    let mut quote = None;
    let mut subset = false;
    while k < b.len() {
        let c = b[k];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' => quote = Some(c),
                b'[' if !subset => subset = true,
                b']' if subset => subset = false,
                b'>' if !subset => return Ok(k + 1),
                _ => {}
            },
        }
        k += 1;
    }
    Err(nwf(lt, "syntax error"))
}
