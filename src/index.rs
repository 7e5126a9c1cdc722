//! The index: every object the providers have delivered, by typed key.
//!
//! Events come in from a provider (`Apply`, `Delete`, `Reset`, ...);
//! translate reads the index through the typed accessors. One task owns the
//! index, so it needs no locks; `generation` counts the changes that were
//! applied. Each object carries the revision at which it last changed, and
//! the index counts changes to anything but HTTPRoutes separately and logs
//! which HTTPRoutes changed at which revision, so a translation can visit
//! only the routes changed since the one before.

use std::collections::{BTreeMap, HashMap};

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::object::{Kind, Object, ObjectKey};
use crate::policy::{Backend, DirectResponse, GatewayParameters};
use crate::provider::Event;

#[cfg(test)]
mod tests;

/// All objects known to Gatehouse.
#[derive(Clone, Debug, Default)]
pub struct Index {
    objects: BTreeMap<ObjectKey, Stored>,
    generation: u64,
    /// Source of object revisions.
    revisions: u64,
    /// The revision of the latest change to an object that is not an
    /// HTTPRoute (and could change how any route translates).
    world_revision: u64,
    route_log: RouteLog,
}

/// The latest change of every HTTPRoute key, by revision.
#[derive(Clone, Debug, Default)]
struct RouteLog {
    /// Revision → the route changed (created, updated or deleted) then:
    /// one entry per key, its latest change.
    by_revision: BTreeMap<u64, ObjectKey>,
    /// Deleted routes → the revision they were deleted at.
    deleted: HashMap<ObjectKey, u64>,
    /// Changes before this revision are no longer listed (deletions are
    /// forgotten once there are many).
    floor: u64,
}

/// Deleted route keys remembered before the log forgets deletions.
const MAX_LOGGED_DELETIONS: usize = 4096;

impl RouteLog {
    /// Records that `key` changed at `revision`; `previous` is the revision
    /// of its last change while it existed.
    fn record(&mut self, key: &ObjectKey, previous: Option<u64>, revision: u64, deleted: bool) {
        let previous = previous.or_else(|| self.deleted.remove(key));
        if let Some(previous) = previous {
            self.by_revision.remove(&previous);
        }
        self.by_revision.insert(revision, key.clone());
        if deleted {
            self.deleted.insert(key.clone(), revision);
            if self.deleted.len() > MAX_LOGGED_DELETIONS {
                for (_, at) in self.deleted.drain() {
                    self.by_revision.remove(&at);
                }
                self.floor = revision;
            }
        }
    }
}

/// An object and the revision at which it last changed.
#[derive(Clone, Debug, PartialEq)]
struct Stored {
    object: Object,
    revision: u64,
}

