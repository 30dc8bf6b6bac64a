//! The URIs the engine keys on: `sip:`, `sips:`, `pres:`, `im:` (RFC 3261 §19.1, RFC 3859/3860)
//! and `tel:`. Only what identifies a resource is parsed (scheme, user, host, port); parameters
//! and headers are kept in the raw text.

use std::fmt;

use bytes::Bytes;

pub use super::text::Text;

/// URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Pres,
    Im,
    Tel,
}

/// A parsed URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    pub raw: Text,
    pub scheme: Scheme,
    /// The user part, percent-decoded.
    pub user: Option<Text>,
    /// The host, lower-cased (IPv6 without brackets); for `tel:` the number.
    pub host: Text,
    pub port: Option<u16>,
}

/// Why a URI was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    #[error("unsupported URI scheme")]
    Scheme,
    #[error("malformed URI")]
    Malformed,
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b':' | b'_'))
}

/// The bytes [`Uri::parse_noting_headers`] looks at: delimiters, `%`, upper-case letters, and
/// what a URI may not hold here (controls, space, `<`, `>`, `"`, DEL and above).
const NOTABLE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = matches!(
            b,
            b':' | b'@' | b'?' | b'%' | b'A'..=b'Z' | b'<' | b'>' | b'"'
        ) || b <= b' '
            || b >= 0x7f;
        c += 1;
    }
    t
};

impl Uri {
    /// Parse a URI as it stands in a Request-URI or inside `<>`.
    pub fn parse(raw: &str) -> Result<Uri, UriError> {
        let buf = Bytes::copy_from_slice(raw.as_bytes());
        // (the copy is the same text)
        let raw = std::str::from_utf8(&buf).map_err(|_| UriError::Malformed)?;
        Uri::parse_noting_headers(&buf, raw).map(|(u, _)| u)
    }

    /// [`Uri::parse`] of `raw`, text inside `buf` (an inbound message: the URI's parts are
    /// kept as slices of it, without copies), and whether the URI has a headers component
    /// ([`Uri::has_headers`]), from one walk over its bytes.
    pub fn parse_noting_headers(buf: &Bytes, raw: &str) -> Result<(Uri, bool), UriError> {
        let b = raw.as_bytes();
        // one walk: the first ':', the last '@', a '?' after the last '@', any '%' or upper-case
        // letter, any byte a URI may not hold here
        let mut colon = None;
        let mut at = None;
        let mut question_after_at = false;
        let mut percent = false;
        let mut upper = false;
        let mut bad = false;
        for (i, &c) in b.iter().enumerate() {
            // (most bytes are none of these: one table look-up each)
            if !NOTABLE[c as usize] {
                continue;
            }
            match c {
                b':' => {
                    if colon.is_none() {
                        colon = Some(i);
                    }
                }
                b'@' => {
                    at = Some(i);
                    question_after_at = false;
                }
                b'?' => question_after_at = true,
                b'%' => percent = true,
                b'A'..=b'Z' => upper = true,
                _ => bad = true,
            }
        }
        let colon = colon.ok_or(UriError::Malformed)?;
        let scheme = match &b[..colon] {
            [s, i, p] if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' => Scheme::Sip,
            [s, i, p, t]
                if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' && t | 0x20 == b's' =>
            {
                Scheme::Sips
            }
            [p, r, e, s]
                if p | 0x20 == b'p' && r | 0x20 == b'r' && e | 0x20 == b'e' && s | 0x20 == b's' =>
            {
                Scheme::Pres
            }
            [i, m] if i | 0x20 == b'i' && m | 0x20 == b'm' => Scheme::Im,
            [t, e, l] if t | 0x20 == b't' && e | 0x20 == b'e' && l | 0x20 == b'l' => Scheme::Tel,
            _ => return Err(UriError::Scheme),
        };
        if bad {
            return Err(UriError::Malformed);
        }
        let rest = &raw[colon + 1..];
        if scheme == Scheme::Tel {
            let number = super::fields::split_byte(rest, b';').next().unwrap_or("");
            if number.is_empty() {
                return Err(UriError::Malformed);
            }
            let uri = Uri {
                raw: Text::within(buf, raw),
                scheme,
                user: None,
                host: Text::within(buf, number),
                port: None,
            };
            return Ok((uri, question_after_at));
        }
        // RFC 3261 §25.1: user may contain ';' '?' '/', but params and headers may not contain
        // '@', so the last '@' ends the userinfo. (Past the scheme's colon: an '@' before it is
        // not a scheme we know.)
        let (userinfo, hostpart) = match at {
            Some(i) if i > colon => (Some(&raw[colon + 1..i]), &raw[i + 1..]),
            _ => (None, rest),
        };
        let hostport = hostpart
            .bytes()
            .position(|c| c == b';' || c == b'?')
            .map_or(hostpart, |i| &hostpart[..i]);
        let (host, port) = super::fields::split_host_port(hostport).ok_or(UriError::Malformed)?;
        if !valid_host(host) {
            return Err(UriError::Malformed);
        }
        let user = match userinfo {
            Some(u) => {
                // drop a password
                let user = super::fields::split_byte(u, b':').next().unwrap_or(u);
                if user.is_empty() {
                    return Err(UriError::Malformed);
                }
                Some(if percent {
                    Text::from(
                        crate::percent::decode(user)
                            .map_err(|_| UriError::Malformed)?
                            .into_owned(),
                    )
                } else {
                    Text::within(buf, user)
                })
            }
            None => None,
        };
        let uri = Uri {
            raw: Text::within(buf, raw),
            scheme,
            user,
            host: if upper {
                Text::from(host.to_ascii_lowercase())
            } else {
                Text::within(buf, host)
            },
            port,
        };
        Ok((uri, question_after_at))
    }

    /// True when the URI has a headers component (`?...`), which a Request-URI may not carry
    /// (RFC 3261 §19.1.1 table).
    pub fn has_headers(&self) -> bool {
        let raw = self.raw.as_str();
        let after_host = raw.rfind('@').map_or(raw, |i| &raw[i..]);
        after_host.contains('?')
    }

    /// The address-of-record key `user@host` (scheme-independent, RFC 3856 §6.1: `pres:` and
    /// `sip:` name the same presentity).
    pub fn aor(&self) -> String {
        match &self.user {
            Some(u) => {
                let mut aor = String::with_capacity(u.len() + 1 + self.host.len());
                aor.push_str(u);
                aor.push('@');
                aor.push_str(&self.host);
                aor
            }
            None => self.host.as_str().to_owned(),
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
        assert_eq!(u.host, "example.com");
        let u = Uri::parse("sips:Alice@EXAMPLE.com:5061;transport=tcp").unwrap();
        assert_eq!(
            (u.aor().as_str(), u.port),
            ("Alice@example.com", Some(5061))
        );
        assert_eq!(
            Uri::parse("pres:alice@example.com").unwrap().aor(),
            "alice@example.com"
        );
        assert_eq!(
            Uri::parse("sip:[2001:db8::1]:5060").unwrap().host,
            "2001:db8::1"
        );
        assert_eq!(Uri::parse("http://x").unwrap_err(), UriError::Scheme);
        assert_eq!(Uri::parse("<sip:a@b>").unwrap_err(), UriError::Scheme);
        assert_eq!(Uri::parse("sip:a@").unwrap_err(), UriError::Malformed);
        assert!(
            Uri::parse("sip:user@example.com?Route=%3Csip:example.com%3E")
                .unwrap()
                .has_headers()
        );
        assert!(!Uri::parse("sip:us?er@example.com").unwrap().has_headers());
    }
}
