//! SIP Digest, client side (RFC 3261 §22, RFC 7616 with qop=auth, MD5): read the challenge of
//! a 401 or 407 and write the `Authorization` of a request, reusing a nonce with a growing
//! nonce count the way real clients do. The hashes are the server's own
//! (`presenced_systems::auth::digest`); the tests check the headers against its verifier.

use presenced_systems::auth::digest::{self, Algorithm};

/// What loadgen needs of one Digest challenge (`WWW-Authenticate` / `Proxy-Authenticate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// The server found a right answer to an old nonce (RFC 7616 §3.3).
    pub stale: bool,
}

/// Parse one challenge value; None unless it is Digest with MD5 (or no algorithm, RFC 7616
/// §3.4) and offers qop `auth`, the only kind loadgen answers.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let (mut realm, mut nonce, mut opaque) = (None, None, None);
    let (mut md5, mut qop_auth, mut stale) = (true, false, false);
    for (name, val) in digest::auth_params(digest::digest_params(value)?)? {
        match name.as_str() {
            "realm" => realm = Some(val),
            "nonce" => nonce = Some(val),
            "opaque" => opaque = Some(val),
            "algorithm" => md5 = val.eq_ignore_ascii_case("MD5"),
            "qop" => {
                qop_auth = val
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            }
            "stale" => stale = val.eq_ignore_ascii_case("true"),
            _ => {}
        }
    }
    (md5 && qop_auth).then_some(())?;
    Some(Challenge {
        realm: realm?,
        nonce: nonce?,
        opaque,
        stale,
    })
}

/// The first challenge loadgen can answer among the `WWW-Authenticate` (`proxy`:
/// `Proxy-Authenticate`) headers of a response's header section.
pub fn pick_challenge(head: &[u8], proxy: bool) -> Option<Challenge> {
    let want: &[u8] = if proxy {
        b"proxy-authenticate"
    } else {
        b"www-authenticate"
    };
    crate::sipmsg::headers(head)
        .filter(|(_, name, _, _)| name.eq_ignore_ascii_case(want))
        .find_map(|(_, _, value, _)| parse_challenge(std::str::from_utf8(value).ok()?))
}

/// One user's authentication with a server: the nonce in use and its count, the HA1 of the
/// realm. Answering a challenge resets the count; each request counts one up.
#[derive(Debug, Clone)]
pub struct UserAuth {
    realm: Box<str>,
    nonce: Box<str>,
    opaque: Option<Box<str>>,
    ha1: Box<str>,
    nc: u32,
    /// Challenged by a 407: answer in `Proxy-Authorization`.
    proxy: bool,
}

/// `v` in lower-case hex, as many digits as `out` holds (the low ones).
fn hex_into(out: &mut [u8], v: u64) {
    let n = out.len();
    for (k, c) in out.iter_mut().enumerate() {
        *c = b"0123456789abcdef"[((v >> (4 * (n - 1 - k))) & 0xf) as usize];
    }
}

/// Append `s` as the inside of a quoted string.
fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        if c == b'"' || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

impl UserAuth {
    /// The state that answers `ch` for `username` with `password`.
    pub fn new(ch: Challenge, username: &str, password: &str, proxy: bool) -> UserAuth {
        UserAuth {
            ha1: digest::ha1(Algorithm::Md5, username, &ch.realm, password).into(),
            realm: ch.realm.into(),
            nonce: ch.nonce.into(),
            opaque: ch.opaque.map(Into::into),
            nc: 0,
            proxy,
        }
    }

    /// Take a new challenge: its nonce from count 1 (the HA1 again only for another realm).
    pub fn renew(&mut self, ch: Challenge, username: &str, password: &str, proxy: bool) {
        if *self.realm != *ch.realm {
            *self = UserAuth::new(ch, username, password, proxy);
            return;
        }
        self.nonce = ch.nonce.into();
        self.opaque = ch.opaque.map(Into::into);
        self.nc = 0;
        self.proxy = proxy;
    }

    /// The nonce count of the last request.
    pub fn nc(&self) -> u32 {
        self.nc
    }

