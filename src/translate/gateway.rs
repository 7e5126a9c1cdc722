//! GatewayClasses, Gateways and their listeners: acceptance, TLS
//! certificates, conflicts, and their status (the table built from them is
//! in `table`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use gateway_api::gatewayclasses::{GatewayClass, GatewayClassStatus};
use gateway_api::gateways::{
    Gateway, GatewayAddresses, GatewayListeners, GatewayListenersAllowedRoutes,
    GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTls, GatewayListenersTlsMode,
    GatewayStatus, GatewayStatusAddresses, GatewayStatusListeners,
    GatewayStatusListenersSupportedKinds,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::jiff::Timestamp;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TranslateConfig;
use super::backend_ref::reference_permitted;
use super::status::{ObjectStatus, Problem, Stamp, StatusSet};
use crate::index::Index;
use crate::object::{GATEWAY_GROUP, Kind, ObjectKey};
use crate::routing::host::{HostMap, host_matches};
use crate::routing::{Certificate, ListenerProtocol, RouteEntry};

/// Why a parametersRef does not resolve to a `gatehouse.dev`
/// GatewayParameters, if it does not. A GatewayClass must name the
/// namespace; a Gateway's reference is local to its namespace.
pub(super) fn parameters_problem(
    index: &Index,
    group: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<String> {
    if group != crate::object::GATEHOUSE_GROUP || kind != "GatewayParameters" {
        return Some(format!(
            "parametersRef {} {name} is not supported; use gatehouse.dev/GatewayParameters",
            group_kind(group, kind)
        ));
    }
    let Some(namespace) = namespace.filter(|n| !n.is_empty()) else {
        return Some(format!(
            "parametersRef to GatewayParameters {name} needs a namespace"
        ));
    };
    match index.gateway_parameters(namespace, name) {
        Some(_) => None,
        None => Some(format!("GatewayParameters {namespace}/{name} not found")),
    }
}

/// Accepts the GatewayClasses naming our controller; returns their names.
pub(super) fn accept_classes(
    index: &Index,
    config: &TranslateConfig,
    stamp: &Stamp,
    status: &mut StatusSet,
) -> BTreeSet<String> {
    let mut accepted = BTreeSet::new();
    for class in index.gateway_classes() {
        let GatewayClass { metadata, spec, .. } = class;
        if spec.controller_name != config.controller_name {
            continue;
        }
        let name = metadata.name.clone().unwrap_or_default();
        let generation = metadata.generation;
        let problem = spec.parameters_ref.as_ref().and_then(|p| {
            parameters_problem(index, &p.group, &p.kind, p.namespace.as_deref(), &p.name)
        });
        let condition = match problem {
            Some(message) => {
                stamp.condition("Accepted", false, "InvalidParameters", message, generation)
            }
            None => {
                accepted.insert(name.clone());
                stamp.condition(
                    "Accepted",
                    true,
                    "Accepted",
                    "Accepted by Gatehouse",
                    generation,
                )
            }
        };
        status.insert(
            ObjectKey::new(Kind::GatewayClass, "", name),
            generation,
            ObjectStatus::GatewayClass(GatewayClassStatus {
                conditions: Some(vec![condition]),
                supported_features: None,
            }),
        );
    }
    accepted
}

/// `kind` for the core group, `group/kind` otherwise, for messages.
fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{group}/{kind}")
    }
}

/// Which namespaces may attach routes to a listener.
#[derive(Clone, Debug)]
pub(super) enum AllowedNamespaces {
    Same,
    All,
    Selector(LabelSelector),
}