macro_rules! typed_accessors {
    ($($(#[$doc:meta])* $fn:ident, $get:ident => $variant:ident($ty:ty);)*) => {
        $(
            $(#[$doc])*
            pub fn $fn(&self) -> impl Iterator<Item = &$ty> {
                self.of_kind(Kind::$variant).filter_map(|o| match o {
                    Object::$variant(x) => Some(x),
                    _ => None,
                })
            }

            /// Looks one object of this kind up by namespace and name.
            pub fn $get(&self, namespace: &str, name: &str) -> Option<&$ty> {
                match self.get(&ObjectKey::new(Kind::$variant, namespace, name)) {
                    Some(Object::$variant(x)) => Some(x),
                    _ => None,
                }
            }
        )*
    };
}

impl Index {
    /// Applies one provider event; returns whether anything changed.
    pub fn handle(&mut self, event: Event) -> bool {
        let changed = match event {
            Event::Apply(object) => self.apply(*object),
            Event::Delete(key) => self.delete(&key),
            Event::Reset(objects) => self.reset(objects),
            Event::Changes { apply, delete } => {
                let mut changed = false;
                for key in delete {
                    changed |= self.delete(&key);
                }
                for object in apply {
                    changed |= self.apply(object);
                }
                changed
            }
            Event::Restart(kind, objects) => self.restart(kind, objects),
        };
        if changed {
            self.generation += 1;
        }
        changed
    }

    /// A new revision for a change to an object of `kind`.
    fn next_revision(&mut self, kind: Kind) -> u64 {
        self.revisions += 1;
        if kind != Kind::HttpRoute {
            self.world_revision = self.revisions;
        }
        self.revisions
    }

    /// A new revision for a change to the object `key`, whose last change
    /// while it existed was at `previous`.
    fn changed(&mut self, key: &ObjectKey, previous: Option<u64>, deleted: bool) -> u64 {
        let revision = self.next_revision(key.kind);
        if key.kind == Kind::HttpRoute {
            self.route_log.record(key, previous, revision, deleted);
        }
        revision
    }

    fn apply(&mut self, object: Object) -> bool {
        let key = object.key();
        let previous = match self.objects.get(&key) {
            Some(s) if s.object == object => return false,
            Some(s) => Some(s.revision),
            None => None,
        };
        let revision = self.changed(&key, previous, false);
        self.objects.insert(key, Stored { object, revision });
        true
    }

    fn delete(&mut self, key: &ObjectKey) -> bool {
        let Some(removed) = self.objects.remove(key) else {
            return false;
        };
        self.changed(key, Some(removed.revision), true);
        true
    }

    /// Replaces the objects matching `scope` with `objects`, keeping the
    /// revision of every object that did not change.
    fn replace(&mut self, scope: impl Fn(Kind) -> bool, objects: Vec<Object>) -> bool {
        let mut previous: BTreeMap<ObjectKey, Stored> = BTreeMap::new();
        let mut others = BTreeMap::new();
        for (key, stored) in std::mem::take(&mut self.objects) {
            if scope(key.kind) {
                previous.insert(key, stored);
            } else {
                others.insert(key, stored);
            }
        }
        let mut changed = false;
        for object in objects.into_iter().filter(|o| scope(o.kind())) {
            let key = object.key();
            let stored = match previous.remove(&key) {
                Some(stored) if stored.object == object => stored,
                before => {
                    changed = true;
                    Stored {
                        revision: self.changed(&key, before.map(|s| s.revision), false),
                        object,
                    }
                }
            };
            others.insert(key, stored);
        }
        for (key, removed) in previous {
            changed = true;
            self.changed(&key, Some(removed.revision), true);
        }
        self.objects = others;
        changed
    }

    fn reset(&mut self, objects: Vec<Object>) -> bool {
        self.replace(|_| true, objects)
    }

    fn restart(&mut self, kind: Kind, objects: Vec<Object>) -> bool {
        self.replace(|k| k == kind, objects)
    }

    /// Every HTTPRoute with its key and the revision at which it last
    /// changed, in key order.
    pub fn http_routes_with_revisions(
        &self,
    ) -> impl Iterator<Item = (&ObjectKey, u64, &HttpRoute)> {
        let start = ObjectKey::new(Kind::HttpRoute, "", "");
        self.objects
            .range(start..)
            .take_while(|(k, _)| k.kind == Kind::HttpRoute)
            .filter_map(|(k, s)| match &s.object {
                Object::HttpRoute(route) => Some((k, s.revision, route)),
                _ => None,
            })
    }

    /// The revision at which the object last changed.
    pub fn revision(&self, key: &ObjectKey) -> Option<u64> {
        self.objects.get(key).map(|s| s.revision)
    }

    /// The revision of the latest change to any object.
    pub fn latest_revision(&self) -> u64 {
        self.revisions
    }

    /// The HTTPRoutes created, updated or deleted after `revision`, each
    /// once; `None` when the log no longer reaches back that far.
    pub fn http_routes_changed_since(&self, revision: u64) -> Option<Vec<&ObjectKey>> {
        if revision < self.route_log.floor {
            return None;
        }
        Some(
            self.route_log
                .by_revision
                .range(revision + 1..)
                .map(|(_, key)| key)
                .collect(),
        )
    }

    /// One HTTPRoute with the revision at which it last changed.
    pub fn http_route_with_revision(&self, key: &ObjectKey) -> Option<(u64, &HttpRoute)> {
        match self.objects.get(key) {
            Some(Stored {
                object: Object::HttpRoute(route),
                revision,
            }) => Some((*revision, route)),
            _ => None,
        }
    }

    /// The revision of the latest change (creation, update or deletion) to
    /// an object that is not an HTTPRoute.
    pub fn world_revision(&self) -> u64 {
        self.world_revision
    }

    /// How many changes have been applied since the index was created.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Looks an object up by key.
    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.objects.get(key).map(|s| &s.object)
    }

    /// Every object, in key order.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.values().map(|s| &s.object)
    }

    /// Every object of one kind, in key order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        let start = ObjectKey::new(kind, "", "");
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.kind == kind)
            .map(|(_, s)| &s.object)
    }

    typed_accessors! {
        /// Every GatewayClass.
        gateway_classes, gateway_class => GatewayClass(GatewayClass);
        /// Every Gateway.
        gateways, gateway => Gateway(Gateway);
        /// Every HTTPRoute.
        http_routes, http_route => HttpRoute(HttpRoute);
        /// Every ReferenceGrant.
        reference_grants, reference_grant => ReferenceGrant(ReferenceGrant);
        /// Every Namespace.
        namespaces, namespace => Namespace(Namespace);
        /// Every Service.
        services, service => Service(Service);
        /// Every EndpointSlice.
        endpoint_slices, endpoint_slice => EndpointSlice(EndpointSlice);
        /// Every Secret.
        secrets, secret => Secret(Secret);
        /// Every Backend.
        backends, backend => Backend(Backend);
        /// Every DirectResponse.
        direct_responses, direct_response => DirectResponse(DirectResponse);
        /// Every GatewayParameters.
        gateway_parameters_all, gateway_parameters => GatewayParameters(GatewayParameters);
    }
}
