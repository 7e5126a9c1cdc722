//! HTTPRoutes: attaching them to Gateway listeners (parentRefs, allowed
//! namespaces and kinds, hostname intersection) and their status.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteStatus, HttpRouteStatusParents,
    HttpRouteStatusParentsParentRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::jiff::Timestamp;

use super::gateway::{AllowedNamespaces, GatewayModel, ListenerModel};
use super::rule::{RuleOutcome, compile_rule};
use super::status::{ObjectStatus, Problem, Stamp, StatusSet, carry_route};
use crate::index::Index;
use crate::object::{GATEWAY_GROUP, Kind, ObjectKey};
use crate::routing::RouteEntry;
use crate::routing::host::host_matches;
use crate::routing::matcher::Precedence;

/// What one HTTPRoute translates to against a given set of Gateways. It
/// depends on nothing but the route and the objects that are not HTTPRoutes,
/// so it is kept between translations while neither changes.
#[derive(Debug)]
pub(super) struct RouteOutcome {
    /// The route's status (no parents: not ours to report).
    status: Arc<HttpRouteStatus>,
    /// The listeners the route is attached to with `Accepted: True`.
    attachments: Vec<Attachment>,
    /// One entry per match of every rule that serves, shared by every
    /// listener and hostname the route is attached to.
    entries: Vec<Arc<RouteEntry>>,
}

/// A listener a route is attached to, and the hostnames it serves there.
#[derive(Debug)]
struct Attachment {
    /// Index into the Gateways.
    gateway: usize,
    /// Index into that Gateway's listeners.
    listener: usize,
    hostnames: Vec<Option<String>>,
}

/// The outcomes of the previous translation, by route, with the revision
/// of the route each was computed from. Valid only for the Gateways (and
/// everything else that is not a route) it was computed against: the caller
/// clears it when those change.
#[derive(Debug, Default)]
pub(super) struct RouteMemo {
    /// By route key, with the revision of the route it was computed from.
    routes: BTreeMap<ObjectKey, (u64, RouteOutcome)>,
    /// Whether the outcomes may be reused; when not, they only lend their
    /// condition times to the new ones.
    valid: bool,
}

impl RouteMemo {
    /// Marks every kept outcome as out of date.
    pub(super) fn invalidate(&mut self) {
        self.valid = false;
    }
}

/// The listeners whose routes changed, with the hostnames that changed on
/// each: `(gateway, listener)` indexes → hostnames.
pub(super) type Touched = BTreeMap<(usize, usize), BTreeSet<Option<String>>>;

/// Attaches every HTTPRoute to the listeners it selects and may attach to,
/// and records each route's status. A route whose revision is the one in
/// `memo` is not translated again.
pub(super) fn attach_routes(
    ctx: &RouteContext<'_>,
    gateways: &mut [GatewayModel],
    status: &mut StatusSet,
    memo: &mut RouteMemo,
) {
    let mut before = std::mem::take(&mut memo.routes).into_iter().peekable();
    let mut next = Vec::with_capacity(before.len());
    let mut statuses = Vec::with_capacity(before.len());
    for (key, revision, route) in ctx.index.http_routes_with_revisions() {
        // Both lists are in key order: skip outcomes of deleted routes.
        while before.next_if(|(k, _)| k < key).is_some() {}
        let (key, before) = match before.next_if(|(k, _)| k == key) {
            Some((owned, (seen, outcome))) => (owned, Some((seen, outcome))),
            None => (key.clone(), None),
        };
        let outcome = match before {
            Some((seen, outcome)) if memo.valid && seen == revision => outcome,
            before => {
                let before = before.map(|(_, outcome)| outcome);
                ctx.translate_route(gateways, &key, route, before.as_ref())
            }
        };
        apply_outcome(gateways, &outcome, None);
        if !outcome.status.parents.is_empty() {
            statuses.push((
                key.clone(),
                route.metadata.generation,
                ObjectStatus::HttpRoute(outcome.status.clone()),
            ));
        }
        next.push((key, (revision, outcome)));
    }
    status.extend_sorted(statuses);
    memo.routes = next.into_iter().collect();
    memo.valid = true;
}

