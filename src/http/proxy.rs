//! The OMA Aggregation Proxy, as tower middleware in front of the XDMS handlers:
//! authentication (HTTP Digest against the user store, or an asserted identity from a trusted
//! peer), authorization (own `users/{xui}` tree only, `global` read-only) and routing by AUID
//! (in-process, or forwarded to another XDMS).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{debug, warn};

use super::core::{Scope, XcapUri};
use super::digest::{self, Verdict};
use super::{AppState, XCAP_ROOT, forward};

/// Headers by which a trusted peer (an IMS core, an authenticating front proxy) tells us who
/// the user is: 3GPP TS 24.109's `X-3GPP-Asserted-Identity` and OpenXCAP's
/// `X-XCAP-Asserted-Identity`.
pub(crate) const ASSERTED_IDENTITY: [&str; 2] =
    ["x-3gpp-asserted-identity", "x-xcap-asserted-identity"];

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// No user is defined: authentication is off.
    Open,
    /// An authenticated user (their SIP URI).
    User(String),
}

/// What the proxy hands the XDMS handlers.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub uri: XcapUri,
    pub identity: Identity,
}

/// The SIP URI in an asserted-identity value: `<sip:a@b>`, `"Alice" <sip:a@b>`,
/// `"sip:a@b"` or `sip:a@b`.
pub(crate) fn asserted_uri(v: &str) -> Option<String> {
    let v = v.trim();
    let inner = match (v.find('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v.trim_matches('"'),
    }
    .trim();
    let lower = inner.to_ascii_lowercase();
    (["sip:", "sips:", "tel:"]
        .iter()
        .any(|s| lower.starts_with(s))
        && inner.len() > 4)
        .then(|| inner.to_owned())
}

/// Whether two user URIs name the same user: scheme and host compare without case, the user
/// part exactly (RFC 3261 §19.1.4).
pub(crate) fn same_user(a: &str, b: &str) -> bool {
    fn split(u: &str) -> (String, &str, String) {
        let (scheme, rest) = u.split_once(':').unwrap_or(("", u));
        match rest.rsplit_once('@') {
            Some((user, host)) => (scheme.to_ascii_lowercase(), user, host.to_ascii_lowercase()),
            None => (scheme.to_ascii_lowercase(), "", rest.to_ascii_lowercase()),
        }
    }
    split(a) == split(b)
}

fn is_trusted(state: &AppState, peer: IpAddr) -> bool {
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    state.settings.trusted_peers.contains(&peer)
}

fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// The realm to challenge a request for `target` with: the SIP domain of the user whose tree it
/// names when `xcap.domain_realm` is on (what xcaplib looks its password up by), else
/// `xcap.realm`.
fn challenge_realm<'a>(s: &'a super::HttpSettings, target: &str) -> std::borrow::Cow<'a, str> {
    let domain = || {
        // /xcap-root/<auid>/users/<xui>/...
        let mut segs = target
            .strip_prefix(XCAP_ROOT)?
            .split('/')
            .filter(|s| !s.is_empty());
        let (_auid, users, xui) = (segs.next()?, segs.next()?, segs.next()?);
        if users != "users" {
            return None;
        }
        let xui = presenced_systems::percent::decode(xui).ok()?;
        let host = xui.rsplit_once('@')?.1;
        let host = host.split([';', '?']).next().unwrap_or_default();
        (!host.is_empty() && !host.contains(['"', '\\'])).then(|| host.to_ascii_lowercase())
    };
    match s.domain_realm.then(domain).flatten() {
        Some(d) => d.into(),
        None => s.realm.as_str().into(),
    }
}

