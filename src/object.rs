//! The objects Gatehouse reads, and the typed keys that name them.
//!
//! Every provider turns its source into [`Object`]s; the index stores them by
//! [`ObjectKey`]; translate reads them and writes status keyed the same way.

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::fmt;

use crate::policy::{Backend, DirectResponse, GatewayParameters};

/// The kinds of object Gatehouse understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    /// `gateway.networking.k8s.io/v1` GatewayClass (cluster-scoped).
    GatewayClass,
    /// `gateway.networking.k8s.io/v1` Gateway.
    Gateway,
    /// `gateway.networking.k8s.io/v1` HTTPRoute.
    HttpRoute,
    /// `gateway.networking.k8s.io/v1` / `v1beta1` ReferenceGrant.
    ReferenceGrant,
    /// `v1` Namespace (cluster-scoped).
    Namespace,
    /// `v1` Service.
    Service,
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice,
    /// `v1` Secret.
    Secret,
    /// `gatehouse.dev/v1alpha1` Backend.
    Backend,
    /// `gatehouse.dev/v1alpha1` DirectResponse.
    DirectResponse,
    /// `gatehouse.dev/v1alpha1` GatewayParameters.
    GatewayParameters,
}

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// Our own API group.
pub const GATEHOUSE_GROUP: &str = "gatehouse.dev";

impl Kind {
    /// The API group of this kind (`""` for the core group).
    pub fn group(self) -> &'static str {
        match self {
            Kind::GatewayClass | Kind::Gateway | Kind::HttpRoute | Kind::ReferenceGrant => {
                GATEWAY_GROUP
            }
            Kind::Namespace | Kind::Service | Kind::Secret => "",
            Kind::EndpointSlice => "discovery.k8s.io",
            Kind::Backend | Kind::DirectResponse | Kind::GatewayParameters => GATEHOUSE_GROUP,
        }
    }

    /// The `kind` string as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GatewayClass => "GatewayClass",
            Kind::Gateway => "Gateway",
            Kind::HttpRoute => "HTTPRoute",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::Namespace => "Namespace",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Secret => "Secret",
            Kind::Backend => "Backend",
            Kind::DirectResponse => "DirectResponse",
            Kind::GatewayParameters => "GatewayParameters",
        }
    }

    /// The `apiVersion` we serve this kind's status under.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::GatewayClass | Kind::Gateway | Kind::HttpRoute | Kind::ReferenceGrant => {
                "gateway.networking.k8s.io/v1"
            }
            Kind::Namespace | Kind::Service | Kind::Secret => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::Backend | Kind::DirectResponse | Kind::GatewayParameters => {
                "gatehouse.dev/v1alpha1"
            }
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::GatewayClass | Kind::Namespace)
    }

    /// Looks a kind up by `apiVersion` and `kind`, as found in a manifest.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let k = match kind {
            "GatewayClass" => Kind::GatewayClass,
            "Gateway" => Kind::Gateway,
            "HTTPRoute" => Kind::HttpRoute,
            "ReferenceGrant" => Kind::ReferenceGrant,
            "Namespace" => Kind::Namespace,
            "Service" => Kind::Service,
            "EndpointSlice" => Kind::EndpointSlice,
            "Secret" => Kind::Secret,
            "Backend" => Kind::Backend,
            "DirectResponse" => Kind::DirectResponse,
            "GatewayParameters" => Kind::GatewayParameters,
            _ => return None,
        };
        (k.group() == group).then_some(k)
    }

    /// Parses the kind segment of an admin URL (`httproute`, `HTTPRoute`, ...).
    pub fn from_path_segment(segment: &str) -> Option<Kind> {
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| k.as_str().eq_ignore_ascii_case(segment))
    }
}