/// Brings the Gateways, the status and `memo` from the previous translation
/// up to date with the routes in `changed` (created, updated or deleted
/// since), and nothing else: the result is what [`attach_routes`] gives on
/// fresh Gateways, except for the order in which host entries are listed.
/// Records the hosts whose entries changed in `touched`. Only valid while
/// nothing but HTTPRoutes changed since `memo` was filled.
pub(super) fn patch_routes(
    ctx: &RouteContext<'_>,
    gateways: &mut [GatewayModel],
    status: &mut StatusSet,
    memo: &mut RouteMemo,
    changed: &[&ObjectKey],
    touched: &mut Touched,
) {
    debug_assert!(memo.valid, "patching outcomes computed for other Gateways");
    for &key in changed {
        let before = memo.routes.remove(key).map(|(_, outcome)| outcome);
        if let Some(before) = &before {
            remove_outcome(gateways, before, touched);
        }
        let Some((revision, route)) = ctx.index.http_route_with_revision(key) else {
            status.entries.remove(key);
            continue;
        };
        let outcome = ctx.translate_route(gateways, key, route, before.as_ref());
        apply_outcome(gateways, &outcome, Some(touched));
        if outcome.status.parents.is_empty() {
            status.entries.remove(key);
        } else {
            status.insert(
                key.clone(),
                route.metadata.generation,
                ObjectStatus::HttpRoute(outcome.status.clone()),
            );
        }
        memo.routes.insert(key.clone(), (revision, outcome));
    }
}

/// What translating one route needs besides the route and the Gateways.
pub(super) struct RouteContext<'a> {
    index: &'a Index,
    controller_name: &'a str,
    /// Gateway key → index into the Gateways.
    by_key: BTreeMap<ObjectKey, usize>,
    stamp: &'a Stamp,
}

impl<'a> RouteContext<'a> {
    /// The context for translating routes against `gateways`.
    pub(super) fn new(
        index: &'a Index,
        controller_name: &'a str,
        gateways: &[GatewayModel],
        stamp: &'a Stamp,
    ) -> Self {
        let by_key = gateways
            .iter()
            .enumerate()
            .map(|(i, g)| (g.key.clone(), i))
            .collect();
        Self {
            index,
            controller_name,
            by_key,
            stamp,
        }
    }

    /// Translates one route, keeping the transition times of the
    /// conditions that did not change since `before`, so that an unchanged
    /// status stays the same object.
    fn translate_route(
        &self,
        gateways: &[GatewayModel],
        key: &ObjectKey,
        route: &HttpRoute,
        before: Option<&RouteOutcome>,
    ) -> RouteOutcome {
        let mut outcome = route_outcome(self.index, gateways, &self.by_key, key, route, self.stamp);
        let status = Arc::make_mut(&mut outcome.status);
        for parent in &mut status.parents {
            parent.controller_name = self.controller_name.to_string();
        }
        if let Some(before) = before {
            carry_route(status, &before.status);
        }
        outcome
    }
}

/// Counts the route on its listeners and adds its entries to the hosts of
/// those that serve traffic.
fn apply_outcome(
    gateways: &mut [GatewayModel],
    outcome: &RouteOutcome,
    mut touched: Option<&mut Touched>,
) {
    for attachment in &outcome.attachments {
        let listener = &mut gateways[attachment.gateway].listeners[attachment.listener];
        // "The AttachedRoutes number represents the number of Routes with
        // the Accepted condition set to "True" that have been attached to
        // this Listener."
        listener.attached_routes += 1;
        if !listener.programmed() {
            continue;
        }
        for hostname in &attachment.hostnames {
            listener
                .hosts
                .entry(hostname.as_deref(), Vec::new)
                .extend(outcome.entries.iter().cloned());
        }
        if let Some(touched) = touched.as_deref_mut() {
            touch(touched, attachment);
        }
    }
}

/// Undoes [`apply_outcome`].
fn remove_outcome(gateways: &mut [GatewayModel], outcome: &RouteOutcome, touched: &mut Touched) {
    for attachment in &outcome.attachments {
        let listener = &mut gateways[attachment.gateway].listeners[attachment.listener];
        listener.attached_routes -= 1;
        if !listener.programmed() {
            continue;
        }
        for hostname in &attachment.hostnames {
            let Some(entries) = listener.hosts.get_mut(hostname.as_deref()) else {
                continue;
            };
            entries.retain(|e| !outcome.entries.iter().any(|gone| Arc::ptr_eq(e, gone)));
            if entries.is_empty() {
                listener.hosts.remove(hostname.as_deref());
            }
        }
        touch(touched, attachment);
    }
}

fn touch(touched: &mut Touched, attachment: &Attachment) {
    touched
        .entry((attachment.gateway, attachment.listener))
        .or_default()
        .extend(attachment.hostnames.iter().cloned());
}

/// The label Kubernetes puts on every Namespace, holding its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Why a parentRef did not attach, in the order the reasons take precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Refusal {
    NoMatchingParent,
    NotAllowedByListeners,
    NoMatchingListenerHostname,
}

