//! Gatehouse: a Kubernetes Gateway API controller and edge proxy in one binary.
//!
//! Data flows one way: `provider` → `index` → `translate` → `routing` table →
//! `proxy`, and the status computed by `translate` flows back out through
//! `admin` (and, in a cluster, the status writer).

pub mod admin;
pub mod index;
pub mod metrics;
pub mod object;
pub mod policy;
pub mod provider;
pub mod proxy;
pub mod routing;
pub mod runtime;
pub mod translate;
