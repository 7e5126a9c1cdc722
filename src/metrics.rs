//! Prometheus metrics: what the proxy and the config pipeline count.
//!
//! Label values are `Arc<str>`s prepared at translate time, so recording a
//! request clones reference counts, not strings.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A label value shared with the routing table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label(pub Arc<str>);

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        encoder.write_str(&self.0)
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Label(s.into())
    }
}

/// Labels of a served request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `namespace/name` of the Gateway (empty when no listener matched).
    pub gateway: Label,
    /// `namespace/name` of the HTTPRoute (empty when no route matched).
    pub route: Label,
    /// The backend (`namespace/name:port`), or empty.
    pub backend: Label,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status_class: &'static str,
}

/// Labels of a request's latency.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct LatencyLabels {
    /// The Gateway.
    pub gateway: Label,
    /// The HTTPRoute.
    pub route: Label,
}

/// Labels naming a backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BackendLabels {
    /// The backend.
    pub backend: Label,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Every metric Gatehouse exports.
#[derive(Debug)]
pub struct Metrics {
    /// Requests served, by gateway, route, backend and status class.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency from arrival to response headers.
    pub request_duration: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    /// Failed connection attempts to upstreams.
    pub upstream_connect_errors: Family<BackendLabels, Counter>,
    /// Config reads that produced a new table.
    pub config_reloads: Counter,
    /// Time to translate the index into a routing table and status.
    pub translate_duration: Histogram,
    /// Time from a change reaching the index to the table that serves it.
    pub config_apply_duration: Histogram,
    /// Config reads that failed (the last good config was kept).
    pub config_reload_failures: Counter,
    /// Connections open on data-plane listeners.
    pub open_connections: Gauge,
    /// Mirrored requests that could not be sent.
    pub mirror_errors: Counter,
    /// Status patches written (leader only).
    pub status_writes: Counter,
    /// Status patches that failed.
    pub status_write_errors: Counter,
    /// Status patches dropped because the write queue was full.
    pub status_write_drops: Counter,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let upstream_connect_errors = Family::<BackendLabels, Counter>::default();
        let config_reloads = Counter::default();
        let translate_duration = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        let config_apply_duration = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        let config_reload_failures = Counter::default();
        let open_connections = Gauge::default();
        let mirror_errors = Counter::default();
        let status_writes = Counter::default();
        let status_write_errors = Counter::default();
        let status_write_drops = Counter::default();
        let mut registry = Registry::with_prefix("gatehouse");
        registry.register(
            "requests",
            "HTTP requests served, by gateway, route, backend and status class",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from request arrival to response headers",
            request_duration.clone(),
        );
        registry.register(
            "upstream_connect_errors",
            "Failed connection attempts to upstream endpoints",
            upstream_connect_errors.clone(),
        );
        registry.register(
            "config_reloads",
            "Configuration changes applied",
            config_reloads.clone(),
        );
        registry.register(
            "translate_duration_seconds",
            "Time to translate the objects into a routing table and status",
            translate_duration.clone(),
        );
        registry.register(
            "config_apply_duration_seconds",
            "Time from a change reaching the index (file read or watch event) to the table that serves it",
            config_apply_duration.clone(),
        );
        registry.register(
            "config_reload_failures",
            "Configuration reads that failed; the last good configuration was kept",
            config_reload_failures.clone(),
        );
        registry.register(
            "open_connections",
            "Downstream connections open on data-plane listeners",
            open_connections.clone(),
        );
        registry.register(
            "mirror_errors",
            "Mirrored request copies that could not be delivered",
            mirror_errors.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches written to the cluster",
            status_writes.clone(),
        );
        registry.register(
            "status_write_errors",
            "Status patches the API server refused or that failed",
            status_write_errors.clone(),
        );
        registry.register(
            "status_write_drops",
            "Status patches dropped because the write queue was full",
            status_write_drops.clone(),
        );
        Self {
            requests,
            request_duration,
            upstream_connect_errors,
            config_reloads,
            translate_duration,
            config_apply_duration,
            config_reload_failures,
            open_connections,
            mirror_errors,
            status_writes,
            status_write_errors,
            status_write_drops,
            registry,
        }
    }

    /// Renders the OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The status class label of a status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
