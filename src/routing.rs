//! The routing table: what translate produces and the proxy reads.
//!
//! The table is immutable; a config change builds a new one and swaps it in
//! whole. Everything the request path needs is compiled here ahead of time,
//! so selecting a route is lookups and comparisons, no allocation.

pub mod backend;
pub mod describe;
pub mod filter;
pub mod host;
pub mod matcher;
pub mod route_set;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use rustls::sign::CertifiedKey;
use serde::{Serialize, Serializer};

use crate::object::ObjectKey;
use backend::BackendSet;
use filter::Filters;
use host::HostMap;
use matcher::{Precedence, RequestMatch};
use route_set::RouteSet;

/// The whole routing table.
#[derive(Debug, Default, Serialize)]
pub struct RouteTable {
    /// One entry per bound socket address.
    pub listeners: BTreeMap<SocketAddr, Arc<PortTable>>,
    /// The index generation this table was built from.
    pub generation: u64,
}

/// The protocol a bound port speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ListenerProtocol {
    /// Cleartext HTTP/1.1 and h2c.
    Http,
    /// TLS-terminated HTTP/1.1 and HTTP/2.
    Https,
}

/// Everything served on one bound address and port.
#[derive(Debug, Serialize)]
pub struct PortTable {
    /// Whether TLS is terminated here.
    pub protocol: ListenerProtocol,
    /// The Gateway listeners on this port, chosen by the request's host.
    pub listeners: HostMap<Arc<ListenerRoutes>>,
    /// Certificates by SNI (HTTPS only).
    pub certificates: HostMap<Certificate>,
}

/// A certificate ready for rustls, with the Secret it came from.
#[derive(Clone, Debug)]
pub struct Certificate {
    /// The Secret's key.
    pub source: ObjectKey,
    /// The parsed chain and key.
    pub key: Arc<CertifiedKey>,
}

impl Serialize for Certificate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.source)
    }
}

/// The routes attached to one Gateway listener.
#[derive(Debug, Serialize)]
pub struct ListenerRoutes {
    /// The Gateway.
    pub gateway: ObjectKey,
    /// `namespace/name` of the Gateway, for metrics.
    pub gateway_label: Arc<str>,
    /// The listener's name.
    pub listener: String,
    /// The listener's port (for redirects).
    pub port: u16,
    /// Route entries by route hostname, indexed by path (a set no change
    /// touched is shared with the previous table).
    pub hosts: HostMap<Arc<RouteSet>>,
}

/// One match of one rule, placed by precedence.
#[derive(Debug, Serialize)]
pub struct RouteEntry {
    /// Where it stands.
    pub precedence: Precedence,
    /// The compiled match.
    pub matcher: RequestMatch,
    /// What to do with a matching request.
    pub rule: Arc<RouteRule>,
}

/// What one HTTPRoute rule does.
#[derive(Debug, Serialize)]
pub struct RouteRule {
    /// The route.
    pub route: ObjectKey,
    /// The rule's index in the route.
    pub rule_index: usize,
    /// `namespace/name` of the route, for metrics.
    pub route_label: Arc<str>,
    /// The rule's filters.
    pub filters: Filters,
    /// Where requests go.
    pub backends: BackendSet,
    /// Timeouts.
    pub timeouts: Timeouts,
}

/// A rule's timeouts.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Timeouts {
    /// From the request's arrival to the end of the response headers.
    pub request: Option<Duration>,
    /// One attempt to the backend.
    pub backend_request: Option<Duration>,
}

/// The request facts route selection looks at.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'a> {
    /// Host, normalized with [`host::normalize_host`].
    pub host: &'a str,
    /// Method.
    pub method: &'a Method,
    /// Path, without query.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: &'a HeaderMap,
}

impl PortTable {
    /// Selects the listener for the request's host and, within it, the
    /// first entry by precedence that matches. Route hostnames are tried
    /// from the most specific to the least, as the spec gives precedence to
    /// "the largest number of characters in a matching non-wildcard hostname".
    pub fn select(&self, req: &RequestFacts<'_>) -> Option<(&ListenerRoutes, &RouteEntry)> {
        let listener = self.listeners.best(req.host)?;
        let entry = listener
            .hosts
            .candidates(req.host)
            .find_map(|set| set.find(req))?;
        Some((listener, entry))
    }
}
