//! The Service that exposes each Gateway of our class, and the container
//! ports the Gatehouse pods listen on for it.
//!
//! Several Gateways may each want port 80, but every Gatehouse pod serves
//! all of them, so each (Gateway, listener port) pair gets a distinct
//! container port from a configured range, and the Gateway's Service maps
//! its listener port to that container port. The allocation lives in the
//! Services themselves (`targetPort`), so it survives restarts and every
//! replica reads the same one. Services live in Gatehouse's namespace (a
//! Service can only select pods of its own namespace), labelled with their
//! Gateway; ownerReferences cannot cross namespaces, so the leader deletes
//! Services whose Gateway is gone.
//!
//! [`plan`] is pure: Gateways and existing Services in, desired Services
//! and the port map out.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use gateway_api::gateways::Gateway;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::object::{Kind, ObjectKey};
use crate::policy::{ExternalTrafficPolicy, ServiceParameters};

/// Label naming the Gateway's namespace on its Service.
pub const GATEWAY_NAMESPACE_LABEL: &str = "gatehouse.dev/gateway-namespace";
/// Label naming the Gateway on its Service.
pub const GATEWAY_NAME_LABEL: &str = "gatehouse.dev/gateway-name";
/// Label marking Services Gatehouse manages.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value.
pub const MANAGED_BY: &str = "gatehouse";

/// Where Gateway Services go and what they select.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Gatehouse's own namespace.
    pub namespace: String,
    /// Labels selecting the Gatehouse pods.
    pub selector: BTreeMap<String, String>,
    /// Container ports to allocate from.
    pub port_range: RangeInclusive<u16>,
    /// The Service type (`LoadBalancer` by default).
    pub service_type: String,
}

/// (Gateway, listener port) → container port.
pub type PortMap = BTreeMap<(ObjectKey, u16), u16>;

/// What the Services should be.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// One Service per Gateway.
    pub services: Vec<Service>,
    /// The container port of every Gateway listener port.
    pub ports: PortMap,
    /// Existing managed Services whose Gateway is gone.
    pub stale: Vec<String>,
    /// Listener ports that found no free container port.
    pub exhausted: Vec<(ObjectKey, u16)>,
}

/// The Service name of a Gateway: `gw-<namespace>-<name>`, shortened with a
/// hash when longer than a DNS label allows.
pub fn service_name(gateway: &ObjectKey) -> String {
    let name = format!("gw-{}-{}", gateway.namespace, gateway.name);
    if name.len() <= 63 {
        return name;
    }
    // FNV-1a: stable across builds and platforms.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}", &name[..54].trim_end_matches('-'), hash as u32)
}

fn gateway_key(gw: &Gateway) -> ObjectKey {
    ObjectKey::new(
        Kind::Gateway,
        gw.metadata.namespace.clone().unwrap_or_default(),
        gw.metadata.name.clone().unwrap_or_default(),
    )
}

fn owner_of(svc: &Service) -> Option<ObjectKey> {
    let labels = svc.metadata.labels.as_ref()?;
    if labels.get(MANAGED_BY_LABEL).map(String::as_str) != Some(MANAGED_BY) {
        return None;
    }
    Some(ObjectKey::new(
        Kind::Gateway,
        labels.get(GATEWAY_NAMESPACE_LABEL)?.clone(),
        labels.get(GATEWAY_NAME_LABEL)?.clone(),
    ))
}

/// The allocations recorded in existing managed Services.
pub fn allocated(existing: &[&Service]) -> PortMap {
    let mut ports = PortMap::new();
    for svc in existing {
        let Some(owner) = owner_of(svc) else { continue };
        for port in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            let (Ok(listener), Some(IntOrString::Int(target))) =
                (u16::try_from(port.port), &port.target_port)
            else {
                continue;
            };
            if let Ok(target) = u16::try_from(*target) {
                ports.insert((owner.clone(), listener), target);
            }
        }
    }
    ports
}