/// One listener, validated, collecting the routes attached to it.
#[derive(Debug)]
pub(super) struct ListenerModel {
    pub name: String,
    pub port: u16,
    pub protocol: Option<ListenerProtocol>,
    pub hostname: Option<String>,
    pub allowed_namespaces: AllowedNamespaces,
    pub allows_http_route: bool,
    pub supported_kinds: Vec<GatewayStatusListenersSupportedKinds>,
    /// Why the listener is not accepted.
    pub not_accepted: Option<Problem>,
    /// Why its references do not resolve.
    pub unresolved: Option<Problem>,
    /// Why it conflicts with another listener.
    pub conflict: Option<Problem>,
    /// The other HTTPS listeners on the port whose hostnames overlap this
    /// one's (reported, not fatal).
    pub overlapping_tls: Vec<String>,
    pub certificate: Option<Certificate>,
    pub binds: Vec<SocketAddr>,
    pub attached_routes: i32,
    pub hosts: HostMap<Vec<Arc<RouteEntry>>>,
    /// Why the listener is not bound yet, in a cluster.
    pub pending: Option<String>,
}

impl ListenerModel {
    /// Whether the listener itself is valid: accepted, not conflicted, and
    /// with every reference resolved.
    pub fn valid(&self) -> bool {
        self.not_accepted.is_none() && self.unresolved.is_none() && self.conflict.is_none()
    }

    /// Whether traffic is served through this listener: it is valid and
    /// bound to at least one address (none when its Gateway is rejected or
    /// none of the Gateway's addresses can be used).
    pub fn programmed(&self) -> bool {
        self.valid() && !self.binds.is_empty()
    }
}

/// One Gateway of an accepted class.
#[derive(Debug)]
pub(super) struct GatewayModel {
    pub key: ObjectKey,
    pub generation: Option<i64>,
    pub created: Timestamp,
    /// Why the Gateway is not accepted (an address type or a field we do not
    /// support). A rejected Gateway binds nothing, so it serves no traffic
    /// and holds no port.
    pub rejected: Option<Problem>,
    /// Requested addresses that cannot be used; the others are still bound.
    pub unusable_address: Option<Problem>,
    pub listeners: Vec<ListenerModel>,
}

/// Builds the model of every Gateway whose class we accepted, with listener
/// conflicts (within a Gateway, and for the same address and port across
/// Gateways, where the oldest Gateway keeps the port) already resolved.
pub(super) fn build_gateways(
    index: &Index,
    config: &TranslateConfig,
    classes: &BTreeSet<String>,
    _stamp: &Stamp,
) -> Vec<GatewayModel> {
    let mut gateways: Vec<GatewayModel> = index
        .gateways()
        .filter(|gw| classes.contains(&gw.spec.gateway_class_name))
        .map(|gw| gateway_model(index, config, gw))
        .collect();
    gateways.sort_by(|a, b| a.created.cmp(&b.created).then(a.key.cmp(&b.key)));
    for gw in &mut gateways {
        mark_conflicts_within(&mut gw.listeners);
        mark_overlapping_tls(&mut gw.listeners);
    }
    let mut owners: BTreeMap<SocketAddr, ObjectKey> = BTreeMap::new();
    for gw in &mut gateways {
        for listener in gw.listeners.iter_mut().filter(|l| l.not_accepted.is_none()) {
            for bind in &listener.binds {
                match owners.get(bind) {
                    Some(owner) if *owner != gw.key => {
                        listener.not_accepted = Some(Problem {
                            reason: "PortUnavailable",
                            message: format!(
                                "{bind} is already used by Gateway {}/{}",
                                owner.namespace, owner.name
                            ),
                        });
                    }
                    _ => {
                        owners.insert(*bind, gw.key.clone());
                    }
                }
            }
        }
    }
    gateways
}

