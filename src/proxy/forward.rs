//! Forwarding to an upstream: hop-by-hop headers (RFC 9110 §7.6.1),
//! X-Forwarded-*, the upstream clients (the HTTP/1.1 pool, hyper-util for
//! h2c), WebSocket / `Upgrade` pass-through,
//! and fire-and-forget mirrors.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use http::header::{CONNECTION, HOST, HeaderName, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::error::ProxyError;
use super::handler::ConnInfo;
use super::pool::PoolError;
use super::{BoxError, ProxyBody, Shared};
use crate::metrics::{BackendLabels, Label};
use crate::routing::backend::{EndpointGroup, UpstreamProtocol};

/// The request id header, set when the client sent none.
pub(super) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// How long a mirrored copy may take before it is abandoned.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(30);

/// The hop-by-hop headers RFC 9110 §7.6.1 names (`TE` among them).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        CONNECTION,
        TRANSFER_ENCODING,
        UPGRADE,
        TE,
        KEEP_ALIVE,
        PROXY_CONNECTION,
    ]
    .contains(name)
}

/// Removes the hop-by-hop headers: those listed in `Connection` and the
/// fixed set RFC 9110 §7.6.1 names. `TE: trailers` survives, as HTTP/2 and
/// gRPC need it. One look over the names decides whether there is work.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(CONNECTION) {
        remove_listed(headers);
    }
    let keep_te = headers
        .get(TE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for name in [
        CONNECTION,
        KEEP_ALIVE,
        PROXY_CONNECTION,
        TRANSFER_ENCODING,
        UPGRADE,
    ] {
        headers.remove(name);
    }
    if !keep_te {
        headers.remove(TE);
    }
}

/// The comma-separated tokens of every `Connection` header.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// Removes the headers the `Connection` header lists (looked up by the
/// token itself: no header name is built).
fn remove_listed(headers: &mut HeaderMap) {
    let listed: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
    for value in &listed {
        for token in value.to_str().into_iter().flat_map(|v| v.split(',')) {
            let token = token.trim();
            if !token.is_empty() {
                headers.remove(token);
            }
        }
    }
}

/// The protocol the client asks to switch to, if this is an HTTP/1.1
/// upgrade request.
fn requested_upgrade<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let connection_upgrade =
        connection_tokens(req.headers()).any(|t| t.eq_ignore_ascii_case("upgrade"));
    connection_upgrade
        .then(|| req.headers().get(UPGRADE).cloned())
        .flatten()
}

fn append_forwarded(headers: &mut HeaderMap, client: &HeaderValue, tls: bool) {
    let xff = match headers.get(&X_FORWARDED_FOR) {
        Some(prev) => {
            let mut joined = Vec::with_capacity(prev.len() + 2 + client.len());
            joined.extend_from_slice(prev.as_bytes());
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client.as_bytes());
            HeaderValue::from_bytes(&joined).ok()
        }
        None => Some(client.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
}

/// Records the host the client asked for, before any rewrite changes it.
pub(super) fn set_forwarded_host<B>(req: &mut Request<B>) {
    let host = match req.uri().authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => req.headers().get(HOST).cloned(),
    };
    if let Some(host) = host {
        req.headers_mut().insert(X_FORWARDED_HOST, host);
    }
}

/// Rewrites the request for the upstream: absolute URI to the endpoint,
/// the upstream's HTTP version, Host kept, proxy headers added.
fn prepare(
    req: &mut Request<ProxyBody>,
    endpoint: &http::uri::Authority,
    protocol: UpstreamProtocol,
    conn: &ConnInfo,
    request_id: &HeaderValue,
    upgrade: Option<&HeaderValue>,
) -> Result<(), ProxyError> {
    // HTTP/2 clients send the host as :authority; HTTP/1.1 upstreams need it
    // in Host.
    if !req.headers().contains_key(HOST)
        && let Some(authority) = req.uri().authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(HOST, v);
    }
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    if let Some(protocol) = upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(UPGRADE, protocol.clone());
    }
    append_forwarded(headers, &conn.forwarded_for, conn.tls);
    if !headers.contains_key(X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID, request_id.clone());
    }
    // Reuse the parsed path and query (reference-counted) rather than
    // formatting and parsing a new URI. HTTP/1.1 sends the origin form
    // (`/path?query`, RFC 9112 §3.2.1); HTTP/2 carries the authority as a
    // pseudo-header, taken from an absolute URI.
    let mut parts = http::uri::Parts::default();
    parts.path_and_query = Some(
        req.uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    );
    *req.version_mut() = match protocol {
        UpstreamProtocol::Http1 => Version::HTTP_11,
        UpstreamProtocol::H2c => {
            parts.scheme = Some(http::uri::Scheme::HTTP);
            parts.authority = Some(endpoint.clone());
            Version::HTTP_2
        }
    };
    *req.uri_mut() = Uri::from_parts(parts).map_err(|e| ProxyError::BadRewrite(e.to_string()))?;
    Ok(())
}

