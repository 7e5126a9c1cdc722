//! The routing table: from the Gateway models, with the routes attached to
//! their listeners, to the immutable [`RouteTable`] the proxy serves.
//!
//! Route sets are reused from the previous table wherever a host collects
//! the very entries it had, so that an edit rebuilds only what it touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use super::gateway::{GatewayModel, ListenerModel};
use super::http_route::Touched;
use crate::object::ObjectKey;
use crate::routing::host::HostMap;
use crate::routing::route_set::RouteSet;
use crate::routing::{ListenerRoutes, PortTable, RouteTable};

/// The previous table's routes, by Gateway and listener. A host of a
/// listener that collects the very entries its previous set was built from
/// gets that set back instead of sorting and indexing them again.
#[derive(Debug, Default)]
pub(super) struct RouteSetMemo {
    listeners: HashMap<(ObjectKey, String), Arc<ListenerRoutes>>,
}

/// Builds the routing table from the programmed listeners, taking the
/// route entries attached to them (sorted by precedence). With `touched`
/// (a patch of the previous translation), listeners no changed route
/// touched keep their routes, and touched ones rebuild only the touched
/// hosts.
pub(super) fn build_table(
    gateways: &[GatewayModel],
    generation: u64,
    memo: &mut RouteSetMemo,
    touched: Option<&Touched>,
) -> RouteTable {
    let mut ports: BTreeMap<SocketAddr, PortTable> = BTreeMap::new();
    let mut previous = std::mem::take(&mut memo.listeners);
    for (gi, gw) in gateways.iter().enumerate() {
        for (li, listener) in gw.listeners.iter().enumerate() {
            let Some(protocol) = listener.protocol.filter(|_| listener.programmed()) else {
                continue;
            };
            let id = (gw.key.clone(), listener.name.clone());
            let before = previous.remove(&id);
            let routes = match (before, touched) {
                // Patching: a listener no changed route touched is served
                // by the very routes it had.
                (Some(before), Some(touched)) => match touched.get(&(gi, li)) {
                    None => before,
                    Some(hostnames) => Arc::new(patched_routes(&before, listener, hostnames)),
                },
                (before, _) => {
                    let before = before.as_ref().map(|routes| &routes.hosts);
                    // A host left with no entries (its routes have no
                    // rules) serves nothing: it is left out.
                    let hosts = listener
                        .hosts
                        .map_with(before, |entries, before| match before {
                            _ if entries.is_empty() => None,
                            Some(set) if set.built_from(entries) => Some(set.clone()),
                            _ => Some(Arc::new(RouteSet::new(entries.clone()))),
                        });
                    Arc::new(ListenerRoutes {
                        gateway: gw.key.clone(),
                        gateway_label: format!("{}/{}", gw.key.namespace, gw.key.name).into(),
                        listener: listener.name.clone(),
                        port: listener.port,
                        hosts,
                    })
                }
            };
            memo.listeners.insert(id, routes.clone());
            for bind in &listener.binds {
                let port = ports.entry(*bind).or_insert_with(|| PortTable {
                    protocol,
                    listeners: HostMap::default(),
                    certificates: HostMap::default(),
                });
                *port
                    .listeners
                    .entry(listener.hostname.as_deref(), || routes.clone()) = routes.clone();
                if let Some(cert) = &listener.certificate {
                    *port
                        .certificates
                        .entry(listener.hostname.as_deref(), || cert.clone()) = cert.clone();
                }
            }
        }
    }
    RouteTable {
        listeners: ports.into_iter().map(|(k, v)| (k, Arc::new(v))).collect(),
        generation,
    }
}

/// The routes of a listener whose `hostnames` changed: the other hosts keep
/// their route sets.
fn patched_routes(
    before: &ListenerRoutes,
    listener: &ListenerModel,
    hostnames: &BTreeSet<Option<String>>,
) -> ListenerRoutes {
    let mut hosts = before.hosts.clone();
    for hostname in hostnames {
        let hostname = hostname.as_deref();
        match listener.hosts.get(hostname) {
            Some(entries) if !entries.is_empty() => {
                *hosts.entry(hostname, Default::default) = Arc::new(RouteSet::new(entries.clone()));
            }
            _ => {
                hosts.remove(hostname);
            }
        }
    }
    ListenerRoutes {
        gateway: before.gateway.clone(),
        gateway_label: before.gateway_label.clone(),
        listener: before.listener.clone(),
        port: before.port,
        hosts,
    }
}
