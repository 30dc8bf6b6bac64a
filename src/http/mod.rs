//! The HTTP sidecar: XCAP (RFC 4825) behind an OMA Aggregation Proxy, on axum/hyper, in its own
//! thread with a tokio current-thread runtime.
//!
//! Layers, outside in: the Aggregation Proxy ([`proxy`], tower middleware) authenticates
//! (HTTP Digest against the user store, or an asserted identity from a trusted peer),
//! authorizes (a user's own `users/{xui}` tree; `global` read-only) and routes by AUID, either
//! to another XDMS over HTTP or to the in-process XDMS handlers ([`xdms`]), which map requests
//! onto the pure XCAP core and the [`Store`](crate::store::Store).

pub(crate) mod core;
pub mod digest;
mod forward;
mod probes;
mod proxy;
mod xdms;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tracing::{info, warn};

use crate::store::Store;

/// Where the XCAP tree starts on the HTTP server (RFC 4825 §6: the XCAP root).
pub const XCAP_ROOT: &str = "/xcap-root";

/// What the HTTP side needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Digest realm (`xcap.realm`).
    pub realm: String,
    /// Challenge requests for a user's tree with the user's domain as realm (`xcap.domain_realm`).
    pub domain_realm: bool,
    /// Peers whose asserted-identity headers are believed (`xcap.trusted_peers`).
    pub trusted_peers: Vec<IpAddr>,
    /// AUID -> base URL of the XDMS serving it (`xcap.forward`); others are served here.
    pub forward: BTreeMap<String, hyper::Uri>,
    /// The digest algorithms offered, in the order of the challenges (`xcap.digest_algorithms`).
    pub digest_algorithms: Vec<digest::Algorithm>,
    /// How long a digest nonce is good for (`xcap.nonce_lifetime_secs`).
    pub nonce_lifetime: Duration,
    /// Largest request body accepted (`xcap.max_document_bytes`).
    pub max_body_bytes: usize,
    /// How long a forwarded request may take (`xcap.forward_timeout_secs`).
    pub forward_timeout: Duration,
}

/// Shared by every request.
pub(crate) struct AppState {
    pub settings: HttpSettings,
    pub store: Arc<dyn Store>,
    pub usages: core::Usages,
    pub nonces: digest::Nonces,
    pub client: forward::Client,
    /// The `xcap-caps` global document, built once.
    pub caps: Vec<u8>,
    /// Set once the "no users: authentication off" warning has been logged for a request.
    pub warned_open: AtomicBool,
    /// What `/metrics` and `/readyz` read.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The running HTTP thread.
pub struct HttpServer {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl HttpServer {
    /// Stop accepting, finish the requests in flight (and every store write already begun),
    /// and join the thread.
    pub fn stop(mut self) -> Result<(), String> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| "http thread panicked".to_owned())?,
            None => Ok(()),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The router: the probes (`/metrics`, `/healthz`, `/readyz`) unauthenticated, everything
/// else through the Aggregation Proxy; XCAP lives below [`XCAP_ROOT`].
pub(crate) fn router(state: Arc<AppState>) -> Router {
    use axum::routing::get;
    let xcap = Router::new()
        .fallback(xdms::handle)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            proxy::aggregate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            probes::count_xcap,
        ))
        .with_state(state.clone());
    Router::new()
        .route("/metrics", get(probes::metrics))
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz))
        .with_state(state)
        .merge(xcap)
}

