//! Percent-encoding (RFC 3986 §2.1): the one decoder for SIP URIs, XCAP URIs and selectors, and
//! PIDF entity comparison. An escape is `%` followed by exactly two hex digits (`%+f`, `%f`
//! and `%g0` are not escapes).

use std::borrow::Cow;

/// A `%` escape that is truncated or not hex, or a decoded result that is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad percent-encoding")]
pub struct BadPercentEncoding;

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte an escape at `b[i]` stands for, when `b[i..i + 3]` is `%` and two hex digits.
fn escape_at(b: &[u8], i: usize) -> Option<u8> {
    if b.get(i) != Some(&b'%') {
        return None;
    }
    Some(hex_digit(*b.get(i + 1)?)? << 4 | hex_digit(*b.get(i + 2)?)?)
}

/// Decodes `s`: borrowed when it holds no `%`; fails on a bad escape or non-UTF-8 result.
pub fn decode(s: &str) -> Result<Cow<'_, str>, BadPercentEncoding> {
    let b = s.as_bytes();
    if !b.contains(&b'%') {
        return Ok(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(escape_at(b, i).ok_or(BadPercentEncoding)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| BadPercentEncoding)
}

/// The bytes of `s` with its valid escapes decoded and anything else as written: for comparing
/// URI components, where escaped and unescaped characters are equal (RFC 3261 §19.1.4).
pub fn decoded_bytes(s: &str) -> impl Iterator<Item = u8> + '_ {
    let b = s.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let c = *b.get(i)?;
        if let Some(d) = escape_at(b, i) {
            i += 3;
            return Some(d);
        }
        i += 1;
        Some(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_valid_escapes() {
        assert_eq!(decode("a%20b%2Fc%7e").unwrap(), "a b/c~");
        assert_eq!(decode("%C3%A9").unwrap(), "é");
        assert!(matches!(decode("plain"), Ok(Cow::Borrowed("plain"))));
    }

    #[test]
    fn rejects_what_is_not_an_escape() {
        // u8::from_str_radix accepted a sign: "%+f" decoded to 0x0f.
        for bad in ["%+f", "%-1", "%f", "%", "%g0", "a%2", "%C3"] {
            assert_eq!(decode(bad), Err(BadPercentEncoding), "{bad}");
        }
    }

    #[test]
    fn comparison_bytes_keep_bad_escapes_as_written() {
        assert!(decoded_bytes("al%69ce").eq("alice".bytes()));
        assert!(decoded_bytes("a%+fb").eq("a%+fb".bytes()));
        assert!(decoded_bytes("x%4").eq("x%4".bytes()));
    }
}