fn gateway_model(index: &Index, config: &TranslateConfig, gw: &Gateway) -> GatewayModel {
    let Gateway { metadata, spec, .. } = gw;
    let key = ObjectKey::new(
        Kind::Gateway,
        metadata.namespace.clone().unwrap_or_default(),
        metadata.name.clone().unwrap_or_default(),
    );
    let in_cluster = config.listener_ports.is_some();
    let mut unsupported = Vec::new();
    // In a cluster, infrastructure labels and annotations go to the
    // Gateway's Service; standalone there is nothing to put them on.
    if spec.infrastructure.is_some() && !in_cluster {
        unsupported.push("spec.infrastructure is not supported in standalone mode".to_string());
    }
    let invalid_parameters = spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
        .and_then(|p| parameters_problem(index, &p.group, &p.kind, Some(&key.namespace), &p.name));
    if spec.tls.is_some() {
        unsupported.push(
            "spec.tls (frontend client validation, backend client certificate) is not supported"
                .to_string(),
        );
    }
    if spec.allowed_listeners.is_some() {
        unsupported.push("spec.allowedListeners (ListenerSets) is not supported".to_string());
    }
    let requested = spec.addresses.as_deref().unwrap_or_default();
    let mut bind_ips: Vec<IpAddr> = Vec::new();
    let mut unsupported_types = Vec::new();
    let mut unusable = Vec::new();
    for address in requested {
        let GatewayAddresses { r#type, value } = address;
        let kind = r#type.as_deref().unwrap_or("IPAddress");
        let value = value.as_deref().unwrap_or("");
        match (kind, value.parse::<IpAddr>()) {
            // "When a value is unspecified, an implementation SHOULD
            // automatically assign an address matching the requested type if
            // possible."
            ("IPAddress", _) if value.is_empty() => bind_ips.push(config.default_bind),
            ("IPAddress", Ok(ip)) => bind_ips.push(ip),
            ("IPAddress", Err(_)) => unusable.push(format!("{value:?} is not an IP address")),
            (other, _) => unsupported_types.push(format!(
                "address type {other} is not supported; use IPAddress"
            )),
        }
    }
    // In a cluster, requested addresses are the Service's to get (checked
    // against the Service later); the pods bind the default address.
    if requested.is_empty() || in_cluster {
        bind_ips.clear();
        bind_ips.push(config.default_bind);
        unusable.clear();
    }
    bind_ips.sort();
    bind_ips.dedup();
    let rejected = if let Some(message) = invalid_parameters {
        Some(Problem::new("InvalidParameters", message))
    } else if !unsupported_types.is_empty() {
        Some(Problem::new(
            "UnsupportedAddress",
            unsupported_types.join("; "),
        ))
    } else if !unsupported.is_empty() {
        Some(Problem::new("UnsupportedValue", unsupported.join("; ")))
    } else {
        None
    };
    if rejected.is_some() {
        bind_ips.clear();
    }
    let unusable_address =
        (!unusable.is_empty()).then(|| Problem::new("AddressNotUsable", unusable.join("; ")));
    let namespace = key.namespace.clone();
    let listeners = spec
        .listeners
        .iter()
        .map(|l| {
            let mut model = listener_model(index, &namespace, l, &bind_ips);
            if let Some(ports) = &config.listener_ports {
                match ports.get(&(key.clone(), model.port)) {
                    Some(container) => {
                        for bind in &mut model.binds {
                            bind.set_port(*container);
                        }
                    }
                    None => {
                        model.binds.clear();
                        model.pending = Some(
                            "waiting for a container port: the leader records it in the Gateway's Service"
                                .to_string(),
                        );
                    }
                }
            }
            model
        })
        .collect();
    GatewayModel {
        key,
        generation: metadata.generation,
        created: metadata
            .creation_timestamp
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        rejected,
        unusable_address,
        listeners,
    }
}

fn listener_model(
    index: &Index,
    gw_namespace: &str,
    listener: &GatewayListeners,
    bind_ips: &[IpAddr],
) -> ListenerModel {
    let GatewayListeners {
        allowed_routes,
        hostname,
        name,
        port,
        protocol,
        tls,
    } = listener;
    let mut model = ListenerModel {
        name: name.clone(),
        port: 0,
        protocol: None,
        hostname: hostname.clone().filter(|h| !h.is_empty()),
        allowed_namespaces: AllowedNamespaces::Same,
        allows_http_route: false,
        supported_kinds: Vec::new(),
        not_accepted: None,
        unresolved: None,
        conflict: None,
        overlapping_tls: Vec::new(),
        certificate: None,
        binds: Vec::new(),
        pending: None,
        attached_routes: 0,
        hosts: HostMap::default(),
    };
    match u16::try_from(*port) {
        Ok(p) if p > 0 => model.port = p,
        _ => {
            model.not_accepted = Some(Problem {
                reason: "PortUnavailable",
                message: format!("port {port} is out of range"),
            })
        }
    }
    model.binds = bind_ips
        .iter()
        .map(|ip| SocketAddr::new(*ip, model.port))
        .collect();
    model.protocol = match protocol.as_str() {
        "HTTP" => Some(ListenerProtocol::Http),
        "HTTPS" => Some(ListenerProtocol::Https),
        other => {
            model.not_accepted = Some(Problem {
                reason: "UnsupportedProtocol",
                message: format!("protocol {other} is not supported; use HTTP or HTTPS"),
            });
            None
        }
    };
    allowed_routes_model(allowed_routes.as_ref(), &mut model);
    match (model.protocol, tls) {
        (Some(ListenerProtocol::Https), Some(tls)) => {
            tls_model(index, gw_namespace, tls, &mut model);
        }
        (Some(ListenerProtocol::Https), None) => {
            model.not_accepted = Some(Problem {
                reason: "Invalid",
                message: "an HTTPS listener needs tls.certificateRefs".into(),
            });
        }
        (Some(ListenerProtocol::Http), Some(_)) => {
            model.not_accepted = Some(Problem {
                reason: "Invalid",
                message: "tls must not be set on an HTTP listener".into(),
            });
        }
        _ => {}
    }
    model
}

fn allowed_routes_model(
    allowed: Option<&GatewayListenersAllowedRoutes>,
    model: &mut ListenerModel,
) {
    let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
    model.allowed_namespaces = match namespaces.and_then(|n| n.from.as_ref()) {
        Some(GatewayListenersAllowedRoutesNamespacesFrom::All) => AllowedNamespaces::All,
        Some(GatewayListenersAllowedRoutesNamespacesFrom::Selector) => {
            let selector = namespaces.and_then(|n| n.selector.as_ref());
            AllowedNamespaces::Selector(LabelSelector {
                match_labels: selector.and_then(|s| s.match_labels.clone()),
                match_expressions: selector.and_then(|s| {
                    s.match_expressions.as_ref().map(|exprs| {
                        exprs
                            .iter()
                            .map(|e| k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement {
                                key: e.key.clone(),
                                operator: e.operator.clone(),
                                values: e.values.clone(),
                            })
                            .collect()
                    })
                }),
            })
        }
        Some(GatewayListenersAllowedRoutesNamespacesFrom::Same) | None => AllowedNamespaces::Same,
    };
    let http_route_kind = || GatewayStatusListenersSupportedKinds {
        group: Some(GATEWAY_GROUP.into()),
        kind: "HTTPRoute".into(),
    };
    match allowed
        .and_then(|a| a.kinds.as_ref())
        .filter(|k| !k.is_empty())
    {
        None => {
            if model.protocol.is_some() {
                model.allows_http_route = true;
                model.supported_kinds.push(http_route_kind());
            }
        }
        Some(kinds) => {
            let mut invalid = Vec::new();
            for k in kinds {
                let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
                // "A RouteGroupKind MUST correspond to kinds of Routes that are
                // compatible with the application protocol specified in the
                // Listener's Protocol field."
                let http = model.protocol.is_some();
                if http && group == GATEWAY_GROUP && k.kind == "HTTPRoute" {
                    if !model.allows_http_route {
                        model.allows_http_route = true;
                        model.supported_kinds.push(http_route_kind());
                    }
                } else {
                    invalid.push(format!("{group}/{}", k.kind));
                }
            }
            if !invalid.is_empty() {
                model.unresolved = Some(Problem {
                    reason: "InvalidRouteKinds",
                    message: format!("route kinds not supported: {}", invalid.join(", ")),
                });
            }
        }
    }
}

fn tls_model(
    index: &Index,
    gw_namespace: &str,
    tls: &GatewayListenersTls,
    model: &mut ListenerModel,
) {
    let GatewayListenersTls {
        certificate_refs,
        mode,
        options,
    } = tls;
    if matches!(mode, Some(GatewayListenersTlsMode::Passthrough)) {
        model.not_accepted = Some(Problem {
            reason: "UnsupportedProtocol",
            message: "TLS mode Passthrough is not supported on HTTPS listeners".into(),
        });
        return;
    }
    if options.as_ref().is_some_and(|o| !o.is_empty()) {
        model.not_accepted = Some(Problem {
            reason: "UnsupportedValue",
            message: "tls.options are not supported".into(),
        });
        return;
    }
    let refs = certificate_refs.as_deref().unwrap_or_default();
    let Some(cert_ref) = refs.first() else {
        model.unresolved = Some(Problem {
            reason: "InvalidCertificateRef",
            message: "no certificateRefs".into(),
        });
        return;
    };
    if refs.len() > 1 {
        model.not_accepted = Some(Problem {
            reason: "UnsupportedValue",
            message: "only one certificateRef per listener is supported".into(),
        });
        return;
    }
    let group = cert_ref.group.as_deref().unwrap_or("");
    let kind = cert_ref.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        model.unresolved = Some(Problem {
            reason: "InvalidCertificateRef",
            message: format!(
                "certificateRef to {} is not supported; use a Secret",
                group_kind(group, kind)
            ),
        });
        return;
    }
    let namespace = cert_ref.namespace.as_deref().unwrap_or(gw_namespace);
    if !reference_permitted(
        index,
        Kind::Gateway,
        gw_namespace,
        Kind::Secret,
        namespace,
        &cert_ref.name,
    ) {
        model.unresolved = Some(Problem {
            reason: "RefNotPermitted",
            message: format!(
                "Secret {namespace}/{} is in another namespace and no ReferenceGrant allows it",
                cert_ref.name
            ),
        });
        return;
    }
    let source = ObjectKey::new(Kind::Secret, namespace, cert_ref.name.clone());
    match index.secret(namespace, &cert_ref.name) {
        None => {
            model.unresolved = Some(Problem {
                reason: "InvalidCertificateRef",
                message: format!("Secret {namespace}/{} not found", cert_ref.name),
            });
        }
        Some(secret) => match certified_key(secret) {
            Ok(key) => {
                model.certificate = Some(Certificate {
                    source,
                    key: Arc::new(key),
                })
            }
            Err(message) => {
                model.unresolved = Some(Problem {
                    reason: "InvalidCertificateRef",
                    message: format!("Secret {namespace}/{}: {message}", cert_ref.name),
                });
            }
        },
    }
}

