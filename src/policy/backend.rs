//! `Backend`: a named set of static endpoints usable as an HTTPRoute backendRef
//! (group `gatehouse.dev`, kind `Backend`), for standalone use and for
//! services outside the cluster.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A set of static endpoints that HTTPRoutes may send traffic to.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "Backend",
    namespaced,
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    /// The endpoints; requests are balanced round-robin across them.
    pub endpoints: Vec<BackendEndpoint>,
    /// The protocol spoken to the endpoints (default `http`, HTTP/1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<BackendAppProtocol>,
}

/// One endpoint of a [`Backend`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendEndpoint {
    /// An IP address or a DNS name (resolved when connecting).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

/// The protocol Gatehouse speaks to a [`Backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackendAppProtocol {
    /// HTTP/1.1 over cleartext TCP.
    #[serde(rename = "http")]
    Http,
    /// HTTP/2 with prior knowledge over cleartext TCP.
    #[serde(rename = "h2c")]
    H2c,
}