/// Every kind, in the order status is listed.
pub const ALL_KINDS: [Kind; 11] = [
    Kind::GatewayClass,
    Kind::Gateway,
    Kind::HttpRoute,
    Kind::ReferenceGrant,
    Kind::Namespace,
    Kind::Service,
    Kind::EndpointSlice,
    Kind::Secret,
    Kind::Backend,
    Kind::DirectResponse,
    Kind::GatewayParameters,
];

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Names one object: its kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectKey {
    /// The object's kind.
    pub kind: Kind,
    /// The namespace, or `""` for cluster-scoped objects.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(kind: Kind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One object of a kind Gatehouse understands.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// A GatewayClass.
    GatewayClass(GatewayClass),
    /// A Gateway.
    Gateway(Gateway),
    /// An HTTPRoute.
    HttpRoute(HttpRoute),
    /// A ReferenceGrant.
    ReferenceGrant(ReferenceGrant),
    /// A Namespace.
    Namespace(Namespace),
    /// A Service.
    Service(Service),
    /// An EndpointSlice.
    EndpointSlice(EndpointSlice),
    /// A Secret.
    Secret(Secret),
    /// A `gatehouse.dev` Backend.
    Backend(Backend),
    /// A `gatehouse.dev` DirectResponse.
    DirectResponse(DirectResponse),
    /// A `gatehouse.dev` GatewayParameters.
    GatewayParameters(GatewayParameters),
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::GatewayClass(_) => Kind::GatewayClass,
            Object::Gateway(_) => Kind::Gateway,
            Object::HttpRoute(_) => Kind::HttpRoute,
            Object::ReferenceGrant(_) => Kind::ReferenceGrant,
            Object::Namespace(_) => Kind::Namespace,
            Object::Service(_) => Kind::Service,
            Object::EndpointSlice(_) => Kind::EndpointSlice,
            Object::Secret(_) => Kind::Secret,
            Object::Backend(_) => Kind::Backend,
            Object::DirectResponse(_) => Kind::DirectResponse,
            Object::GatewayParameters(_) => Kind::GatewayParameters,
        }
    }

    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::GatewayClass(o) => &o.metadata,
            Object::Gateway(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::ReferenceGrant(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::Backend(o) => &o.metadata,
            Object::DirectResponse(o) => &o.metadata,
            Object::GatewayParameters(o) => &o.metadata,
        }
    }

    /// The object's metadata, mutably.
    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::GatewayClass(o) => &mut o.metadata,
            Object::Gateway(o) => &mut o.metadata,
            Object::HttpRoute(o) => &mut o.metadata,
            Object::ReferenceGrant(o) => &mut o.metadata,
            Object::Namespace(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::EndpointSlice(o) => &mut o.metadata,
            Object::Secret(o) => &mut o.metadata,
            Object::Backend(o) => &mut o.metadata,
            Object::DirectResponse(o) => &mut o.metadata,
            Object::GatewayParameters(o) => &mut o.metadata,
        }
    }

    /// The object's key.
    pub fn key(&self) -> ObjectKey {
        let (kind, namespace, name) = self.key_ref();
        ObjectKey::new(kind, namespace, name)
    }

    /// The parts of the object's key, borrowed: kind, namespace (empty for
    /// cluster-scoped kinds) and name.
    pub fn key_ref(&self) -> (Kind, &str, &str) {
        let meta = self.meta();
        let namespace = if self.kind().is_namespaced() {
            meta.namespace.as_deref().unwrap_or_default()
        } else {
            ""
        };
        (
            self.kind(),
            namespace,
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// Takes the `status` of the kinds Gatehouse writes status for, as
    /// JSON, leaving `None` behind (so status writes do not look like
    /// changes to the index).
    pub fn take_status(&mut self) -> Option<serde_json::Value> {
        let status = match self {
            Object::GatewayClass(o) => serde_json::to_value(o.status.take()?),
            Object::Gateway(o) => serde_json::to_value(o.status.take()?),
            Object::HttpRoute(o) => serde_json::to_value(o.status.take()?),
            _ => return None,
        };
        status.ok()
    }

    /// The part of the object whose change bumps `metadata.generation`
    /// (the spec, or the data for kinds without one), as JSON.
    pub fn generation_payload(&self) -> serde_json::Value {
        let payload = match self {
            Object::GatewayClass(o) => serde_json::to_value(&o.spec),
            Object::Gateway(o) => serde_json::to_value(&o.spec),
            Object::HttpRoute(o) => serde_json::to_value(&o.spec),
            Object::ReferenceGrant(o) => serde_json::to_value(&o.spec),
            Object::Namespace(o) => serde_json::to_value(&o.spec),
            Object::Service(o) => serde_json::to_value(&o.spec),
            Object::EndpointSlice(o) => serde_json::to_value((&o.endpoints, &o.ports)),
            Object::Secret(o) => serde_json::to_value((&o.data, &o.type_)),
            Object::Backend(o) => serde_json::to_value(&o.spec),
            Object::DirectResponse(o) => serde_json::to_value(&o.spec),
            Object::GatewayParameters(o) => serde_json::to_value(&o.spec),
        };
        payload.unwrap_or_default()
    }
}
