//! Generated Gateway API configs for the benchmarks, the same shape as
//! `bench/routes.py` builds for `bench/run`: N-1 filler HTTPRoutes on the
//! shared host `api.example.com` (plus a host of their own) or on tenant
//! wildcards, with path prefixes and header matches, and one default route
//! (`PathPrefix /` on `api.example.com`) that is last in precedence.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use gatehouse::index::Index;
use gatehouse::provider::Event;
use gatehouse::provider::file::{MetadataStamper, parse_documents};
use gatehouse::translate::TranslateConfig;
use k8s_openapi::jiff::Timestamp;

/// The host every filler route but the wildcard ones shares.
pub const HOST: &str = "api.example.com";
/// The port of the generated Gateway's listener.
pub const PORT: u16 = 18081;

/// The listener's address in the translated table.
pub fn listener_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], PORT))
}

/// Translation settings binding listeners to 127.0.0.1.
pub fn translate_config() -> TranslateConfig {
    TranslateConfig {
        default_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        ..TranslateConfig::default()
    }
}

/// A config with `routes` HTTPRoutes, the last being the default route.
pub fn config_yaml(routes: usize) -> String {
    let mut out = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: gatehouse
spec:
  controllerName: gatehouse.dev/gateway-controller
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: bench
  namespace: default
spec:
  gatewayClassName: gatehouse
  listeners:
  - name: http
    protocol: HTTP
    port: {PORT}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata:
  name: echo
  namespace: default
spec:
  endpoints:
  - host: 127.0.0.1
    port: 18080
"
    );
    let backend_ref = "    backendRefs: [{group: gatehouse.dev, kind: Backend, name: echo}]\n";
    for i in 0..routes.max(1) - 1 {
        let hostnames = if i % 3 == 2 {
            format!("[\"*.tenant-{}.example.com\"]", i % 97)
        } else {
            format!("[\"{HOST}\", \"svc-{i}.example.com\"]")
        };
        let _ = write!(
            out,
            "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: svc-{i}
  namespace: default
spec:
  parentRefs: [{{name: bench}}]
  hostnames: {hostnames}
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /svc-{i}/v{v}}}
",
            v = i % 3 + 1
        );
        if i % 2 == 0 {
            let _ = writeln!(
                out,
                "      headers: [{{name: x-tenant, value: t-{}}}]",
                i % 50
            );
        }
        if i % 5 == 0 {
            let _ = writeln!(out, "    - path: {{type: Exact, value: /svc-{i}/health}}");
        }
        out.push_str(backend_ref);
    }
    let _ = write!(
        out,
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: zz-default
  namespace: default
spec:
  parentRefs: [{{name: bench}}]
  hostnames: [\"{HOST}\"]
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /}}
{backend_ref}"
    );
    out
}

/// The time objects are stamped and translated at.
pub fn now() -> Timestamp {
    Timestamp::from_second(1_700_000_000).expect("a valid timestamp")
}

/// Parses `yaml` as the file provider does and loads it into an index.
pub fn mk_index(yaml: &str) -> Index {
    let mut loaded =
        parse_documents(Path::new("bench.yaml"), yaml).expect("the generated config parses");
    assert!(
        loaded.skipped.is_empty(),
        "generated config has unknown kinds"
    );
    MetadataStamper::default().stamp(&mut loaded.objects, now());
    let mut index = Index::default();
    index.handle(Event::Reset(loaded.objects));
    index
}
