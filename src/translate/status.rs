//! The status translate computes, keyed by object, and the helpers that
//! build conditions.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_api::gatewayclasses::GatewayClassStatus;
use gateway_api::gateways::GatewayStatus;
use gateway_api::httproutes::HttpRouteStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::object::ObjectKey;

/// The status of one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ObjectStatus {
    /// A GatewayClass's status.
    GatewayClass(GatewayClassStatus),
    /// A Gateway's status.
    Gateway(GatewayStatus),
    /// An HTTPRoute's status (shared with the translator, which keeps it
    /// for the next translation while the route does not change).
    HttpRoute(Arc<HttpRouteStatus>),
}

/// One object's computed status with the generation it describes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusEntry {
    /// `metadata.generation` of the object the status was computed from.
    pub generation: Option<i64>,
    /// The status.
    pub status: ObjectStatus,
}

/// The status of every object Gatehouse owns.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StatusSet {
    /// By object.
    pub entries: BTreeMap<ObjectKey, StatusEntry>,
}

impl StatusSet {
    /// Records one object's status.
    pub fn insert(&mut self, key: ObjectKey, generation: Option<i64>, status: ObjectStatus) {
        self.entries.insert(key, StatusEntry { generation, status });
    }

    /// Records many objects' statuses, given in key order (built in one
    /// pass rather than inserted one by one).
    pub fn extend_sorted(&mut self, statuses: Vec<(ObjectKey, Option<i64>, ObjectStatus)>) {
        let mut more: BTreeMap<ObjectKey, StatusEntry> = statuses
            .into_iter()
            .map(|(key, generation, status)| (key, StatusEntry { generation, status }))
            .collect();
        self.entries.append(&mut more);
    }

    /// Looks one object's status up.
    pub fn get(&self, key: &ObjectKey) -> Option<&StatusEntry> {
        self.entries.get(key)
    }

    /// One object's status in the shape `kubectl get -o yaml` shows:
    /// `apiVersion`, `kind`, `metadata` (name, namespace, generation), `status`.
    pub fn kubernetes_object(&self, key: &ObjectKey) -> Option<serde_json::Value> {
        let entry = self.entries.get(key)?;
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), key.name.clone().into());
        if !key.namespace.is_empty() {
            metadata.insert("namespace".into(), key.namespace.clone().into());
        }
        if let Some(generation) = entry.generation {
            metadata.insert("generation".into(), generation.into());
        }
        Some(serde_json::json!({
            "apiVersion": key.kind.api_version(),
            "kind": key.kind.as_str(),
            "metadata": metadata,
            "status": entry.status,
        }))
    }

    /// Every object's status as a Kubernetes `List`.
    pub fn kubernetes_list(&self) -> serde_json::Value {
        let items: Vec<serde_json::Value> = self
            .entries
            .keys()
            .filter_map(|k| self.kubernetes_object(k))
            .collect();
        serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": items })
    }

    /// Whether any object would be rejected or is degraded: a condition
    /// `Accepted`, `ResolvedRefs` or `Programmed` that is False, or
    /// `Conflicted` / `PartiallyInvalid` that is True. Returns one line per
    /// such condition.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |key: &ObjectKey, scope: &str, conditions: &[Condition]| {
            for c in conditions {
                let bad = match c.type_.as_str() {
                    "Accepted" | "ResolvedRefs" | "Programmed" => c.status == "False",
                    "Conflicted" | "PartiallyInvalid" => c.status == "True",
                    _ => false,
                };
                if bad {
                    out.push(format!(
                        "{key}{scope}: {}={} ({}): {}",
                        c.type_, c.status, c.reason, c.message
                    ));
                }
            }
        };
        for (key, entry) in &self.entries {
            match &entry.status {
                ObjectStatus::GatewayClass(s) => {
                    check(key, "", s.conditions.as_deref().unwrap_or_default());
                }
                ObjectStatus::Gateway(s) => {
                    check(key, "", s.conditions.as_deref().unwrap_or_default());
                    for l in s.listeners.iter().flatten() {
                        check(key, &format!(" listener {}", l.name), &l.conditions);
                    }
                }
                ObjectStatus::HttpRoute(s) => {
                    for p in &s.parents {
                        let scope = format!(" parent {}", p.parent_ref.name);
                        check(key, &scope, &p.conditions);
                    }
                }
            }
        }
        out
    }

    /// Keeps `lastTransitionTime` from `previous` for every condition whose
    /// status did not change, as the API conventions require.
    pub fn carry_transition_times(&mut self, previous: &StatusSet) {
        // Both sets are in key order: walk them side by side rather than
        // looking every key up.
        let mut before = previous.entries.iter().peekable();
        for (key, entry) in &mut self.entries {
            while before.next_if(|(k, _)| *k < key).is_some() {}
            let Some((_, prev)) = before.next_if(|(k, _)| *k == key) else {
                continue;
            };
            match (&mut entry.status, &prev.status) {
                (ObjectStatus::GatewayClass(now), ObjectStatus::GatewayClass(before)) => {
                    carry(
                        now.conditions.iter_mut().flatten(),
                        before.conditions.iter().flatten(),
                    );
                }
                (ObjectStatus::Gateway(now), ObjectStatus::Gateway(before)) => {
                    carry(
                        now.conditions.iter_mut().flatten(),
                        before.conditions.iter().flatten(),
                    );
                    for l in now.listeners.iter_mut().flatten() {
                        let before_l = before.listeners.iter().flatten().find(|b| b.name == l.name);
                        if let Some(b) = before_l {
                            carry(l.conditions.iter_mut(), b.conditions.iter());
                        }
                    }
                }
                (ObjectStatus::HttpRoute(now), ObjectStatus::HttpRoute(before))
                    if !Arc::ptr_eq(now, before) && route_times_differ(now, before) =>
                {
                    carry_route(Arc::make_mut(now), before);
                }
                _ => {}
            }
        }
    }
}

