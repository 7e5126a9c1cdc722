//! Shared helpers for Gatehouse integration tests.
//!
//! Integration tests pull this in with `mod support;`. Helpers panic with a
//! descriptive message on unexpected failures (that is what a test wants);
//! the `try_*` variants return errors for tests that expect a failure.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    CONNECTION, CONTENT_TYPE, HOST, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE,
};
use http::{HeaderMap, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

/// Boxed error used by the fallible (`try_*`) helpers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The legacy hyper client type returned by [`http1_client`] and [`h2c_client`].
pub type TestClient = Client<HttpConnector, Full<Bytes>>;

/// A running echo backend. Dropping it stops the listener and closes every
/// connection (including upgraded WebSocket connections) it has accepted.
pub struct EchoBackend {
    /// The address the backend listens on (always `127.0.0.1:<port>`).
    pub addr: SocketAddr,
    state: Arc<EchoState>,
    /// Dropping the sender wakes every task's `changed()` with an error,
    /// which is their signal to stop.
    _shutdown: watch::Sender<()>,
}

struct EchoState {
    name: String,
    hits: AtomicUsize,
    received: Mutex<Vec<Value>>,
}

impl EchoBackend {
    /// The port the backend listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Number of requests received so far (WebSocket upgrades included).
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// The JSON documents describing every request received so far, in arrival
    /// order. A request is recorded on arrival, before any `delay_ms` sleep,
    /// so a request the client gave up on still shows up here.
    pub fn received(&self) -> Vec<Value> {
        self.state
            .received
            .lock()
            .expect("echo backend record lock poisoned")
            .clone()
    }
}

/// Starts a plaintext echo backend on `127.0.0.1:0` speaking HTTP/1.1 and
/// h2c (prior knowledge).
///
/// Every request is answered with `application/json`:
/// `{"backend", "method", "path", "query", "host", "version", "headers", "body"}`.
/// Query parameters `delay_ms=N` (sleep before answering) and `status=N`
/// (answer with that status) are honoured. An HTTP/1.1 `Upgrade: websocket`
/// request gets a real WebSocket handshake, then every text/binary message is
/// echoed back unchanged.
pub async fn spawn_echo_backend(name: &str) -> EchoBackend {
    spawn_backend(name, None).await
}

/// Like [`spawn_echo_backend`], but serves TLS with the given certificate
/// chain and key (PEM), offering ALPN `h2` and `http/1.1`.
pub async fn spawn_tls_echo_backend(name: &str, cert_pem: &str, key_pem: &str) -> EchoBackend {
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("TLS echo backend: certificate PEM should parse");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .expect("TLS echo backend: private key PEM should parse");
    let mut config = rustls::ServerConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .expect("ring provider supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS echo backend: certificate and key should match");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    spawn_backend(name, Some(TlsAcceptor::from(Arc::new(config)))).await
}

async fn spawn_backend(name: &str, tls: Option<TlsAcceptor>) -> EchoBackend {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("echo backend should bind 127.0.0.1:0");
    let addr = listener
        .local_addr()
        .expect("bound listener has a local address");
    let state = Arc::new(EchoState {
        name: name.to_owned(),
        hits: AtomicUsize::new(0),
        received: Mutex::new(Vec::new()),
    });
    let (shutdown, stop) = watch::channel(());
    tokio::spawn(until_stopped(
        stop.clone(),
        accept_loop(listener, tls, state.clone(), stop),
    ));
    EchoBackend {
        addr,
        state,
        _shutdown: shutdown,
    }
}

/// Runs `fut` until it finishes or the owning [`EchoBackend`] is dropped.
async fn until_stopped(mut stop: watch::Receiver<()>, fut: impl Future<Output = ()>) {
    tokio::select! {
        () = fut => {}
        _ = stop.changed() => {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<EchoState>,
    stop: watch::Receiver<()>,
) {
    loop {
        let Ok((tcp, _peer)) = listener.accept().await else {
            // e.g. EMFILE: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (state, tls, stop2) = (state.clone(), tls.clone(), stop.clone());
        tokio::spawn(until_stopped(stop.clone(), async move {
            match tls {
                None => serve_conn(tcp, state, stop2).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve_conn(stream, state, stop2).await;
                    }
                }
            }
        }));
    }
}

async fn serve_conn<S>(io: S, state: Arc<EchoState>, stop: watch::Receiver<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, state.clone(), stop.clone()));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Connection errors (client resets, timeouts) are expected in tests.
    let _ = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await;
}

async fn handle(
    mut req: Request<Incoming>,
    state: Arc<EchoState>,
    stop: watch::Receiver<()>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let on_upgrade = is_websocket(&req).then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let body = body_string(body).await.unwrap_or_default();
    let query = parts.uri.query();
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<_> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .collect();
        headers.insert(name.as_str().to_owned(), values.join(", ").into());
    }
    let host = parts
        .headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let doc = json!({
        "backend": state.name,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": query,
        "host": host,
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": body,
    });
    state.hits.fetch_add(1, Ordering::SeqCst);
    state
        .received
        .lock()
        .expect("echo backend record lock poisoned")
        .push(doc.clone());

    if let Some(on_upgrade) = on_upgrade {
        return Ok(websocket_accept(&parts.headers, on_upgrade, stop));
    }
    if let Some(ms) = query_param(query, "delay_ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let status = query_param(query, "status")
        .and_then(|v| v.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    Ok(Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(doc.to_string())))
        .expect("echo response is valid"))
}

