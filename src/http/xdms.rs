//! The XDMS handlers: XCAP GET/PUT/DELETE (RFC 4825 §7) mapped onto the pure XCAP core and the
//! store, with entity tags and conditional requests (RFC 9110 §13), and the virtual documents:
//! the xcap-caps global index (RFC 4825 §12), the rls-services global index (RFC 4826 §4.4.1)
//! and the OMA xcap-directory of each user.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::warn;

use super::AppState;
use super::core::{
    self, DirectoryEntry, Method, Outcome, Request as XcapRequest, Scope, XcapError, XcapUri,
};
use super::proxy::Routed;
use crate::store::{DocKey, StoreRead, StoredDoc, WriteOp};

const CAPS_AUID: &str = "xcap-caps";
use crate::store::RLS_AUID;
const DIRECTORY_AUID: &str = "org.openmobilealliance.xcap-directory";
const DIRECTORY_DOC: &str = "directory.xml";

/// A response built off the reactor (plain data, so it can cross from `spawn_blocking`).
#[derive(Debug)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(HeaderName, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn text(status: u16, text: &str) -> Reply {
        Reply::new(status).body(
            "text/plain; charset=utf-8",
            format!("{text}\n").into_bytes(),
        )
    }

    fn header(mut self, name: HeaderName, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }

    fn etag(self, etag: Option<&str>) -> Reply {
        match etag {
            Some(t) => self.header(header::ETAG, format!("\"{t}\"")),
            None => self,
        }
    }

    fn body(self, mime: &str, body: Vec<u8>) -> Reply {
        let mut r = self.header(header::CONTENT_TYPE, mime);
        r.body = body;
        r
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // an empty body gets no Content-Type (axum would say application/octet-stream)
        let mut r = if self.body.is_empty() {
            status.into_response()
        } else {
            (status, self.body).into_response()
        };
        for (n, v) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(n, v);
            }
        }
        r
    }
}

/// The response for an error from the core: its status, the RFC 4825 §11 body for a 409, and
/// `Allow` for a 405. `etag`: the current document's, if there is one; `root`: the absolute
/// XCAP root URI (`http://host/xcap-root`) that makes a `no-parent` ancestor an HTTP URI as
/// RFC 4825 §11.4 wants (empty: left relative).
pub(crate) fn error_reply(e: &XcapError, etag: Option<&str>, root: &str) -> Reply {
    let mut r = match (e.status, e.body_with_root(root)) {
        (409, Some(body)) => Reply::new(409).body("application/xcap-error+xml", body),
        _ => Reply::text(e.status, &e.phrase),
    };
    if let Some(allow) = e.allow {
        r = r.header(header::ALLOW, allow);
    }
    r.etag(etag)
}

fn storage_failure(e: impl std::fmt::Display) -> Reply {
    warn!("xcap: store: {e}");
    Reply::text(500, "storage failure")
}

fn not_allowed(allow: &'static str) -> Reply {
    Reply::text(405, "method not allowed").header(header::ALLOW, allow)
}

/// A strong ETag for a document composed at request time: a hash of its bytes, so equal
/// content has an equal tag and any change gives a different one.
fn content_etag(body: &[u8]) -> String {
    let h = Sha256::digest(body);
    h[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The entity tags of an If-Match / If-None-Match header: None for `*`, else the list
/// (weak tags marked).
fn etag_list(headers: &HeaderMap, name: HeaderName) -> Option<Option<Vec<(bool, String)>>> {
    let values: Vec<&str> = headers
        .get_all(&name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    let mut tags = Vec::new();
    for v in values {
        for t in v.split(',') {
            let t = t.trim();
            if t == "*" {
                return Some(None);
            }
            let (weak, t) = match t.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            tags.push((weak, t.trim_matches('"').to_owned()));
        }
    }
    Some(Some(tags))
}

/// The preconditions of RFC 9110 §13.2.2 against the current document's tag (None: no
/// document). Err: the status to answer (412, or 304 for a GET).
#[derive(Debug, Clone, Default)]
struct Preconditions {
    if_match: Option<Option<Vec<(bool, String)>>>,
    if_none_match: Option<Option<Vec<(bool, String)>>>,
}

impl Preconditions {
    fn from(headers: &HeaderMap) -> Preconditions {
        Preconditions {
            if_match: etag_list(headers, header::IF_MATCH),
            if_none_match: etag_list(headers, header::IF_NONE_MATCH),
        }
    }

    fn check(&self, current: Option<&str>, safe: bool) -> Result<(), u16> {
        if let Some(m) = &self.if_match {
            // Strong comparison: a weak tag never matches (RFC 9110 §13.1.1).
            let ok = match (m, current) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(list), Some(cur)) => list.iter().any(|(w, t)| !w && t == cur),
            };
            if !ok {
                return Err(412);
            }
        }
        if let Some(m) = &self.if_none_match {
            // Weak comparison (RFC 9110 §13.1.2).
            let matched = match (m, current) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(list), Some(cur)) => list.iter().any(|(_, t)| t == cur),
            };
            if matched {
                return Err(if safe { 304 } else { 412 });
            }
        }
        Ok(())
    }
}

