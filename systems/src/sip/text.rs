//! Text held inline when short, else in shared bytes: a slice of an inbound message (no copy,
//! one reference count) or a buffer of its own. URIs and header sections of parsed messages are kept this way, so that
//! parsing a request allocates nothing for them.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// UTF-8 text: up to [`Text::INLINE`] bytes kept inline (no reference count to take or drop:
/// a URI's user and host usually), longer text in a [`Bytes`] buffer.
#[derive(Clone)]
pub struct Text(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; Text::INLINE] },
    Shared(Bytes),
}

impl Default for Text {
    fn default() -> Text {
        Text(Repr::Inline {
            len: 0,
            bytes: [0; Text::INLINE],
        })
    }
}

impl Text {
    /// The longest text kept inline.
    pub const INLINE: usize = 30;

    /// `s` as kept by `buf`: a slice of it when `s` lies inside it, else a copy (inline when
    /// short).
    pub fn within(buf: &Bytes, s: &str) -> Text {
        if let Some(t) = Text::inline(s) {
            return t;
        }
        let start = buf.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if at >= start && at + s.len() <= start + buf.len() {
            Text(Repr::Shared(buf.slice_ref(s.as_bytes())))
        } else {
            Text(Repr::Shared(Bytes::copy_from_slice(s.as_bytes())))
        }
    }

    fn inline(s: &str) -> Option<Text> {
        (s.len() <= Text::INLINE).then(|| {
            let mut bytes = [0; Text::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            Text(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        })
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        let bytes = match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Shared(b) => b,
        };
        // SAFETY: a `Text` is only ever built from the bytes of a `str` or a `String` (`within`,
        // `inline`, `From`), whole, and neither its array nor `Bytes` changes them after.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::inline(&s).unwrap_or_else(|| Text(Repr::Shared(Bytes::from(s.into_bytes()))))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text::inline(s).unwrap_or_else(|| Text(Repr::Shared(Bytes::copy_from_slice(s.as_bytes()))))
    }
}

impl Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_or_copies() {
        let buf = Bytes::from_static(b"sip:alice@example.com");
        let whole = std::str::from_utf8(&buf).unwrap();
        let host = Text::within(&buf, &whole[10..]);
        assert_eq!(host, "example.com");
        let long = Bytes::from("x".repeat(40));
        let shared = Text::within(&long, std::str::from_utf8(&long).unwrap());
        assert_eq!(shared.as_ptr(), long.as_ptr());
        assert_eq!(shared, Text::from("x".repeat(40)));
        let other = Text::within(&buf, "elsewhere");
        assert_eq!(other, "elsewhere");
        assert_eq!(Text::from(String::from("x")).as_str(), "x");
    }
}
