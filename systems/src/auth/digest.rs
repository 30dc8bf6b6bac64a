//! Digest access authentication, server side, for HTTP (RFC 7616) and SIP (RFC 3261 §22,
//! RFC 8760): MD5 and SHA-256 with qop=auth, stateless nonces that carry their issue time and a
//! MAC, and `stale=true` for a correct answer to an expired (or foreign) nonce. Time and the
//! nonce secret come in: the XCAP side passes the wall clock, the engine its own clock.
//!
//! Hand-written: the maintained digest crates on crates.io are clients (they parse challenges
//! and compute responses); none verifies credentials against stored HA1 values, which is all a
//! server needs. The tests use one of those clients (`digest_auth`) as an independent check.
//!
//! SIP checks credentials on every PUBLISH and SUBSCRIBE, so nothing here allocates on the
//! way to a verdict: parameters are borrowed from the header, hashes written on the stack.

use std::borrow::Cow;
use std::collections::HashMap;

use md5::Md5;
use sha2::{Digest, Sha256};

use crate::keyed_hash::HashKeys;

/// The digest algorithms we can offer; which ones and in what order is configured
/// (`xcap.digest_algorithms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

/// A hash (at most SHA-256's 32 bytes) in lower-case hex, on the stack.
#[derive(Clone, Copy)]
pub struct HexDigest {
    buf: [u8; 64],
    len: usize,
}

impl HexDigest {
    /// The hex form of `bytes` (at most 32 of them).
    pub fn of(bytes: &[u8]) -> HexDigest {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut d = HexDigest {
            buf: [0; 64],
            len: 2 * bytes.len().min(32),
        };
        for (i, &b) in bytes.iter().take(32).enumerate() {
            d.buf[2 * i] = DIGITS[(b >> 4) as usize];
            d.buf[2 * i + 1] = DIGITS[(b & 0xf) as usize];
        }
        d
    }

    pub fn as_str(&self) -> &str {
        // hex digits are ASCII
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
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
        self.digest_of(parts).as_str().to_owned()
    }

    /// [`Algorithm::hash_hex_of`] on the stack.
    pub fn digest_of(self, parts: &[&[u8]]) -> HexDigest {
        fn feed<D: Digest>(mut h: D, parts: &[&[u8]]) -> HexDigest {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p);
            }
            HexDigest::of(&h.finalize())
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
    response_digest(alg, ha1, nonce, nc, cnonce, qop, method, uri)
        .as_str()
        .to_owned()
}

