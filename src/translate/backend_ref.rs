//! backendRefs: Services (through their EndpointSlices), `gatehouse.dev`
//! Backends, and the ReferenceGrants that let a route reach across
//! namespaces.

use std::sync::Arc;

use http::uri::Authority;
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::status::Problem;
use crate::index::Index;
use crate::object::{GATEHOUSE_GROUP, Kind};
use crate::policy::{Backend, BackendAppProtocol};
use crate::routing::backend::{EndpointGroup, UpstreamProtocol};

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Whether an object of `from` kind in `from_ns` may refer to `to_name` of
/// `to` kind in `to_ns`: always within a namespace, otherwise only when a
/// ReferenceGrant in the target namespace allows it.
pub(super) fn reference_permitted(
    index: &Index,
    from: Kind,
    from_ns: &str,
    to: Kind,
    to_ns: &str,
    to_name: &str,
) -> bool {
    if from_ns == to_ns {
        return true;
    }
    index
        .reference_grants()
        .filter(|g| g.metadata.namespace.as_deref() == Some(to_ns))
        .any(|grant| {
            let from_ok = grant.spec.from.iter().any(|f| {
                f.group == from.group() && f.kind == from.as_str() && f.namespace == from_ns
            });
            let to_ok = grant.spec.to.iter().any(|t| {
                t.group == to.group()
                    && t.kind == to.as_str()
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to_name)
            });
            from_ok && to_ok
        })
}

/// A backend reference as the route gives it (defaults applied).
#[derive(Clone, Copy, Debug)]
pub(super) struct BackendRefInput<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub port: Option<i32>,
}

/// Resolves a backend reference made by an HTTPRoute in `route_ns`.
pub(super) fn resolve(
    index: &Index,
    route_ns: &str,
    r: BackendRefInput<'_>,
) -> Result<Arc<EndpointGroup>, Problem> {
    let namespace = r.namespace.filter(|n| !n.is_empty()).unwrap_or(route_ns);
    let to = match (r.group, r.kind) {
        ("", "Service") => Kind::Service,
        (GATEHOUSE_GROUP, "Backend") => Kind::Backend,
        (group, kind) => {
            return Err(Problem::new(
                "InvalidKind",
                format!(
                    "backendRef kind {group}/{kind} is not supported; use Service or gatehouse.dev/Backend"
                ),
            ));
        }
    };
    if !reference_permitted(index, Kind::HttpRoute, route_ns, to, namespace, r.name) {
        return Err(Problem::new(
            "RefNotPermitted",
            format!(
                "{} {namespace}/{} is in another namespace and no ReferenceGrant allows it",
                to, r.name
            ),
        ));
    }
    match to {
        Kind::Backend => match index.backend(namespace, r.name) {
            Some(backend) => backend_group(namespace, backend, r.port),
            None => Err(Problem::new(
                "BackendNotFound",
                format!("Backend {namespace}/{} not found", r.name),
            )),
        },
        _ => {
            let Some(service) = index.service(namespace, r.name) else {
                return Err(Problem::new(
                    "BackendNotFound",
                    format!("Service {namespace}/{} not found", r.name),
                ));
            };
            let Some(port) = r.port else {
                return Err(Problem::new(
                    "BackendNotFound",
                    format!("backendRef to Service {namespace}/{} needs a port", r.name),
                ));
            };
            service_group(index, namespace, service, port)
        }
    }
}

fn backend_group(
    namespace: &str,
    backend: &Backend,
    port: Option<i32>,
) -> Result<Arc<EndpointGroup>, Problem> {
    let name = backend.metadata.name.as_deref().unwrap_or_default();
    let endpoints = backend
        .spec
        .endpoints
        .iter()
        .filter(|e| port.is_none_or(|p| i32::from(e.port) == p))
        .map(|e| authority(&e.host, e.port))
        .collect::<Result<Vec<_>, _>>()?;
    if endpoints.is_empty() && !backend.spec.endpoints.is_empty() {
        return Err(Problem::new(
            "BackendNotFound",
            format!(
                "Backend {namespace}/{name} has no endpoint on port {}",
                port.unwrap_or_default()
            ),
        ));
    }
    let protocol = match backend.spec.app_protocol {
        Some(BackendAppProtocol::H2c) => UpstreamProtocol::H2c,
        Some(BackendAppProtocol::Http) | None => UpstreamProtocol::Http1,
    };
    let label = match port {
        Some(p) => format!("{namespace}/{name}:{p}"),
        None => format!("{namespace}/{name}"),
    };
    Ok(Arc::new(EndpointGroup::new(
        label.into(),
        endpoints,
        protocol,
    )))
}

fn authority(host: &str, port: u16) -> Result<Authority, Problem> {
    let text = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Authority::try_from(text.as_str())
        .map_err(|e| Problem::new("UnsupportedValue", format!("endpoint {text:?}: {e}")))
}

fn service_group(
    index: &Index,
    namespace: &str,
    service: &Service,
    port: i32,
) -> Result<Arc<EndpointGroup>, Problem> {
    let name = service.metadata.name.as_deref().unwrap_or_default();
    let spec = service.spec.as_ref();
    let service_port: Option<&ServicePort> = spec
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.port == port));
    let Some(service_port) = service_port else {
        return Err(Problem::new(
            "BackendNotFound",
            format!("Service {namespace}/{name} has no port {port}"),
        ));
    };
    let protocol = match service_port.app_protocol.as_deref() {
        Some("kubernetes.io/h2c") => UpstreamProtocol::H2c,
        None | Some("http" | "kubernetes.io/ws" | "HTTP") => UpstreamProtocol::Http1,
        Some(other) => {
            return Err(Problem::new(
                "UnsupportedProtocol",
                format!(
                    "Service {namespace}/{name} port {port} has appProtocol {other}, which Gatehouse does not speak"
                ),
            ));
        }
    };
    let label: Arc<str> = format!("{namespace}/{name}:{port}").into();
    if let Some(external) = spec
        .filter(|s| s.type_.as_deref() == Some("ExternalName"))
        .and_then(|s| s.external_name.as_deref())
    {
        let port = u16::try_from(port)
            .map_err(|_| Problem::new("UnsupportedValue", "port out of range"))?;
        return Ok(Arc::new(EndpointGroup::new(
            label,
            vec![authority(external, port)?],
            protocol,
        )));
    }
    let port_name = service_port.name.as_deref().unwrap_or("");
    let mut endpoints = Vec::new();
    for slice in index
        .endpoint_slices()
        .filter(|s| belongs_to(s, namespace, name))
    {
        let Some(target) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // "ready" unset means ready, as the EndpointSlice API says.
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            for address in &endpoint.addresses {
                endpoints.push(authority(address, target)?);
            }
        }
    }
    endpoints.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    endpoints.dedup();
    Ok(Arc::new(EndpointGroup::new(label, endpoints, protocol)))
}

fn belongs_to(slice: &EndpointSlice, namespace: &str, service: &str) -> bool {
    slice.metadata.namespace.as_deref() == Some(namespace)
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .is_some_and(|s| s == service)
}
