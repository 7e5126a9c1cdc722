//! Micro-benchmarks of the request hot path: route selection in tables of
//! 1 to 10,000 HTTPRoutes, header modifier application, and the load
//! balancer's picks. They print figures; nothing here asserts a time.
//!
//! `cargo bench --bench routing` (add `-- select` to run one group).

#[path = "support/config.rs"]
mod config;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use gatehouse::routing::backend::{
    BackendSet, BackendTarget, EndpointGroup, UpstreamProtocol, WeightedBackend,
};
use gatehouse::routing::filter::{Filters, HeaderModifier};
use gatehouse::routing::{PortTable, RequestFacts};
use gatehouse::translate::translate;
use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

/// Translates a generated config of `routes` HTTPRoutes and returns the
/// table of its one listener.
fn mk_port_table(routes: usize) -> Arc<PortTable> {
    let index = config::mk_index(&config::config_yaml(routes));
    let translation = translate(&index, &config::translate_config(), config::now());
    translation
        .table
        .listeners
        .get(&config::listener_addr())
        .cloned()
        .expect("the generated Gateway's listener is in the table")
}

fn mk_request_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", config::HOST),
        ("user-agent", "bench/1.0"),
        ("accept", "*/*"),
        ("accept-encoding", "gzip, deflate, br"),
        ("x-tenant", "t-7"),
        ("x-forwarded-for", "10.1.2.3"),
        ("cookie", "session=0123456789abcdef"),
        ("x-request-id", "92940a5909b6e9e593adc0b0d81d0603"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

fn select(c: &mut Criterion) {
    let headers = mk_request_headers();
    let get = Method::GET;
    let mut group = c.benchmark_group("select");
    for routes in [1usize, 100, 1_000, 10_000] {
        let table = mk_port_table(routes);
        // The default route is last in precedence on the shared host: every
        // other entry of the host is tried first.
        let last = RequestFacts {
            host: config::HOST,
            method: &get,
            path: "/bench",
            query: None,
            headers: &headers,
        };
        assert!(table.select(&last).is_some(), "the default route matches");
        group.bench_with_input(
            BenchmarkId::new("last_on_shared_host", routes),
            &last,
            |b, req| b.iter(|| black_box(table.select(black_box(req)).is_some())),
        );
        if routes < 10 {
            continue;
        }
        // A route found by its own exact host: the host map's fast path.
        let own_host = format!("svc-{}.example.com", routes / 2 - routes / 2 % 3);
        let own_path = format!("/svc-{}/v1/items", routes / 2 - routes / 2 % 3);
        let own = RequestFacts {
            host: &own_host,
            method: &get,
            path: &own_path,
            query: None,
            headers: &headers,
        };
        group.bench_with_input(BenchmarkId::new("own_host", routes), &own, |b, req| {
            b.iter(|| black_box(table.select(black_box(req)).is_some()))
        });
        // No route at all for this host.
        let miss = RequestFacts {
            host: "nowhere.example.org",
            method: &get,
            path: "/bench",
            query: None,
            headers: &headers,
        };
        group.bench_with_input(BenchmarkId::new("no_match", routes), &miss, |b, req| {
            b.iter(|| black_box(table.select(black_box(req)).is_none()))
        });
    }
    group.finish();
}

fn header_filter(c: &mut Criterion) {
    let modifier = HeaderModifier {
        set: vec![
            (
                HeaderName::from_static("x-gateway"),
                HeaderValue::from_static("gatehouse"),
            ),
            (
                HeaderName::from_static("user-agent"),
                HeaderValue::from_static("edge"),
            ),
        ],
        add: vec![
            (
                HeaderName::from_static("x-tenant"),
                HeaderValue::from_static("edge"),
            ),
            (
                HeaderName::from_static("x-new"),
                HeaderValue::from_static("1"),
            ),
        ],
        remove: vec![
            HeaderName::from_static("cookie"),
            HeaderName::from_static("x-absent"),
        ],
    };
    let headers = mk_request_headers();
    let mut group = c.benchmark_group("header_modifier");
    group.bench_function("apply_set2_add2_remove2", |b| {
        b.iter_batched_ref(
            || headers.clone(),
            |h| modifier.apply(black_box(h)),
            BatchSize::SmallInput,
        )
    });
    // One operation each, to see which part costs what.
    let one_each = [
        (
            "set_existing",
            HeaderModifier {
                set: modifier.set[1..].to_vec(),
                ..HeaderModifier::default()
            },
        ),
        (
            "add_to_existing",
            HeaderModifier {
                add: modifier.add[..1].to_vec(),
                ..HeaderModifier::default()
            },
        ),
        (
            "add_new",
            HeaderModifier {
                add: modifier.add[1..].to_vec(),
                ..HeaderModifier::default()
            },
        ),
        (
            "remove_existing",
            HeaderModifier {
                remove: modifier.remove[..1].to_vec(),
                ..HeaderModifier::default()
            },
        ),
    ];
    for (name, one) in &one_each {
        group.bench_function(*name, |b| {
            b.iter_batched_ref(
                || headers.clone(),
                |h| one.apply(black_box(h)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn mk_group(endpoints: usize) -> Arc<EndpointGroup> {
    let endpoints = (0..endpoints)
        .map(|i| {
            Authority::try_from(format!("10.0.{}.{}:8080", i / 250, i % 250 + 1))
                .expect("a valid authority")
        })
        .collect();
    Arc::new(EndpointGroup::new(
        "default/echo:8080".into(),
        endpoints,
        UpstreamProtocol::Http1,
    ))
}

fn mk_backend_set(weights: &[u32]) -> BackendSet {
    BackendSet::new(
        weights
            .iter()
            .map(|&weight| WeightedBackend {
                weight,
                target: BackendTarget::Endpoints(mk_group(10)),
                filters: Filters::default(),
            })
            .collect(),
    )
}

fn load_balancer(c: &mut Criterion) {
    let mut group = c.benchmark_group("load_balancer");
    let one = mk_backend_set(&[1]);
    group.bench_function("backend_set_pick/1", |b| {
        b.iter(|| black_box(one.pick().is_some()))
    });
    let three = mk_backend_set(&[80, 15, 5]);
    group.bench_function("backend_set_pick/3_weighted", |b| {
        b.iter(|| black_box(three.pick().is_some()))
    });
    let many = mk_backend_set(&[1; 16]);
    group.bench_function("backend_set_pick/16_equal", |b| {
        b.iter(|| black_box(many.pick().is_some()))
    });
    for n in [1usize, 10, 1000] {
        let endpoints = mk_group(n);
        group.bench_with_input(
            BenchmarkId::new("endpoint_group_pick", n),
            &endpoints,
            |b, g| b.iter(|| black_box(g.pick().is_some())),
        );
    }
    // Both picks, as the proxy makes them per request.
    group.bench_function("rule_pick/3_weighted_x10_endpoints", |b| {
        b.iter(|| {
            let backend = three.pick();
            black_box(match backend.map(|b| &b.target) {
                Some(BackendTarget::Endpoints(g)) => g.pick().is_some(),
                _ => false,
            })
        })
    });
    group.finish();
}

criterion_group!(benches, select, header_filter, load_balancer);
criterion_main!(benches);
