//! Routing through a real gateway to real backends on 127.0.0.1: matches,
//! precedence, weights, filters, redirects, rewrites, mirrors and errors.

mod support;

use http::StatusCode;
use serde_json::Value;
use support::harness::{Harness, backend_yaml, eventually, gateway_yaml};
use support::{free_port, get, spawn_echo_backend};

fn route(name: &str, body: &str) -> String {
    format!(
        r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
  - name: gw
{body}"#
    )
}

fn backend_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v["backend"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_path_header_query_and_method_with_spec_precedence() {
    let (a, b, c, d, e) = (
        spawn_echo_backend("a").await,
        spawn_echo_backend("b").await,
        spawn_echo_backend("c").await,
        spawn_echo_backend("d").await,
        spawn_echo_backend("e").await,
    );
    let port = free_port();
    let mut yaml = gateway_yaml(port);
    for (name, backend) in [("a", &a), ("b", &b), ("c", &c), ("d", &d), ("e", &e)] {
        yaml += &backend_yaml(name, backend);
    }
    yaml += &route(
        "catch-all",
        r#"  rules:
  - backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: a}
"#,
    );
    yaml += &route(
        "api",
        r#"  rules:
  - matches:
    - path: {type: PathPrefix, value: /api}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: b}
  - matches:
    - path: {type: PathPrefix, value: /api}
      headers:
      - {name: x-canary, value: "yes"}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: c}
  - matches:
    - path: {type: Exact, value: /api/login}
      method: POST
    - path: {type: PathPrefix, value: /api}
      queryParams:
      - {name: version, type: RegularExpression, value: "v[0-9]+"}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: d}
"#,
    );
    yaml += &route(
        "host-specific",
        r#"  hostnames: ["special.example.com"]
  rules:
  - backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: e}
