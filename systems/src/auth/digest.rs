//! Digest access authentication, server side, for HTTP (RFC 7616) and SIP (RFC 3261 §22,
//! RFC 8760): MD5 and SHA-256 with qop=auth, stateless nonces that carry their issue time and a
//! MAC, and `stale=true` for a correct answer to an expired (or foreign) nonce. Time and the
//! nonce secret come in: the XCAP side passes the wall clock, the engine its own clock.
//!
//! Hand-written: the maintained digest crates on crates.io are clients (they parse challenges
//! and compute responses); none verifies credentials against stored HA1 values, which is all a
//! server needs. The tests use one of those clients (`digest_auth`) as an independent check.

use md5::Md5;
use sha2::{Digest, Sha256};

/// The digest algorithms we can offer; which ones and in what order is configured
/// (`xcap.digest_algorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    crate::hex::push_bytes(&mut s, bytes);
    s
}

impl Algorithm {
    /// Every algorithm we can offer, strongest first.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Md5];

    /// The token of the `algorithm` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// The algorithm of an `algorithm` parameter (absent: MD5, RFC 7616 §3.4). The `-sess`
    /// variants are not offered and so not accepted.
    pub fn parse(token: Option<&str>) -> Option<Algorithm> {
        match token {
            None => Some(Algorithm::Md5),
            Some(t) if t.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(t) if t.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hash_hex(self, data: &[u8]) -> String {
        self.hash_hex_of(&[data])
    }

    /// Lower-case hex of the hash of `parts` joined by `:` (no joined copy is made).
    pub fn hash_hex_of(self, parts: &[&[u8]]) -> String {
        fn feed<D: Digest>(mut h: D, parts: &[&[u8]]) -> String {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p);
            }
            hex(&h.finalize())
        }
        match self {
            Algorithm::Sha256 => feed(Sha256::new(), parts),
            Algorithm::Md5 => feed(Md5::new(), parts),
        }
    }
}

/// HA1 = H(username ":" realm ":" password) (RFC 7616 §3.4.2), what the user store keeps.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash_hex_of(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The `response` a client must send for qop=auth (RFC 7616 §3.4.1).
#[allow(clippy::too_many_arguments)]
pub fn expected_response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hash_hex_of(&[method.as_bytes(), uri.as_bytes()]);
    alg.hash_hex_of(&[
        ha1.as_bytes(),
        nonce.as_bytes(),
        nc.as_bytes(),
        cnonce.as_bytes(),
        qop.as_bytes(),
        ha2.as_bytes(),
    ])
}

/// What a nonce turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceState {
    /// Ours and young enough.
    Fresh,
    /// Ours but expired, or not ours (e.g. issued before a restart): a correct answer to it
    /// earns `stale=true`.
    Stale,
}

/// Issues and checks nonces: a nonce is the issue time (seconds) in hex and 64 bits that make
/// it unique, followed by a MAC of both under a secret, so checking one needs no table. The
/// only state is the highest nonce count seen per nonce, to refuse replayed requests (RFC 7616
/// §5.5); it is pruned of expired nonces when it grows.
pub struct Nonces {
    secret: [u8; 32],
    lifetime_secs: u64,
    counts: std::collections::HashMap<String, u64>,
    /// Prune expired nonces from `counts` when it reaches this size (twice what survived the
    /// last pruning, at least TRACKED_NONCES): amortised O(1) per new nonce.
    prune_at: usize,
}

/// Past this many tracked nonces, expired ones are dropped.
const TRACKED_NONCES: usize = 10_000;

impl Nonces {
    /// Nonces under `secret` (unguessable: from the operating system's random source), living
    /// `lifetime_secs`.
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> Nonces {
        Nonces {
            secret,
            lifetime_secs,
            counts: Default::default(),
            prune_at: TRACKED_NONCES,
        }
    }

