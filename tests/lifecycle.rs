//! Config changes and shutdown under traffic: table swaps drop nothing,
//! listeners change as diffs, bad input keeps the last good config, and
//! in-flight requests finish on shutdown.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use support::harness::{Harness, backend_yaml, condition, eventually, gateway_yaml};
use support::{free_port, get, spawn_echo_backend, try_get};

fn tagged_route(tag: usize) -> String {
    format!(
        r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: tagged, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{{name: x-config, value: "{tag}"}}]
    backendRefs: [{{group: gatehouse.dev, kind: Backend, name: echo}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_reloads_under_traffic_fail_no_request() {
    let echo = spawn_echo_backend("echo").await;
    let port = free_port();
    let base = gateway_yaml(port) + &backend_yaml("echo", &echo);
    let h = Harness::start(&(base.clone() + &tagged_route(0))).await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let tags_seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (done, ok, failed, tags_seen) =
            (done.clone(), ok.clone(), failed.clone(), tags_seen.clone());
        clients.push(tokio::spawn(async move {
            // Keep-alive: one client, pooled connections, for the whole run.
            let client = support::http1_client();
            while !done.load(Ordering::Relaxed) {
                let req = Request::get(format!("http://127.0.0.1:{port}/"))
                    .body(Full::<Bytes>::default())
                    .unwrap();
                match support::try_send(&client, req).await {
                    Ok((StatusCode::OK, headers, _)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if let Some(tag) = headers.get("x-config") {
                            tags_seen
                                .lock()
                                .unwrap()
                                .insert(tag.to_str().unwrap().to_string());
                        }
                    }
                    Ok((status, _, body)) => {
                        eprintln!("unexpected {status}: {body}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        eprintln!("request failed: {error}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let reloads_before = reloads(&h).await;
    for tag in 1..=110 {
        h.write(&(base.clone() + &tagged_route(tag)));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    eventually("the last config to be served", || async {
        let (_, headers, _) = get(&format!("http://127.0.0.1:{port}/"), None).await;
        headers.get("x-config").is_some_and(|v| v == "110")
    })
    .await;
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let applied = reloads(&h).await - reloads_before;
    assert!(applied >= 100, "only {applied} reloads were applied");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "failed requests");
    assert!(ok.load(Ordering::Relaxed) > 200);
    assert!(
        tags_seen.lock().unwrap().len() > 10,
        "clients saw the swaps"
    );
    h.stop().await;
}

async fn reloads(h: &Harness) -> u64 {
    let metrics = get(&format!("http://{}/metrics", h.gatehouse.admin_addr), None)
        .await
        .2;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_config_reloads_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no reload counter in {metrics}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_change_as_diffs_without_touching_other_connections() {
    let echo = spawn_echo_backend("echo").await;
    let (port, extra) = (free_port(), free_port());
    let routes = backend_yaml("echo", &echo)
        + r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: all, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: gatehouse.dev, kind: Backend, name: echo}]
"#;
    let one = gateway_yaml(port) + &routes;
    let two = one.replace(
        "        from: All\n",
        &format!(
            "        from: All\n  - name: extra\n    protocol: HTTP\n    port: {extra}\n    allowedRoutes:\n      namespaces:\n        from: All\n"
        ),
    );
    let h = Harness::start(&one).await;
    // An idle keep-alive connection on the first listener.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut held, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let ask = async |held: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>| {
        let req = Request::get("/held")
            .header("host", "x")
            .body(Full::default())
            .unwrap();
        let resp = held.send_request(req).await.expect("held connection open");
        let status = resp.status();
        resp.into_body().collect().await.unwrap();
        status
    };
    assert_eq!(ask(&mut held).await, StatusCode::OK);

    h.write(&two);
    eventually("the new listener", || async {
        try_get(&format!("http://127.0.0.1:{extra}/"), None)
            .await
            .is_ok_and(|r| r.0 == StatusCode::OK)
    })
    .await;
    assert_eq!(
        ask(&mut held).await,
        StatusCode::OK,
        "first listener untouched"
    );

    h.write(&one);
    eventually("the extra listener to close", || async {
        try_get(&format!("http://127.0.0.1:{extra}/"), None)
            .await
            .is_err()
    })
    .await;
    assert_eq!(
        ask(&mut held).await,
        StatusCode::OK,
        "first listener untouched"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_keeps_the_last_good_config_and_bad_routes_stay_isolated() {
    let echo = spawn_echo_backend("echo").await;
    let port = free_port();
    let good = gateway_yaml(port) + &backend_yaml("echo", &echo) + &tagged_route(1);
    let h = Harness::start(&good).await;
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(get(&url, None).await.1["x-config"], "1");

    // Malformed YAML: the last good config keeps serving, the error is shown.
    h.write(&(good.clone() + "\n---\nkind: [unclosed\n"));
    eventually("the load error to be reported", || async {
        let config = h.admin_json("/config").await;
        let error = &config["provider"]["last_error"];
        error["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("config.yaml"))
            && error["line"].as_u64().is_some()
    })
    .await;
    assert_eq!(get(&url, None).await.1["x-config"], "1");

    // Unknown kinds are skipped; a bad regex breaks only its own route; a
    // route to a missing Service answers 500 and says why.
    let mixed = gateway_yaml(port)
        + &backend_yaml("echo", &echo)
        + &tagged_route(2)
        + r#"
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored, namespace: default}
data: {a: b}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad-regex, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/(unclosed"}}]
    backendRefs: [{group: gatehouse.dev, kind: Backend, name: echo}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: missing-service, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: nowhere, port: 80}]
"#;
    h.write(&mixed);
    eventually("the fixed config", || async {
        get(&url, None)
            .await
            .1
            .get("x-config")
            .is_some_and(|v| v == "2")
    })
    .await;
    let config = h.admin_json("/config").await;
    assert!(config["provider"]["last_error"].is_null());
    assert!(
        config["provider"]["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ConfigMap")
    );
    let bad = h.status("httproute", "default", "bad-regex").await;
    let accepted = condition(&bad["status"]["parents"][0]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "UnsupportedValue");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("regular expression")
    );
    let missing = h.status("httproute", "default", "missing-service").await;
    let resolved = condition(
        &missing["status"]["parents"][0]["conditions"],
        "ResolvedRefs",
    );
    assert_eq!(resolved["reason"], "BackendNotFound");
    assert_eq!(
        get(&format!("{url}missing"), None).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(get(&url, None).await.0, StatusCode::OK);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_listeners_and_missing_secrets_are_reported_while_others_serve() {
    let echo = spawn_echo_backend("echo").await;
    let port = free_port();
    let tls_port = free_port();
    let other = free_port();
    let yaml = gateway_yaml(port).replace(
        "        from: All\n",
        &format!(
            r#"        from: All
  - name: http-again
    protocol: HTTP
    port: {port}
  - name: https-no-secret
    protocol: HTTPS
    port: {tls_port}
    tls:
      certificateRefs: [{{name: missing}}]
  - name: other
    protocol: HTTP
    port: {other}
"#
        ),
    ) + &backend_yaml("echo", &echo)
        + &tagged_route(7);
    let h = Harness::start(&yaml).await;
    let gw = h.status("gateway", "default", "gw").await;
    let listeners = gw["status"]["listeners"].as_array().unwrap();
    let by_name = |n: &str| listeners.iter().find(|l| l["name"] == n).unwrap();
    let conflicted = condition(&by_name("http-again")["conditions"], "Conflicted");
    assert_eq!(conflicted["status"], "True");
    assert_eq!(conflicted["reason"], "HostnameConflict");
    let refs = condition(&by_name("https-no-secret")["conditions"], "ResolvedRefs");
    assert_eq!(refs["reason"], "InvalidCertificateRef");
    let gw_accepted = condition(&gw["status"]["conditions"], "Accepted");
    assert_eq!(gw_accepted["reason"], "ListenersNotValid");
    // Both HTTP listeners on the port conflict and neither serves; the TLS
    // listener is not bound; the valid listener serves.
    assert!(
        try_get(&format!("http://127.0.0.1:{port}/"), None)
            .await
            .is_err()
    );
    let (status, headers, _) = get(&format!("http://127.0.0.1:{other}/"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-config"], "7");
    assert!(
        try_get(&format!("http://127.0.0.1:{tls_port}/"), None)
            .await
            .is_err()
    );
    h.stop().await;
}
