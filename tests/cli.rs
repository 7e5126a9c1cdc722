//! The `gatehouse` binary itself: `validate` exit codes and output, and
//! `standalone` draining in-flight requests on SIGTERM.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::StatusCode;
use support::harness::{backend_yaml, config_dir, gateway_yaml};
use support::{free_port, spawn_echo_backend, try_get, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");

#[test]
fn validate_accepts_the_quickstart() {
    let out = Command::new(BIN)
        .args(["validate", "examples/quickstart.yaml"])
        .output()
        .expect("run gatehouse validate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("kind: HTTPRoute"), "{stdout}");
    assert!(stdout.contains("reason: Accepted"), "{stdout}");
    assert!(stdout.contains("direct-response 200"), "{stdout}");
}

#[test]
fn validate_fails_on_rejected_objects_and_names_them() {
    let dir = config_dir();
    let yaml = gateway_yaml(8080)
        + r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wrong-section, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: nope}]
"#;
    write_config(&dir, "config.yaml", &yaml);
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&dir)
        .output()
        .expect("run gatehouse validate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "HTTPRoute/default/wrong-section parent gw: Accepted=False (NoMatchingParent)"
        ),
        "{stderr}"
    );
    // Malformed input is an error with file and line.
    write_config(
        &dir,
        "config.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: [x\n",
    );
    let out = Command::new(BIN)
        .arg("validate")
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("config.yaml:4: did not find expected"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let echo = spawn_echo_backend("slow").await;
    let port = free_port();
    let admin = free_port();
    let dir = config_dir();
    let yaml = gateway_yaml(port)
        + &backend_yaml("slow", &echo)
        + r#"
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: slow, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{group: gatehouse.dev, kind: Backend, name: slow}]
"#;
    write_config(&dir, "config.yaml", &yaml);
    let mut child = Command::new(BIN)
        .arg("standalone")
        .arg(&dir)
        .args(["--bind-address", "127.0.0.1"])
        .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gatehouse standalone");
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_get(&url, None).await.is_err() {
        assert!(Instant::now() < deadline, "gatehouse did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let in_flight: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("{url}?delay_ms=700");
            tokio::spawn(async move { try_get(&url, None).await })
        })
        .collect();
    // Let the requests reach the backend, then ask gatehouse to stop.
    let arrived = Instant::now() + Duration::from_secs(5);
    while echo.hits() < 4 {
        assert!(Instant::now() < arrived, "requests did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    for request in in_flight {
        let (status, _, _) = request.await.unwrap().expect("in-flight request completes");
        assert_eq!(status, StatusCode::OK);
    }
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "gatehouse exited with {exit}");
    assert!(try_get(&url, None).await.is_err(), "no longer accepting");
    let _ = std::fs::remove_dir_all(&dir);
}