"#,
    );
    let h = Harness::start(&yaml).await;
    let base = format!("http://127.0.0.1:{port}");
    let cases = [
        ("/", None, "a"),
        ("/apis", None, "a"),
        ("/api", None, "b"),
        ("/api/users", None, "b"),
        ("/api/users?version=v2", None, "d"),
        ("/api/users?version=latest", None, "b"),
        ("/anything", Some("special.example.com"), "e"),
    ];
    for (path, host, want) in cases {
        let (status, _, body) = get(&format!("{base}{path}"), host).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(backend_of(&body), want, "{path} host {host:?}");
    }
    // Header match beats a bare prefix of the same length.
    let client = support::http1_client();
    let req = http::Request::get(format!("{base}/api/x"))
        .header("x-canary", "yes")
        .body(Default::default())
        .unwrap();
    let (_, _, body) = support::try_send(&client, req).await.unwrap();
    assert_eq!(backend_of(&body), "c");
    // Exact path with a method beats every prefix.
    let req = http::Request::post(format!("{base}/api/login"))
        .header("x-canary", "yes")
        .body(Default::default())
        .unwrap();
    let (_, _, body) = support::try_send(&client, req).await.unwrap();
    assert_eq!(backend_of(&body), "d");
    let req = http::Request::get(format!("{base}/api/login"))
        .body(Default::default())
        .unwrap();
    let (_, _, body) = support::try_send(&client, req).await.unwrap();
    assert_eq!(backend_of(&body), "b");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_traffic_and_zero_weight_gets_none() {
    let (a, b, c) = (
        spawn_echo_backend("a").await,
        spawn_echo_backend("b").await,
        spawn_echo_backend("c").await,
    );
    let port = free_port();
    let mut yaml = gateway_yaml(port);
    yaml += &backend_yaml("a", &a);
    yaml += &backend_yaml("b", &b);
    yaml += &backend_yaml("c", &c);
    yaml += &route(
        "split",
        r#"  rules:
  - backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: a, weight: 3}
    - {group: gatehouse.dev, kind: Backend, name: b, weight: 1}
    - {group: gatehouse.dev, kind: Backend, name: c, weight: 0}
"#,
    );
    let h = Harness::start(&yaml).await;
    let client = support::http1_client();
    let n = 800;
    for _ in 0..n {
        let req = http::Request::get(format!("http://127.0.0.1:{port}/"))
            .body(Default::default())
            .unwrap();
        let (status, _, _) = support::try_send(&client, req).await.unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    let share_a = a.hits() as f64 / n as f64;
    assert!((0.68..0.82).contains(&share_a), "a got {share_a}");
    assert_eq!(a.hits() + b.hits(), n);
    assert_eq!(c.hits(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_modifiers_rewrites_redirects_and_direct_responses() {
    let a = spawn_echo_backend("a").await;
    let port = free_port();
    let mut yaml = gateway_yaml(port);
    yaml += &backend_yaml("a", &a);
    yaml += r#"
---
apiVersion: gatehouse.dev/v1alpha1
kind: DirectResponse
metadata:
  name: maintenance
  namespace: default
spec:
  status: 503
  headers:
  - {name: retry-after, value: "120"}
  body: down for maintenance
"#;
    yaml += &route(
        "filters",
        r#"  rules:
  - matches:
    - path: {type: PathPrefix, value: /headers}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-set, value: set}]
        add: [{name: x-add, value: added}]
        remove: [x-remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: x-response, value: "1"}]
        remove: [content-type]
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: a}
  - matches:
    - path: {type: PathPrefix, value: /old}
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example.com
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: a}
  - matches:
    - path: {type: Exact, value: /full}
    filters:
    - type: URLRewrite
      urlRewrite:
        path: {type: ReplaceFullPath, replaceFullPath: /replaced}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: a}
  - matches:
    - path: {type: PathPrefix, value: /redirect}
    filters:
    - type: RequestRedirect
      requestRedirect:
        scheme: https
        hostname: secure.example.com
        statusCode: 301
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /moved}
  - matches:
    - path: {type: PathPrefix, value: /port-redirect}
    filters:
    - type: RequestRedirect
      requestRedirect:
        port: 8443
  - matches:
    - path: {type: PathPrefix, value: /maintenance}
    filters:
    - type: ExtensionRef
      extensionRef: {group: gatehouse.dev, kind: DirectResponse, name: maintenance}
