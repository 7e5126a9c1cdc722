//! `gatehouse controller` end to end against a mock API server: PyPI's
//! `kmock`, run by `tests/kmock/serve.py` on 127.0.0.1 and preloaded with a
//! GatewayClass, a Gateway, a DirectResponse + HTTPRoute and the Gateway's
//! Service (which already records a container port).
//!
//! The binary must watch every kind, translate, bind the recorded container
//! port and answer from the DirectResponse; take the Lease; apply the
//! Gateway Service and the HTTPRoute status with server-side apply under our
//! field manager; report ready; and stop cleanly on SIGTERM.
//!
//! kmock is a mock (no field management, defaulting or validation), so this
//! checks the wiring and the API calls, not API-server semantics. It needs
//! Python 3.11+ with `pip install kmock==0.8`, and fails (never skips)
//! without them. `GATEHOUSE_KMOCK_PYTHON` picks the interpreter (default
//! `python3`).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::{Value, json};
use support::harness::config_dir;
use support::{free_port, try_get};

const BIN: &str = env!("CARGO_BIN_EXE_gatehouse");
const SERVE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kmock/serve.py");
const INSTALL: &str = "pip install kmock==0.8";
const FIELD_MANAGER: &str = "gatehouse.dev/gateway-controller";
const NAMESPACE: &str = "gatehouse-system";
const BODY: &str = "hello from the kmock smoke test\n";

/// A child process killed (and reaped) when dropped, on every path out of
/// the test.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The test's scratch directory, removed when dropped (after the processes
/// using it, which are declared later and so dropped first).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The objects kmock starts with. `target` is the container port the
/// Gateway's Service already records for listener port 80.
fn cluster(target: u16) -> Value {
    json!([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "gatehouse"},
            "spec": {"controllerName": FIELD_MANAGER}
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "default", "generation": 1},
            "spec": {
                "gatewayClassName": "gatehouse",
                "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]
            }
        },
        {
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "DirectResponse",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "status": 200,
                "headers": [{"name": "content-type", "value": "text/plain"}],
                "body": BODY
            }
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "hello", "namespace": "default", "generation": 1},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/hello"}}],
                    "filters": [{
                        "type": "ExtensionRef",
                        "extensionRef": {
                            "group": "gatehouse.dev", "kind": "DirectResponse", "name": "hello"
                        }
                    }]
                }]
            }
        },
        {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {
                "name": "gw-default-gw", "namespace": NAMESPACE,
                "labels": {
                    "app.kubernetes.io/managed-by": "gatehouse",
                    "gatehouse.dev/gateway-namespace": "default",
                    "gatehouse.dev/gateway-name": "gw"
                }
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app.kubernetes.io/name": "gatehouse"},
                "ports": [{"name": "port-80", "port": 80, "targetPort": target, "protocol": "TCP"}]
            }
        }
    ])
}

/// Starts kmock on a free port; returns it and its port. Panics, naming the
/// install command, when Python or kmock is missing.
fn start_kmock(dir: &Path, objects: &Value) -> (Killed, u16) {
    let objects_path = dir.join("objects.json");
    std::fs::write(&objects_path, objects.to_string()).expect("write objects.json");
    let python = std::env::var("GATEHOUSE_KMOCK_PYTHON").unwrap_or_else(|_| "python3".into());
    let stderr = std::fs::File::create(dir.join("kmock.log")).expect("create kmock.log");
    let child = Command::new(&python)
        .arg(SERVE)
        .arg(&objects_path)
        .arg(dir.join("requests.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python:?} ({e}): this test needs Python 3.11+ and `{INSTALL}`")
        });
    let mut kmock = Killed(child);
    let stdout = kmock.0.stdout.take().expect("piped stdout");
    // Read the first line on a thread so a hung interpreter cannot hang the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(15)).unwrap_or_default();
    let Some(port) = line
        .strip_prefix("listening ")
        .and_then(|p| p.trim().parse().ok())
    else {
        let log = std::fs::read_to_string(dir.join("kmock.log")).unwrap_or_default();
        panic!("kmock did not start (this test needs `{INSTALL}`): {line}\n{log}");
    };
    (kmock, port)
}

fn write_kubeconfig(dir: &Path, port: u16) -> PathBuf {
    let path = dir.join("kubeconfig");
    let config = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kmock
  cluster:
    server: http://127.0.0.1:{port}
users:
- name: anonymous
  user: {{}}
contexts:
- name: kmock
  context:
    cluster: kmock
    user: anonymous
    namespace: default
current-context: kmock
"
    );
    std::fs::write(&path, config).expect("write kubeconfig");
    path
}

/// Every request kmock received so far.
fn requests(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("requests.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What to show when something did not happen: the controller's log and
/// the requests kmock saw.
fn diagnostics(dir: &Path) -> String {
    let log = std::fs::read_to_string(dir.join("controller.log")).unwrap_or_default();
    let seen: Vec<String> = requests(dir)
        .iter()
        .map(|r| format!("{} {} {}", r["method"], r["path"], r["query"]))
        .collect();
    format!(
        "--- controller log ---\n{log}\n--- kmock requests ---\n{}",
        seen.join("\n")
    )
}

/// The requests with this method and path.
fn find(requests: &[Value], method: &str, path: &str) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r["method"] == method && r["path"] == path)
        .cloned()
        .collect()
}

