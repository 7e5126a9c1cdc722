//! The index: every object the providers have delivered, by typed key.
//!
//! Events come in from a provider (`Apply`, `Delete`, `Reset`); translate
//! reads the index through the typed accessors. One task owns the index, so
//! it needs no locks; `generation` counts the changes that were applied.

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
    objects: BTreeMap<ObjectKey, Object>,
    generation: u64,
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
            Event::Delete(key) => self.objects.remove(&key).is_some(),
            Event::Reset(objects) => self.reset(objects),
            Event::Changes { apply, delete } => {
                let mut changed = false;
                for key in delete {
                    changed |= self.objects.remove(&key).is_some();
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

    fn apply(&mut self, object: Object) -> bool {
        let key = object.key();
        if self.objects.get(&key) == Some(&object) {
            return false;
        }
        self.objects.insert(key, object);
        true
    }

    fn reset(&mut self, objects: Vec<Object>) -> bool {
        let next: BTreeMap<ObjectKey, Object> = objects.into_iter().map(|o| (o.key(), o)).collect();
        if next == self.objects {
            return false;
        }
        self.objects = next;
        true
    }

    fn restart(&mut self, kind: Kind, objects: Vec<Object>) -> bool {
        let next: BTreeMap<ObjectKey, Object> = objects
            .into_iter()
            .filter(|o| o.kind() == kind)
            .map(|o| (o.key(), o))
            .collect();
        let current: BTreeMap<&ObjectKey, &Object> = self
            .objects
            .iter()
            .filter(|(k, _)| k.kind == kind)
            .collect();
        let same =
            current.len() == next.len() && next.iter().all(|(k, o)| current.get(k) == Some(&o));
        if same {
            return false;
        }
        self.objects.retain(|k, _| k.kind != kind);
        self.objects.extend(next);
        true
    }

    /// How many changes have been applied since the index was created.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Looks an object up by key.
    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.objects.get(key)
    }

    /// Every object, in key order.
    pub fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.values()
    }

    /// Every object of one kind, in key order.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Object> {
        let start = ObjectKey::new(kind, "", "");
        self.objects
            .range(start..)
            .take_while(move |(k, _)| k.kind == kind)
            .map(|(_, o)| o)
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
