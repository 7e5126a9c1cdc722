//! The Kubernetes provider: kube-runtime watchers for every kind Gatehouse
//! reads, turned into index events.
//!
//! Each watcher's initial list (and every relist after a watch error)
//! becomes one [`Event::Restart`] for its kind, so objects deleted while the
//! watch was down disappear; later changes become `Apply` / `Delete`.
//! `managedFields` are stripped before anything is kept. Secrets are watched
//! only when they are `kubernetes.io/tls`, so Gatehouse never caches the
//! cluster's other Secrets.

pub mod gateway_service;
pub mod lease;
pub mod status_writer;

use std::fmt::Debug;

use futures_util::StreamExt;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::Event;
use crate::object::{Kind, Object};
use crate::policy::{Backend, DirectResponse, GatewayParameters};
use status_writer::ClusterStatus;

/// Turns one watcher's events into index events, buffering the initial
/// list until it is complete.
#[derive(Debug)]
pub struct WatchTranslator {
    kind: Kind,
    listing: Option<Vec<Object>>,
}

impl WatchTranslator {
    /// A translator for watcher events of `kind`.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            listing: None,
        }
    }

    /// The index event for one watcher event, if any is due yet.
    pub fn event(&mut self, event: WatchEvent<Object>) -> Option<Event> {
        match event {
            WatchEvent::Init => {
                self.listing = Some(Vec::new());
                None
            }
            WatchEvent::InitApply(object) => {
                self.listing.get_or_insert_with(Vec::new).push(object);
                None
            }
            WatchEvent::InitDone => Some(Event::Restart(
                self.kind,
                self.listing.take().unwrap_or_default(),
            )),
            WatchEvent::Apply(object) => Some(Event::Apply(Box::new(object))),
            WatchEvent::Delete(object) => Some(Event::Delete(object.key())),
        }
    }
}

fn is_not_found(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => status.code == 404,
        _ => false,
    }
}

fn strip_managed_fields<K: Resource>(mut object: K) -> K {
    object.meta_mut().managed_fields = None;
    object
}

fn map_event<K>(event: WatchEvent<K>, f: impl Fn(K) -> Object) -> WatchEvent<Object> {
    match event {
        WatchEvent::Apply(k) => WatchEvent::Apply(f(k)),
        WatchEvent::Delete(k) => WatchEvent::Delete(f(k)),
        WatchEvent::Init => WatchEvent::Init,
        WatchEvent::InitApply(k) => WatchEvent::InitApply(f(k)),
        WatchEvent::InitDone => WatchEvent::InitDone,
    }
}

/// Moves the `status` of a watched object into the cluster-status map.
fn split_status(event: &mut WatchEvent<Object>, cluster: &watch::Sender<ClusterStatus>) {
    match event {
        WatchEvent::Apply(object) | WatchEvent::InitApply(object) => {
            if let Some(status) = object.take_status() {
                let key = object.key();
                cluster.send_if_modified(|map| {
                    map.insert(key, status.clone()).as_ref() != Some(&status)
                });
            }
        }
        WatchEvent::Delete(object) => {
            let key = object.key();
            cluster.send_if_modified(|map| map.remove(&key).is_some());
        }
        WatchEvent::Init | WatchEvent::InitDone => {}
    }
}

/// Watches every object of kind `K` cluster-wide and sends index events.
fn spawn_watch<K>(
    api: Api<K>,
    config: watcher::Config,
    kind: Kind,
    wrap: fn(K) -> Object,
    events: mpsc::Sender<Event>,
    cluster: watch::Sender<ClusterStatus>,
) -> JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let mut translator = WatchTranslator::new(kind);
        let mut listed = false;
        let stream = watcher::watcher(api, config).default_backoff();
        futures_util::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            let mut event = match item {
                Ok(event) => map_event(event, |k| wrap(strip_managed_fields(k))),
                Err(error) => {
                    // A kind whose CRD is not installed lists as empty, so
                    // the other kinds are still served; the watcher keeps
                    // retrying and picks the CRD up once it appears.
                    if !listed && is_not_found(&error) {
                        tracing::warn!(%kind, "not served by the API server (CRD not installed?); treating it as empty");
                        listed = true;
                        if events.send(Event::Restart(kind, Vec::new())).await.is_err() {
                            return;
                        }
                    } else {
                        tracing::warn!(%kind, %error, "watch failed; retrying with backoff");
                    }
                    continue;
                }
            };
            if matches!(event, WatchEvent::InitDone) {
                listed = true;
            }
            split_status(&mut event, &cluster);
            if let Some(event) = translator.event(event)
                && events.send(event).await.is_err()
            {
                return;
            }
        }
    })
}

/// Every kind the controller watches; translation waits for each one's
/// first list.
pub const WATCHED_KINDS: [Kind; 11] = crate::object::ALL_KINDS;

/// Starts a watcher per kind; returns their tasks and the status the
/// cluster shows for our kinds. The tasks end when `events` closes.
pub fn spawn_watchers(
    client: Client,
    events: mpsc::Sender<Event>,
) -> (Vec<JoinHandle<()>>, watch::Receiver<ClusterStatus>) {
    let all = watcher::Config::default();
    let tls_only = watcher::Config::default().fields("type=kubernetes.io/tls");
    let (cluster, cluster_rx) = watch::channel(ClusterStatus::new());
    let c = &cluster;
    let tasks = vec![
        spawn_watch::<GatewayClass>(
            Api::all(client.clone()),
            all.clone(),
            Kind::GatewayClass,
            Object::GatewayClass,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<Gateway>(
            Api::all(client.clone()),
            all.clone(),
            Kind::Gateway,
            Object::Gateway,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<HttpRoute>(
            Api::all(client.clone()),
            all.clone(),
            Kind::HttpRoute,
            Object::HttpRoute,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<ReferenceGrant>(
            Api::all(client.clone()),
            all.clone(),
            Kind::ReferenceGrant,
            Object::ReferenceGrant,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<Namespace>(
            Api::all(client.clone()),
            all.clone(),
            Kind::Namespace,
            Object::Namespace,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<Service>(
            Api::all(client.clone()),
            all.clone(),
            Kind::Service,
            Object::Service,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<EndpointSlice>(
            Api::all(client.clone()),
            all.clone(),
            Kind::EndpointSlice,
            Object::EndpointSlice,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<Secret>(
            Api::all(client.clone()),
            tls_only,
            Kind::Secret,
            Object::Secret,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<Backend>(
            Api::all(client.clone()),
            all.clone(),
            Kind::Backend,
            Object::Backend,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<GatewayParameters>(
            Api::all(client.clone()),
            all.clone(),
            Kind::GatewayParameters,
            Object::GatewayParameters,
            events.clone(),
            c.clone(),
        ),
        spawn_watch::<DirectResponse>(
            Api::all(client),
            all,
            Kind::DirectResponse,
            Object::DirectResponse,
            events,
            c.clone(),
        ),
    ];
    (tasks, cluster_rx)
}

#[cfg(test)]
mod tests;
