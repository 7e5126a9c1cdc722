//! The defaults the API server would apply, so that standalone mode sees
//! exactly what a cluster would hand a controller: the Gateway API CRD schema
//! defaults, `metadata.namespace: default`, Service `targetPort`, and Secret
//! `stringData` folded into `data`.

use gateway_api::gateways::{
    Gateway, GatewayListenersAllowedRoutes, GatewayListenersAllowedRoutesNamespaces,
    GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTlsMode,
};
use gateway_api::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesFilters, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::object::{GATEWAY_GROUP, Object};

/// Applies the API server's defaults to one object.
pub(super) fn apply(object: &mut Object) {
    if object.kind().is_namespaced() {
        let meta = object.meta_mut();
        if meta.namespace.as_deref().unwrap_or("").is_empty() {
            meta.namespace = Some("default".into());
        }
    }
    match object {
        Object::Gateway(gw) => gateway(gw),
        Object::HttpRoute(route) => http_route(route),
        Object::Service(svc) => service(svc),
        Object::Secret(secret) => secret_data(secret),
        Object::Namespace(ns) => {
            // The API server labels every Namespace with its own name.
            if let Some(name) = ns.metadata.name.clone() {
                ns.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert("kubernetes.io/metadata.name".into(), name);
            }
        }
        _ => {}
    }
}

fn set_if_none<T>(field: &mut Option<T>, value: impl FnOnce() -> T) {
    if field.is_none() {
        *field = Some(value());
    }
}

fn gateway(gw: &mut Gateway) {
    for address in gw.spec.addresses.iter_mut().flatten() {
        set_if_none(&mut address.r#type, || "IPAddress".into());
    }
    for listener in &mut gw.spec.listeners {
        let allowed = listener
            .allowed_routes
            .get_or_insert_with(GatewayListenersAllowedRoutes::default);
        let namespaces = allowed
            .namespaces
            .get_or_insert_with(GatewayListenersAllowedRoutesNamespaces::default);
        set_if_none(&mut namespaces.from, || {
            GatewayListenersAllowedRoutesNamespacesFrom::Same
        });
        for kind in allowed.kinds.iter_mut().flatten() {
            set_if_none(&mut kind.group, || GATEWAY_GROUP.into());
        }
        if let Some(tls) = &mut listener.tls {
            set_if_none(&mut tls.mode, || GatewayListenersTlsMode::Terminate);
            for cert in tls.certificate_refs.iter_mut().flatten() {
                set_if_none(&mut cert.group, String::new);
                set_if_none(&mut cert.kind, || "Secret".into());
            }
        }
    }
}

fn default_match() -> HttpRouteRulesMatches {
    HttpRouteRulesMatches {
        path: Some(HttpRouteRulesMatchesPath {
            r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
            value: Some("/".into()),
        }),
        ..Default::default()
    }
}

fn http_route(route: &mut HttpRoute) {
    for parent in route.spec.parent_refs.iter_mut().flatten() {
        set_if_none(&mut parent.group, || GATEWAY_GROUP.into());
        set_if_none(&mut parent.kind, || "Gateway".into());
    }
    let rules = route.spec.rules.get_or_insert_with(Vec::new);
    if rules.is_empty() {
        rules.push(HttpRouteRules::default());
    }
    for rule in rules {
        let matches = rule.matches.get_or_insert_with(Vec::new);
        if matches.is_empty() {
            matches.push(default_match());
        }
        for m in matches {
            let path = m.path.get_or_insert(HttpRouteRulesMatchesPath {
                r#type: None,
                value: None,
            });
            set_if_none(&mut path.r#type, || {
                HttpRouteRulesMatchesPathType::PathPrefix
            });
            set_if_none(&mut path.value, || "/".into());
            for header in m.headers.iter_mut().flatten() {
                set_if_none(&mut header.r#type, || {
                    HttpRouteRulesMatchesHeadersType::Exact
                });
            }
            for query in m.query_params.iter_mut().flatten() {
                set_if_none(&mut query.r#type, || {
                    HttpRouteRulesMatchesQueryParamsType::Exact
                });
            }
        }
        for filter in rule.filters.iter_mut().flatten() {
            route_filter(filter);
        }
        for backend in rule.backend_refs.iter_mut().flatten() {
            set_if_none(&mut backend.group, String::new);
            set_if_none(&mut backend.kind, || "Service".into());
            set_if_none(&mut backend.weight, || 1);
            for filter in backend.filters.iter_mut().flatten() {
                if let Some(mirror) = &mut filter.request_mirror {
                    set_if_none(&mut mirror.backend_ref.group, String::new);
                    set_if_none(&mut mirror.backend_ref.kind, || "Service".into());
                }
            }
        }
    }
}

fn route_filter(filter: &mut HttpRouteRulesFilters) {
    if let Some(mirror) = &mut filter.request_mirror {
        set_if_none(&mut mirror.backend_ref.group, String::new);
        set_if_none(&mut mirror.backend_ref.kind, || "Service".into());
        if let Some(fraction) = &mut mirror.fraction {
            set_if_none(&mut fraction.denominator, || 100);
        }
    }
}

fn service(svc: &mut Service) {
    for port in svc
        .spec
        .iter_mut()
        .flat_map(|s| s.ports.iter_mut().flatten())
    {
        set_if_none(&mut port.protocol, || "TCP".into());
        set_if_none(&mut port.target_port, || IntOrString::Int(port.port));
    }
}

fn secret_data(secret: &mut Secret) {
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (k, v) in string_data {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
    set_if_none(&mut secret.type_, || "Opaque".into());
}
