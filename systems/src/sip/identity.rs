//! Whether two SIP or pres URIs name the same resource (RFC 3261 §19.1.4, `pres:` RFC 3859): the
//! comparison of a PIDF `entity` with the address of record it is published for.

/// Whether the presence `entity` names the address of record `aor`: `pres:`, `sip:` and `sips:`
/// (or no scheme) are equivalent; user part case-sensitive after %-decoding, host (and port)
/// case-insensitive, URI parameters and headers ignored (RFC 3261 §19.1.4; `pres:` is RFC 3859).
pub fn entity_matches(entity: &str, aor: &str) -> bool {
    if entity.strip_prefix("sip:") == Some(aor) && plain_aor(aor) {
        return true;
    }
    match (uri_identity(entity), uri_identity(aor)) {
        (Some((u1, h1)), Some((u2, h2))) => {
            !h1.is_empty()
                && h1.eq_ignore_ascii_case(h2)
                && crate::percent::decoded_bytes(u1).eq(crate::percent::decoded_bytes(u2))
        }
        _ => false,
    }
}

/// [`entity_matches`], compared as bytes in the common case (`sip:` + exactly the address).
pub fn entity_names(entity: &str, aor: &str) -> bool {
    let e = entity.as_bytes();
    if e.len() == 4 + aor.len() && e.starts_with(b"sip:") && e[4..] == *aor.as_bytes() {
        return plain_aor(aor) || entity_matches(entity, aor);
    }
    entity_matches(entity, aor)
}

/// What two URIs that [`entity_matches`] share, computed once for comparing one URI with many
/// (the identities of a rule set): the user part %-decoded, `@`, the host lower-cased. None for
/// a URI with no host or of another scheme.
pub fn identity_key(uri: &str) -> Option<Vec<u8>> {
    let (user, host) = uri_identity(uri)?;
    if host.is_empty() {
        return None;
    }
    let mut key: Vec<u8> = crate::percent::decoded_bytes(user).collect();
    key.push(b'@');
    key.extend(host.bytes().map(|b| b.to_ascii_lowercase()));
    Some(key)
}

/// The host of a SIP or pres URI, without its port (`[…]` kept for IPv6).
pub fn host_of(uri: &str) -> Option<&str> {
    let (_, hostport) = uri_identity(uri)?;
    let host = match hostport.strip_prefix('[') {
        Some(v6) => &hostport[..v6.find(']')? + 2],
        None => hostport.split(':').next().unwrap_or_default(),
    };
    Some(host).filter(|h| !h.is_empty())
}

/// RFC 3323 §4.1.1.3: the URI an anonymous request carries in From.
pub const ANONYMOUS: &str = "sip:anonymous@anonymous.invalid";

/// Who sent `req`: the identity it authenticated as ([`crate::auth`], once users exist);
/// otherwise the first `P-Asserted-Identity` (RFC 3325 §9.1) when the request comes from one
/// of `trusted` (an IMS core or an authenticating proxy, the spec's Trust Domain), otherwise
/// the `From` URI. From anyone else the header proves nothing and is ignored.
pub fn requester<'a>(req: &'a crate::sip::Request, trusted: &[std::net::IpAddr]) -> &'a str {
    if let Some(who) = &req.authenticated {
        return who;
    }
    asserted_or_from(req, trusted)
}

/// [`requester`] of a request not authenticated.
pub fn asserted_or_from<'a>(req: &'a crate::sip::Request, trusted: &[std::net::IpAddr]) -> &'a str {
    use crate::sip::{HeaderLookup, Name};
    if from_trusted_peer(&req.source, trusted)
        && let Some(pai) = req.header_values("P-Asserted-Identity").next()
    {
        let uri = crate::sip::fields::uri_of(pai);
        // a tel: identity can stand beside a sip: one (RFC 3325 §9.1); presence names sip: ones
        if !uri.is_empty() {
            return uri;
        }
    }
    crate::sip::fields::uri_of(req.header(Name::From).unwrap_or(""))
}

/// Whether a message from `source` comes from the Trust Domain: a peer in `trusted` (by
/// address), or one whose TLS client certificate the configured CA verified.
pub fn from_trusted_peer(source: &crate::net::Source, trusted: &[std::net::IpAddr]) -> bool {
    source.verified_peer || trusted.contains(&source.peer.ip())
}

/// Whether `uri` is the anonymous identity of RFC 3323 (any display name or parameters).
pub fn is_anonymous(uri: &str) -> bool {
    identity_key(uri).is_some_and(|k| k.eq_ignore_ascii_case(b"anonymous@anonymous.invalid"))
}

