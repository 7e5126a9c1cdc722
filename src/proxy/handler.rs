//! One request, from arrival to response: select the route, run the rule's
//! filters, pick a backend, forward, and record metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::error::ProxyError;
use super::forward;
use super::{ProxyBody, Shared};
use crate::metrics::{Label, LatencyLabels, RequestLabels, status_class};
use crate::routing::backend::BackendTarget;
use crate::routing::filter::{FixedResponse, Redirect, UrlRewrite};
use crate::routing::host::normalize_host;
use crate::routing::{ListenerRoutes, RequestFacts, RouteEntry, RouteTable};

/// Facts about the downstream connection a request came in on.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    /// The client's IP as the `X-Forwarded-For` entry, made once per
    /// connection rather than formatted for every request.
    pub forwarded_for: HeaderValue,
    /// The listener's configured address (the routing table key).
    pub listener: SocketAddr,
    /// Whether TLS was terminated.
    pub tls: bool,
}

impl ConnInfo {
    /// The facts of a connection accepted from `remote` on `listener`.
    pub fn new(remote: SocketAddr, listener: SocketAddr, tls: bool) -> Self {
        let forwarded_for = HeaderValue::from_str(&remote.ip().to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
        Self {
            forwarded_for,
            listener,
            tls,
        }
    }
}

static EMPTY: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));

/// The labels a request is counted under, filled in as routing proceeds.
struct Labels {
    gateway: Arc<str>,
    route: Arc<str>,
    backend: Arc<str>,
}

/// Serves one request. Never fails: errors become responses.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    // One load per request; the table stays alive until we are done even
    // if a newer one is swapped in meanwhile.
    let table = shared.table.load_full();
    let mut labels = Labels {
        gateway: EMPTY.clone(),
        route: EMPTY.clone(),
        backend: EMPTY.clone(),
    };
    let request_id = request_id(&req);
    let response = match route(&shared, &table, &conn, req, &request_id, &mut labels).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(%error, fault = ?error.fault(), "request failed");
            error_response(&error)
        }
    };
    let mut response = response;
    response
        .headers_mut()
        .insert(forward::X_REQUEST_ID, request_id);
    let status = response.status().as_u16();
    shared
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            gateway: Label(labels.gateway.clone()),
            route: Label(labels.route.clone()),
            backend: Label(labels.backend),
            status_class: status_class(status),
        })
        .inc();
    shared
        .metrics
        .request_duration
        .get_or_create(&LatencyLabels {
            gateway: Label(labels.gateway),
            route: Label(labels.route),
        })
        .observe(start.elapsed().as_secs_f64());
    Ok(response)
}