/// Whether a status PATCH says Accepted=True for parent `gw` under our
/// controller name, as server-side apply under our field manager.
fn accepts_route(patch: &Value) -> bool {
    let ssa = patch["contentType"] == "application/apply-patch+yaml"
        && patch["query"]["fieldManager"] == FIELD_MANAGER
        && patch["query"]["force"] == "true";
    let accepted = patch["body"]["status"]["parents"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            p["controllerName"] == FIELD_MANAGER
                && p["parentRef"]["name"] == "gw"
                && p["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Accepted" && c["status"] == "True")
        });
    ssa && accepted
}

async fn eventually(dir: &Path, deadline: Instant, what: &str, mut check: impl FnMut() -> bool) {
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            diagnostics(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_serves_and_writes_back_against_kmock() {
    let scratch = Scratch(config_dir());
    let dir = scratch.0.clone();
    let target = free_port();
    let (_kmock, api_port) = start_kmock(&dir, &cluster(target));
    let kubeconfig = write_kubeconfig(&dir, api_port);
    let admin = free_port();
    let spare = free_port();
    let log = std::fs::File::create(dir.join("controller.log")).expect("create controller.log");
    let controller = Command::new(BIN)
        .arg("controller")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", NAMESPACE, "--pod-name", "smoke-0"])
        .args(["--bind-address", "127.0.0.1"])
        .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
        .args(["--port-range", &format!("{spare}-{spare}")])
        .args(["--drain-timeout-secs", "1"])
        .env("GATEHOUSE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start gatehouse controller");
    let mut controller = Killed(controller);
    let deadline = Instant::now() + Duration::from_secs(10);

    // (a) Watched, translated, and bound the container port the Service records.
    let url = format!("http://127.0.0.1:{target}/hello");
    loop {
        if let Ok((status, _, body)) = try_get(&url, None).await {
            assert_eq!(status, StatusCode::OK, "{body}\n{}", diagnostics(&dir));
            assert_eq!(body, BODY);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing answered on {url}\n{}",
            diagnostics(&dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // (b) Took the Lease ...
    let leases = format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases");
    let lease = format!("{leases}/gatehouse-leader");
    eventually(&dir, deadline, "the Lease to be created", || {
        find(&requests(&dir), "POST", &leases)
            .iter()
            .any(|r| r["body"]["spec"]["holderIdentity"] == "smoke-0")
    })
    .await;
    let (status, _, body) = try_get(&format!("http://127.0.0.1:{api_port}{lease}"), None)
        .await
        .expect("GET the Lease from kmock");
    assert_eq!(status, StatusCode::OK, "{body}");
    let held: Value = serde_json::from_str(&body).expect("Lease JSON");
    assert_eq!(held["spec"]["holderIdentity"], "smoke-0", "{held}");
    // ... applied the HTTPRoute status ...
    let route_status =
        "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/hello/status";
    eventually(&dir, deadline, "HTTPRoute status Accepted=True", || {
        find(&requests(&dir), "PATCH", route_status)
            .iter()
            .any(accepts_route)
    })
    .await;
    // ... and applied the Gateway Service, keeping its allocation.
    let service = format!("/api/v1/namespaces/{NAMESPACE}/services/gw-default-gw");
    eventually(&dir, deadline, "the Gateway Service to be applied", || {
        find(&requests(&dir), "PATCH", &service).iter().any(|r| {
            r["contentType"] == "application/apply-patch+yaml"
                && r["query"]["fieldManager"] == FIELD_MANAGER
                && r["body"]["spec"]["ports"][0]["targetPort"] == target
        })
    })
    .await;
    // Secrets are only ever read filtered to TLS Secrets.
    let seen = requests(&dir);
    let secrets = find(&seen, "GET", "/api/v1/secrets");
    assert!(!secrets.is_empty(), "{}", diagnostics(&dir));
    for r in &secrets {
        assert_eq!(r["query"]["fieldSelector"], "type=kubernetes.io/tls", "{r}");
    }

    // (c) Ready.
    let (status, _, body) = try_get(&format!("http://127.0.0.1:{admin}/readyz"), None)
        .await
        .expect("GET /readyz");
    assert_eq!(status, StatusCode::OK, "{body}");

    // Every watcher got through against the mock, and no write failed.
    let log = std::fs::read_to_string(dir.join("controller.log")).unwrap_or_default();
    for failure in [
        "not served by the API server",
        "watch failed",
        "status write failed",
        "cannot apply",
    ] {
        assert!(!log.contains(failure), "{failure}:\n{}", diagnostics(&dir));
    }

    // SIGTERM: a clean exit.
    let killed = Command::new("kill")
        .args(["-TERM", &controller.0.id().to_string()])
        .status()
        .expect("send SIGTERM");
    assert!(killed.success());
    let exit = wait_exit(&mut controller.0, Duration::from_secs(5));
    assert!(
        exit.is_some_and(|s| s.success()),
        "gatehouse controller exited with {exit:?}\n{}",
        diagnostics(&dir)
    );
    // The Lease was released on the way out, so a successor takes over at
    // once instead of waiting for it to expire.
    let released = find(&requests(&dir), "PUT", &lease).iter().any(|r| {
        r["body"]["spec"]
            .get("holderIdentity")
            .is_none_or(Value::is_null)
    });
    assert!(
        released,
        "the Lease was not released\n{}",
        diagnostics(&dir)
    );
}