/// Plans the Services for `gateways` (those of our class), keeping every
/// allocation recorded in `existing` Services.
pub fn plan(
    gateways: &[(&Gateway, ServiceParameters)],
    existing: &[&Service],
    config: &ServiceConfig,
) -> Plan {
    let mut plan = Plan {
        ports: allocated(existing),
        ..Plan::default()
    };
    // Every container port in use, including those of stale Services until
    // they are deleted.
    let mut used: BTreeSet<u16> = plan.ports.values().copied().collect();
    let wanted: BTreeSet<ObjectKey> = gateways.iter().map(|(gw, _)| gateway_key(gw)).collect();
    plan.ports.retain(|(gw, _), _| wanted.contains(gw));
    // Oldest Gateways allocate first, so a restart allocates the same way.
    let mut ordered: Vec<&(&Gateway, ServiceParameters)> = gateways.iter().collect();
    ordered.sort_by_key(|(gw, _)| (gw.metadata.creation_timestamp.clone(), gateway_key(gw)));
    for (gw, params) in ordered {
        let key = gateway_key(gw);
        let listener_ports: BTreeSet<u16> = gw
            .spec
            .listeners
            .iter()
            .filter_map(|l| u16::try_from(l.port).ok())
            .collect();
        plan.ports
            .retain(|(g, p), _| *g != key || listener_ports.contains(p));
        let mut ports = Vec::new();
        for listener_port in listener_ports {
            let target = match plan.ports.get(&(key.clone(), listener_port)) {
                Some(t) => Some(*t),
                None => {
                    let free = config.port_range.clone().find(|p| !used.contains(p));
                    if let Some(p) = free {
                        used.insert(p);
                        plan.ports.insert((key.clone(), listener_port), p);
                    }
                    free
                }
            };
            let Some(target) = target else {
                plan.exhausted.push((key.clone(), listener_port));
                continue;
            };
            ports.push(ServicePort {
                name: Some(format!("port-{listener_port}")),
                port: i32::from(listener_port),
                target_port: Some(IntOrString::Int(i32::from(target))),
                protocol: Some("TCP".into()),
                ..Default::default()
            });
        }
        plan.services
            .push(service_for(gw, &key, ports, params, config));
    }
    plan.stale = existing
        .iter()
        .filter(|svc| owner_of(svc).is_some_and(|o| !wanted.contains(&o)))
        .filter_map(|svc| svc.metadata.name.clone())
        .collect();
    plan
}

