//! Translate: a pure function from the index to a routing table and the
//! status every object should have.
//!
//! No I/O and no clock: `now` comes in (it stamps `lastTransitionTime`).
//! Every problem becomes a condition on the object at fault, and one bad
//! route never keeps the others from being served.

mod backend_ref;
mod gateway;
mod http_route;
mod rule;
mod status;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::jiff::Timestamp;

use crate::index::Index;
use crate::object::ObjectKey;
use crate::routing::RouteTable;

pub use status::{ObjectStatus, StatusEntry, StatusSet};

#[cfg(test)]
mod tests;

/// The controller name Gatehouse answers to by default.
pub const DEFAULT_CONTROLLER_NAME: &str = "gatehouse.dev/gateway-controller";

/// What translate needs to know besides the objects.
#[derive(Clone, Debug, PartialEq)]
pub struct TranslateConfig {
    /// GatewayClasses with this `controllerName` are ours.
    pub controller_name: String,
    /// The address listeners bind when a Gateway names none.
    pub default_bind: IpAddr,
    /// In a cluster: the container port each (Gateway, listener port)
    /// binds on `default_bind`, as recorded in the Gateway's Service.
    /// Gateway addresses then belong to that Service, not to the pods, and a
    /// listener port without an entry waits (`Programmed: False`, `Pending`).
    /// `None` in standalone mode, where listeners bind their own ports on
    /// the Gateway's addresses.
    pub listener_ports: Option<BTreeMap<(ObjectKey, u16), u16>>,
}

impl Default for TranslateConfig {
    fn default() -> Self {
        Self {
            controller_name: DEFAULT_CONTROLLER_NAME.to_string(),
            default_bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            listener_ports: None,
        }
    }
}

/// The output of one translation.
#[derive(Debug, Default)]
pub struct Translation {
    /// The routing table to serve.
    pub table: RouteTable,
    /// The status of every object we own.
    pub status: StatusSet,
}

/// Translates the index into a routing table and status.
pub fn translate(index: &Index, config: &TranslateConfig, now: Timestamp) -> Translation {
    Translator::default().translate(index, config, now)
}

/// Translates one index after another, keeping each HTTPRoute's outcome for
/// the next translation: while nothing but HTTPRoutes changes (the usual
/// edit), only the routes that changed are translated again. The result is
/// what [`translate`] gives for the same input, except that a route
/// condition whose status did not change keeps the `lastTransitionTime` of
/// the previous translation (as status written to a cluster must).
#[derive(Debug, Default)]
pub struct Translator {
    routes: http_route::RouteMemo,
    sets: gateway::RouteSetMemo,
    /// What the kept outcomes were computed against: the index's revision
    /// of everything that is not an HTTPRoute, and the settings.
    basis: Option<(u64, TranslateConfig)>,
}

impl Translator {
    /// Translates the index into a routing table and status.
    pub fn translate(
        &mut self,
        index: &Index,
        config: &TranslateConfig,
        now: Timestamp,
    ) -> Translation {
        let basis = (index.world_revision(), config.clone());
        if self.basis.as_ref() != Some(&basis) {
            self.routes.invalidate();
            self.basis = Some(basis);
        }
        let mut status = StatusSet::default();
        let ctx = status::Stamp { now };
        let classes = gateway::accept_classes(index, config, &ctx, &mut status);
        let mut gateways = gateway::build_gateways(index, config, &classes, &ctx);
        http_route::attach_routes(
            index,
            &config.controller_name,
            &mut gateways,
            &ctx,
            &mut status,
            &mut self.routes,
        );
        let table = gateway::build_table(&mut gateways, index.generation(), &mut self.sets);
        gateway::write_gateway_status(&gateways, &ctx, &mut status);
        Translation { table, status }
    }
}