/// The client's request id, or a new random one (32 hex digits). A header
/// value, so that each use is a reference-count bump, not a copy.
fn request_id<B>(req: &Request<B>) -> HeaderValue {
    if let Some(id) = req
        .headers()
        .get(forward::X_REQUEST_ID)
        .filter(|v| !v.is_empty())
    {
        return id.clone();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let bits = fastrand::u128(..);
    for (i, b) in id.iter_mut().enumerate() {
        *b = HEX[((bits >> (124 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&id).unwrap_or(HeaderValue::from_static("0"))
}

async fn route(
    shared: &Arc<Shared>,
    table: &RouteTable,
    conn: &ConnInfo,
    req: Request<Incoming>,
    request_id: &HeaderValue,
    labels: &mut Labels,
) -> Result<Response<ProxyBody>, ProxyError> {
    let port = table
        .listeners
        .get(&conn.listener)
        .ok_or(ProxyError::NoRoute)?;
    let (listener, entry) = {
        let host = request_host(&req).ok_or(ProxyError::MissingHost)?;
        let host = normalize_host(host);
        let facts = RequestFacts {
            host: &host,
            method: req.method(),
            path: req.uri().path(),
            query: req.uri().query(),
            headers: req.headers(),
        };
        port.select(&facts).ok_or(ProxyError::NoRoute)?
    };
    labels.gateway = listener.gateway_label.clone();
    labels.route = entry.rule.route_label.clone();
    let work = apply_rule(shared, conn, listener, entry, req, request_id, labels);
    match entry.rule.timeouts.request {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| ProxyError::RequestTimeout)?,
        None => work.await,
    }
}

/// The request's host: the URI authority (HTTP/2, absolute-form) or `Host`.
fn request_host<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()))
}

async fn apply_rule(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    listener: &ListenerRoutes,
    entry: &RouteEntry,
    mut req: Request<Incoming>,
    request_id: &HeaderValue,
    labels: &mut Labels,
) -> Result<Response<ProxyBody>, ProxyError> {
    let rule = &entry.rule;
    let filters = &rule.filters;
    let prefix = entry.matcher.prefix();
    if let Some(redirect) = &filters.redirect {
        let mut response = redirect_response(redirect, &req, conn, listener.port, prefix)?;
        if let Some(m) = &filters.response_headers {
            m.apply(response.headers_mut());
        }
        return Ok(response);
    }
    if let Some(fixed) = &filters.direct_response {
        let mut response = fixed_response(fixed);
        if let Some(m) = &filters.response_headers {
            m.apply(response.headers_mut());
        }
        return Ok(response);
    }
    forward::set_forwarded_host(&mut req);
    if let Some(m) = &filters.request_headers {
        m.apply(req.headers_mut());
    }
    if let Some(rewrite) = &filters.rewrite {
        apply_rewrite(&mut req, rewrite, prefix)?;
    }
    let backend = rule.backends.pick().ok_or(ProxyError::NoBackend)?;
    let group = match &backend.target {
        BackendTarget::Endpoints(group) => group,
        BackendTarget::Invalid { reason } => {
            return Err(ProxyError::InvalidBackend(reason.clone()));
        }
    };
    labels.backend = group.name.clone();
    if let Some(m) = &backend.filters.request_headers {
        m.apply(req.headers_mut());
    }
    if let Some(rewrite) = &backend.filters.rewrite {
        apply_rewrite(&mut req, rewrite, prefix)?;
    }
    let mirror_targets: Vec<_> = filters
        .mirrors
        .iter()
        .chain(&backend.filters.mirrors)
        .filter(|m| m.sample())
        .filter_map(|m| m.target.clone())
        .collect();
    let req = if mirror_targets.is_empty() {
        req.map(|b| b.map_err(Into::into).boxed())
    } else {
        let (parts, body) = req.into_parts();
        // Boxed, as it is the rare path (see the pool's connect).
        let body = Box::pin(Limited::new(body, shared.config.max_mirror_body_bytes).collect())
            .await
            .map_err(|e| ProxyError::RequestBody(e.to_string()))?
            .to_bytes();
        for target in mirror_targets {
            let mut copy = Request::from_parts(parts.clone(), full(body.clone()));
            copy.extensions_mut().clear();
            forward::mirror(shared.clone(), conn, target, copy, request_id);
        }
        Request::from_parts(parts, full(body))
    };
    let mut response = forward::send(
        shared,
        conn,
        group,
        req,
        request_id,
        rule.timeouts.backend_request,
    )
    .await?;
    if let Some(m) = &backend.filters.response_headers {
        m.apply(response.headers_mut());
    }
    if let Some(m) = &filters.response_headers {
        m.apply(response.headers_mut());
    }
    Ok(response)
}

fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

fn apply_rewrite(
    req: &mut Request<Incoming>,
    rewrite: &UrlRewrite,
    prefix: Option<&str>,
) -> Result<(), ProxyError> {
    if let Some(host) = &rewrite.hostname {
        req.headers_mut().insert(HOST, host.clone());
        // An HTTP/2 request carries its host in the URI; drop it so the
        // rewritten Host header is the one forwarded.
        if req.uri().authority().is_some() {
            let pq = req.uri().path_and_query().cloned();
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = pq;
            *req.uri_mut() =
                Uri::from_parts(parts).map_err(|e| ProxyError::BadRewrite(e.to_string()))?;
        }
    }
    if let Some(path) = &rewrite.path {
        let new_path = path.apply(req.uri().path(), prefix);
        let pq = match req.uri().query() {
            Some(q) => format!("{new_path}?{q}"),
            None => new_path,
        };
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(
            pq.parse()
                .map_err(|e: http::uri::InvalidUri| ProxyError::BadRewrite(e.to_string()))?,
        );
        *req.uri_mut() =
            Uri::from_parts(parts).map_err(|e| ProxyError::BadRewrite(e.to_string()))?;
    }
    Ok(())
}

/// Builds the redirect the spec describes: scheme, host and path from the
/// filter or the request; the port from the filter, else the scheme's
/// well-known port when the filter sets a scheme, else the listener port;
/// the port left out of `Location` when it is the scheme's default.
fn redirect_response<B>(
    redirect: &Redirect,
    req: &Request<B>,
    conn: &ConnInfo,
    listener_port: u16,
    prefix: Option<&str>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let scheme = redirect
        .scheme
        .unwrap_or(if conn.tls { "https" } else { "http" });
    let host = match &redirect.hostname {
        Some(h) => h.clone(),
        None => {
            let raw = request_host(req).ok_or(ProxyError::MissingHost)?;
            strip_port(raw).to_string()
        }
    };
    let port = redirect.port.unwrap_or(match redirect.scheme {
        Some("https") => 443,
        Some(_) => 80,
        None => listener_port,
    });
    let default_port = if scheme == "https" { 443 } else { 80 };
    let path = match &redirect.path {
        Some(p) => p.apply(req.uri().path(), prefix),
        None => req.uri().path().to_string(),
    };
    let mut location = format!("{scheme}://{host}");
    if port != default_port {
        location.push_str(&format!(":{port}"));
    }
    location.push_str(&path);
    if let Some(q) = req.uri().query() {
        location.push('?');
        location.push_str(q);
    }
    let location =
        HeaderValue::from_str(&location).map_err(|e| ProxyError::BadRewrite(e.to_string()))?;
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = redirect.status;
    response.headers_mut().insert(LOCATION, location);
    Ok(response)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn fixed_response(fixed: &FixedResponse) -> Response<ProxyBody> {
    let mut response = Response::new(full(fixed.body.clone()));
    *response.status_mut() = fixed.status;
    for (name, value) in &fixed.headers {
        response.headers_mut().append(name.clone(), value.clone());
    }
    response
}

fn error_response(error: &ProxyError) -> Response<ProxyBody> {
    let status = error.status();
    let body = match status {
        StatusCode::NOT_FOUND => "no route matches\n".to_string(),
        _ => format!("{}\n", status.canonical_reason().unwrap_or("error")),
    };
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_request(id: Option<&str>) -> Request<()> {
        let mut req = Request::new(());
        if let Some(id) = id {
            req.headers_mut()
                .insert(forward::X_REQUEST_ID, HeaderValue::from_str(id).unwrap());
        }
        req
    }

    #[test]
    fn request_ids_are_kept_or_made_fresh() {
        assert_eq!(request_id(&mk_request(Some("abc"))), "abc");
        let a = request_id(&mk_request(None));
        let b = request_id(&mk_request(Some("")));
        assert_eq!(a.len(), 32);
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