fn service_for(
    gw: &Gateway,
    key: &ObjectKey,
    ports: Vec<ServicePort>,
    params: &ServiceParameters,
    config: &ServiceConfig,
) -> Service {
    // Parameters first, then the Gateway's own infrastructure labels and
    // annotations ("SHOULD be propagated"), then our own labels, which win.
    let infrastructure = gw.spec.infrastructure.as_ref();
    let mut labels = params.labels.clone();
    labels.extend(
        infrastructure
            .and_then(|i| i.labels.clone())
            .unwrap_or_default(),
    );
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels.insert(GATEWAY_NAMESPACE_LABEL.into(), key.namespace.clone());
    labels.insert(GATEWAY_NAME_LABEL.into(), key.name.clone());
    let mut annotations = params.annotations.clone();
    annotations.extend(
        infrastructure
            .and_then(|i| i.annotations.clone())
            .unwrap_or_default(),
    );
    let service_type = params
        .type_
        .map_or_else(|| config.service_type.clone(), |t| t.as_str().to_string());
    let external = matches!(service_type.as_str(), "LoadBalancer" | "NodePort");
    let external_traffic_policy = params
        .external_traffic_policy
        .filter(|_| external)
        .map(|p| match p {
            ExternalTrafficPolicy::Cluster => "Cluster".to_string(),
            ExternalTrafficPolicy::Local => "Local".to_string(),
        });
    // Static addresses become the load balancer's requested IP.
    let requested_ip = gw
        .spec
        .addresses
        .iter()
        .flatten()
        .find(|a| a.r#type.as_deref().unwrap_or("IPAddress") == "IPAddress")
        .and_then(|a| a.value.clone());
    Service {
        metadata: ObjectMeta {
            name: Some(service_name(key)),
            namespace: Some(config.namespace.clone()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            load_balancer_ip: requested_ip.filter(|_| service_type == "LoadBalancer"),
            type_: Some(service_type),
            selector: Some(config.selector.clone()),
            ports: Some(ports),
            external_traffic_policy,
            ..Default::default()
        }),
        status: None,
    }
}

/// The Service parameters of a Gateway: its class's GatewayParameters,
/// overridden by its own `spec.infrastructure.parametersRef`.
pub fn parameters_for(index: &crate::index::Index, gw: &Gateway) -> ServiceParameters {
    let lookup = |namespace: Option<&str>, name: &str| {
        index
            .gateway_parameters(namespace.unwrap_or_default(), name)
            .and_then(|p| p.spec.service.clone())
            .unwrap_or_default()
    };
    let class = index
        .gateway_class("", &gw.spec.gateway_class_name)
        .and_then(|c| c.spec.parameters_ref.as_ref())
        .map(|p| lookup(p.namespace.as_deref(), &p.name))
        .unwrap_or_default();
    let own = gw
        .spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
        .map(|p| lookup(gw.metadata.namespace.as_deref(), &p.name))
        .unwrap_or_default();
    class.overridden_by(&own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::gateways::{GatewayListeners, GatewaySpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn mk_gateway(ns: &str, name: &str, created: i64, ports: &[i32]) -> Gateway {
        Gateway {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(created).unwrap(),
                )),
                ..Default::default()
            },
            spec: GatewaySpec {
                gateway_class_name: "gatehouse".into(),
                listeners: ports
                    .iter()
                    .map(|p| GatewayListeners {
                        name: format!("l{p}"),
                        port: *p,
                        protocol: "HTTP".into(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            status: None,
        }
    }

    fn mk_config() -> ServiceConfig {
        ServiceConfig {
            namespace: "gatehouse".into(),
            selector: BTreeMap::from([("app.kubernetes.io/name".into(), "gatehouse".into())]),
            port_range: 10000..=10003,
            service_type: "LoadBalancer".into(),
        }
    }

    fn none() -> ServiceParameters {
        ServiceParameters::default()
    }

    #[test]
    fn parameters_and_infrastructure_shape_the_service() {
        let mut a = mk_gateway("web", "public", 1, &[80]);
        a.spec.infrastructure = Some(gateway_api::gateways::GatewayInfrastructure {
            labels: Some(BTreeMap::from([("team".into(), "web".into())])),
            annotations: Some(BTreeMap::from([("note".into(), "from-gateway".into())])),
            parameters_ref: None,
        });
        let params = ServiceParameters {
            type_: Some(crate::policy::ServiceType::NodePort),
            annotations: BTreeMap::from([
                ("note".into(), "from-params".into()),
                ("lb".into(), "internal".into()),
            ]),
            labels: BTreeMap::new(),
            external_traffic_policy: Some(ExternalTrafficPolicy::Local),
        };
        let plan = plan(&[(&a, params)], &[], &mk_config());
        let svc = &plan.services[0];
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("NodePort"));
        assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
        let annotations = svc.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations["note"], "from-gateway");
        assert_eq!(annotations["lb"], "internal");
        assert_eq!(svc.metadata.labels.as_ref().unwrap()["team"], "web");
    }

    fn gw(ns: &str, name: &str) -> ObjectKey {
        ObjectKey::new(Kind::Gateway, ns, name)
    }

    #[test]
    fn two_gateways_on_port_80_get_distinct_container_ports() {
        let a = mk_gateway("web", "public", 1, &[80, 443]);
        let b = mk_gateway("web", "internal", 2, &[80]);
        let plan = plan(&[(&b, none()), (&a, none())], &[], &mk_config());
        assert_eq!(plan.ports[&(gw("web", "public"), 80)], 10000);
        assert_eq!(plan.ports[&(gw("web", "public"), 443)], 10001);
        assert_eq!(plan.ports[&(gw("web", "internal"), 80)], 10002);
        assert_eq!(plan.services.len(), 2);
        let svc = &plan.services[0];
        assert_eq!(svc.metadata.name.as_deref(), Some("gw-web-public"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some("gatehouse"));
        let spec = svc.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        let ports = spec.ports.as_ref().unwrap();
        assert_eq!(ports[0].port, 80);
        assert_eq!(ports[0].target_port, Some(IntOrString::Int(10000)));
    }

    #[test]
    fn allocations_survive_restarts_and_other_gateways_coming_and_going() {
        let a = mk_gateway("web", "public", 1, &[80]);
        let b = mk_gateway("web", "internal", 2, &[80]);
        let first = plan(&[(&a, none()), (&b, none())], &[], &mk_config());
        // A restart: the same Services exist; a new older Gateway appears.
        let existing: Vec<&Service> = first.services.iter().collect();
        let c = mk_gateway("aaa", "first", 0, &[80]);
        let second = plan(
            &[(&c, none()), (&a, none()), (&b, none())],
            &existing,
            &mk_config(),
        );
        assert_eq!(second.ports[&(gw("web", "public"), 80)], 10000);
        assert_eq!(second.ports[&(gw("web", "internal"), 80)], 10001);
        assert_eq!(second.ports[&(gw("aaa", "first"), 80)], 10002);
        // Gateway removed: its Service is stale and its port is freed.
        let existing: Vec<&Service> = second.services.iter().collect();
        let third = plan(&[(&c, none()), (&b, none())], &existing, &mk_config());
        assert_eq!(third.stale, vec!["gw-web-public".to_string()]);
        assert!(!third.ports.contains_key(&(gw("web", "public"), 80)));
        assert_eq!(third.ports[&(gw("web", "internal"), 80)], 10001);
    }

    #[test]
    fn an_exhausted_range_is_reported() {
        let a = mk_gateway("web", "a", 1, &[1, 2, 3, 4, 5]);
        let plan = plan(&[(&a, none())], &[], &mk_config());
        assert_eq!(plan.exhausted, vec![(gw("web", "a"), 5)]);
    }

    #[test]
    fn long_names_are_shortened_stably() {
        let key = gw(&"n".repeat(40), &"g".repeat(40));
        let name = service_name(&key);
        assert!(name.len() <= 63, "{name}");
        assert_eq!(name, service_name(&key));
    }
}