#[allow(clippy::too_many_arguments)]
fn response_digest(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> HexDigest {
    let ha2 = alg.digest_of(&[method.as_bytes(), uri.as_bytes()]);
    alg.digest_of(&[
        ha1.as_bytes(),
        nonce.as_bytes(),
        nc.as_bytes(),
        cnonce.as_bytes(),
        qop.as_bytes(),
        ha2.as_str().as_bytes(),
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

/// A nonce answered rightly at least once: its MAC and the highest nonce count used with it.
#[derive(Debug, Clone, Copy)]
struct Counted {
    mac: [u8; 32],
    count: u64,
}

impl Counted {
    /// Take count `n` for a nonce with MAC `mac` if it is this one's and above its count.
    fn bump(&mut self, mac: &[u8], n: u64) -> bool {
        if !ct_eq(&self.mac, mac) || self.count >= n {
            return false;
        }
        self.count = n;
        true
    }
}

/// The count of the nonce a login last used, kept beside the login (see [`Nonces::admit_in`]).
#[derive(Debug, Clone, Copy)]
pub struct NonceSlot {
    key: u128,
    counted: Counted,
}

/// Issues and checks nonces: a nonce is the issue time (seconds) in hex and 64 bits that make
/// it unique, followed by a MAC of both under a secret, so checking one needs no table. The
/// only state is the highest nonce count seen per nonce, to refuse replayed requests (RFC 7616
/// §5.5); it is pruned of expired nonces when it grows. A nonce found there was MAC-checked
/// when first counted: matching its MAC again is the whole check (clients reuse a nonce for
/// many requests).
pub struct Nonces {
    secret: [u8; 32],
    lifetime_secs: u64,
    /// By issue time and unique part, and the hash of the username a slot kept it for (0 for
    /// [`Nonces::admit`]): counts are per username and nonce, which refuses every replay (a
    /// replayed request carries its username) whoever else answers the same nonce.
    counts: HashMap<(u128, u64), Counted, HashKeys>,
    /// Prune expired nonces from `counts` when it reaches this size (twice what survived the
    /// last pruning, at least TRACKED_NONCES): amortised O(1) per new nonce.
    prune_at: usize,
}

/// Past this many tracked nonces, expired ones are dropped.
const TRACKED_NONCES: usize = 10_000;

/// The issue time and unique part of a nonce of ours' shape (32 lower-case hex digits of
/// stamp, 32 of MAC), else None.
fn stamp_of(nonce: &str) -> Option<(u64, u64)> {
    let b = nonce.as_bytes();
    if b.len() != 64 || !b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let field = |r: std::ops::Range<usize>| u64::from_str_radix(&nonce[r], 16).ok();
    Some((field(0..16)?, field(16..32)?))
}

impl Nonces {
    /// Nonces under `secret` (unguessable: from the operating system's random source), living
    /// `lifetime_secs`.
    pub fn new(secret: [u8; 32], lifetime_secs: u64) -> Nonces {
        let seed = u128::from_le_bytes(secret[..16].try_into().unwrap_or_default());
        Nonces {
            secret,
            lifetime_secs,
            counts: HashMap::with_hasher(HashKeys::derive(seed, 0x6e6f_6e63)),
            prune_at: TRACKED_NONCES,
        }
    }

    /// Whether `nonce` is ours and fresh at `now` (seconds) and `nc` (hex) is above every
    /// count already used with it; records the count when so. False for an expired or foreign
    /// nonce and for a replay alike: either earns a new challenge.
    pub fn admit(&mut self, nonce: &str, nc: &str, now: u64) -> bool {
        let Some((key, mac, n)) = self.alive(nonce, nc, now) else {
            return false;
        };
        if let Some(c) = self.counts.get_mut(&(key, 0)) {
            return c.bump(mac, n);
        }
        if self.check(nonce, now) != NonceState::Fresh {
            return false;
        }
        let mut c = Counted {
            mac: [0; 32],
            count: 0,
        };
        c.mac.copy_from_slice(mac);
        let ok = c.bump(mac, n);
        self.keep((key, 0), c, now);
        ok
    }

    /// [`Nonces::admit`] for a login that keeps its last nonce's count in `slot`. Clients
    /// reuse one nonce for many requests, so the count is found beside the login's HA1,
    /// without a lookup of its own; a nonce other than the slot's takes the slot, the one it
    /// held goes to the table. Each nonce's count for `username` is in one place: replays
    /// stay refused.
    pub fn admit_in(
        &mut self,
        slot: &mut Option<NonceSlot>,
        username: &str,
        nonce: &str,
        nc: &str,
        now: u64,
    ) -> bool {
        let Some((key, mac, n)) = self.alive(nonce, nc, now) else {
            return false;
        };
        if let Some(s) = slot
            && s.key == key
        {
            return s.counted.bump(mac, n);
        }
        let owner = std::hash::BuildHasher::hash_one(self.counts.hasher(), username) | 1;
        let counted = match self.counts.remove(&(key, owner)) {
            Some(c) => c,
            None if self.check(nonce, now) == NonceState::Fresh => {
                let mut c = Counted {
                    mac: [0; 32],
                    count: 0,
                };
                c.mac.copy_from_slice(mac);
                c
            }
            None => return false,
        };
        if let Some(old) = slot.take()
            && now.saturating_sub((old.key >> 64) as u64) <= self.lifetime_secs
        {
            self.keep((old.key, owner), old.counted, now);
        }
        let s = slot.insert(NonceSlot { key, counted });
        s.counted.bump(mac, n)
    }

    /// The table key, MAC and count of a request's nonce and nonce count, when the nonce has
    /// our shape and its issue time is within its lifetime (its MAC is not checked here).
    fn alive<'n>(&self, nonce: &'n str, nc: &str, now: u64) -> Option<(u128, &'n [u8], u64)> {
        let n = u64::from_str_radix(nc, 16).ok()?;
        let (t, unique) = stamp_of(nonce)?;
        if t > now + 60 || now.saturating_sub(t) > self.lifetime_secs {
            return None;
        }
        Some((
            (t as u128) << 64 | unique as u128,
            &nonce.as_bytes()[32..],
            n,
        ))
    }

    /// Track `c`; expired nonces are dropped first when the table has doubled.
    fn keep(&mut self, key: (u128, u64), c: Counted, now: u64) {
        if self.counts.len() >= self.prune_at {
            let lifetime = self.lifetime_secs;
            self.counts
                .retain(|k, _| now.saturating_sub((k.0 >> 64) as u64) <= lifetime);
            self.prune_at = (2 * self.counts.len()).max(TRACKED_NONCES);
        }
        self.counts.insert(key, c);
    }

    /// A nonce issued at `now` (seconds); `unique` tells apart nonces of the same second (so
    /// that their nonce counts do not collide).
    pub fn issue(&self, now: u64, unique: u64) -> String {
        let stamp = format!("{now:016x}{unique:016x}");
        let mac = mac(&self.secret, &stamp);
        format!("{stamp}{}", mac.as_str())
    }

    /// Whether `nonce` is ours and fresh at `now` (seconds).
    pub fn check(&self, nonce: &str, now: u64) -> NonceState {
        check(&self.secret, self.lifetime_secs, nonce, now)
    }
}

fn mac(secret: &[u8; 32], stamp: &str) -> HexDigest {
    let mut h = Sha256::new();
    h.update(secret);
    h.update(stamp.as_bytes());
    HexDigest::of(&h.finalize()[..16])
}

fn check(secret: &[u8; 32], lifetime: u64, nonce: &str, now: u64) -> NonceState {
    let Some((t, _)) = stamp_of(nonce) else {
        return NonceState::Stale;
    };
    if !ct_eq(
        &nonce.as_bytes()[32..],
        mac(secret, &nonce[..32]).as_str().as_bytes(),
    ) {
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

/// [`ct_eq`] ignoring ASCII case (hex digests may come in upper case).
fn ct_eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| {
            acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
        }) == 0
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

/// The parameters of an `Authorization: Digest ...` header, borrowed from it unless a quoted
/// value held escapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    /// As sent (hex, compared ignoring case).
    pub response: Cow<'a, str>,
    pub algorithm: Option<Cow<'a, str>>,
    pub cnonce: Option<Cow<'a, str>>,
    pub nc: Option<Cow<'a, str>>,
    pub qop: Option<Cow<'a, str>>,
    pub userhash: bool,
}

/// Each `name=token` / `name="quoted string"` of the list after an auth scheme (RFC 7235
/// §2.1) handed to `f`, quoted values unescaped; false when the list does not parse.
fn each_auth_param<'a>(s: &'a str, mut f: impl FnMut(&'a str, Cow<'a, str>)) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            return true;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() && b[i] != b',' {
            i += 1;
        }
        let name = &s[start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' {
            return false;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let start = i;
            let mut escaped: Option<Vec<u8>> = None;
            loop {
                // an unterminated quoted string does not parse
                let Some(&c) = b.get(i) else {
                    return false;
                };
                match c {
                    b'"' => break,
                    b'\\' if i + 1 < b.len() => {
                        escaped
                            .get_or_insert_with(|| b[start..i].to_vec())
                            .push(b[i + 1]);
                        i += 2;
                    }
                    x => {
                        if let Some(v) = &mut escaped {
                            v.push(x);
                        }
                        i += 1;
                    }
                }
            }
            let end = i;
            i += 1;
            match escaped {
                None => Cow::Borrowed(&s[start..end]),
                Some(v) => match String::from_utf8(v) {
                    Ok(v) => Cow::Owned(v),
                    Err(_) => return false,
                },
            }
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            Cow::Borrowed(&s[start..i])
        };
        f(name, value);
    }
}