/// Translates the route `key` against `gateways`.
fn route_outcome(
    index: &Index,
    gateways: &[GatewayModel],
    by_key: &BTreeMap<ObjectKey, usize>,
    key: &ObjectKey,
    route: &HttpRoute,
    stamp: &Stamp,
) -> RouteOutcome {
    let generation = route.metadata.generation;
    let created = route
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
    let route_hostnames: Vec<String> = route
        .spec
        .hostnames
        .iter()
        .flatten()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let rules: Vec<RuleOutcome> = route
        .spec
        .rules
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, rule)| compile_rule(index, key, i, rule))
        .collect();
    let invalid: Vec<&Problem> = rules.iter().filter_map(|r| r.invalid.as_ref()).collect();
    let unresolved: Vec<&Problem> = rules.iter().flat_map(|r| r.unresolved.iter()).collect();
    let valid_rules = rules.iter().filter(|r| r.compiled.is_some()).count();
    // "A Route MUST be considered "Accepted" if at least one of the Route's
    // rules is implemented by the Gateway."
    let implementable = valid_rules > 0 || invalid.is_empty();
    let entries: Vec<Arc<RouteEntry>> = rules
        .iter()
        .filter_map(|r| r.compiled.as_ref())
        .flat_map(|(matches, rule)| {
            matches.iter().enumerate().map(|(mi, m)| {
                Arc::new(RouteEntry {
                    precedence: Precedence::of(m, created, key.clone(), rule.rule_index, mi),
                    matcher: m.clone(),
                    rule: rule.clone(),
                })
            })
        })
        .collect();
    let mut attachments = Vec::new();

    let mut parents = Vec::new();
    for parent in route.spec.parent_refs.iter().flatten() {
        let HttpRouteParentRefs {
            group,
            kind,
            name,
            namespace,
            port,
            section_name,
        } = parent;
        let group = group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = kind.as_deref().unwrap_or("Gateway");
        if group != GATEWAY_GROUP || kind != "Gateway" {
            // Not a Gateway (e.g. a Service for a mesh): not ours to report.
            continue;
        }
        let gw_namespace = namespace.clone().unwrap_or_else(|| key.namespace.clone());
        let gw_key = ObjectKey::new(Kind::Gateway, gw_namespace.clone(), name.clone());
        let result = match by_key.get(&gw_key) {
            Some(&gi) => attach_to_gateway(
                index,
                gi,
                &gateways[gi],
                key,
                &route_hostnames,
                section_name.as_deref(),
                *port,
                implementable.then_some(&mut attachments),
            ),
            // A Gateway of another controller's class is not ours to report.
            None if index.gateway(&gw_namespace, name).is_some() => continue,
            None => Err(Refusal::NoMatchingParent),
        };
        let mut conditions: Vec<Condition> = Vec::new();
        let cond = |t: &str, ok: bool, reason: &str, msg: String| {
            stamp.condition(t, ok, reason, msg, generation)
        };
        match result {
            Ok(_) if !implementable => {
                conditions.push(cond("Accepted", false, "UnsupportedValue", join(&invalid)));
            }
            Ok(_) => {
                conditions.push(cond("Accepted", true, "Accepted", "Route accepted".into()));
                // "The message for this condition MUST start with the prefix
                // "Dropped Rule" and include information about which Rules
                // have been dropped."
                if !invalid.is_empty() {
                    conditions.push(cond(
                        "PartiallyInvalid",
                        true,
                        "UnsupportedValue",
                        format!("Dropped Rule(s): {}", join(&invalid)),
                    ));
                }
            }
            Err(refusal) => {
                let (reason, msg) = match refusal {
                    Refusal::NoMatchingParent => (
                        "NoMatchingParent",
                        format!(
                            "no Gateway {gw_namespace}/{name} with a listener matching sectionName {} and port {}",
                            section_name.as_deref().unwrap_or("(any)"),
                            port.map_or_else(|| "(any)".to_string(), |p| p.to_string())
                        ),
                    ),
                    Refusal::NotAllowedByListeners => (
                        "NotAllowedByListeners",
                        format!("no listener of Gateway {gw_namespace}/{name} allows this route"),
                    ),
                    Refusal::NoMatchingListenerHostname => (
                        "NoMatchingListenerHostname",
                        format!(
                            "no listener hostname of Gateway {gw_namespace}/{name} intersects the route's hostnames"
                        ),
                    ),
                };
                conditions.push(cond("Accepted", false, reason, msg));
            }
        }
        match unresolved.first() {
            Some(p) => conditions.push(cond("ResolvedRefs", false, p.reason, join(&unresolved))),
            None => conditions.push(cond(
                "ResolvedRefs",
                true,
                "ResolvedRefs",
                "All references resolved".into(),
            )),
        }
        parents.push(HttpRouteStatusParents {
            conditions,
            controller_name: String::new(),
            parent_ref: HttpRouteStatusParentsParentRef {
                group: Some(group.to_string()),
                kind: Some(kind.to_string()),
                name: name.clone(),
                namespace: namespace.clone(),
                port: *port,
                section_name: section_name.clone(),
            },
        });
    }
    RouteOutcome {
        status: Arc::new(HttpRouteStatus { parents }),
        attachments,
        entries,
    }
}

