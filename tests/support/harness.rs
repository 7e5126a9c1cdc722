//! Runs Gatehouse in standalone mode, in-process, on a config directory of
//! its own, bound to 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gatehouse::proxy::ProxyConfig;
use gatehouse::runtime::{Gatehouse, StandaloneOptions, start_standalone};
use gatehouse::translate::TranslateConfig;
use serde_json::Value;

use super::{EchoBackend, get, write_config};

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A running gateway and the directory it serves.
pub struct Harness {
    /// The gateway.
    pub gatehouse: Gatehouse,
    /// Its config directory.
    pub dir: PathBuf,
}

/// A fresh, empty config directory.
pub fn config_dir() -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("gatehouse-it-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create config dir");
    dir
}

impl Harness {
    /// Starts a gateway serving `yaml` (written as `config.yaml`).
    pub async fn start(yaml: &str) -> Harness {
        Self::start_with(yaml, ProxyConfig::default()).await
    }

    /// Starts a gateway with the given data-plane tunables.
    pub async fn start_with(yaml: &str, proxy: ProxyConfig) -> Harness {
        let dir = config_dir();
        write_config(&dir, "config.yaml", yaml);
        let gatehouse = start_standalone(StandaloneOptions {
            path: dir.clone(),
            translate: TranslateConfig {
                default_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
                ..TranslateConfig::default()
            },
            proxy,
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        })
        .await
        .expect("gatehouse starts");
        Harness { gatehouse, dir }
    }

    /// Replaces the config.
    pub fn write(&self, yaml: &str) {
        write_config(&self.dir, "config.yaml", yaml);
    }

    /// GETs an admin path and parses the JSON answer.
    pub async fn admin_json(&self, path: &str) -> Value {
        let url = format!("http://{}{path}", self.gatehouse.admin_addr);
        let (status, _, body) = get(&url, None).await;
        assert!(status.is_success(), "{url}: {status} {body}");
        serde_json::from_str(&body).expect("admin answers JSON")
    }

    /// The status of one object, as `/status/<kind>/<ns>/<name>` serves it.
    pub async fn status(&self, kind: &str, namespace: &str, name: &str) -> Value {
        self.admin_json(&format!("/status/{kind}/{namespace}/{name}"))
            .await
    }

    /// Stops the gateway and removes its directory.
    pub async fn stop(self) {
        self.gatehouse.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` until it returns true, for at most 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Finds condition `type_` in a condition list.
pub fn condition<'a>(conditions: &'a Value, type_: &str) -> &'a Value {
    conditions
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {conditions}"))
}

/// The GatewayClass and a Gateway `gw` (namespace `default`) with one HTTP
/// listener on `port` that admits routes from every namespace.
pub fn gateway_yaml(port: u16) -> String {
    format!(
        r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatehouse
spec:
  controllerName: gatehouse.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
spec:
  gatewayClassName: gatehouse
  listeners:
  - name: http
    protocol: HTTP
    port: {port}
    allowedRoutes:
      namespaces:
        from: All
"#
    )
}

/// A `gatehouse.dev` Backend named `name` pointing at an echo backend.
pub fn backend_yaml(name: &str, backend: &EchoBackend) -> String {
    format!(
        r#"
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata:
  name: {name}
  namespace: default
spec:
  endpoints:
  - host: 127.0.0.1
    port: {port}
"#,
        port = backend.port()
    )
}
