//! Text held in shared bytes: a slice of an inbound message (no copy, one reference count) or
//! a buffer of its own. URIs and header sections of parsed messages are kept this way, so that
//! parsing a request allocates nothing for them.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// UTF-8 text in a [`Bytes`] buffer.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Text(Bytes);

impl Text {
    /// `s` as kept by `buf`: a slice of it when `s` lies inside it, else a copy.
    pub fn within(buf: &Bytes, s: &str) -> Text {
        let start = buf.as_ptr() as usize;
        let at = s.as_ptr() as usize;
        if at >= start && at + s.len() <= start + buf.len() {
            Text(buf.slice_ref(s.as_bytes()))
        } else {
            Text(Bytes::copy_from_slice(s.as_bytes()))
        }
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: a `Text` is only ever built from the bytes of a `str` or a `String` (`within`,
        // `From`), and `Bytes` never changes the bytes it shares.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Bytes::from(s.into_bytes()))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
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
        assert_eq!(host.as_ptr(), buf[10..].as_ptr());
        let other = Text::within(&buf, "elsewhere");
        assert_eq!(other, "elsewhere");
        assert_eq!(Text::from(String::from("x")).as_str(), "x");
    }
}