fn join(problems: &[&Problem]) -> String {
    problems
        .iter()
        .map(|p| p.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Finds the listeners of one Gateway the route attaches to; records them
/// in `attachments` when given (the route is accepted).
#[allow(clippy::too_many_arguments)]
fn attach_to_gateway(
    index: &Index,
    gateway_index: usize,
    gw: &GatewayModel,
    route: &ObjectKey,
    route_hostnames: &[String],
    section_name: Option<&str>,
    port: Option<i32>,
    mut attachments: Option<&mut Vec<Attachment>>,
) -> Result<usize, Refusal> {
    let gw_namespace = gw.key.namespace.as_str();
    let mut refusal = Refusal::NoMatchingParent;
    let mut attached = 0;
    for (listener_index, listener) in gw.listeners.iter().enumerate() {
        if section_name.is_some_and(|s| s != listener.name) {
            continue;
        }
        if port.is_some_and(|p| p != i32::from(listener.port)) {
            continue;
        }
        if !allows(index, listener, gw_namespace, &route.namespace) {
            refusal = refusal.max(Refusal::NotAllowedByListeners);
            continue;
        }
        let hostnames = intersect(listener.hostname.as_deref(), route_hostnames);
        if hostnames.is_empty() {
            refusal = refusal.max(Refusal::NoMatchingListenerHostname);
            continue;
        }
        attached += 1;
        // Routes whose Accepted condition is not True are not counted in
        // AttachedRoutes, nor served.
        if let Some(attachments) = attachments.as_deref_mut() {
            attachments.push(Attachment {
                gateway: gateway_index,
                listener: listener_index,
                hostnames,
            });
        }
    }
    if attached > 0 {
        Ok(attached)
    } else {
        Err(refusal)
    }
}

/// Whether the listener lets a route from `route_ns` attach.
fn allows(index: &Index, listener: &ListenerModel, gw_ns: &str, route_ns: &str) -> bool {
    if !listener.allows_http_route {
        return false;
    }
    match &listener.allowed_namespaces {
        AllowedNamespaces::Same => gw_ns == route_ns,
        AllowedNamespaces::All => true,
        AllowedNamespaces::Selector(selector) => {
            let mut labels = index
                .namespace("", route_ns)
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default();
            // The API server sets this label on every Namespace; a file
            // input may not list the Namespace at all.
            labels.insert(NAMESPACE_NAME_LABEL.to_string(), route_ns.to_string());
            selector_matches(selector, &labels)
        }
    }
}

/// Evaluates a Kubernetes label selector.
pub(super) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// The hostnames a route serves on a listener: `[None]` when neither names
/// any; empty when they do not intersect. The Gateway API defines: a
/// listener hostname and a route hostname intersect when they are equal, or
/// one is a wildcard matching the other; the more specific of the two is
/// the one served.
pub(super) fn intersect(listener: Option<&str>, route: &[String]) -> Vec<Option<String>> {
    let Some(listener) = listener else {
        if route.is_empty() {
            return vec![None];
        }
        return route.iter().cloned().map(Some).collect();
    };
    if route.is_empty() {
        return vec![Some(listener.to_string())];
    }
    let mut out = Vec::new();
    for h in route {
        let route_within_listener =
            listener.starts_with("*.") && !h.starts_with("*.") && host_matches(listener, h);
        let hit = if h == listener || route_within_listener {
            Some(h.clone())
        } else if h.starts_with("*.") && !listener.starts_with("*.") && host_matches(h, listener) {
            Some(listener.to_string())
        } else if h.starts_with("*.") && listener.starts_with("*.") {
            // Both wildcards: the longer one, if it lies within the shorter.
            if h.len() >= listener.len() && h.ends_with(&listener[1..]) {
                Some(h.clone())
            } else if listener.ends_with(&h[1..]) {
                Some(listener.to_string())
            } else {
                None
            }
        } else {
            None
        };
        if let Some(hit) = hit.filter(|hit| !out.contains(&Some(hit.clone()))) {
            out.push(Some(hit));
        }
    }
    out
}