/// Collects a body into a (lossily decoded) UTF-8 string.
async fn body_string<B>(body: B) -> Result<String, B::Error>
where
    B: hyper::body::Body,
{
    let bytes = body.collect().await?.to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers the handshake with `101` and spawns the echo loop on the upgraded IO.
fn websocket_accept(
    headers: &HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
    stop: watch::Receiver<()>,
) -> Response<Full<Bytes>> {
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
        let mut resp = Response::new(Full::default());
        *resp.status_mut() = StatusCode::BAD_REQUEST;
        return resp;
    };
    let accept = derive_accept_key(key.as_bytes());
    tokio::spawn(until_stopped(stop, async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(msg)) = ws.next().await {
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                break;
            }
        }
    }));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, accept)
        .body(Full::default())
        .expect("static 101 response is valid")
}

fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// Returns a port that was free a moment ago (bind `127.0.0.1:0`, then release).
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("should bind an ephemeral port on 127.0.0.1")
        .port()
}

/// A throwaway self-signed certificate authority for TLS tests.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    /// Creates a fresh CA with a new key pair.
    pub fn new() -> Self {
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Gatehouse Test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("CA key generation");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).expect("CA self-signing");
        Self { issuer }
    }

    /// The CA certificate, PEM encoded.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Issues a server certificate for `hostnames` (DNS names; IP literals become
    /// IP SANs). Returns `(chain PEM: leaf then CA, PKCS#8 key PEM)`.
    pub fn issue(&self, hostnames: &[&str]) -> (String, String) {
        let names: Vec<String> = hostnames.iter().map(|h| h.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("valid SAN hostnames");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let key = rcgen::KeyPair::generate().expect("leaf key generation");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf signing");
        (
            format!("{}{}", cert.pem(), self.cert_pem()),
            key.serialize_pem(),
        )
    }
}

fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls client config that trusts only the certificates in `ca_pem` and
/// offers the given ALPN protocols (e.g. `&[b"h2", b"http/1.1"]`).
pub fn tls_client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("CA PEM should parse"))
            .expect("CA certificate should be a valid trust anchor");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(ring_provider())
        .with_safe_default_protocol_versions()
        .expect("ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A plaintext HTTP/1.1 client.
pub fn http1_client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A plaintext HTTP/2 prior-knowledge (h2c) client.
pub fn h2c_client() -> TestClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends `req` with `client` and collects the response into `(status, headers, body)`.
pub async fn try_send(
    client: &TestClient,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, String), BoxError> {
    let resp = client.request(req).await?;
    let (parts, body) = resp.into_parts();
    Ok((parts.status, parts.headers, body_string(body).await?))
}

/// Like [`get`], but returns connection/protocol errors instead of panicking.
pub async fn try_get(
    url: &str,
    host: Option<&str>,
) -> Result<(StatusCode, HeaderMap, String), BoxError> {
    let mut req = Request::get(url);
    if let Some(host) = host {
        req = req.header(HOST, host);
    }
    try_send(&http1_client(), req.body(Full::default())?).await
}

/// HTTP/1.1 `GET url` (optionally overriding the `Host` header); panics on
/// connection or protocol errors. Returns `(status, headers, body)`.
pub async fn get(url: &str, host: Option<&str>) -> (StatusCode, HeaderMap, String) {
    match try_get(url, host).await {
        Ok(resp) => resp,
        Err(e) => panic!("GET {url} (host {host:?}) failed: {e}"),
    }
}

/// Result of [`try_https_get`]: protocol version, status, body, peer leaf cert (DER).
pub type HttpsResponse = (Version, StatusCode, String, Vec<u8>);

/// Like [`https_get`], but returns TLS/connection errors instead of panicking
/// (useful for asserting that a handshake is rejected).
pub async fn try_https_get(
    addr: SocketAddr,
    sni: &str,
    path: &str,
    client_config: Arc<rustls::ClientConfig>,
) -> Result<HttpsResponse, BoxError> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(sni.to_owned())?;
    let tls = TlsConnector::from(client_config)
        .connect(server_name, tcp)
        .await?;
    let (_, session) = tls.get_ref();
    let leaf = session
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(|cert| cert.to_vec())
        .unwrap_or_default();
    let is_h2 = session.alpn_protocol() == Some(b"h2");
    let io = TokioIo::new(tls);
    let resp = if is_h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(conn);
        let req = Request::get(format!("https://{sni}{path}")).body(Full::<Bytes>::default())?;
        sender.send_request(req).await?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        let req = Request::get(path)
            .header(HOST, sni)
            .body(Full::<Bytes>::default())?;
        sender.send_request(req).await?
    };
    let (parts, body) = resp.into_parts();
    Ok((parts.version, parts.status, body_string(body).await?, leaf))
}

/// Connects to `addr` over TLS with SNI `sni`, speaks HTTP/2 if ALPN picked
/// `h2` (else HTTP/1.1), and GETs `path` with authority/Host `sni`. Panics on
/// failure. Returns `(version, status, body, peer leaf certificate DER)`.
pub async fn https_get(
    addr: SocketAddr,
    sni: &str,
    path: &str,
    client_config: Arc<rustls::ClientConfig>,
) -> HttpsResponse {
    match try_https_get(addr, sni, path, client_config).await {
        Ok(resp) => resp,
        Err(e) => panic!("HTTPS GET {path} via {addr} (SNI {sni}) failed: {e}"),
    }
}

/// Atomically writes `yaml` to `dir/name`: the content goes to a dot-prefixed
/// temporary file in the same directory, which is then renamed into place, so
/// a file watcher never observes a half-written file.
pub fn write_config(dir: &Path, name: &str, yaml: &str) {
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", fastrand::u64(..)));
    std::fs::write(&tmp, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    let dest = dir.join(name);
    std::fs::rename(&tmp, &dest)
        .unwrap_or_else(|e| panic!("renaming {} to {}: {e}", tmp.display(), dest.display()));
}

pub mod harness;