"#,
    );
    let h = Harness::start(&yaml).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = support::http1_client();

    let req = http::Request::get(format!("{base}/headers"))
        .header("x-set", "original")
        .header("x-add", "first")
        .header("x-remove", "gone")
        .body(Default::default())
        .unwrap();
    let (status, headers, body) = support::try_send(&client, req).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-set"], "set");
    assert_eq!(seen["headers"]["x-add"], "first,added");
    assert!(seen["headers"].get("x-remove").is_none());
    assert_eq!(seen["headers"]["x-forwarded-proto"], "http");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    assert!(seen["headers"].get("x-request-id").is_some());
    assert_eq!(headers["x-response"], "1");
    assert!(headers.get("content-type").is_none());

    let (_, _, body) = get(&format!("{base}/old/path?q=1"), Some("orig.example.com")).await;
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/new/path");
    assert_eq!(seen["query"], "q=1");
    assert_eq!(seen["host"], "rewritten.example.com");
    assert_eq!(seen["headers"]["x-forwarded-host"], "orig.example.com");

    let (_, _, body) = get(&format!("{base}/full"), None).await;
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["path"], "/replaced");

    let (status, headers, _) =
        get(&format!("{base}/redirect/a/b?x=y"), Some("www.example.com")).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        headers["location"],
        "https://secure.example.com/moved/a/b?x=y"
    );

    let (status, headers, _) = get(
        &format!("{base}/port-redirect"),
        Some("www.example.com:1234"),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers["location"],
        "http://www.example.com:8443/port-redirect"
    );

    let (status, headers, body) = get(&format!("{base}/maintenance"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "120");
    assert_eq!(body, "down for maintenance");
    assert_eq!(
        a.received().len(),
        3,
        "redirects and direct responses never reach a backend"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_copy_requests_and_the_client_gets_the_primary_answer() {
    let primary = spawn_echo_backend("primary").await;
    let mirror = spawn_echo_backend("mirror").await;
    let port = free_port();
    let mut yaml = gateway_yaml(port);
    yaml += &backend_yaml("primary", &primary);
    yaml += &backend_yaml("mirror", &mirror);
    yaml += &route(
        "mirrored",
        r#"  rules:
  - matches:
    - path: {type: PathPrefix, value: /all}
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {group: gatehouse.dev, kind: Backend, name: mirror}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: primary}
  - matches:
    - path: {type: PathPrefix, value: /half}
    filters:
    - type: RequestMirror
      requestMirror:
        backendRef: {group: gatehouse.dev, kind: Backend, name: mirror}
        fraction: {numerator: 1, denominator: 2}
    backendRefs:
    - {group: gatehouse.dev, kind: Backend, name: primary}
"#,
    );
    let h = Harness::start(&yaml).await;
    let client = support::http1_client();
    let req = http::Request::post(format!("http://127.0.0.1:{port}/all"))
        .body(http_body_util::Full::new(bytes::Bytes::from("payload")))
        .unwrap();
    let (status, _, body) = support::try_send(&client, req).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(backend_of(&body), "primary");
    eventually("the mirror to receive the copy", || async {
        mirror.hits() == 1
    })
    .await;
    let copy = &mirror.received()[0];
    assert_eq!(copy["path"], "/all");
    assert_eq!(copy["body"], "payload");
    assert_eq!(copy["method"], "POST");

    let n = 400;
    for _ in 0..n {
        get(&format!("http://127.0.0.1:{port}/half"), None).await;
    }
    eventually("the mirrored half", || async { mirror.hits() > 1 + n / 4 }).await;
    let mirrored = mirror.hits() - 1;
    assert!(
        (n * 35 / 100..n * 65 / 100).contains(&mirrored),
        "{mirrored} of {n} mirrored"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_404_500_502_503_504() {
    let slow = spawn_echo_backend("slow").await;
    let port = free_port();
    let dead_port = free_port();
    let mut yaml = gateway_yaml(port);
    yaml += &backend_yaml("slow", &slow);
    yaml += &format!(
        r#"
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: dead, namespace: default}}
spec:
  endpoints: [{{host: 127.0.0.1, port: {dead_port}}}]
---
apiVersion: v1
kind: Service
metadata: {{name: empty, namespace: default}}
spec:
  ports: [{{port: 80}}]
"#
    );
    yaml += &route(
        "errors",
        r#"  rules:
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: does-not-exist, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /dead}}]
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: dead}]
  - matches: [{path: {type: PathPrefix, value: /empty}}]
    backendRefs: [{name: empty, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /slow}}]
    timeouts: {backendRequest: 200ms}
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: slow}]
  - matches: [{path: {type: PathPrefix, value: /deadline}}]
    timeouts: {request: 300ms}
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: slow}]
  - matches: [{path: {type: PathPrefix, value: /nobackends}}]