    /// Record nonce count `nc` (hex) for a fresh `nonce` at `now` (seconds); false when it is
    /// not above the highest count already used with that nonce (a replay) or not a number.
    pub fn accept_count(&mut self, nonce: &str, nc: &str, now: u64) -> bool {
        let Ok(n) = u64::from_str_radix(nc, 16) else {
            return false;
        };
        if self.counts.len() >= self.prune_at && !self.counts.contains_key(nonce) {
            // every counted nonce passed `check` (its MAC) when first counted: its issue time
            // alone says whether it is still alive
            let lifetime = self.lifetime_secs;
            self.counts.retain(|k, _| {
                k.get(..16)
                    .and_then(|t| u64::from_str_radix(t, 16).ok())
                    .is_some_and(|t| now.saturating_sub(t) <= lifetime)
            });
            self.prune_at = (2 * self.counts.len()).max(TRACKED_NONCES);
        }
        match self.counts.get_mut(nonce) {
            Some(prev) if *prev >= n => false,
            Some(prev) => {
                *prev = n;
                true
            }
            None => {
                self.counts.insert(nonce.to_owned(), n);
                true
            }
        }
    }

    /// A nonce issued at `now` (seconds); `unique` tells apart nonces of the same second (so
    /// that their nonce counts do not collide).
    pub fn issue(&self, now: u64, unique: u64) -> String {
        let stamp = format!("{now:016x}{unique:016x}");
        let mac = mac(&self.secret, &stamp);
        format!("{stamp}{mac}")
    }

    /// Whether `nonce` is ours and fresh at `now` (seconds).
    pub fn check(&self, nonce: &str, now: u64) -> NonceState {
        check(&self.secret, self.lifetime_secs, nonce, now)
    }
}

fn mac(secret: &[u8; 32], stamp: &str) -> String {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(stamp.as_bytes());
    hex(&h.finalize()[..16])
}

fn check(secret: &[u8; 32], lifetime: u64, nonce: &str, now: u64) -> NonceState {
    if nonce.len() != 64 || !nonce.is_ascii() {
        return NonceState::Stale;
    }
    let (stamp, m) = nonce.split_at(32);
    let Ok(t) = u64::from_str_radix(&stamp[..16], 16) else {
        return NonceState::Stale;
    };
    if !ct_eq(m.as_bytes(), mac(secret, stamp).as_bytes()) {
        return NonceState::Stale;
    }
    if t > now + 60 || now.saturating_sub(t) > lifetime {
        return NonceState::Stale;
    }
    NonceState::Fresh
}

/// Constant-time equality (no early exit on the first differing byte).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The challenge values of a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`), one per
/// offered algorithm in the order given, which is the order of preference the client sees
/// (RFC 7616 §3.7), all with `nonce`.
pub fn challenges(algorithms: &[Algorithm], realm: &str, nonce: &str, stale: bool) -> Vec<String> {
    algorithms
        .iter()
        .map(|a| {
            let mut v = format!(
                "Digest realm={}, qop=\"auth\", algorithm={}, nonce=\"{nonce}\"",
                quote(realm),
                a.name()
            );
            if stale {
                v.push_str(", stale=true");
            }
            v
        })
        .collect()
}

/// The parameters of an `Authorization: Digest ...` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub nc: Option<String>,
    pub qop: Option<String>,
    pub userhash: bool,
}

/// The `name=token` / `name="quoted string"` list after an auth scheme (RFC 7235 §2.1), names
/// lower-cased, quoted values unescaped; None when it does not parse. Challenges and
/// credentials share it (the server reads these, loadgen the other).
pub fn auth_params(s: &str) -> Option<Vec<(String, String)>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            return Some(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() && b[i] != b',' {
            i += 1;
        }
        let name = s[start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return None;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut v = Vec::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            loop {
                // an unterminated quoted string does not parse
                match *b.get(i)? {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' if i + 1 < b.len() => {
                        v.push(b[i + 1]);
                        i += 2;
                    }
                    x => {
                        v.push(x);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                v.push(b[i]);
                i += 1;
            }
        }
        out.push((name, String::from_utf8(v).ok()?));
    }
}

/// The scheme of an auth header value and what follows it, when the scheme is `Digest`.
pub fn digest_params(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace)?);
    scheme.eq_ignore_ascii_case("Digest").then_some(rest)
}

