//! The index: every object the providers have delivered, by typed key.
//!
//! Events come in from a provider (`Apply`, `Delete`, `Reset`, ...);
//! translate reads the index through the typed accessors. One task owns the
//! index, so it needs no locks; `generation` counts the changes that were
//! applied. Each object carries the revision at which it last changed, and
//! the index counts changes to anything but HTTPRoutes separately, so a
//! translation can tell which routes it must look at again.

use std::collections::BTreeMap;

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

    fn apply(&mut self, object: Object) -> bool {
        let key = object.key();
        if self.objects.get(&key).is_some_and(|s| s.object == object) {
            return false;
        }
        let revision = self.next_revision(key.kind);
        self.objects.insert(key, Stored { object, revision });
        true
    }

    fn delete(&mut self, key: &ObjectKey) -> bool {
        if self.objects.remove(key).is_none() {
            return false;
        }
        self.next_revision(key.kind);
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
                _ => {
                    changed = true;
                    Stored {
                        revision: self.next_revision(key.kind),
                        object,
                    }
                }
            };
            others.insert(key, stored);
        }
        for key in previous.into_keys() {
            changed = true;
            self.next_revision(key.kind);
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
