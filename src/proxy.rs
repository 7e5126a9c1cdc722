//! The data plane: hyper + rustls listeners that serve traffic through the
//! current routing table.
//!
//! Each request loads the table once (`ArcSwap`), selects a route, runs its
//! compiled filters and forwards over a pooled client. Swapping the table
//! touches no connection; listener changes are applied as diffs by
//! [`listener::ListenerSet`].

pub mod error;
mod forward;
mod handler;
pub mod listener;
mod pool;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::metrics::Metrics;
use crate::routing::RouteTable;
use pool::{Http1Pool, PoolSettings};

/// How long an upstream connection may sit unused before it is closed.
const UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Idle HTTP/1.1 connections kept per upstream endpoint.
const MAX_IDLE_PER_ENDPOINT: usize = 1024;

/// The boxed error of bodies on the request path.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type the proxy sends and receives.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// The routing table handle the proxy reads from and translate writes to.
pub type TableHandle = Arc<ArcSwap<RouteTable>>;

/// Tunables of the data plane.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// How long a client may take to send request headers.
    pub header_read_timeout: Duration,
    /// The largest request head (HTTP/1.1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// How long in-flight requests get to finish when a listener closes.
    pub drain_timeout: Duration,
    /// How long connecting to an upstream may take.
    pub connect_timeout: Duration,
    /// The largest request body buffered to mirror a request.
    pub max_mirror_body_bytes: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_mirror_body_bytes: 4 * 1024 * 1024,
        }
    }
}

/// What every connection of the proxy shares.
#[derive(Debug)]
pub struct Shared {
    /// The current routing table.
    pub table: TableHandle,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Tunables.
    pub config: ProxyConfig,
    http1: Http1Pool,
    h2c: Client<HttpConnector, ProxyBody>,
}

impl Shared {
    /// Builds the shared state with pooled upstream clients.
    pub fn new(table: TableHandle, metrics: Arc<Metrics>, config: ProxyConfig) -> Arc<Self> {
        let http1 = Http1Pool::new(PoolSettings {
            connect_timeout: config.connect_timeout,
            idle_timeout: UPSTREAM_IDLE_TIMEOUT,
            max_idle_per_endpoint: MAX_IDLE_PER_ENDPOINT,
        });
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.enforce_http(true);
        let h2c = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(true)
            .pool_idle_timeout(UPSTREAM_IDLE_TIMEOUT)
            .build(connector);
        Arc::new(Self {
            table,
            metrics,
            config,
            http1,
            h2c,
        })
    }
}