    /// Append the `Authorization` (or `Proxy-Authorization`) line, CRLF-terminated, of the
    /// next request: `method` to `uri` (the Request-URI exactly as sent) by `username`, with
    /// the nonce count one up and a client nonce made from `cnonce`.
    pub fn write_header(
        &mut self,
        out: &mut Vec<u8>,
        username: &[u8],
        method: &str,
        uri: &[u8],
        cnonce: u64,
    ) {
        self.nc = self.nc.wrapping_add(1);
        let (mut nc, mut cn) = ([0u8; 8], [0u8; 16]);
        hex_into(&mut nc, self.nc as u64);
        hex_into(&mut cn, cnonce);
        // ASCII hex and the templates' ASCII URI: never invalid
        fn text(b: &[u8]) -> &str {
            std::str::from_utf8(b).unwrap_or_default()
        }
        // (the hashing's two hex strings are this request's only allocations)
        let response = digest::expected_response(
            Algorithm::Md5,
            &self.ha1,
            &self.nonce,
            text(&nc),
            text(&cn),
            "auth",
            method,
            text(uri),
        );
        out.extend_from_slice(if self.proxy {
            b"Proxy-Authorization: Digest username=".as_slice()
        } else {
            b"Authorization: Digest username=".as_slice()
        });
        push_quoted(out, username);
        out.extend_from_slice(b", realm=");
        push_quoted(out, self.realm.as_bytes());
        out.extend_from_slice(b", nonce=");
        push_quoted(out, self.nonce.as_bytes());
        out.extend_from_slice(b", uri=\"");
        out.extend_from_slice(uri);
        out.extend_from_slice(b"\", response=\"");
        out.extend_from_slice(response.as_bytes());
        out.extend_from_slice(b"\", algorithm=MD5, cnonce=\"");
        out.extend_from_slice(&cn);
        out.extend_from_slice(b"\", qop=auth, nc=");
        out.extend_from_slice(&nc);
        if let Some(o) = &self.opaque {
            out.extend_from_slice(b", opaque=");
            push_quoted(out, o.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use presenced_systems::auth::digest::{Nonces, Verdict, challenges, credentials, verify};

    #[test]
    fn reads_the_md5_challenge_of_the_pair_presenced_sends() {
        let nonce = "ab".repeat(32);
        let ch = challenges(&Algorithm::ALL, "example.com", &nonce, false);
        assert!(parse_challenge(&ch[0]).is_none(), "SHA-256 is not answered");
        let md5 = parse_challenge(&ch[1]).unwrap();
        assert_eq!(
            (md5.realm.as_str(), md5.nonce.as_str()),
            ("example.com", &*nonce)
        );
        assert!(!md5.stale && md5.opaque.is_none());
        let head = format!(
            "Via: x\r\nWWW-Authenticate: {}\r\nwww-authenticate: {}\r\nCSeq: 2 PUBLISH",
            ch[0], ch[1]
        );
        assert_eq!(pick_challenge(head.as_bytes(), false), Some(md5));
        assert_eq!(pick_challenge(head.as_bytes(), true), None);
        let stale = challenges(&[Algorithm::Md5], "r", "n", true);
        assert!(parse_challenge(&stale[0]).unwrap().stale);
        // other servers' layouts: no algorithm (MD5), a qop list, opaque, escapes
        let c = parse_challenge(
            "digest realm=\"a \\\"b\\\"\",nonce=xyz, qop=\"auth,auth-int\", opaque=\"o1\"",
        )
        .unwrap();
        assert_eq!(c.realm, "a \"b\"");
        assert_eq!((c.nonce.as_str(), c.opaque.as_deref()), ("xyz", Some("o1")));
        assert!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\"").is_none(),
            "no qop"
        );
        assert!(parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"").is_none());
        assert!(parse_challenge("Basic realm=\"r\"").is_none());
        assert!(parse_challenge("Digest realm=\"r, nonce=\"n\"").is_none());
    }

    #[test]
    fn answers_verify_with_presenced_and_reuse_the_nonce_with_growing_counts() {
        let mut nonces = Nonces::new([7; 32], 300);
        let nonce = nonces.issue(1000, 1);
        let ch = challenges(&Algorithm::ALL, "example.com", &nonce, false);
        let (user, uri) = ("p1", "sip:p1@example.com");
        let h_md5 = digest::ha1(Algorithm::Md5, user, "example.com", "pw");
        let h_sha = digest::ha1(Algorithm::Sha256, user, "example.com", "pw");
        let mut s = UserAuth::new(parse_challenge(&ch[1]).unwrap(), user, "pw", false);
        let check = |s: &mut UserAuth, nonces: &mut Nonces, method: &str, cnonce: u64| {
            let mut out = Vec::new();
            s.write_header(&mut out, user.as_bytes(), method, uri.as_bytes(), cnonce);
            let line = std::str::from_utf8(&out).unwrap();
            let value = line
                .strip_prefix("Authorization: ")
                .and_then(|v| v.strip_suffix("\r\n"))
                .unwrap();
            let c = credentials(value, uri).expect("parses");
            assert_eq!(c.username, user);
            verify(&c, &h_md5, &h_sha, method, uri, nonces, 1000)
        };
        assert_eq!(check(&mut s, &mut nonces, "PUBLISH", 1), Verdict::Ok);
        assert_eq!(s.nc(), 1);
        assert_eq!(
            check(&mut s, &mut nonces, "SUBSCRIBE", 1),
            Verdict::Ok,
            "nc 2, same nonce"
        );
        assert_eq!(check(&mut s, &mut nonces, "PUBLISH", 9), Verdict::Ok);
        // a count the server has seen is a replay: it challenges again
        s.nc = 1;
        assert_eq!(check(&mut s, &mut nonces, "PUBLISH", 1), Verdict::Stale);
        // a new challenge starts the count over on its nonce
        let fresh = nonces.issue(1000, 2);
        let ch2 = challenges(&[Algorithm::Md5], "example.com", &fresh, true);
        s.renew(parse_challenge(&ch2[0]).unwrap(), user, "pw", false);
        assert_eq!(check(&mut s, &mut nonces, "PUBLISH", 1), Verdict::Ok);
        assert_eq!(s.nc(), 1);
        // the wrong password is wrong
        let mut bad = UserAuth::new(parse_challenge(&ch[1]).unwrap(), user, "nope", false);
        assert_eq!(check(&mut bad, &mut nonces, "PUBLISH", 1), Verdict::Wrong);
        // a 407 is answered in Proxy-Authorization, an opaque echoed
        let mut p = UserAuth::new(
            Challenge {
                realm: "r".into(),
                nonce: "n".into(),
                opaque: Some("o".into()),
                stale: false,
            },
            user,
            "pw",
            true,
        );
        let mut out = Vec::new();
        p.write_header(&mut out, b"p1", "PUBLISH", uri.as_bytes(), 0);
        let line = String::from_utf8(out).unwrap();
        assert!(line.starts_with("Proxy-Authorization: Digest username=\"p1\""));
        assert!(line.ends_with(", nc=00000001, opaque=\"o\"\r\n"), "{line}");
    }
}
