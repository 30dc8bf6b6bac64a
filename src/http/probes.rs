//! What operators poll, outside the XCAP root and so outside the Aggregation Proxy and its
//! authentication: `/metrics` (Prometheus text exposition; counts only, no user data),
//! `/healthz` and `/readyz`. Also the counting of XCAP requests by AUID and status.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AppState, XCAP_ROOT};

/// What `prometheus-client` writes: OpenMetrics text, which Prometheus reads too.
const EXPOSITION: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, EXPOSITION)], state.metrics.render()).into_response()
}

/// `GET /healthz`: the process serves HTTP.
pub(crate) async fn healthz() -> StatusCode {
    StatusCode::OK
}

/// `GET /readyz`: the store answers, the SIP listeners are bound and the engine is turning
/// (a fresh snapshot, inbox below its high-water mark).
pub(crate) async fn readyz(State(state): State<Arc<AppState>>) -> StatusCode {
    let store = state.store.clone();
    let store_ok = tokio::task::spawn_blocking(move || store.has_users().is_ok())
        .await
        .unwrap_or(false);
    if store_ok && state.metrics.ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Count each request below the XCAP root by AUID and the status it got (the proxy's 401s
/// included). AUIDs nobody serves count as `other`, so a client cannot grow the label set.
pub(crate) async fn count_xcap(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let auid = req
        .uri()
        .path()
        .strip_prefix(XCAP_ROOT)
        .and_then(|p| p.strip_prefix('/'))
        .map(|p| p.split('/').next().unwrap_or(""))
        .map(|a| {
            if state.usages.get(a).is_some() || state.settings.forward.contains_key(a) {
                a.to_owned()
            } else {
                "other".to_owned()
            }
        });
    let resp = next.run(req).await;
    if let Some(auid) = auid {
        state.metrics.count_xcap(&auid, resp.status().as_u16());
    }
    resp
}