"#,
    );
    let h = Harness::start(&yaml).await;
    let base = format!("http://127.0.0.1:{port}");
    let cases = [
        ("/nothing-here", StatusCode::NOT_FOUND),
        ("/missing", StatusCode::INTERNAL_SERVER_ERROR),
        ("/nobackends", StatusCode::INTERNAL_SERVER_ERROR),
        ("/dead", StatusCode::BAD_GATEWAY),
        ("/empty", StatusCode::SERVICE_UNAVAILABLE),
        ("/slow?delay_ms=2000", StatusCode::GATEWAY_TIMEOUT),
        ("/deadline?delay_ms=2000", StatusCode::GATEWAY_TIMEOUT),
        ("/slow?delay_ms=10", StatusCode::OK),
    ];
    // The 404 route is "/nothing-here": no rule matches it since every
    // rule has a path prefix.
    for (path, want) in cases {
        let (status, _, body) = get(&format!("{base}{path}"), None).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    let status = h.status("httproute", "default", "errors").await;
    let resolved = support::harness::condition(
        &status["status"]["parents"][0]["conditions"],
        "ResolvedRefs",
    );
    assert_eq!(resolved["status"], "False");
    assert_eq!(resolved["reason"], "BackendNotFound");
    let metrics = get(&format!("http://{}/metrics", h.gatehouse.admin_addr), None)
        .await
        .2;
    assert!(
        metrics
            .contains("gatehouse_requests_total{gateway=\"default/gw\",route=\"default/errors\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_upstream_connect_errors_total{backend=\"default/dead\"} 1"),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_route_to_ready_endpoints_of_their_endpoint_slices() {
    let (a, b, not_ready) = (
        spawn_echo_backend("a").await,
        spawn_echo_backend("b").await,
        spawn_echo_backend("not-ready").await,
    );
    let port = free_port();
    let mut yaml = gateway_yaml(port);
    yaml += &format!(
        r#"
---
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: Service
metadata: {{name: cart, namespace: shop}}
spec:
  ports: [{{name: http, port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cart-1
  namespace: shop
  labels: {{kubernetes.io/service-name: cart}}
addressType: IPv4
ports: [{{name: http, port: {pa}}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {{ready: true}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cart-2
  namespace: shop
  labels: {{kubernetes.io/service-name: cart}}
addressType: IPv4
ports: [{{name: http, port: {pb}}}]
endpoints:
- addresses: [127.0.0.1]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: cart-3
  namespace: shop
  labels: {{kubernetes.io/service-name: cart}}
addressType: IPv4
ports: [{{name: http, port: {pn}}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {{ready: false}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: cart, namespace: shop}}
spec:
  parentRefs: [{{name: gw, namespace: default}}]
  rules:
  - backendRefs: [{{name: cart, port: 80}}]
"#,
        pa = a.port(),
        pb = b.port(),
        pn = not_ready.port(),
    );
    let h = Harness::start(&yaml).await;
    for _ in 0..20 {
        let (status, _, _) = get(&format!("http://127.0.0.1:{port}/cart"), None).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(a.hits(), 10, "round-robin over the ready endpoints");
    assert_eq!(b.hits(), 10);
    assert_eq!(not_ready.hits(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_are_refused() {
    let a = spawn_echo_backend("a").await;
    let port = free_port();
    let yaml = gateway_yaml(port)
        + &backend_yaml("a", &a)
        + &route(
            "all",
            "  rules:\n  - backendRefs: [{group: gatehouse.dev, kind: Backend, name: a}]\n",
        );
    let proxy = gatehouse::proxy::ProxyConfig {
        max_header_bytes: 16 * 1024,
        ..Default::default()
    };
    let h = Harness::start_with(&yaml, proxy).await;
    let big = "x".repeat(32 * 1024);
    let client = support::http1_client();
    let req = http::Request::get(format!("http://127.0.0.1:{port}/"))
        .header("x-big", big)
        .body(Default::default())
        .unwrap();
    // hyper answers 431, or closes the connection if it cannot.
    if let Ok((status, _, _)) = support::try_send(&client, req).await {
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    }
    assert_eq!(a.hits(), 0);

    // A client that never finishes its headers is cut off.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h2 = Harness::start_with(
        &yaml.replace(&format!("port: {port}"), &format!("port: {}", free_port())),
        gatehouse::proxy::ProxyConfig {
            header_read_timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let slow_port = h2.admin_json("/config").await["listeners"]["bound"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("a bound listener");
    let mut stream = tokio::net::TcpStream::connect(&slow_port).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the connection was closed by the header read timeout"
    );
    h2.stop().await;
    h.stop().await;
}
