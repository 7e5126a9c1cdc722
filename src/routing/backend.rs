//! Compiled backendRefs: weighted choice between backends, round-robin
//! between a backend's ready endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::uri::Authority;
use serde::{Serialize, Serializer};

use super::filter::Filters;

/// The protocol spoken to an upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UpstreamProtocol {
    /// HTTP/1.1 (upgrading to WebSocket where asked).
    Http1,
    /// HTTP/2 with prior knowledge over cleartext (`kubernetes.io/h2c`).
    H2c,
}

/// One set of interchangeable endpoints: a Service port or a Backend.
#[derive(Debug, Serialize)]
pub struct EndpointGroup {
    /// A name for logs and metrics, e.g. `default/echo:8080`.
    pub name: Arc<str>,
    /// The ready endpoints.
    #[serde(serialize_with = "ser_authorities")]
    pub endpoints: Vec<Authority>,
    /// How to talk to them.
    pub protocol: UpstreamProtocol,
    #[serde(skip)]
    next: AtomicUsize,
}

fn ser_authorities<S: Serializer>(a: &[Authority], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(a.iter().map(Authority::as_str))
}

impl EndpointGroup {
    /// Builds a group.
    pub fn new(name: Arc<str>, endpoints: Vec<Authority>, protocol: UpstreamProtocol) -> Self {
        // Start each group at a random endpoint so that many gateway
        // replicas do not all hit the first endpoint first.
        let start = if endpoints.is_empty() {
            0
        } else {
            fastrand::usize(0..endpoints.len())
        };
        Self {
            name,
            endpoints,
            protocol,
            next: AtomicUsize::new(start),
        }
    }

    /// The next endpoint in round-robin order, or `None` when none is ready.
    pub fn pick(&self) -> Option<&Authority> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.endpoints.get(i % self.endpoints.len())
    }
}

/// Where one backendRef sends traffic.
#[derive(Debug, Serialize)]
pub enum BackendTarget {
    /// A resolved backend.
    Endpoints(Arc<EndpointGroup>),
    /// A reference that did not resolve: the spec says requests that would
    /// have gone to it get a 500.
    Invalid {
        /// Why, for logs.
        reason: String,
    },
}

/// One weighted backendRef.
#[derive(Debug, Serialize)]
pub struct WeightedBackend {
    /// Its relative weight.
    pub weight: u32,
    /// Where it sends traffic.
    pub target: BackendTarget,
    /// Filters that apply only to requests sent to this backend.
    pub filters: Filters,
}

/// The backendRefs of one rule.
#[derive(Debug, Default, Serialize)]
pub struct BackendSet {
    /// The backends with their weights.
    pub backends: Vec<WeightedBackend>,
    total_weight: u64,
}

impl BackendSet {
    /// Builds the set.
    pub fn new(backends: Vec<WeightedBackend>) -> Self {
        let total_weight = backends.iter().map(|b| u64::from(b.weight)).sum();
        Self {
            backends,
            total_weight,
        }
    }

    /// Picks a backend in proportion to the weights, or `None` when every
    /// weight is zero (or there are no backends).
    pub fn pick(&self) -> Option<&WeightedBackend> {
        if self.total_weight == 0 {
            return None;
        }
        if self.backends.len() == 1 {
            return self.backends.first();
        }
        let mut ticket = fastrand::u64(0..self.total_weight);
        for backend in &self.backends {
            let w = u64::from(backend.weight);
            if ticket < w {
                return Some(backend);
            }
            ticket -= w;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_group(n: usize) -> Arc<EndpointGroup> {
        let endpoints = (0..n)
            .map(|i| Authority::try_from(format!("127.0.0.1:{}", 1000 + i)).unwrap())
            .collect();
        Arc::new(EndpointGroup::new(
            "g".into(),
            endpoints,
            UpstreamProtocol::Http1,
        ))
    }

    #[test]
    fn round_robin_visits_every_endpoint() {
        let group = mk_group(3);
        let mut seen: Vec<String> = (0..6).map(|_| group.pick().unwrap().to_string()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3);
        assert!(mk_group(0).pick().is_none());
    }

    #[test]
    fn weights_are_proportional_and_zero_is_never_picked() {
        let set = BackendSet::new(vec![
            WeightedBackend {
                weight: 3,
                target: BackendTarget::Endpoints(mk_group(1)),
                filters: Filters::default(),
            },
            WeightedBackend {
                weight: 1,
                target: BackendTarget::Invalid { reason: "x".into() },
                filters: Filters::default(),
            },
            WeightedBackend {
                weight: 0,
                target: BackendTarget::Invalid {
                    reason: "zero".into(),
                },
                filters: Filters::default(),
            },
        ]);
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            let picked = set.pick().unwrap();
            let i = set
                .backends
                .iter()
                .position(|b| std::ptr::eq(b, picked))
                .unwrap();
            counts[i] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((2700..3300).contains(&counts[0]), "{counts:?}");
        let none = BackendSet::new(vec![]);
        assert!(none.pick().is_none());
    }
}
