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

/// The Service annotation choosing how Gatehouse reaches it: `endpoints`
/// (the default: balance across ready endpoints itself) or `cluster-ip`
/// (hand the request to the Service IP, for a mesh sidecar to take over).
pub const UPSTREAM_ANNOTATION: &str = "gatehouse.dev/upstream";

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
    // East-west hand-off: send to the cluster IP and let a mesh sidecar in
    // the Gatehouse pod (Linkerd, Istio) balance and secure the hop.
    let hand_off = service
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(UPSTREAM_ANNOTATION))
        .map(String::as_str);
    match hand_off {
        None | Some("endpoints") => {}
        Some("cluster-ip") => {
            let cluster_ip = spec
                .and_then(|s| s.cluster_ip.as_deref())
                .filter(|ip| !ip.is_empty() && *ip != "None")
                .ok_or_else(|| {
                    Problem::new(
                        "UnsupportedValue",
                        format!("Service {namespace}/{name} asks for {UPSTREAM_ANNOTATION}: cluster-ip but has no cluster IP"),
                    )
                })?;
            let port = u16::try_from(port)
                .map_err(|_| Problem::new("UnsupportedValue", "port out of range"))?;
            return Ok(Arc::new(EndpointGroup::new(
                label,
                vec![authority(cluster_ip, port)?],
                protocol,
            )));
        }
        Some(other) => {
            return Err(Problem::new(
                "UnsupportedValue",
                format!(
                    "Service {namespace}/{name}: {UPSTREAM_ANNOTATION} {other:?} is not one of endpoints, cluster-ip"
                ),
            ));
        }
    }
    let port_name = service_port.name.as_deref().unwrap_or("");
    // With dual-stack Services, use the primary family's slices only, so
    // each pod is counted once.
    let family = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .map(String::as_str);
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for slice in index
        .endpoint_slices()
        .filter(|s| belongs_to(s, namespace, name))
        .filter(|s| family.is_none_or(|f| s.address_type == f))
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
            // Unset conditions mean ready and serving, as the EndpointSlice
            // API says.
            let conditions = endpoint.conditions.as_ref();
            let is_ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(is_ready);
            let is_terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            let bucket = if is_ready {
                &mut ready
            } else if serving && is_terminating {
                &mut terminating
            } else {
                continue;
            };
            for address in &endpoint.addresses {
                bucket.push(authority(address, target)?);
            }
        }
    }
    // As kube-proxy does: when no endpoint is ready, keep sending to the
    // ones still serving while they terminate rather than fail outright.
    let mut endpoints = if ready.is_empty() { terminating } else { ready };
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