fn precondition_reply(status: u16, etag: Option<&str>) -> Reply {
    match status {
        304 => Reply::new(304).etag(etag),
        _ => Reply::text(412, "precondition failed").etag(etag),
    }
}

/// The core's window on the other documents, inside the write transaction.
struct StoreDirectory<'a>(&'a dyn StoreRead);

impl core::Directory for StoreDirectory<'_> {
    fn service_uri_in_use(&self, uri: &str, xui: &str, doc_path: &str) -> bool {
        match self.0.service_uri_holders(uri) {
            Ok(holders) => holders.iter().any(|(x, p)| !(x == xui && p == doc_path)),
            Err(e) => {
                // Refuse rather than risk two services with one URI.
                warn!("xcap: store: {e}");
                true
            }
        }
    }
}

/// RFC 3339 UTC time of Unix seconds (for the xcap-directory's `last-modified`).
fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn key_of(uri: &XcapUri) -> DocKey {
    DocKey {
        auid: uri.auid.clone(),
        xui: match &uri.scope {
            Scope::Global => None,
            Scope::User(x) => Some(x.clone()),
        },
        path: uri.doc_path.clone(),
        selector: uri.document_selector(),
    }
}

/// GET on a document we hold (stored or composed): preconditions, then the core selects.
fn get_from(
    state: &AppState,
    root: &str,
    uri: &XcapUri,
    pre: &Preconditions,
    doc: Option<(&[u8], &str)>,
) -> Reply {
    let etag = doc.map(|(_, t)| t);
    if let Err(s) = pre.check(etag, true) {
        return precondition_reply(s, etag);
    }
    let req = XcapRequest {
        method: Method::Get,
        uri,
        body: &[],
        content_type: None,
    };
    struct NoDirectory;
    impl core::Directory for NoDirectory {
        fn service_uri_in_use(&self, _: &str, _: &str, _: &str) -> bool {
            false
        }
    }
    match core::apply(&state.usages, &req, doc.map(|(d, _)| d), &NoDirectory) {
        Ok(Outcome::Content { body, mime }) => Reply::new(200).body(&mime, body).etag(etag),
        Ok(Outcome::Write { .. }) => Reply::text(500, "the core answered a GET with a write"),
        Err(e) => error_reply(&e, etag, root),
    }
}

/// The virtual documents: Some(reply) when `uri` names one (or a resource that only exists
/// virtually), None for stored documents.
fn virtual_document(
    state: &AppState,
    uri: &XcapUri,
    method: Method,
    pre: &Preconditions,
    root: &str,
) -> Option<Reply> {
    let composed: Result<Vec<u8>, Reply> = match (uri.auid.as_str(), &uri.scope) {
        (CAPS_AUID, Scope::Global) if uri.doc_path == "index" => Ok(state.caps.clone()),
        (CAPS_AUID, _) => Err(Reply::text(404, "no such document")),
        (RLS_AUID, Scope::Global) if uri.doc_path == "index" => {
            match state.store.user_documents(RLS_AUID) {
                Ok(docs) => {
                    let docs: Vec<(String, Vec<u8>)> =
                        docs.into_iter().map(|(x, _, d)| (x, d)).collect();
                    Ok(core::rls_services_global_index(&docs))
                }
                Err(e) => Err(storage_failure(e)),
            }
        }
        (DIRECTORY_AUID, Scope::User(xui)) if uri.doc_path == DIRECTORY_DOC => {
            match state.store.list_user(xui) {
                Ok(list) => {
                    let entries: Vec<DirectoryEntry> = list
                        .into_iter()
                        .filter(|m| m.auid != DIRECTORY_AUID)
                        .map(|m| DirectoryEntry {
                            uri: XcapUri {
                                auid: m.auid.clone(),
                                scope: Scope::User(xui.clone()),
                                doc_path: m.path,
                                node: None,
                                ns_bindings: Vec::new(),
                            }
                            .document_selector(),
                            auid: m.auid,
                            etag: m.etag,
                            last_modified: rfc3339(m.modified),
                            size: m.size,
                        })
                        .collect();
                    Ok(core::xcap_directory_document(root, &entries))
                }
                Err(e) => Err(storage_failure(e)),
            }
        }
        (DIRECTORY_AUID, _) => Err(Reply::text(404, "no such document")),
        _ => return None,
    };
    Some(match composed {
        Err(r) => r,
        Ok(_) if method != Method::Get => not_allowed("GET"),
        Ok(doc) => {
            let etag = content_etag(&doc);
            get_from(state, root, uri, pre, Some((&doc, &etag)))
        }
    })
}