fn unauthorized(state: &AppState, target: &str, stale: bool) -> Response {
    let mut r = plain(StatusCode::UNAUTHORIZED, "authentication required");
    let s = &state.settings;
    let realm = challenge_realm(s, target);
    for c in digest::challenges(&s.digest_algorithms, &realm, &state.nonces, stale) {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

fn internal(e: impl std::fmt::Display) -> Response {
    warn!("xcap: store: {e}");
    plain(StatusCode::INTERNAL_SERVER_ERROR, "storage failure")
}

/// The XCAP root itself (with or without a trailing slash) holds no document: 404 to a read,
/// 405 to anything else, as OpenXCAP answers (RFC 9110 §15.5.6: the method is known, the
/// resource does not support it).
fn root_reply(method: &Method) -> Response {
    if matches!(*method, Method::GET | Method::HEAD) {
        return plain(
            StatusCode::NOT_FOUND,
            "the XCAP root holds no document: name an application usage below it",
        );
    }
    let mut r = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "the XCAP root takes GET only",
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    r
}

/// Authenticate the request: Ok(identity) or the 401/500 to send.
async fn authenticate(
    state: &Arc<AppState>,
    peer: IpAddr,
    method: &Method,
    headers: &HeaderMap,
    target: &str,
) -> Result<Identity, Response> {
    if is_trusted(state, peer) {
        for h in ASSERTED_IDENTITY {
            if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
                return match asserted_uri(v) {
                    Some(u) => Ok(Identity::User(u)),
                    None => Err(plain(StatusCode::BAD_REQUEST, "bad asserted identity")),
                };
            }
        }
    }
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| digest::credentials(v, target));
    let s = state.clone();
    // A login is looked up in the realm the client answered in: its aliases exist only in
    // the user's own domain, so with domain realms off only xcap.realm is accepted (below).
    let lookup_name = creds
        .as_ref()
        .map(|c| (c.username.to_string(), c.realm.to_string()));
    let (has_users, user) = tokio::task::spawn_blocking(move || {
        let has = s.store.has_users()?;
        let user = match lookup_name {
            Some((n, realm)) if has => s.store.user_by_username(&n, &realm)?,
            _ => None,
        };
        Ok::<_, crate::store::StoreError>((has, user))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    if !has_users {
        if !state.warned_open.swap(true, Ordering::Relaxed) {
            warn!("xcap: serving a request without authentication: no users are defined");
        }
        return Ok(Identity::Open);
    }
    let (Some(c), Some(u)) = (creds, user) else {
        return Err(unauthorized(state, target, false));
    };
    // An algorithm the operator does not offer is refused even with a right answer.
    let offered = digest::Algorithm::parse(c.algorithm.as_deref())
        .is_some_and(|a| state.settings.digest_algorithms.contains(&a));
    let realm_ok = c.realm == state.settings.realm || state.settings.domain_realm;
    if !realm_ok || !offered {
        return Err(unauthorized(state, target, false));
    }
    match digest::verify(
        &c,
        &u.ha1_md5,
        &u.ha1_sha256,
        method.as_str(),
        target,
        &state.nonces,
    ) {
        Verdict::Ok => Ok(Identity::User(u.uri)),
        Verdict::Stale => Err(unauthorized(state, target, true)),
        Verdict::Wrong => {
            debug!("xcap: wrong digest for {}", c.username);
            Err(unauthorized(state, target, false))
        }
    }
}

/// The middleware: authenticate, parse the XCAP URI, authorize, route.
pub(crate) async fn aggregate(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    let Some(below) = path
        .strip_prefix(XCAP_ROOT)
        .filter(|p| p.is_empty() || p.starts_with('/'))
    else {
        return plain(
            StatusCode::NOT_FOUND,
            "not found (the XCAP root is /xcap-root)",
        );
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |pq| pq.as_str().to_owned());
    let identity = match authenticate(&state, peer.ip(), req.method(), req.headers(), &target).await
    {
        Ok(i) => i,
        Err(r) => return r,
    };
    if below.bytes().all(|b| b == b'/') {
        return root_reply(req.method());
    }
    let uri = match XcapUri::parse(below, req.uri().query()) {
        Ok(u) => u,
        Err(e) => return super::xdms::error_reply(&e, None, "").into_response(),
    };
    if state.usages.get(&uri.auid).is_none() {
        return plain(StatusCode::NOT_FOUND, "no such application usage");
    }
    match (&uri.scope, &identity) {
        (Scope::User(xui), Identity::User(me)) if !same_user(xui, me) => {
            return plain(StatusCode::FORBIDDEN, "not your document tree");
        }
        (Scope::Global, _) if !matches!(*req.method(), Method::GET | Method::HEAD) => {
            // The global tree is read-only for everyone (RFC 4825 §6.2; RFC 4826 §4.4.1).
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "the global tree is read-only",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET"));
            return r;
        }
        _ => {}
    }
    if let Some(base) = state.settings.forward.get(&uri.auid) {
        let base = base.clone();
        return forward::forward(&state, &base, req, &identity).await;
    }
    req.extensions_mut().insert(Routed { uri, identity });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asserted_identity_forms() {
        for v in [
            "sip:alice@example.com",
            "<sip:alice@example.com>",
            "\"Alice\" <sip:alice@example.com>",
            "\"sip:alice@example.com\"",
        ] {
            assert_eq!(
                asserted_uri(v).as_deref(),
                Some("sip:alice@example.com"),
                "{v}"
            );
        }
        assert_eq!(asserted_uri("alice"), None);
        assert_eq!(asserted_uri("<http://x>"), None);
    }

    #[test]
    fn user_comparison() {
        assert!(same_user("sip:alice@example.com", "SIP:alice@Example.COM"));
        assert!(!same_user("sip:alice@example.com", "sip:Alice@example.com"));
        assert!(!same_user("sip:alice@example.com", "sip:bob@example.com"));
    }
}