/// Start serving on `listener` (already bound, so the caller knows and prints its address),
/// with `/metrics` and `/readyz` reading `metrics`; HTTPS with `tls`.
pub fn start(
    listener: std::net::TcpListener,
    settings: HttpSettings,
    store: Arc<dyn Store>,
    metrics: Arc<crate::metrics::Metrics>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<HttpServer> {
    listener.set_nonblocking(true)?;
    match store.has_users() {
        Ok(false) => warn!(
            "xcap: no users defined, so XCAP runs WITHOUT authentication; \
             add one with `presenced user add` to require it"
        ),
        Ok(true) => info!(
            "xcap: digest authentication required (realm {})",
            settings.realm
        ),
        Err(e) => warn!("xcap: cannot read the user store: {e}"),
    }
    for (auid, to) in &settings.forward {
        info!("xcap: {auid} forwarded to {to}");
    }
    let usages = core::Usages::standard();
    let state = Arc::new(AppState {
        caps: core::xcap_caps_document(&usages),
        usages,
        nonces: digest::Nonces::new(settings.nonce_lifetime),
        client: forward::client(),
        settings,
        store,
        warned_open: AtomicBool::new(false),
        metrics,
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread =
        std::thread::Builder::new()
            .name("http".into())
            .spawn(move || -> Result<(), String> {
                // Current-thread runtime: the HTTP side is I/O-light next to SIP, and on two cores
                // a second scheduler thread would only compete with the engine. Store calls leave
                // the reactor through spawn_blocking (a small pool), so an fsync never stalls it.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(4)
                    .thread_name("http-store")
                    .build()
                    .map_err(|e| format!("http runtime: {e}"))?;
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| format!("http listener: {e}"))?;
                    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
                    if let Some(tls) = tls {
                        return serve_tls(listener, app, tls, stop_rx).await;
                    }
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop_rx.await;
                        })
                        .await
                        .map_err(|e| format!("http: {e}"))
                })
            })?;
    Ok(HttpServer {
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// How long a client may take over its TLS handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Serve HTTPS on `listener` until `stop`: each connection's handshake and requests on a task
/// of its own (a slow handshake holds up nobody else).
async fn serve_tls(
    listener: tokio::net::TcpListener,
    mut app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr>,
    tls: Arc<rustls::ServerConfig>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), String> {
    use tower_service::Service;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => return Ok(()),
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    warn!("https accept: {e}");
                    continue;
                }
            },
        };
        let Ok(svc) = app.call(peer).await;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("https handshake with {peer}: {e}");
                    return;
                }
                Err(_) => return,
            };
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// Read a request body of at most `limit` bytes. A larger one is read on (up to a bound) and
/// dropped before the caller answers 413: a client still sending when the server answers and
/// closes would see a connection reset instead of the 413.
pub(crate) async fn read_body(body: axum::body::Body, limit: usize) -> Option<bytes::Bytes> {
    use http_body_util::BodyExt;
    let drain_cap = limit.saturating_mul(4).max(16 << 20);
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let data = frame.ok()?.into_data().unwrap_or_default();
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else if seen > drain_cap {
            return None;
        }
    }
    (seen <= limit).then(|| buf.freeze())
}

/// The stored credentials of an XCAP user: the digest username is the URI without its scheme
/// (`sip:alice@example.com` -> `alice@example.com`) in `realm`, with aliases for the user's SIP
/// domain as realm (`alice` and `alice@example.com` in `example.com`, see `xcap.domain_realm`);
/// only the HA1 values are kept.
pub fn user_record(
    uri: &str,
    realm: &str,
    password: &str,
) -> Result<crate::store::UserRecord, String> {
    let (scheme, rest) = uri
        .split_once(':')
        .ok_or_else(|| format!("{uri}: not a SIP URI (want sip:user@domain)"))?;
    let valid = matches!(scheme.to_ascii_lowercase().as_str(), "sip" | "sips")
        && rest
            .split_once('@')
            .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty() && !h.contains('@'))
        && !rest
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\";?".contains(c));
    if !valid {
        return Err(format!(
            "{uri}: not a SIP URI of a user (want sip:user@domain)"
        ));
    }
    if password.is_empty() {
        return Err("the password must not be empty".into());
    }
    let login = |username: &str, realm: &str| crate::store::Login {
        username: username.to_owned(),
        realm: realm.to_owned(),
        ha1_md5: digest::ha1(digest::Algorithm::Md5, username, realm, password),
        ha1_sha256: digest::ha1(digest::Algorithm::Sha256, username, realm, password),
    };
    let main = login(rest, realm);
    // challenges name the domain in lower case (host names are case-insensitive)
    let (user, domain) = rest.split_once('@').unwrap_or_default();
    let domain = domain.to_ascii_lowercase();
    // the bare user part always; the whole address only where it is not the main login already
    let aliases = [user, rest]
        .into_iter()
        .filter(|&name| name == user || domain != realm)
        .map(|name| login(name, &domain))
        .collect();
    Ok(crate::store::UserRecord {
        uri: uri.to_owned(),
        username: main.username,
        realm: main.realm,
        ha1_md5: main.ha1_md5,
        ha1_sha256: main.ha1_sha256,
        aliases,
    })
}

#[cfg(test)]
mod tests {
    //! The proxy and handlers in-process (tower `oneshot`, no socket), with the real core:
    //! what reaches the store and the change channel.
    use super::*;
    use crate::store::{DocumentChange, SqliteStore};
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    fn settings() -> HttpSettings {
        HttpSettings {
            realm: "presenced".into(),
            domain_realm: true,
            trusted_peers: vec!["127.0.0.1".parse().unwrap()],
            forward: BTreeMap::new(),
            digest_algorithms: digest::Algorithm::ALL.to_vec(),
            nonce_lifetime: Duration::from_secs(300),
            max_body_bytes: 1 << 20,
            forward_timeout: Duration::from_secs(5),
        }
    }

    fn app(store: Arc<dyn Store>) -> Router {
        let usages = core::Usages::standard();
        router(Arc::new(AppState {
            caps: core::xcap_caps_document(&usages),
            usages,
            nonces: digest::Nonces::new(Duration::from_secs(300)),
            client: forward::client(),
            settings: settings(),
            store,
            warned_open: AtomicBool::new(false),
            metrics: Default::default(),
        }))
    }

