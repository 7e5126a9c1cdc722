//! The admin endpoint: `/healthz`, `/readyz`, `/metrics`, `/config` (the
//! live table, status, provider and listener state as JSON), `/status` and
//! `/status/<kind>/<namespace>/<name>` (status in Kubernetes form).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::object::{Kind, ObjectKey};
use crate::runtime::LiveState;

/// Binds the admin endpoint and serves it in the background.
pub async fn spawn_admin(
    addr: SocketAddr,
    state: Arc<LiveState>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(&state, &req)) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((local, task))
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    respond(status, "application/json", body)
}

fn not_found(what: &str) -> Response<Full<Bytes>> {
    respond(
        StatusCode::NOT_FOUND,
        "text/plain",
        format!("{what} not found\n"),
    )
}

fn route(state: &LiveState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    let path = req.uri().path();
    match path {
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" => {
            if state.ready.load(Ordering::Relaxed) {
                let binds = state.binds.load();
                let mut body = String::from("ready\n");
                for (addr, error) in &binds.failed {
                    body.push_str(&format!("warning: cannot bind {addr}: {error}\n"));
                }
                respond(StatusCode::OK, "text/plain", body)
            } else {
                let binds = state.binds.load();
                let why = if binds.failed.is_empty() {
                    "config not served yet".to_string()
                } else {
                    binds
                        .failed
                        .iter()
                        .map(|(addr, e)| format!("{addr}: {e}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    format!("not ready: {why}\n"),
                )
            }
        }
        "/metrics" => respond(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            state.metrics.encode(),
        ),
        "/config" => {
            let table = state.table.load();
            let status = state.status();
            let provider = state.provider.as_ref().map(|p| p.borrow().clone());
            let value = serde_json::json!({
                "table": &**table,
                "status": status.kubernetes_list(),
                "provider": provider,
                "listeners": &**state.binds.load(),
            });
            json(StatusCode::OK, &value)
        }
        "/status" => json(StatusCode::OK, &state.status().kubernetes_list()),
        _ => match path.strip_prefix("/status/") {
            Some(rest) => status_of(state, rest),
            None => not_found(path),
        },
    }
}

/// `/status/<kind>/<namespace>/<name>`, or `/status/<kind>/<name>` for
/// cluster-scoped kinds.
fn status_of(state: &LiveState, rest: &str) -> Response<Full<Bytes>> {
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let key = match parts.as_slice() {
        [kind, name] => Kind::from_path_segment(kind)
            .filter(|k| !k.is_namespaced())
            .map(|k| ObjectKey::new(k, "", *name)),
        [kind, namespace, name] => Kind::from_path_segment(kind)
            .filter(|k| k.is_namespaced())
            .map(|k| ObjectKey::new(k, *namespace, *name)),
        _ => None,
    };
    let Some(key) = key else {
        return respond(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "use /status/<kind>/<namespace>/<name> or /status/<kind>/<name>\n",
        );
    };
    match state.status().kubernetes_object(&key) {
        Some(value) => json(StatusCode::OK, &value),
        None => not_found(&key.to_string()),
    }
}
