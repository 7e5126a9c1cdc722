//! Protocols end to end: h2c downstream and upstream, WebSocket through the
//! gateway, sized and chunked bodies through HTTP/1.1 upstreams, HTTPS with certificates chosen by SNI, HTTP/2 over TLS, and a
//! certificate rotated while clients stay connected.

mod support;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde_json::Value;
use support::harness::{Harness, backend_yaml, eventually, gateway_yaml};
use support::{TestCa, free_port, https_get, spawn_echo_backend, tls_client_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

fn route_to(backend: &str) -> String {
    format!(
        r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: to-{backend}
  namespace: default
spec:
  parentRefs:
  - name: gw
  rules:
  - backendRefs:
    - {{group: gatehouse.dev, kind: Backend, name: {backend}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_downstream_and_h2c_upstream() {
    let echo = spawn_echo_backend("echo").await;
    let port = free_port();
    let mut yaml = gateway_yaml(port);
    // The same echo server, once as an HTTP/1.1 Backend and once as h2c.
    yaml += &backend_yaml("echo", &echo);
    yaml += &format!(
        r#"
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: echo-h2c, namespace: default}}
spec:
  appProtocol: h2c
  endpoints: [{{host: 127.0.0.1, port: {}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: routes, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /h1}}}}]
    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: echo}}]
  - matches: [{{path: {{type: PathPrefix, value: /h2}}}}]
    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: echo-h2c}}]
"#,
        echo.port()
    );
    let h = Harness::start(&yaml).await;
    let h2c = support::h2c_client();
    for (path, upstream_version) in [("/h1", "HTTP/1.1"), ("/h2", "HTTP/2.0")] {
        let req = Request::get(format!("http://127.0.0.1:{port}{path}"))
            .body(Full::default())
            .unwrap();
        let resp = h2c.request(req).await.expect("h2c request");
        assert_eq!(resp.version(), Version::HTTP_2, "downstream speaks h2c");
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let seen: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(seen["version"], upstream_version, "{path}");
        assert_eq!(seen["path"], path);
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_pass_through() {
    let echo = spawn_echo_backend("ws").await;
    let port = free_port();
    let yaml = gateway_yaml(port) + &backend_yaml("ws", &echo) + &route_to("ws");
    let h = Harness::start(&yaml).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut ws, response) =
        tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/chat"), stream)
            .await
            .expect("websocket handshake through the gateway");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}"))).await.unwrap();
        let reply = ws.next().await.expect("a reply").expect("a message");
        assert_eq!(reply, Message::text(format!("hello {i}")));
    }
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
    ws.close(None).await.unwrap();
    h.stop().await;
}

fn tls_gateway(port: u16, secrets: &[(&str, &str, &str, &str)]) -> String {
    // secrets: (listener name, hostname, cert pem, key pem)
    let mut listeners = String::new();
    let mut docs = String::new();
    for (name, host, cert, key) in secrets {
        listeners += &format!(
            r#"
  - name: {name}
    protocol: HTTPS
    port: {port}
    hostname: {host}
    tls:
      certificateRefs: [{{name: {name}-cert}}]
"#
        );
        docs += &format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-cert, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
            indent(cert),
            indent(key)
        );
    }
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: gatehouse}}
spec: {{controllerName: gatehouse.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: gatehouse
  listeners:{listeners}
{docs}"#
    )
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("    {l}\n")).collect()
}

fn leaf_of(chain_pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_chooses_certificates_by_sni_and_rotates_them_live() {
    let echo = spawn_echo_backend("secure").await;
    let ca = TestCa::new();
    let (a_cert, a_key) = ca.issue(&["a.example.com"]);
    let (b_cert, b_key) = ca.issue(&["b.example.com"]);
    let port = free_port();
    let config = |b_cert: &str, b_key: &str| {
        tls_gateway(
            port,
            &[
                ("a", "a.example.com", &a_cert, &a_key),
                ("b", "b.example.com", b_cert, b_key),
            ],
        ) + &backend_yaml("secure", &echo)
            + r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: secure, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: gatehouse.dev, kind: Backend, name: secure}]
"#
    };
    let h = Harness::start(&config(&b_cert, &b_key)).await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let h2 = tls_client_config(&ca.cert_pem(), &[b"h2", b"http/1.1"]);
    let h1 = tls_client_config(&ca.cert_pem(), &[b"http/1.1"]);

    let (version, status, body, leaf) = https_get(addr, "a.example.com", "/x", h2.clone()).await;
    assert_eq!((version, status), (Version::HTTP_2, StatusCode::OK));
    assert_eq!(leaf, leaf_of(&a_cert));
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    let (version, _, _, leaf) = https_get(addr, "b.example.com", "/x", h1).await;
    assert_eq!(version, Version::HTTP_11);
    assert_eq!(leaf, leaf_of(&b_cert));
    // No listener for this name: no certificate, the handshake fails.
    assert!(
        support::try_https_get(addr, "c.example.com", "/", h2.clone())
            .await
            .is_err()
    );

    // Keep an HTTP/2 connection open across the rotation.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(h2.clone())
        .connect(ServerName::try_from("b.example.com").unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let send = |sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>| {
        sender.send_request(
            Request::get("https://b.example.com/held")
                .body(Full::default())
                .unwrap(),
        )
    };
    assert_eq!(send(&mut sender).await.unwrap().status(), StatusCode::OK);

    let (new_cert, new_key) = ca.issue(&["b.example.com"]);
    h.write(&config(&new_cert, &new_key));
    let fresh = leaf_of(&new_cert);
    let ca_pem = ca.cert_pem();
    eventually("new handshakes to present the rotated certificate", || {
        // A fresh client config each time: a resumed session would show
        // the certificate of the session it resumes.
        let h2 = tls_client_config(&ca_pem, &[b"h2"]);
        let fresh = fresh.clone();
        async move { https_get(addr, "b.example.com", "/", h2).await.3 == fresh }
    })
    .await;
    // The connection opened before the rotation still serves requests.
    let held = send(&mut sender).await.expect("held connection survives");
    assert_eq!(held.status(), StatusCode::OK);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_bodies_cross_http1_upstreams_whole() {
    let echo = spawn_echo_backend("echo").await;
    let port = free_port();
    let yaml = gateway_yaml(port) + &backend_yaml("echo", &echo) + &route_to("echo");
    let h = Harness::start(&yaml).await;
    // A sized body of 1 MiB goes up; the echo's answer (larger still) comes
    // back over many reads.
    let big: String = (0..1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let req = Request::post(format!("http://127.0.0.1:{port}/sized"))
        .body(Full::new(Bytes::from(big.clone())))
        .unwrap();
    let (status, _, body) = support::try_send(&support::http1_client(), req)
        .await
        .expect("sized upload");
    assert_eq!(status, StatusCode::OK);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["body"].as_str().map(str::len), Some(big.len()));
    assert!(seen["body"] == big.as_str());
    // A chunked body of unknown length, with trailers, from a raw client.
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /chunked HTTP/1.1\r\nhost: example.com\r\ntransfer-encoding: chunked\r\n\
              connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 1\r\n\r\n",
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let seen: Value = serde_json::from_str(body).unwrap();
    assert_eq!(seen["body"], "hello world");
    assert_eq!(seen["path"], "/chunked");
    h.stop().await;
}