/// Parses a `kubernetes.io/tls` Secret into a rustls certificate and key.
fn certified_key(secret: &k8s_openapi::api::core::v1::Secret) -> Result<CertifiedKey, String> {
    let data = secret.data.as_ref();
    let field = |name: &str| {
        data.and_then(|d| d.get(name))
            .map(|b| b.0.as_slice())
            .ok_or_else(|| format!("missing {name}"))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(field("tls.crt")?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.crt is not valid PEM: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(field("tls.key")?)
        .map_err(|e| format!("tls.key is not a valid PEM private key: {e}"))?;
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unsupported private key: {e}"))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .map_err(|e| format!("tls.key does not match tls.crt: {e}"))?;
    Ok(certified)
}

/// "Listeners on the same port with different protocols conflict; listeners
/// with the same port, protocol and hostname conflict" (ListenerConditionType
/// Conflicted). Each conflicted listener gets the reason.
///
/// A listener whose protocol we do not serve conflicts with nothing: "If an
/// implementation does not support TCP Protocol Listeners, then the previous
/// rule does not apply, and the TCP Listeners SHOULD NOT be accepted."
fn mark_conflicts_within(listeners: &mut [ListenerModel]) {
    let n = listeners.len();
    for i in 0..n {
        for j in 0..n {
            let (a, b) = (&listeners[i], &listeners[j]);
            if i == j || a.port != b.port || a.protocol.is_none() || b.protocol.is_none() {
                continue;
            }
            let problem = if a.protocol != b.protocol {
                Some(Problem {
                    reason: "ProtocolConflict",
                    message: format!(
                        "listener {} uses the same port with another protocol",
                        b.name
                    ),
                })
            } else if a.hostname == b.hostname {
                Some(Problem {
                    reason: "HostnameConflict",
                    message: format!(
                        "listener {} uses the same port, protocol and hostname",
                        b.name
                    ),
                })
            } else {
                None
            };
            if problem.is_some() && listeners[i].conflict.is_none() {
                listeners[i].conflict = problem;
            }
        }
    }
}

/// HTTPS listeners on one port whose hostnames overlap (ListenerConditionType
/// OverlappingTLSConfig): "Controllers MUST detect the presence of
/// overlapping hostnames" ... "This condition MUST be set on all Listeners
/// with overlapping TLS config." Conflicted and unaccepted listeners serve no
/// TLS, so they overlap nothing.
fn mark_overlapping_tls(listeners: &mut [ListenerModel]) {
    let in_play = |l: &ListenerModel| {
        l.protocol == Some(ListenerProtocol::Https)
            && l.not_accepted.is_none()
            && l.conflict.is_none()
    };
    let overlaps: Vec<Vec<String>> = listeners
        .iter()
        .map(|a| {
            listeners
                .iter()
                .filter(|b| !std::ptr::eq(a, *b) && in_play(a) && in_play(b))
                .filter(|b| a.port == b.port && hostnames_overlap(&a.hostname, &b.hostname))
                .map(|b| b.name.clone())
                .collect()
        })
        .collect();
    for (listener, names) in listeners.iter_mut().zip(overlaps) {
        listener.overlapping_tls = names;
    }
}

/// Whether some host name matches both listener hostnames (`None` matches
/// every name).
fn hostnames_overlap(a: &Option<String>, b: &Option<String>) -> bool {
    match (a.as_deref(), b.as_deref()) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => match (a.strip_prefix('*'), b.strip_prefix('*')) {
            (Some(sa), Some(sb)) => sa.ends_with(sb) || sb.ends_with(sa),
            (Some(_), None) => host_matches(a, b),
            (None, Some(_)) => host_matches(b, a),
            (None, None) => a.eq_ignore_ascii_case(b),
        },
    }
}

/// Writes each Gateway's status.
pub(super) fn write_gateway_status(
    gateways: &[GatewayModel],
    stamp: &Stamp,
    status: &mut StatusSet,
) {
    for gw in gateways {
        let generation = gw.generation;
        let cond = |t: &str, ok: bool, reason: &str, msg: String| {
            stamp.condition(t, ok, reason, msg, generation)
        };
        let listeners = gw
            .listeners
            .iter()
            .map(|l| listener_status(gw, l, &cond))
            .collect();
        let mut conditions = Vec::new();
        let invalid: Vec<&str> = gw
            .listeners
            .iter()
            .filter(|l| !l.valid())
            .map(|l| l.name.as_str())
            .collect();
        // "The implementation MUST set a "ListenersNotValid" condition on the
        // Gateway Status when the Gateway contains Conflicted Listeners
        // whether or not they accept the Gateway. That Condition SHOULD
        // clearly indicate in the Message which Listeners are conflicted, and
        // which are Accepted."
        let listeners_msg = || {
            let valid: Vec<&str> = gw
                .listeners
                .iter()
                .filter(|l| l.valid())
                .map(|l| l.name.as_str())
                .collect();
            format!(
                "listeners not valid: {}; valid: {}",
                invalid.join(", "),
                if valid.is_empty() {
                    "none".to_string()
                } else {
                    valid.join(", ")
                }
            )
        };
        match &gw.rejected {
            Some(p) => {
                conditions.push(cond("Accepted", false, p.reason, p.message.clone()));
                conditions.push(cond("Programmed", false, "Invalid", p.message.clone()));
            }
            None => {
                let all_invalid = !invalid.is_empty() && invalid.len() == gw.listeners.len();
                if invalid.is_empty() {
                    conditions.push(cond(
                        "Accepted",
                        true,
                        "Accepted",
                        "Gateway accepted".into(),
                    ));
                } else {
                    // "At least one distinct Listener MUST be present, or else
                    // the Gateway effectively contains _no_ Listeners, and must
                    // be rejected from processing as a whole."
                    conditions.push(cond(
                        "Accepted",
                        !all_invalid,
                        "ListenersNotValid",
                        listeners_msg(),
                    ));
                }
                if let Some(p) = &gw.unusable_address {
                    conditions.push(cond("Programmed", false, p.reason, p.message.clone()));
                } else if all_invalid {
                    conditions.push(cond("Programmed", false, "Invalid", listeners_msg()));
                } else {
                    conditions.push(cond(
                        "Programmed",
                        true,
                        "Programmed",
                        "Gateway programmed".into(),
                    ));
                }
            }
        }
        let addresses: Vec<GatewayStatusAddresses> = gw
            .listeners
            .iter()
            .filter(|l| l.programmed())
            .flat_map(|l| l.binds.iter().map(|b| b.ip()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|ip| GatewayStatusAddresses {
                r#type: Some("IPAddress".into()),
                value: ip.to_string(),
            })
            .collect();
        status.insert(
            gw.key.clone(),
            generation,
            ObjectStatus::Gateway(GatewayStatus {
                addresses: (!addresses.is_empty()).then_some(addresses),
                attached_listener_sets: None,
                conditions: Some(conditions),
                listeners: Some(listeners),
            }),
        );
    }
}

/// One listener's status.
fn listener_status(
    gw: &GatewayModel,
    l: &ListenerModel,
    cond: &impl Fn(&str, bool, &str, String) -> Condition,
) -> GatewayStatusListeners {
    let mut conditions: Vec<Condition> = Vec::new();
    // "The implementation MUST NOT pick one conflicting Listener as the
    // winner. ALL indistinct Listeners must not be accepted for processing."
    match l.not_accepted.as_ref().or(l.conflict.as_ref()) {
        Some(p) => conditions.push(cond("Accepted", false, p.reason, p.message.clone())),
        None => conditions.push(cond(
            "Accepted",
            true,
            "Accepted",
            "Listener accepted".into(),
        )),
    }
    match &l.conflict {
        Some(p) => conditions.push(cond("Conflicted", true, p.reason, p.message.clone())),
        None => conditions.push(cond(
            "Conflicted",
            false,
            "NoConflicts",
            "No conflicts".into(),
        )),
    }
    // "This is a negative polarity condition and MUST NOT be set when it is
    // False."
    if !l.overlapping_tls.is_empty() {
        conditions.push(cond(
            "OverlappingTLSConfig",
            true,
            "OverlappingHostnames",
            format!(
                "the hostname overlaps that of listener(s) {} on the same port",
                l.overlapping_tls.join(", ")
            ),
        ));
    }
    match &l.unresolved {
        Some(p) => conditions.push(cond("ResolvedRefs", false, p.reason, p.message.clone())),
        None => conditions.push(cond(
            "ResolvedRefs",
            true,
            "ResolvedRefs",
            "All references resolved".into(),
        )),
    }
    let problem = [&l.not_accepted, &l.conflict, &l.unresolved]
        .into_iter()
        .flatten()
        .next();
    let unbound = || match (&gw.rejected, &gw.unusable_address) {
        (Some(p), _) => format!("the Gateway is not accepted: {}", p.message),
        (None, Some(p)) => format!("the Gateway has no usable address: {}", p.message),
        (None, None) => "the Gateway has no address".to_string(),
    };
    match problem {
        Some(p) => conditions.push(cond("Programmed", false, "Invalid", p.message.clone())),
        None if l.pending.is_some() => conditions.push(cond(
            "Programmed",
            false,
            "Pending",
            l.pending.clone().unwrap_or_default(),
        )),
        None if l.binds.is_empty() => {
            conditions.push(cond("Programmed", false, "Invalid", unbound()))
        }
        None => conditions.push(cond(
            "Programmed",
            true,
            "Programmed",
            "Listener programmed".into(),
        )),
    }
    GatewayStatusListeners {
        attached_routes: l.attached_routes,
        conditions,
        name: l.name.clone(),
        supported_kinds: Some(l.supported_kinds.clone()),
    }
}