/// GET, PUT or DELETE of a stored document (or a node in it).
fn stored_document(
    state: &AppState,
    root: &str,
    uri: &XcapUri,
    method: Method,
    pre: &Preconditions,
    body: &[u8],
    content_type: Option<&str>,
) -> Reply {
    let key = key_of(uri);
    if method == Method::Get {
        return match state.store.get(&key) {
            Ok(doc) => get_from(
                state,
                root,
                uri,
                pre,
                doc.as_ref().map(|d| (&d.content[..], d.etag.as_str())),
            ),
            Err(e) => storage_failure(e),
        };
    }
    let req = XcapRequest {
        method,
        uri,
        body,
        content_type,
    };
    let mut refused: Option<Reply> = None;
    let mut created = false;
    let mut decide = |current: Option<&StoredDoc>, read: &dyn StoreRead| -> WriteOp {
        let etag = current.map(|d| d.etag.as_str());
        if let Err(s) = pre.check(etag, false) {
            refused = Some(precondition_reply(s, etag));
            return WriteOp::Keep;
        }
        match core::apply(
            &state.usages,
            &req,
            current.map(|d| &d.content[..]),
            &StoreDirectory(read),
        ) {
            Ok(Outcome::Write {
                document,
                created: c,
            }) => {
                created = c;
                match document {
                    Some(d) => WriteOp::Put(d),
                    None => WriteOp::Delete,
                }
            }
            Ok(Outcome::Content { .. }) => {
                refused = Some(Reply::text(500, "the core answered a write with content"));
                WriteOp::Keep
            }
            Err(e) => {
                refused = Some(error_reply(&e, etag, root));
                WriteOp::Keep
            }
        }
    };
    match state.store.modify(&key, &mut decide) {
        Err(e) => storage_failure(e),
        Ok(None) => refused.unwrap_or_else(|| Reply::text(500, "nothing written")),
        Ok(Some(c)) => Reply::new(if created { 201 } else { 200 }).etag(c.new_etag.as_deref()),
    }
}

/// The handler behind the proxy.
pub(crate) async fn handle(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let Some(routed) = req.extensions().get::<Routed>().cloned() else {
        return Reply::text(404, "not found").into_response();
    };
    let method = match *req.method() {
        HttpMethod::GET | HttpMethod::HEAD => Method::Get,
        HttpMethod::PUT => Method::Put,
        HttpMethod::DELETE => Method::Delete,
        _ => {
            // The composed documents are read-only, like the global tree.
            let read_only = routed.uri.scope == Scope::Global || routed.uri.auid == DIRECTORY_AUID;
            return not_allowed(if read_only { "GET" } else { "GET, PUT, DELETE" }).into_response();
        }
    };
    tracing::debug!(
        "xcap {} {} by {:?}",
        req.method(),
        routed.uri.document_selector(),
        routed.identity
    );
    let pre = Preconditions::from(req.headers());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['"', '<', '>', '/', ' ']))
        .unwrap_or("localhost");
    let root = format!("http://{host}{}", super::XCAP_ROOT);
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(body) = super::read_body(req.into_body(), state.settings.max_body_bytes).await else {
        return Reply::text(413, "request body too large")
            .header(header::CONNECTION, "close")
            .into_response();
    };
    let reply = tokio::task::spawn_blocking(move || {
        let uri = &routed.uri;
        virtual_document(&state, uri, method, &pre, &root).unwrap_or_else(|| {
            stored_document(
                &state,
                &root,
                uri,
                method,
                &pre,
                &body,
                content_type.as_deref(),
            )
        })
    })
    .await;
    match reply {
        Ok(r) => r.into_response(),
        Err(e) => storage_failure(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn preconditions() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, "\"a\", \"b\"".parse().unwrap());
        let p = Preconditions::from(&h);
        assert_eq!(p.check(Some("b"), false), Ok(()));
        assert_eq!(p.check(Some("c"), false), Err(412));
        assert_eq!(p.check(None, false), Err(412));
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, "W/\"a\"".parse().unwrap());
        assert_eq!(Preconditions::from(&h).check(Some("a"), false), Err(412));
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, "*".parse().unwrap());
        let p = Preconditions::from(&h);
        assert_eq!(p.check(None, false), Ok(()));
        assert_eq!(p.check(Some("a"), false), Err(412));
        assert_eq!(p.check(Some("a"), true), Err(304));
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, "W/\"a\"".parse().unwrap());
        assert_eq!(Preconditions::from(&h).check(Some("a"), true), Err(304));
    }

    #[test]
    fn service_uris_of_a_document() {
        let doc = br#"<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">
            <service uri="sip:a@x"><list/></service><x:service xmlns:x="urn:other" uri="sip:no@x"/>
            <service uri=" sip:b@x "/></rls-services>"#;
        assert_eq!(crate::store::service_uris(doc), vec!["sip:a@x", "sip:b@x"]);
    }
}