/// Sends the request to one endpoint of `group` and returns the upstream's
/// response (with hop-by-hop headers removed), splicing upgraded
/// connections together when the upstream switches protocols.
pub(super) async fn send(
    shared: &Arc<Shared>,
    conn: &ConnInfo,
    group: &EndpointGroup,
    mut req: Request<ProxyBody>,
    request_id: &HeaderValue,
    timeout: Option<Duration>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let endpoint = group
        .pick()
        .ok_or_else(|| ProxyError::NoReadyEndpoint(group.name.to_string()))?;
    let upgrade = requested_upgrade(&req).filter(|_| group.protocol == UpstreamProtocol::Http1);
    let downstream_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
    prepare(
        &mut req,
        endpoint,
        group.protocol,
        conn,
        request_id,
        upgrade.as_ref(),
    )?;
    let call = exchange(shared, endpoint, group.protocol, req);
    let result = match timeout {
        Some(limit) => tokio::time::timeout(limit, call)
            .await
            .map_err(|_| ProxyError::BackendTimeout(group.name.to_string()))?,
        None => call.await,
    };
    let (mut response, upstream_upgrade) = result.map_err(|failure| match failure {
        Failure::Connect(source) => {
            shared
                .metrics
                .upstream_connect_errors
                .get_or_create(&BackendLabels {
                    backend: Label(group.name.clone()),
                })
                .inc();
            ProxyError::UpstreamConnect {
                backend: group.name.to_string(),
                source,
            }
        }
        Failure::Exchange(source) => ProxyError::Upstream {
            backend: group.name.to_string(),
            source,
        },
    })?;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let (Some(downstream), Some((upstream, early))) = (downstream_upgrade, upstream_upgrade)
    {
        tokio::spawn(splice(downstream, upstream, early));
        return Ok(response);
    }
    strip_hop_by_hop(response.headers_mut());
    Ok(response)
}

/// Joins an upgraded client connection to the upstream's once the switch
/// response has gone out; `early` is what the upstream sent past its head.
async fn splice(downstream: hyper::upgrade::OnUpgrade, mut upstream: TcpStream, early: Bytes) {
    let down = match downstream.await {
        Ok(down) => down,
        Err(error) => {
            tracing::debug!(%error, "upgrade failed");
            return;
        }
    };
    let mut down = TokioIo::new(down);
    if !early.is_empty() && down.write_all(&early).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut down, &mut upstream).await;
}

/// Why an upstream exchange failed: before a connection existed, or after.
enum Failure {
    Connect(BoxError),
    Exchange(BoxError),
}

/// The upstream socket after a protocol switch, and what the upstream sent
/// past its `101` head.
type Upgraded = Option<(TcpStream, Bytes)>;

/// One request and its response over the client for `protocol`: the
/// HTTP/1.1 pool or the multiplexing HTTP/2 client.
async fn exchange(
    shared: &Shared,
    endpoint: &http::uri::Authority,
    protocol: UpstreamProtocol,
    req: Request<ProxyBody>,
) -> Result<(Response<ProxyBody>, Upgraded), Failure> {
    match protocol {
        UpstreamProtocol::Http1 => match shared.http1.send(endpoint, req).await {
            Ok(answer) => Ok((
                answer.response.map(|b| b.map_err(Into::into).boxed()),
                answer.upgraded,
            )),
            Err(PoolError::Connect(e)) => Err(Failure::Connect(e.into())),
            Err(PoolError::Request(e)) => Err(Failure::Exchange(e.into())),
        },
        UpstreamProtocol::H2c => match shared.h2c.request(req).await {
            Ok(response) => Ok((response.map(|b| b.map_err(Into::into).boxed()), None)),
            Err(e) if e.is_connect() => Err(Failure::Connect(e.into())),
            Err(e) => Err(Failure::Exchange(e.into())),
        },
    }
}

/// Sends a copy of a request to a mirror and discards the answer.
pub(super) fn mirror(
    shared: Arc<Shared>,
    conn: &ConnInfo,
    target: Arc<EndpointGroup>,
    mut req: Request<ProxyBody>,
    request_id: &HeaderValue,
) {
    let Some(endpoint) = target.pick().cloned() else {
        shared.metrics.mirror_errors.inc();
        return;
    };
    if prepare(&mut req, &endpoint, target.protocol, conn, request_id, None).is_err() {
        shared.metrics.mirror_errors.inc();
        return;
    }
    tokio::spawn(async move {
        let sent = tokio::time::timeout(MIRROR_TIMEOUT, async {
            let (response, _) = exchange(&shared, &endpoint, target.protocol, req).await?;
            // Drain the answer so the connection returns to the pool.
            response
                .into_body()
                .collect()
                .await
                .map_err(Failure::Exchange)?;
            Ok::<_, Failure>(())
        })
        .await;
        if !matches!(sent, Ok(Ok(()))) {
            shared.metrics.mirror_errors.inc();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Private"),
        );
        headers.append(CONNECTION, HeaderValue::from_static("bad token, x-other"));
        headers.insert("x-other", HeaderValue::from_static("1"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert(TE, HeaderValue::from_static("gzip"));
        headers.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("x-keep"));
        let mut trailers = HeaderMap::new();
        trailers.insert(TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut trailers);
        assert!(trailers.contains_key(TE));
        let mut plain = HeaderMap::new();
        plain.insert("x-keep", HeaderValue::from_static("1"));
        plain.insert(HOST, HeaderValue::from_static("example.com"));
        strip_hop_by_hop(&mut plain);
        assert_eq!(plain.len(), 2);
    }

    #[test]
    fn forwarded_for_is_appended() {
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        headers.insert(HOST, HeaderValue::from_static("example.com"));
        let client = HeaderValue::from_static("127.0.0.1");
        append_forwarded(&mut headers, &client, true);
        assert_eq!(headers[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(headers[&X_FORWARDED_PROTO], "https");
        let mut fresh = HeaderMap::new();
        append_forwarded(&mut fresh, &client, false);
        assert_eq!(fresh[&X_FORWARDED_FOR], "127.0.0.1");
        assert_eq!(fresh[&X_FORWARDED_PROTO], "http");
    }
}