/// Carries `lastTransitionTime` from `before` into `now` for every parent's
/// conditions whose status did not change.
pub(super) fn carry_route(now: &mut HttpRouteStatus, before: &HttpRouteStatus) {
    for p in &mut now.parents {
        if let Some(b) = before.parents.iter().find(|b| b.parent_ref == p.parent_ref) {
            carry(p.conditions.iter_mut(), b.conditions.iter());
        }
    }
}

/// Whether carrying times from `before` would change `now`.
fn route_times_differ(now: &HttpRouteStatus, before: &HttpRouteStatus) -> bool {
    now.parents.iter().any(|p| {
        before
            .parents
            .iter()
            .find(|b| b.parent_ref == p.parent_ref)
            .is_some_and(|b| {
                p.conditions.iter().any(|c| {
                    b.conditions
                        .iter()
                        .find(|b| b.type_ == c.type_ && b.status == c.status)
                        .is_some_and(|b| b.last_transition_time != c.last_transition_time)
                })
            })
    })
}

fn carry<'a>(
    now: impl Iterator<Item = &'a mut Condition>,
    before: impl Iterator<Item = &'a Condition> + Clone,
) {
    for c in now {
        if let Some(b) = before
            .clone()
            .find(|b| b.type_ == c.type_ && b.status == c.status)
        {
            c.last_transition_time = b.last_transition_time.clone();
        }
    }
}

/// A problem found in an object: the condition reason and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The condition reason (`BackendNotFound`, `RefNotPermitted`, ...).
    pub reason: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl Problem {
    /// Builds a problem.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// Stamps conditions with the translation time.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    /// The time of this translation.
    pub now: Timestamp,
}

impl Stamp {
    /// A condition of `type_`, true or false, with the reason and message.
    pub fn condition(
        &self,
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) -> Condition {
        Condition {
            type_: type_.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
            observed_generation: generation,
            last_transition_time: Time(self.now),
        }
    }
}

#[cfg(test)]
mod tests {
    use gateway_api::httproutes::{HttpRouteStatusParents, HttpRouteStatusParentsParentRef};

    use super::*;
    use crate::object::Kind;

    fn mk_route(accepted: &str, at: i64) -> ObjectStatus {
        ObjectStatus::HttpRoute(Arc::new(HttpRouteStatus {
            parents: vec![HttpRouteStatusParents {
                conditions: vec![Condition {
                    type_: "Accepted".into(),
                    status: accepted.into(),
                    reason: "R".into(),
                    message: String::new(),
                    observed_generation: Some(1),
                    last_transition_time: Time(Timestamp::from_second(at).unwrap()),
                }],
                controller_name: "c".into(),
                parent_ref: HttpRouteStatusParentsParentRef {
                    name: "gw".into(),
                    ..Default::default()
                },
            }],
        }))
    }

    fn time_of(set: &StatusSet, name: &str) -> i64 {
        let key = ObjectKey::new(Kind::HttpRoute, "ns", name);
        match &set.get(&key).unwrap().status {
            ObjectStatus::HttpRoute(s) => s.parents[0].conditions[0]
                .last_transition_time
                .0
                .as_second(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let mk_set = |routes: &[(&str, &str, i64)]| {
            let mut set = StatusSet::default();
            for (name, accepted, at) in routes {
                set.insert(
                    ObjectKey::new(Kind::HttpRoute, "ns", *name),
                    Some(1),
                    mk_route(accepted, *at),
                );
            }
            set
        };
        let previous = mk_set(&[("a", "True", 10), ("b", "True", 20), ("c", "True", 30)]);
        let mut now = mk_set(&[("b", "True", 99), ("c", "False", 99), ("d", "True", 99)]);
        now.carry_transition_times(&previous);
        assert_eq!(time_of(&now, "b"), 20, "unchanged: carried");
        assert_eq!(time_of(&now, "c"), 99, "flipped: new time");
        assert_eq!(time_of(&now, "d"), 99, "new: new time");
    }
}