/// The common case of [`entity_matches`], `sip:` + exactly the address of record, holds when
/// nothing in it needs the general comparison (escapes, parameters, a password, brackets, white
/// space).
fn plain_aor(aor: &str) -> bool {
    static PLAIN: [bool; 256] = {
        let mut t = [false; 256];
        let mut c = b' ' as usize + 1;
        while c < 256 {
            t[c] = !matches!(c as u8, b':' | b'%' | b';' | b'?' | b'<' | b'>');
            c += 1;
        }
        t
    };
    let b = aor.as_bytes();
    if !b.iter().all(|&c| PLAIN[c as usize]) {
        return false;
    }
    // a host after the first `@`, when there is one
    match b.iter().position(|&c| c == b'@') {
        Some(at) => at + 1 < b.len(),
        None => !b.is_empty(),
    }
}

/// (user, host[:port]) of a `sip:`/`sips:`/`pres:` URI or of a bare `user@host`.
fn uri_identity(uri: &str) -> Option<(&str, &str)> {
    let mut s = uri.trim();
    if let Some(inner) = s.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        s = inner.trim();
    }
    if let Some(colon) = s.find(':') {
        let scheme = &s[..colon];
        if !scheme.contains('@') {
            if ["sip", "sips", "pres"]
                .iter()
                .any(|k| scheme.eq_ignore_ascii_case(k))
            {
                s = &s[colon + 1..];
            } else if scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            {
                return None;
            }
        }
    }
    let s = s.split('?').next().unwrap_or_default();
    let (user, hostport) = match s.split_once('@') {
        Some((userinfo, rest)) => (userinfo.split(':').next().unwrap_or_default(), rest),
        None => ("", s),
    };
    let host = hostport.split(';').next().unwrap_or_default();
    Some((user, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_matching() {
        for (entity, aor) in [
            ("pres:alice@example.com", "sip:alice@example.com"),
            ("sip:alice@example.com", "sip:alice@example.com"),
            ("sips:alice@EXAMPLE.com", "sip:alice@example.COM"),
            ("PRES:alice@example.com", "alice@example.com"),
            ("<sip:alice@example.com>", "sip:alice@example.com"),
            (
                "sip:alice@example.com;transport=tcp",
                "sip:alice@example.com",
            ),
            (
                "sip:alice@example.com?subject=x",
                "pres:alice@example.com;x=y",
            ),
            ("sip:alice:secret@example.com", "sip:alice@example.com"),
            ("sip:%61lice@example.com", "sip:alice@example.com"),
            (
                "sip:+1555;phone-context=x@example.com",
                "sip:+1555;phone-context=x@example.com",
            ),
            ("sip:example.com", "sip:example.com"),
        ] {
            assert!(entity_matches(entity, aor), "{entity} vs {aor}");
        }
        for (entity, aor) in [
            ("sip:Alice@example.com", "sip:alice@example.com"),
            ("sip:alice@example.com", "sip:alice@example.org"),
            ("sip:alice@example.com:5061", "sip:alice@example.com"),
            ("sip:bob@example.com", "sip:alice@example.com"),
            ("tel:+15551234", "sip:+15551234@example.com"),
            ("", "sip:alice@example.com"),
            ("sip:alice@", "sip:alice@"),
        ] {
            assert!(!entity_matches(entity, aor), "{entity} vs {aor}");
            assert!(
                identity_key(entity).is_none() || identity_key(entity) != identity_key(aor),
                "{entity} vs {aor}"
            );
        }
    }

    #[test]
    fn keys_agree_with_matching() {
        let uris = [
            "sip:alice@example.com",
            "pres:alice@EXAMPLE.com",
            "<sips:%61lice@example.com;transport=tcp>",
            "sip:Alice@example.com",
            "sip:alice@example.com:5061",
            "sip:bob@example.org",
            "sip:example.com",
        ];
        for a in uris {
            for b in uris {
                let keyed = identity_key(a).is_some() && identity_key(a) == identity_key(b);
                assert_eq!(keyed, entity_matches(a, b), "{a} vs {b}");
            }
        }
        assert_eq!(
            host_of("sip:alice@Example.com:5060;x=y"),
            Some("Example.com")
        );
        assert_eq!(
            host_of("sip:alice@[2001:db8::1]:5060"),
            Some("[2001:db8::1]")
        );
        assert_eq!(host_of("tel:+1555"), None);
    }
}