/// Parse an Authorization header value: `Digest` then its parameters ([`auth_params`]). None
/// when it is not Digest or a mandatory parameter is missing.
pub fn parse_authorization(value: &str) -> Option<Credentials> {
    let mut c = Credentials::default();
    let (mut have_user, mut have_realm, mut have_nonce, mut have_uri, mut have_resp) =
        (false, false, false, false, false);
    for (name, val) in auth_params(digest_params(value)?)? {
        match name.as_str() {
            "username" => {
                c.username = val;
                have_user = true;
            }
            "realm" => {
                c.realm = val;
                have_realm = true;
            }
            "nonce" => {
                c.nonce = val;
                have_nonce = true;
            }
            "uri" => {
                c.uri = val;
                have_uri = true;
            }
            "response" => {
                c.response = val.to_ascii_lowercase();
                have_resp = true;
            }
            "algorithm" => c.algorithm = Some(val),
            "cnonce" => c.cnonce = Some(val),
            "nc" => c.nc = Some(val),
            "qop" => c.qop = Some(val),
            "userhash" => c.userhash = val.eq_ignore_ascii_case("true"),
            _ => {} // opaque, username*, extensions: not used
        }
    }
    (have_user && have_realm && have_nonce && have_uri && have_resp).then_some(c)
}

/// Parse the Authorization header of a request for `request_target`. Python's urllib (and so
/// xcaplib) writes the request target unescaped into `uri="..."`, so a node selector's `"`
/// ends the quoted string early and the header no longer parses or names a truncated URI.
/// When the text holds `uri="<request target>"` followed by `,` or the end, that is taken as
/// the digest-uri; safe, as the response must still verify over exactly that target.
pub fn credentials(value: &str, request_target: &str) -> Option<Credentials> {
    let parsed = parse_authorization(value);
    if parsed.as_ref().is_some_and(|c| c.uri == request_target) {
        return parsed;
    }
    raw_uri_respliced(value, request_target)
        .and_then(|v| parse_authorization(&v))
        .or(parsed)
}

/// `value` with an unescaped `uri="<target>"` parameter rewritten as a proper quoted string.
fn raw_uri_respliced(value: &str, target: &str) -> Option<String> {
    let needle = format!("\"{target}\"");
    // ASCII lower-casing keeps byte offsets, so positions in `lower` are positions in `value`.
    let lower = value.to_ascii_lowercase();
    value.match_indices(&needle).find_map(|(at, _)| {
        let end = at + needle.len();
        let after = value[end..].trim_start();
        let name = lower[..at].trim_end().strip_suffix('=')?.trim_end();
        let before = name.strip_suffix("uri")?;
        let bounded = before.is_empty() || before.ends_with([',', ' ', '\t']);
        (bounded && (after.is_empty() || after.starts_with(','))).then(|| {
            format!(
                "{}uri={}{}",
                &value[..before.len()],
                quote(target),
                &value[end..]
            )
        })
    })
}

/// The result of checking credentials against a user's stored HA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Right password, old nonce: challenge again with stale=true.
    Stale,
    Wrong,
}