    async fn call(
        app: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (StatusCode, Option<String>) {
        let mut b = Request::builder().method(method).uri(path);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let mut req = b.body(Body::from(body.to_vec())).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let r = app.clone().oneshot(req).await.unwrap();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().trim_matches('"').to_owned());
        (r.status(), etag)
    }

    /// The HTTP thread's kind of runtime.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn every_committed_write_is_announced_in_order_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("presenced-http-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (tx, rx) = crossbeam_channel::unbounded::<DocumentChange>();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir, Some(tx)).unwrap());
        let app = app(store);
        runtime().block_on(async {
            let p = "/xcap-root/resource-lists/users/sip:alice@example.com/index";
            let ct = [("content-type", "application/resource-lists+xml")];
            let doc = b"<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"/>";
            let (s, e1) = call(&app, "PUT", p, &ct, doc).await;
            assert_eq!(s, StatusCode::CREATED);
            let (s, e2) = call(&app, "PUT", p, &ct, doc).await;
            assert_eq!(s, StatusCode::OK);
            // Refused writes (412, 409, 415, 403) commit nothing and announce nothing.
            let pre = [ct[0], ("if-match", "\"nope\"")];
            assert_eq!(
                call(&app, "PUT", p, &pre, doc).await.0,
                StatusCode::PRECONDITION_FAILED
            );
            assert_eq!(
                call(&app, "PUT", p, &ct, b"junk").await.0,
                StatusCode::CONFLICT
            );
            let bad = [("content-type", "text/plain")];
            assert_eq!(
                call(&app, "PUT", p, &bad, doc).await.0,
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            );
            let other = [ct[0], ("x-xcap-asserted-identity", "<sip:bob@example.com>")];
            assert_eq!(
                call(&app, "PUT", p, &other, doc).await.0,
                StatusCode::FORBIDDEN
            );
            assert_eq!(call(&app, "GET", p, &[], b"").await.0, StatusCode::OK);
            let (s, _) = call(&app, "DELETE", p, &[], b"").await;
            assert_eq!(s, StatusCode::OK);
            let ev: Vec<DocumentChange> = rx.try_iter().collect();
            assert_eq!(ev.len(), 3, "{ev:?}");
            assert_eq!(
                (ev[0].previous_etag.as_ref(), ev[0].new_etag.as_ref()),
                (None, e1.as_ref())
            );
            assert_eq!(
                (ev[1].previous_etag.as_ref(), ev[1].new_etag.as_ref()),
                (e1.as_ref(), e2.as_ref())
            );
            assert_eq!(
                (ev[2].previous_etag.as_ref(), ev[2].new_etag.as_ref()),
                (e2.as_ref(), None)
            );
            assert_eq!(ev[0].auid, "resource-lists");
            assert_eq!(ev[0].xui.as_deref(), Some("sip:alice@example.com"));
            assert_eq!(ev[0].doc_path, "index");
            assert_eq!(
                ev[0].selector,
                "resource-lists/users/sip:alice@example.com/index"
            );
            assert_eq!(ev[1].content.as_deref(), Some(&doc[..]));
            assert_eq!(ev[2].content, None);
        });
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn not_ready_before_the_engine_has_published() {
        let dir = std::env::temp_dir().join(format!("presenced-probes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir, None).unwrap());
        let app = app(store);
        runtime().block_on(async {
            assert_eq!(call(&app, "GET", "/healthz", &[], b"").await.0, 200);
            // no listeners bound and no snapshot yet: not ready, though the store is open
            assert_eq!(call(&app, "GET", "/readyz", &[], b"").await.0, 503);
            assert_eq!(call(&app, "GET", "/metrics", &[], b"").await.0, 200);
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn user_records_hold_only_ha1() {
        let u = user_record("sip:alice@example.com", "presenced", "pw").unwrap();
        assert_eq!(u.username, "alice@example.com");
        assert_eq!(
            u.ha1_md5,
            digest::ha1(
                digest::Algorithm::Md5,
                "alice@example.com",
                "presenced",
                "pw"
            )
        );
        assert_eq!(u.ha1_sha256.len(), 64);
        let logins = |u: &crate::store::UserRecord| -> Vec<(String, String)> {
            u.aliases
                .iter()
                .map(|l| (l.username.clone(), l.realm.clone()))
                .collect()
        };
        let both = [
            ("alice".to_owned(), "example.com".to_owned()),
            ("alice@example.com".to_owned(), "example.com".to_owned()),
        ];
        assert_eq!(logins(&u), both);
        // the domain as the configured realm: the bare user part is still a login there
        let same = user_record("sip:alice@Example.com", "example.com", "pw").unwrap();
        assert_eq!(logins(&same), both[..1]);
        assert_eq!(
            same.aliases[0].ha1_md5,
            digest::ha1(digest::Algorithm::Md5, "alice", "example.com", "pw")
        );
        assert!(user_record("sip:alice", "presenced", "pw").is_err());
        assert!(user_record("sip:alice@example.com", "presenced", "").is_err());
    }
}
