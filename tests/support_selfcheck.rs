//! Tests for the shared integration-test support module itself.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, Version};
use http_body_util::Full;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use support::*;
use tokio_tungstenite::tungstenite::Message;

fn parse(body: &str) -> Value {
    serde_json::from_str(body).expect("echo backend should answer with JSON")
}

#[tokio::test]
async fn echo_backend_answers_http1() {
    let backend = spawn_echo_backend("alpha").await;
    let url = format!("http://{}/some/path?x=1&y=2", backend.addr);
    let (status, headers, body) = get(&url, Some("example.test")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let doc = parse(&body);
    assert_eq!(doc["backend"], "alpha");
    assert_eq!(doc["method"], "GET");
    assert_eq!(doc["path"], "/some/path");
    assert_eq!(doc["query"], "x=1&y=2");
    assert_eq!(doc["host"], "example.test");
    assert_eq!(doc["version"], "HTTP/1.1");
    assert_eq!(doc["headers"]["host"], "example.test");
    assert_eq!(doc["body"], "");
    assert_eq!(backend.hits(), 1);
    assert_eq!(backend.received(), vec![doc]);

    let (_, _, body) = get(&format!("http://127.0.0.1:{}/", backend.port()), None).await;
    assert_eq!(parse(&body)["query"], Value::Null);
    assert_eq!(backend.hits(), 2);
}

#[tokio::test]
async fn echo_backend_answers_h2c_with_body() {
    let backend = spawn_echo_backend("beta").await;
    let req = Request::post(format!("http://{}/upload", backend.addr))
        .header("x-test", "one")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .body(Full::new(Bytes::from_static(b"hello body")))
        .expect("valid request");
    let (status, _, body) = try_send(&h2c_client(), req).await.expect("h2c request");
    assert_eq!(status, StatusCode::OK);
    let doc = parse(&body);
    assert_eq!(doc["version"], "HTTP/2.0");
    assert_eq!(doc["method"], "POST");
    assert_eq!(doc["host"], backend.addr.to_string());
    assert_eq!(doc["headers"]["x-test"], "one");
    assert_eq!(doc["headers"]["x-multi"], "a, b");
    assert_eq!(doc["body"], "hello body");
}

#[tokio::test]
async fn echo_backend_honours_status_and_delay() {
    let backend = spawn_echo_backend("gamma").await;
    let start = Instant::now();
    let url = format!("http://{}/x?status=503&delay_ms=200", backend.addr);
    let (status, _, _) = get(&url, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn echo_backend_stops_when_dropped() {
    let backend = spawn_echo_backend("delta").await;
    let url = format!("http://{}/", backend.addr);
    let client = http1_client();
    let req = || {
        Request::get(&url)
            .body(Full::default())
            .expect("valid request")
    };
    try_send(&client, req()).await.expect("first request");
    drop(backend);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        try_send(&client, req()).await.is_err(),
        "pooled connection to a dropped backend should be closed"
    );
    assert!(
        try_get(&url, None).await.is_err(),
        "dropped backend should refuse connections"
    );
}

#[tokio::test]
async fn echo_backend_echoes_websocket_messages() {
    let backend = spawn_echo_backend("ws").await;
    let tcp = tokio::net::TcpStream::connect(backend.addr)
        .await
        .expect("connect");
    let url = format!("ws://{}/chat", backend.addr);
    let (mut ws, resp) = tokio_tungstenite::client_async(url, tcp)
        .await
        .expect("ws handshake");
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws.send(Message::text("hello")).await.expect("send text");
    assert_eq!(
        ws.next().await.expect("reply").expect("ok frame"),
        Message::text("hello")
    );
    ws.send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send binary");
    assert_eq!(
        ws.next().await.expect("reply").expect("ok frame"),
        Message::binary(vec![1u8, 2, 3])
    );
    ws.close(None).await.expect("close");
    assert_eq!(backend.hits(), 1);
    assert_eq!(backend.received()[0]["path"], "/chat");
}

#[test]
fn ca_issued_cert_is_accepted_by_rustls() {
    let ca = TestCa::new();
    let (chain, key) = ca.issue(&["example.test", "*.example.test"]);
    let certs = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("chain PEM parses");
    assert_eq!(certs.len(), 2, "leaf followed by CA");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key PEM parses");
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("rustls accepts the issued cert and key");
}

#[tokio::test]
async fn https_get_negotiates_h2_and_http1_and_verifies_ca() {
    let ca = TestCa::new();
    let (chain, key) = ca.issue(&["secure.example.test"]);
    let backend = spawn_tls_echo_backend("tls", &chain, &key).await;
    let leaf = CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()
        .expect("chain has a leaf")
        .expect("leaf parses");

    let h2 = tls_client_config(&ca.cert_pem(), &[b"h2", b"http/1.1"]);
    let (version, status, body, peer) =
        https_get(backend.addr, "secure.example.test", "/a?b=c", h2).await;
    assert_eq!((version, status), (Version::HTTP_2, StatusCode::OK));
    assert_eq!(peer, leaf.to_vec());
    let doc = parse(&body);
    assert_eq!(
        (doc["path"].as_str(), doc["host"].as_str()),
        (Some("/a"), Some("secure.example.test"))
    );

    let h1 = tls_client_config(&ca.cert_pem(), &[b"http/1.1"]);
    let (version, _, body, _) = https_get(backend.addr, "secure.example.test", "/", h1).await;
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(parse(&body)["version"], "HTTP/1.1");

    let other_ca = tls_client_config(&TestCa::new().cert_pem(), &[]);
    assert!(
        try_https_get(backend.addr, "secure.example.test", "/", other_ca)
            .await
            .is_err()
    );
}

#[test]
fn write_config_replaces_file_atomically() {
    let dir = std::env::temp_dir().join(format!("gatehouse-support-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    write_config(&dir, "gw.yaml", "a: 1\n");
    write_config(&dir, "gw.yaml", "a: 2\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("gw.yaml")).expect("read back"),
        "a: 2\n"
    );
    let entries = std::fs::read_dir(&dir).expect("list dir").count();
    assert_eq!(entries, 1, "no temporary files left behind");
    std::fs::remove_dir_all(&dir).expect("clean up temp dir");
}

#[test]
fn free_port_returns_bindable_port() {
    let port = free_port();
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("port should be free");
}