/// Check `c` (already matched to a user with these HA1 values) for a request with `method` at
/// `now` (seconds). The digest-uri must be the request target as received (RFC 7616 §3.4.6).
#[allow(clippy::too_many_arguments)]
pub fn verify(
    c: &Credentials,
    ha1_md5: &str,
    ha1_sha256: &str,
    method: &str,
    request_target: &str,
    nonces: &mut Nonces,
    now: u64,
) -> Verdict {
    let Some(alg) = Algorithm::parse(c.algorithm.as_deref()) else {
        return Verdict::Wrong;
    };
    // qop=auth is required: we offered nothing else, and RFC 2069 answers without qop are
    // replayable.
    let (Some(qop), Some(nc), Some(cnonce)) = (&c.qop, &c.nc, &c.cnonce) else {
        return Verdict::Wrong;
    };
    if !qop.eq_ignore_ascii_case("auth") || c.uri != request_target || c.userhash {
        return Verdict::Wrong;
    }
    let ha1 = match alg {
        Algorithm::Md5 => ha1_md5,
        Algorithm::Sha256 => ha1_sha256,
    };
    let want = expected_response(alg, ha1, &c.nonce, nc, cnonce, qop, method, &c.uri);
    if !ct_eq(want.as_bytes(), c.response.as_bytes()) {
        return Verdict::Wrong;
    }
    match nonces.check(&c.nonce, now) {
        // A replayed count gets a fresh challenge: the legitimate client simply retries.
        NonceState::Fresh if nonces.accept_count(&c.nonce, nc, now) => Verdict::Ok,
        _ => Verdict::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7616_section_3_9_1_vectors() {
        // RFC 7616 §3.9.1: Mufasa / Circle of Life, realm http-auth@example.org.
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let (u, r, p) = ("Mufasa", "http-auth@example.org", "Circle of Life");
        let md5 = expected_response(
            Algorithm::Md5,
            &ha1(Algorithm::Md5, u, r, p),
            nonce,
            "00000001",
            cnonce,
            "auth",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(md5, "8ca523f5e9506fed4657c9700eebdbec");
        let sha = expected_response(
            Algorithm::Sha256,
            &ha1(Algorithm::Sha256, u, r, p),
            nonce,
            "00000001",
            cnonce,
            "auth",
            "GET",
            "/dir/index.html",
        );
        assert_eq!(
            sha,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn parses_quoted_and_token_parameters() {
        let c = parse_authorization(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
             algorithm=SHA-256,nonce=\"abc\", nc=00000001, cnonce=\"x\\\"y\", qop=auth, \
             response=\"ABC\", opaque=\"o\"",
        )
        .unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(c.cnonce.as_deref(), Some("x\"y"));
        assert_eq!(c.response, "abc");
        assert!(parse_authorization("Basic dXNlcjpwdw==").is_none());
        assert!(parse_authorization("Digest username=\"a\", realm=\"b").is_none());
        assert!(parse_authorization("Digest username=\"a\"").is_none());
    }

    #[test]
    fn unescaped_uri_as_python_urllib_sends_it() {
        // The exact layout of urllib.request.AbstractDigestAuthHandler.get_authorization.
        let target = "/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/\
                      resource-lists/list[@name=\"other\"]/@some-attribute";
        let header = |uri: &str, tail: &str| {
            format!(
                "Digest username=\"alice@example.com\", realm=\"presenced\", nonce=\"n1\", \
                 uri=\"{uri}\", response=\"0a1B\"{tail}"
            )
        };
        let python = header(
            target,
            ", algorithm=\"MD5\", qop=auth, nc=00000001, cnonce=\"c1\"",
        );
        assert!(parse_authorization(&python).is_none_or(|c| c.uri != target));
        let c = credentials(&python, target).expect("taken with the request target");
        assert_eq!(c.uri, target);
        assert_eq!(
            (c.username.as_str(), c.response.as_str()),
            ("alice@example.com", "0a1b")
        );
        assert_eq!(c.algorithm.as_deref(), Some("MD5"));
        assert_eq!(c.cnonce.as_deref(), Some("c1"));
        // As the last parameter, too.
        assert_eq!(
            credentials(&header(target, ""), target).unwrap().uri,
            target
        );
        // Only the request target itself, and only as a whole `uri` parameter.
        assert!(credentials(&python, "/xcap-root/other").is_none());
        let glued = python.replace(", uri=", ", xuri=");
        assert!(credentials(&glued, target).is_none());
        let cut = header(target, "x, qop=auth");
        assert!(credentials(&cut, target).is_none_or(|c| c.uri != target));
        // Well-formed headers parse as before.
        let fine = header("/xcap-root/a", ", qop=auth");
        assert_eq!(
            credentials(&fine, "/xcap-root/a"),
            parse_authorization(&fine)
        );
    }

    #[test]
    fn nonces_expire_and_foreign_ones_are_stale() {
        let n = Nonces::new([1; 32], 300);
        let fresh = n.issue(1000, 7);
        assert_eq!(n.check(&fresh, 1200), NonceState::Fresh);
        assert_eq!(n.check(&fresh, 1301), NonceState::Stale);
        let other = Nonces::new([2; 32], 300).issue(1000, 7);
        assert_eq!(n.check(&other, 1000), NonceState::Stale);
        assert_eq!(n.check("garbage", 1000), NonceState::Stale);
        assert_ne!(n.issue(1000, 8), fresh, "nonces of one second differ");
    }

    #[test]
    fn nonce_counts_must_grow() {
        let mut n = Nonces::new([1; 32], 300);
        let nonce = n.issue(10, 1);
        assert!(n.accept_count(&nonce, "00000001", 10));
        assert!(!n.accept_count(&nonce, "00000001", 10));
        assert!(n.accept_count(&nonce, "00000003", 10));
        assert!(!n.accept_count(&nonce, "00000002", 10));
        assert!(!n.accept_count(&nonce, "zz", 10));
        let other = n.issue(1, 2);
        assert!(
            n.accept_count(&other, "00000001", 10),
            "another nonce counts apart"
        );
    }

    #[test]
    fn counted_nonces_are_pruned_when_expired_and_kept_while_alive() {
        let mut n = Nonces::new([1; 32], 300);
        for i in 0..TRACKED_NONCES as u64 {
            assert!(n.accept_count(&n.issue(10, i), "00000001", 10));
        }
        // at the threshold with every nonce alive: nothing goes, and the next pruning waits
        // for twice as many (not a scan per new nonce)
        let alive = n.issue(200, 0);
        assert!(n.accept_count(&alive, "00000001", 200));
        assert_eq!(n.counts.len(), TRACKED_NONCES + 1);
        assert!(
            !n.accept_count(&n.issue(10, 3), "00000001", 200),
            "a replay is still seen"
        );
        // once the first ones expired, the pruning drops them and keeps the live counts
        for i in 0..TRACKED_NONCES as u64 + 2 {
            n.accept_count(&n.issue(400, 100_000 + i), "00000001", 400);
        }
        assert!(n.counts.len() < TRACKED_NONCES + 100, "{}", n.counts.len());
        assert!(
            !n.accept_count(&alive, "00000001", 400),
            "the live nonce's count is kept"
        );
    }

    #[test]
    fn verify_accepts_right_answers_only() {
        let mut n = Nonces::new([1; 32], 300);
        let (u, r) = ("alice@example.com", "presenced");
        let h_md5 = ha1(Algorithm::Md5, u, r, "pw");
        let h_sha = ha1(Algorithm::Sha256, u, r, "pw");
        for (alg, h) in [(Algorithm::Md5, &h_md5), (Algorithm::Sha256, &h_sha)] {
            let nonce = n.issue(100, h.len() as u64);
            let resp = expected_response(alg, h, &nonce, "00000001", "c", "auth", "PUT", "/x");
            let mut c = Credentials {
                username: u.into(),
                realm: r.into(),
                nonce: nonce.clone(),
                uri: "/x".into(),
                response: resp,
                algorithm: Some(alg.name().into()),
                cnonce: Some("c".into()),
                nc: Some("00000001".into()),
                qop: Some("auth".into()),
                userhash: false,
            };
            assert_eq!(
                verify(&c, &h_md5, &h_sha, "PUT", "/x", &mut n, 100),
                Verdict::Ok
            );
            assert_eq!(
                verify(&c, &h_md5, &h_sha, "PUT", "/x", &mut n, 100),
                Verdict::Stale,
                "the same nonce count again is a replay"
            );
            assert_eq!(
                verify(&c, &h_md5, &h_sha, "GET", "/x", &mut n, 100),
                Verdict::Wrong
            );
            assert_eq!(
                verify(&c, &h_md5, &h_sha, "PUT", "/y", &mut n, 100),
                Verdict::Wrong
            );
            c.qop = None;
            assert_eq!(
                verify(&c, &h_md5, &h_sha, "PUT", "/x", &mut n, 100),
                Verdict::Wrong
            );
        }
        let ch = challenges(&Algorithm::ALL, "presenced", &n.issue(100, 2), true);
        assert_eq!(ch.len(), 2);
        assert!(ch[0].contains("algorithm=SHA-256") && ch[0].contains("stale=true"));
        assert!(ch[1].contains("algorithm=MD5"));
    }
}
