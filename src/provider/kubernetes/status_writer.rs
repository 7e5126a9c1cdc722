//! Writes the status translate computed back to the cluster: only while we
//! hold the Lease, with server-side apply under one field manager, skipping
//! writes that would change nothing, keeping `lastTransitionTime` where a
//! condition's status did not change, through a bounded queue whose drops
//! are counted, with a periodic resync.
//!
//! [`status_patch`] is the pure part: current status in, patch (or nothing)
//! out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::metrics::Metrics;
use crate::object::{Kind, ObjectKey};
use crate::translate::{StatusEntry, StatusSet};

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "gatehouse.dev/gateway-controller";
/// How many patches may wait to be written.
const QUEUE: usize = 512;
/// How often every status is compared again, even without changes.
const RESYNC: Duration = Duration::from_secs(60);

/// The status the cluster shows: the `status` field of each watched
/// GatewayClass, Gateway and HTTPRoute.
pub type ClusterStatus = BTreeMap<ObjectKey, Value>;

fn conditions_mut(value: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == "conditions" {
                    if let Value::Array(items) = v {
                        out.extend(items.iter_mut());
                    }
                } else {
                    out.extend(conditions_mut(v));
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                out.extend(conditions_mut(v));
            }
        }
        _ => {}
    }
    out
}

/// Drops every `lastTransitionTime`, to compare statuses by content.
fn without_times(value: &Value) -> Value {
    let mut v = value.clone();
    for c in conditions_mut(&mut v) {
        if let Value::Object(map) = c {
            map.remove("lastTransitionTime");
        }
    }
    v
}

/// Copies `lastTransitionTime` from `current` into `desired` for every
/// condition of the same scope (path), type and status.
fn carry_times(desired: &mut Value, current: &Value) {
    fn walk(d: &mut Value, c: &Value) {
        match (d, c) {
            (Value::Object(dm), Value::Object(cm)) => {
                for (k, dv) in dm.iter_mut() {
                    let Some(cv) = cm.get(k) else { continue };
                    if k == "conditions" {
                        let (Value::Array(ds), Value::Array(cs)) = (dv, cv) else {
                            continue;
                        };
                        for dc in ds {
                            let same = cs.iter().find(|cc| {
                                cc.get("type") == dc.get("type")
                                    && cc.get("status") == dc.get("status")
                            });
                            if let (Some(time), Value::Object(dcm)) =
                                (same.and_then(|cc| cc.get("lastTransitionTime")), dc)
                            {
                                dcm.insert("lastTransitionTime".into(), time.clone());
                            }
                        }
                    } else {
                        walk(dv, cv);
                    }
                }
            }
            (Value::Array(ds), Value::Array(cs)) => {
                // Lists of listeners and route parents pair up by their key.
                for dv in ds {
                    let key = dv.get("name").or_else(|| dv.get("parentRef"));
                    let cv = cs.iter().find(|cv| {
                        key.is_some() && (cv.get("name").or_else(|| cv.get("parentRef"))) == key
                    });
                    if let Some(cv) = cv {
                        walk(dv, cv);
                    }
                }
            }
            _ => {}
        }
    }
    walk(desired, current);
}

/// The status to apply to `key`, or `None` when the cluster already shows
/// it. For HTTPRoutes, parents written by other controllers are kept.
pub fn status_patch(
    key: &ObjectKey,
    desired: &StatusEntry,
    current: Option<&Value>,
    controller_name: &str,
) -> Option<Value> {
    let mut status = serde_json::to_value(&desired.status).ok()?;
    if key.kind == Kind::HttpRoute {
        let others: Vec<Value> = current
            .and_then(|c| c.get("parents"))
            .and_then(Value::as_array)
            .map(|parents| {
                parents
                    .iter()
                    .filter(|p| {
                        p.get("controllerName").and_then(Value::as_str) != Some(controller_name)
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(Value::Array(ours)) = status.get_mut("parents") {
            let mut all = others;
            all.append(ours);
            *ours = all;
        }
    }
    if let Some(current) = current {
        carry_times(&mut status, current);
        if without_times(&status) == without_times(current) {
            return None;
        }
    }
    let mut metadata = json!({ "name": key.name });
    if !key.namespace.is_empty() {
        metadata["namespace"] = json!(key.namespace);
    }
    Some(json!({
        "apiVersion": key.kind.api_version(),
        "kind": key.kind.as_str(),
        "metadata": metadata,
        "status": status,
    }))
}

fn api_for(client: &Client, key: &ObjectKey) -> Api<DynamicObject> {
    let (group, version) = key
        .kind
        .api_version()
        .rsplit_once('/')
        .unwrap_or(("", key.kind.api_version()));
    let gvk = GroupVersionKind::gvk(group, version, key.kind.as_str());
    let plural = match key.kind {
        Kind::GatewayClass => "gatewayclasses",
        Kind::Gateway => "gateways",
        Kind::HttpRoute => "httproutes",
        _ => "",
    };
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    if key.namespace.is_empty() {
        Api::all_with(client.clone(), &resource)
    } else {
        Api::namespaced_with(client.clone(), &key.namespace, &resource)
    }
}

/// Writes status while `leader` is true. Ends when `snapshots` closes.
pub fn spawn_status_writer(
    client: Client,
    controller_name: String,
    mut leader: watch::Receiver<bool>,
    mut desired: watch::Receiver<Arc<StatusSet>>,
    mut current: watch::Receiver<ClusterStatus>,
    metrics: Arc<Metrics>,
) {
    let (queue, mut pending) = mpsc::channel::<(ObjectKey, Value)>(QUEUE);
    let writer_metrics = metrics.clone();
    tokio::spawn(async move {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        while let Some((key, patch)) = pending.recv().await {
            match api_for(&client, &key)
                .patch_status(&key.name, &params, &Patch::Apply(&patch))
                .await
            {
                Ok(_) => {
                    writer_metrics.status_writes.inc();
                }
                Err(error) => {
                    writer_metrics.status_write_errors.inc();
                    tracing::warn!(%key, %error, "status write failed");
                }
            }
        }
    });
    tokio::spawn(async move {
        // The last patch queued per object: the cluster's copy lags our
        // writes, so without this the same patch would go out again on
        // every change until the watch catches up. Forgotten on resync and
        // on a new term, so nothing stays unwritten for long.
        let mut sent: BTreeMap<ObjectKey, Value> = BTreeMap::new();
        loop {
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                changed = current.changed() => if changed.is_err() { return },
                changed = leader.changed() => {
                    if changed.is_err() { return }
                    sent.clear();
                }
                _ = tokio::time::sleep(RESYNC) => sent.clear(),
            }
            if !*leader.borrow_and_update() {
                continue;
            }
            let wanted = desired.borrow_and_update().clone();
            let seen = current.borrow_and_update().clone();
            for (key, entry) in &wanted.entries {
                let Some(patch) = status_patch(key, entry, seen.get(key), &controller_name) else {
                    sent.remove(key);
                    continue;
                };
                if sent.get(key) == Some(&patch) {
                    continue;
                }
                if queue.try_send((key.clone(), patch.clone())).is_err() {
                    metrics.status_write_drops.inc();
                } else {
                    sent.insert(key.clone(), patch);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests;
