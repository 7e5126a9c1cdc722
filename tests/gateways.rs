//! Several Gateways in one standalone gateway: static addresses, one port
//! shared across addresses, conflicts and unbindable addresses reported in
//! status, and Gateways added and removed under traffic.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::StatusCode;
use support::harness::{Harness, condition, eventually};
use support::{free_port, get, try_get};

const CLASS: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
"#;

/// A Gateway `name` on `port` (bound to `address` if given), a
/// DirectResponse answering `name`, and a route from the Gateway to it.
fn gateway(name: &str, address: Option<&str>, port: u16, created: &str) -> String {
    let addresses = address
        .map(|a| format!("  addresses: [{{type: IPAddress, value: \"{a}\"}}]\n"))
        .unwrap_or_default();
    format!(
        r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default, creationTimestamp: "{created}"}}
spec:
  gatewayClassName: gatehouse
{addresses}  listeners:
  - {{name: http, protocol: HTTP, port: {port}}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: DirectResponse
metadata: {{name: {name}, namespace: default}}
spec: {{status: 200, body: {name}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: {name}}}]
  rules:
  - filters:
    - type: ExtensionRef
      extensionRef: {{group: gatehouse.dev, kind: DirectResponse, name: {name}}}
"#
    )
}

/// Port 80 as the issue describes when this process may bind it on the
/// extra loopback addresses, else one free port shared by all Gateways.
fn shared_port() -> u16 {
    let can_bind_80 = [
        "127.0.0.2:80",
        "127.0.0.3:80",
        "127.0.0.4:80",
        "127.0.0.5:80",
    ]
    .iter()
    .all(|a| std::net::TcpListener::bind(a).is_ok());
    if can_bind_80 { 80 } else { free_port() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_on_one_port_answer_independently_and_change_under_traffic() {
    let port = shared_port();
    let three = String::from(CLASS)
        + &gateway("public", Some("127.0.0.2"), port, "2026-01-01T00:00:00Z")
        + &gateway("internal", Some("127.0.0.3"), port, "2026-01-01T00:00:01Z")
        + &gateway("admin", Some("127.0.0.4"), port, "2026-01-01T00:00:02Z");
    let h = Harness::start(&three).await;
    for (ip, name) in [
        ("127.0.0.2", "public"),
        ("127.0.0.3", "internal"),
        ("127.0.0.4", "admin"),
    ] {
        let (status, _, body) = get(&format!("http://{ip}:{port}/"), None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, name));
        let gw = h.status("gateway", "default", name).await;
        assert_eq!(gw["status"]["addresses"][0]["value"], ip);
        assert_eq!(
            condition(&gw["status"]["conditions"], "Programmed")["status"],
            "True"
        );
    }

    // Traffic on the three while a fourth Gateway comes and goes.
    let done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for (ip, name) in [
        ("127.0.0.2", "public"),
        ("127.0.0.3", "internal"),
        ("127.0.0.4", "admin"),
    ] {
        let (done, failures, served) = (done.clone(), failures.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            let client = support::http1_client();
            while !done.load(Ordering::Relaxed) {
                let req = http::Request::get(format!("http://{ip}:{port}/"))
                    .body(Default::default())
                    .unwrap();
                match support::try_send(&client, req).await {
                    Ok((StatusCode::OK, _, body)) if body == name => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        eprintln!("{ip}: {other:?}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let four = three.clone() + &gateway("extra", Some("127.0.0.5"), port, "2026-01-01T00:00:03Z");
    for _ in 0..3 {
        h.write(&four);
        eventually("the added Gateway to answer", || async {
            try_get(&format!("http://127.0.0.5:{port}/"), None)
                .await
                .is_ok_and(|r| r.2 == "extra")
        })
        .await;
        h.write(&three);
        eventually("the removed Gateway to stop answering", || async {
            try_get(&format!("http://127.0.0.5:{port}/"), None)
                .await
                .is_err()
        })
        .await;
    }
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(served.load(Ordering::Relaxed) > 30);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_gateway_keeps_a_contested_port_and_bad_addresses_are_reported() {
    let port = free_port();
    let yaml = String::from(CLASS)
        + &gateway("newer", None, port, "2026-01-01T00:00:05Z")
        + &gateway("older", None, port, "2026-01-01T00:00:00Z")
        // TEST-NET-1 (RFC 5737) is on no interface here: binding it fails.
        + &gateway("unbindable", Some("192.0.2.1"), free_port(), "2026-01-01T00:00:00Z")
        + &gateway("by-name", Some("gw.example.com"), free_port(), "2026-01-01T00:00:00Z")
            .replace("type: IPAddress", "type: Hostname");
    let h = Harness::start(&yaml).await;
    let (status, _, body) = get(&format!("http://127.0.0.1:{port}/"), None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "older"));

    let newer = h.status("gateway", "default", "newer").await;
    let listener = &newer["status"]["listeners"][0];
    let accepted = condition(&listener["conditions"], "Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "PortUnavailable");
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("default/older")
    );
    let older = h.status("gateway", "default", "older").await;
    assert_eq!(
        condition(&older["status"]["conditions"], "Programmed")["status"],
        "True"
    );

    let bad = h.status("gateway", "default", "unbindable").await;
    let programmed = condition(&bad["status"]["conditions"], "Programmed");
    assert_eq!(programmed["status"], "False");
    assert_eq!(programmed["reason"], "AddressNotUsable");
    assert!(bad["status"].get("addresses").is_none(), "{bad}");

    let by_name = h.status("gateway", "default", "by-name").await;
    let accepted = condition(&by_name["status"]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "UnsupportedAddress");
    h.stop().await;
}