/// The `name=token` / `name="quoted string"` list after an auth scheme (RFC 7235 §2.1), names
/// lower-cased, quoted values unescaped; None when it does not parse. Challenges and
/// credentials share it (the server reads these, loadgen the other).
pub fn auth_params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    each_auth_param(s, |n, v| out.push((n.to_ascii_lowercase(), v.into_owned()))).then_some(out)
}

/// The scheme of an auth header value and what follows it, when the scheme is `Digest`.
pub fn digest_params(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, rest) = value.split_at(value.find(char::is_whitespace)?);
    scheme.eq_ignore_ascii_case("Digest").then_some(rest)
}

/// Parse an Authorization header value: `Digest` then its parameters ([`auth_params`]). None
/// when it is not Digest or a mandatory parameter is missing.
pub fn parse_authorization(value: &str) -> Option<Credentials<'_>> {
    let mut c = Credentials::default();
    let (mut have_user, mut have_realm, mut have_nonce, mut have_uri, mut have_resp) =
        (false, false, false, false, false);
    let parsed = each_auth_param(digest_params(value)?, |name, val| {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("username") {
            c.username = val;
            have_user = true;
        } else if is("realm") {
            c.realm = val;
            have_realm = true;
        } else if is("nonce") {
            c.nonce = val;
            have_nonce = true;
        } else if is("uri") {
            c.uri = val;
            have_uri = true;
        } else if is("response") {
            c.response = val;
            have_resp = true;
        } else if is("algorithm") {
            c.algorithm = Some(val);
        } else if is("cnonce") {
            c.cnonce = Some(val);
        } else if is("nc") {
            c.nc = Some(val);
        } else if is("qop") {
            c.qop = Some(val);
        } else if is("userhash") {
            c.userhash = val.eq_ignore_ascii_case("true");
        } // opaque, username*, extensions: not used
    });
    (parsed && have_user && have_realm && have_nonce && have_uri && have_resp).then_some(c)
}

