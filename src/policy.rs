//! Our own `gatehouse.dev/v1alpha1` kinds.
//!
//! Their types are derived with schemars so that CRDs can be generated from
//! them; translate compiles them into the routing table and the proxy runs
//! what translate compiled.

mod backend;
mod direct_response;

pub use backend::{Backend, BackendAppProtocol, BackendEndpoint, BackendSpec};
pub use direct_response::{DirectResponse, DirectResponseHeader, DirectResponseSpec};
