//! `GatewayParameters`: settings for the infrastructure of a Gateway in a
//! cluster (today: its Service), referenced from a GatewayClass's
//! `parametersRef` or a Gateway's `spec.infrastructure.parametersRef`.
//! A Gateway's own parameters override its class's, field by field.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Infrastructure settings for Gateways.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "GatewayParameters",
    plural = "gatewayparameters",
    namespaced,
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayParametersSpec {
    /// The Service created for each Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceParameters>,
}

/// How a Gateway's Service is made.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceParameters {
    /// `ClusterIP`, `NodePort` or `LoadBalancer` (the controller's default
    /// when unset).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<ServiceType>,
    /// Annotations added to the Service (e.g. for a cloud load balancer).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Labels added to the Service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `Cluster` or `Local`, for NodePort and LoadBalancer Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_traffic_policy: Option<ExternalTrafficPolicy>,
}

/// A Service type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    ClusterIP,
    /// A port on every node.
    NodePort,
    /// An external load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The name Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// A Service's external traffic policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ExternalTrafficPolicy {
    /// Balance across all nodes.
    Cluster,
    /// Keep traffic on the node it arrived at (preserves client IPs).
    Local,
}

impl ServiceParameters {
    /// These settings with `over`'s set fields taking precedence.
    pub fn overridden_by(&self, over: &ServiceParameters) -> ServiceParameters {
        let mut annotations = self.annotations.clone();
        annotations.extend(over.annotations.clone());
        let mut labels = self.labels.clone();
        labels.extend(over.labels.clone());
        ServiceParameters {
            type_: over.type_.or(self.type_),
            annotations,
            labels,
            external_traffic_policy: over
                .external_traffic_policy
                .or(self.external_traffic_policy),
        }
    }
}
