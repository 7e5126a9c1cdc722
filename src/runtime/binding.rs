//! Folds listener bind results into the computed status: translate decides
//! what should be bound, only the proxy learns what could be. A Gateway whose
//! address cannot be bound reads `Programmed: False` with `AddressNotUsable`,
//! and its `status.addresses` lists only what is bound.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use gateway_api::gateways::GatewayStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::object::ObjectKey;
use crate::routing::RouteTable;
use crate::translate::{ObjectStatus, StatusSet};

fn set_condition(conditions: &mut Vec<Condition>, next: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == next.type_) {
        Some(c) if c.status == next.status && c.reason == next.reason => {
            c.message = next.message;
        }
        Some(c) => *c = next,
        None => conditions.push(next),
    }
}

/// Returns `status` with the bind failures in `failed` reported on the
/// Gateways and listeners that asked for those addresses.
pub fn with_bind_failures(
    status: &StatusSet,
    table: &RouteTable,
    failed: &BTreeMap<SocketAddr, String>,
    now: Timestamp,
) -> StatusSet {
    let mut out = status.clone();
    if failed.is_empty() {
        return out;
    }
    // (gateway, listener) -> failures; gateway -> IPs that failed.
    let mut by_listener: BTreeMap<(ObjectKey, String), Vec<String>> = BTreeMap::new();
    let mut failed_ips: BTreeMap<ObjectKey, BTreeSet<String>> = BTreeMap::new();
    for (addr, error) in failed {
        let Some(port) = table.listeners.get(addr) else {
            continue;
        };
        for listener in port.listeners.values() {
            by_listener
                .entry((listener.gateway.clone(), listener.listener.clone()))
                .or_default()
                .push(format!("cannot bind {addr}: {error}"));
            failed_ips
                .entry(listener.gateway.clone())
                .or_default()
                .insert(addr.ip().to_string());
        }
    }
    for (gateway, ips) in &failed_ips {
        let Some(entry) = out.entries.get_mut(gateway) else {
            continue;
        };
        let generation = entry.generation;
        let ObjectStatus::Gateway(gw) = &mut entry.status else {
            continue;
        };
        let mut messages = Vec::new();
        let GatewayStatus {
            addresses,
            conditions,
            listeners,
            ..
        } = gw;
        for listener in listeners.iter_mut().flatten() {
            let key = (gateway.clone(), listener.name.clone());
            let Some(errors) = by_listener.get(&key) else {
                continue;
            };
            let message = errors.join("; ");
            messages.push(format!("listener {}: {message}", listener.name));
            set_condition(
                &mut listener.conditions,
                condition(
                    "Programmed",
                    "False",
                    "PortUnavailable",
                    &message,
                    generation,
                    now,
                ),
            );
        }
        // Keep an IP only if some other listener of this Gateway bound it.
        let still_bound: BTreeSet<String> = table
            .listeners
            .iter()
            .filter(|(addr, port)| {
                !failed.contains_key(addr) && port.listeners.values().any(|l| &l.gateway == gateway)
            })
            .map(|(addr, _)| addr.ip().to_string())
            .collect();
        if let Some(list) = addresses {
            list.retain(|a| !ips.contains(&a.value) || still_bound.contains(&a.value));
        }
        if addresses.as_ref().is_some_and(Vec::is_empty) {
            *addresses = None;
        }
        set_condition(
            conditions.get_or_insert_with(Vec::new),
            condition(
                "Programmed",
                "False",
                "AddressNotUsable",
                &messages.join("; "),
                generation,
                now,
            ),
        );
    }
    out
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}
