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
mod table;

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
    Translator::default().translate_whole(index, config, now, false)
}

/// Translates one index after another, keeping each HTTPRoute's outcome for
/// the next translation. While nothing but HTTPRoutes changes (the usual
/// edit), the previous translation is patched: the routes changed since are
/// translated again, their entries leave and join the hosts they attach to,
/// and only those hosts get new route sets. The result is what
/// [`translate`] gives for the same input, except that a route condition
/// whose status did not change keeps the `lastTransitionTime` of the
/// previous translation (as status written to a cluster must).
#[derive(Debug, Default)]
pub struct Translator {
    routes: http_route::RouteMemo,
    sets: table::RouteSetMemo,
    /// What the kept outcomes were computed against: the index's revision
    /// of everything that is not an HTTPRoute, and the settings.
    basis: Option<(u64, TranslateConfig)>,
    /// The previous translation, to patch.
    previous: Option<Previous>,
}

/// What the previous translation left: its Gateways with the routes
/// attached, and its status.
#[derive(Debug)]
struct Previous {
    /// The index revision it translated.
    revision: u64,
    gateways: Vec<gateway::GatewayModel>,
    status: StatusSet,
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
            self.previous = None;
            self.basis = Some(basis);
        }
        if let Some(previous) = &mut self.previous
            && let Some(changed) = index.http_routes_changed_since(previous.revision)
        {
            let stamp = status::Stamp { now };
            let ctx = http_route::RouteContext::new(
                index,
                &config.controller_name,
                &previous.gateways,
                &stamp,
            );
            let mut touched = http_route::Touched::new();
            http_route::patch_routes(
                &ctx,
                &mut previous.gateways,
                &mut previous.status,
                &mut self.routes,
                &changed,
                &mut touched,
            );
            let table = table::build_table(
                &previous.gateways,
                index.generation(),
                &mut self.sets,
                Some(&touched),
            );
            gateway::write_gateway_status(&previous.gateways, &stamp, &mut previous.status);
            previous.revision = index.latest_revision();
            return Translation {
                table,
                status: previous.status.clone(),
            };
        }
        self.translate_whole(index, config, now, true)
    }

    /// Translates everything (reusing the outcomes of routes that did not
    /// change while the memo is valid); with `keep`, keeps the result to
    /// patch next time.
    fn translate_whole(
        &mut self,
        index: &Index,
        config: &TranslateConfig,
        now: Timestamp,
        keep: bool,
    ) -> Translation {
        let stamp = status::Stamp { now };
        let mut status = StatusSet::default();
        let classes = gateway::accept_classes(index, config, &stamp, &mut status);
        let mut gateways = gateway::build_gateways(index, config, &classes, &stamp);
        let ctx = http_route::RouteContext::new(index, &config.controller_name, &gateways, &stamp);
        http_route::attach_routes(&ctx, &mut gateways, &mut status, &mut self.routes);
        let table = table::build_table(&gateways, index.generation(), &mut self.sets, None);
        gateway::write_gateway_status(&gateways, &stamp, &mut status);
        if keep {
            self.previous = Some(Previous {
                revision: index.latest_revision(),
                gateways,
                status: status.clone(),
            });
        }
        Translation { table, status }
    }
}
