//! Generated Gateway API configs for the benchmarks, from `bench/routes.py`
//! (the generator `bench/run` uses): N-1 filler HTTPRoutes on the
//! shared host `api.example.com` (plus a host of their own) or on tenant
//! wildcards, with path prefixes and header matches, and one default route
//! (`PathPrefix /` on `api.example.com`) that is last in precedence.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use gatehouse::index::Index;
use gatehouse::provider::Event;
use gatehouse::provider::file::{MetadataStamper, parse_documents};
use gatehouse::translate::TranslateConfig;
use k8s_openapi::jiff::Timestamp;

/// The host every filler route but the wildcard ones shares (as
/// `bench/routes.py` spells it).
#[allow(dead_code, reason = "only benches/routing.rs sends requests")]
pub const HOST: &str = "api.example.com";
/// The port of the generated Gateway's listener.
pub const PORT: u16 = 18081;
/// The port of the generated Backend (nothing listens there: the
/// benchmarks only select routes).
const BACKEND_PORT: u16 = 18080;

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

/// A config with `routes` HTTPRoutes, the last being the default route,
/// as `bench/routes.py` generates it for `bench/run` (one generator, so the
/// micro-benchmarks and the side-by-side runs measure the same config).
pub fn config_yaml(routes: usize) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/routes.py");
    let output = Command::new("python3")
        .arg(script)
        .args([
            routes.to_string(),
            PORT.to_string(),
            BACKEND_PORT.to_string(),
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the generated config is UTF-8")
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
