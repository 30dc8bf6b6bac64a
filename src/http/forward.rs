//! Forwarding to an XDMS that runs on its own address (`xcap.forward.<auid>`), with hyper's
//! client. The proxy has authenticated the user already; it tells the XDMS who they are in
//! `X-XCAP-Asserted-Identity`, so that XDMS must list this proxy in `xcap.trusted_peers`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::warn;

use super::AppState;
use super::proxy::{ASSERTED_IDENTITY, Identity};

/// The pooled HTTP/1.1 client used for forwarding.
pub(crate) type Client = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A client with keep-alive pooling.
pub(crate) fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) and credentials that must not travel on.
const DROP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "authorization",
];

fn bad_gateway(status: StatusCode, text: String) -> Response {
    warn!("xcap forward: {text}");
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text + "\n",
    )
        .into_response()
}

/// Send `req` on to `base` (an `http://host:port` URL, optionally with a path prefix) and
/// relay the answer.
pub(crate) async fn forward(
    state: &Arc<AppState>,
    base: &Uri,
    req: Request,
    identity: &Identity,
) -> Response {
    let (parts, body) = req.into_parts();
    let Some(body) = super::read_body(body, state.settings.max_body_bytes).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            "request body too large\n",
        )
            .into_response();
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let prefix = base.path().trim_end_matches('/');
    let target = format!(
        "{}://{}{prefix}{pq}",
        base.scheme_str().unwrap_or("http"),
        base.authority().map_or("", |a| a.as_str())
    );
    let Ok(uri) = target.parse::<Uri>() else {
        return bad_gateway(StatusCode::BAD_GATEWAY, format!("bad target {target}"));
    };
    let mut out = hyper::Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(Full::new(body))
        .expect("request parts are valid");
    let headers = out.headers_mut();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if DROP.contains(&n) || ASSERTED_IDENTITY.contains(&n) || n == "host" {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if let Some(a) = base.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        headers.insert(header::HOST, v);
    }
    if let Identity::User(u) = identity
        && let Ok(v) = HeaderValue::from_str(&format!("<{u}>"))
    {
        headers.insert(ASSERTED_IDENTITY[1], v);
    }
    let sent = tokio::time::timeout(state.settings.forward_timeout, state.client.request(out));
    let resp = match sent.await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return bad_gateway(StatusCode::BAD_GATEWAY, format!("{target}: {e}")),
        Err(_) => {
            return bad_gateway(
                StatusCode::GATEWAY_TIMEOUT,
                format!("{target}: no answer in time"),
            );
        }
    };
    let (mut parts, incoming) = resp.into_parts();
    for h in DROP {
        parts.headers.remove(h);
    }
    Response::from_parts(parts, Body::new(incoming))
}