/// Parse the Authorization header of a request for `request_target`. Python's urllib (and so
/// xcaplib) writes the request target unescaped into `uri="..."`, so a node selector's `"`
/// ends the quoted string early and the header no longer parses or names a truncated URI.
/// When the text holds `uri="<request target>"` followed by `,` or the end, that is taken as
/// the digest-uri; safe, as the response must still verify over exactly that target.
pub fn credentials<'a>(value: &'a str, request_target: &str) -> Option<Credentials<'a>> {
    let parsed = parse_authorization(value);
    if parsed.as_ref().is_some_and(|c| c.uri == request_target) {
        return parsed;
    }
    raw_uri_respliced(value, request_target)
        .and_then(|v| parse_authorization(&v).map(owned))
        .or(parsed)
}

/// `c` owning its values.
fn owned(c: Credentials<'_>) -> Credentials<'static> {
    let own = |v: Cow<'_, str>| Cow::Owned(v.into_owned());
    Credentials {
        username: own(c.username),
        realm: own(c.realm),
        nonce: own(c.nonce),
        uri: own(c.uri),
        response: own(c.response),
        algorithm: c.algorithm.map(own),
        cnonce: c.cnonce.map(own),
        nc: c.nc.map(own),
        qop: c.qop.map(own),
        userhash: c.userhash,
    }
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

/// Check `c` (already matched to a user with these HA1 values, in hex) for a request with
/// `method` at `now` (seconds). The digest-uri must be the request target as received (RFC
/// 7616 §3.4.6).
#[allow(clippy::too_many_arguments)]
pub fn verify(
    c: &Credentials<'_>,
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
    let ha1 = match alg {
        Algorithm::Md5 => ha1_md5,
        Algorithm::Sha256 => ha1_sha256,
    };
    if !right_answer(c, ha1, method, request_target) {
        return Verdict::Wrong;
    }
    // A replayed count gets a fresh challenge: the legitimate client simply retries.
    match &c.nc {
        Some(nc) if nonces.admit(&c.nonce, nc, now) => Verdict::Ok,
        _ => Verdict::Stale,
    }
}

/// Whether `c` is a right answer (qop=auth, for exactly `request_target`) by a user with
/// `ha1` (hex, of the algorithm `c` names) for a request with `method`; its nonce is checked
/// apart ([`Nonces::admit`], [`Nonces::admit_in`]).
pub fn right_answer(c: &Credentials<'_>, ha1: &str, method: &str, request_target: &str) -> bool {
    let Some(alg) = Algorithm::parse(c.algorithm.as_deref()) else {
        return false;
    };
    // qop=auth is required: we offered nothing else, and RFC 2069 answers without qop are
    // replayable.
    let (Some(qop), Some(nc), Some(cnonce)) = (&c.qop, &c.nc, &c.cnonce) else {
        return false;
    };
    if !qop.eq_ignore_ascii_case("auth") || c.uri != request_target || c.userhash {
        return false;
    }
    let want = response_digest(alg, ha1, &c.nonce, nc, cnonce, qop, method, &c.uri);
    ct_eq_ignore_case(want.as_str().as_bytes(), c.response.as_bytes())
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
        assert_eq!(c.response, "ABC", "as sent: compared ignoring case");
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
        assert_eq!((&*c.username, &*c.response), ("alice@example.com", "0a1B"));
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
        assert!(n.admit(&nonce, "00000001", 10));
        assert!(!n.admit(&nonce, "00000001", 10));
        assert!(n.admit(&nonce, "00000003", 10));
        assert!(!n.admit(&nonce, "00000002", 10));
        assert!(!n.admit(&nonce, "zz", 10));
        let other = n.issue(1, 2);
        assert!(
            n.admit(&other, "00000001", 10),
            "another nonce counts apart"
        );
    }

    #[test]
    fn a_slot_holds_one_nonce_count_and_swapping_loses_none() {
        let mut n = Nonces::new([1; 32], 300);
        let (a, b) = (n.issue(10, 1), n.issue(10, 2));
        let mut slot = None;
        let admit = |n: &mut Nonces, slot: &mut Option<NonceSlot>, nonce: &str, nc: &str| {
            n.admit_in(slot, "alice", nonce, nc, 10)
        };
        assert!(admit(&mut n, &mut slot, &a, "00000001"));
        assert!(
            !admit(&mut n, &mut slot, &a, "00000001"),
            "replay in the slot"
        );
        assert!(admit(&mut n, &mut slot, &b, "00000001"), "b takes the slot");
        assert!(
            !admit(&mut n, &mut slot, &a, "00000001"),
            "a's count went to the table"
        );
        assert!(admit(&mut n, &mut slot, &a, "00000002"));
        assert!(
            !admit(&mut n, &mut slot, &b, "00000001"),
            "b's count came back"
        );
        assert!(admit(&mut n, &mut slot, &b, "00000002"));
        // another username answering the same nonces counts apart, and is refused replays too
        let mut bob = None;
        assert!(n.admit_in(&mut bob, "bob", &a, "00000001", 10));
        assert!(n.admit_in(&mut bob, "bob", &b, "00000001", 10));
        assert!(!n.admit_in(&mut bob, "bob", &a, "00000001", 10));
        assert!(
            !admit(&mut n, &mut slot, &a, "00000002"),
            "alice's count of a is kept"
        );
        // the slot's nonce with another MAC is not taken for it
        let forged = format!("{}{}", &a[..32], "0".repeat(32));
        assert!(!admit(&mut n, &mut slot, &forged, "00000009"));
        assert!(
            !n.admit_in(&mut slot, "alice", &a, "00000009", 350),
            "expired"
        );
        let foreign = Nonces::new([2; 32], 300).issue(10, 5);
        assert!(!n.admit_in(&mut None, "carol", &foreign, "1", 10));
    }

    #[test]
    fn counted_nonces_are_pruned_when_expired_and_kept_while_alive() {
        let mut n = Nonces::new([1; 32], 300);
        for i in 0..TRACKED_NONCES as u64 {
            assert!(n.admit(&n.issue(10, i), "00000001", 10));
        }
        // at the threshold with every nonce alive: nothing goes, and the next pruning waits
        // for twice as many (not a scan per new nonce)
        let alive = n.issue(200, 0);
        assert!(n.admit(&alive, "00000001", 200));
        assert_eq!(n.counts.len(), TRACKED_NONCES + 1);
        assert!(
            !n.admit(&n.issue(10, 3), "00000001", 200),
            "a replay is still seen"
        );
        // once the first ones expired, the pruning drops them and keeps the live counts
        for i in 0..TRACKED_NONCES as u64 + 2 {
            n.admit(&n.issue(400, 100_000 + i), "00000001", 400);
        }
        assert!(n.counts.len() < TRACKED_NONCES + 100, "{}", n.counts.len());
        assert!(
            !n.admit(&alive, "00000001", 400),
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
                nonce: nonce.clone().into(),
                uri: "/x".into(),
                response: resp.into(),
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
