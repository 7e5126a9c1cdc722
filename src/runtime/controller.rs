//! Controller mode: the same index, translator and proxy, fed by
//! Kubernetes watchers, with Gateway Services, leader election and status
//! write-back.
//!
//! Every replica watches, translates and serves. Listeners bind the
//! container ports recorded in each Gateway's Service; only the Lease
//! holder allocates them (by writing the Services) and writes status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use gateway_api::gateways::{Gateway, GatewayStatus, GatewayStatusAddresses};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use tokio::sync::{mpsc, watch};

use super::{Gatehouse, Mode, start_pipeline};
use crate::index::Index;
use crate::object::Kind;
use crate::provider::Event;
use crate::provider::kubernetes::gateway_service::{self, Plan, ServiceConfig};
use crate::provider::kubernetes::lease::{LeaseConfig, spawn_leader_election};
use crate::provider::kubernetes::status_writer::{FIELD_MANAGER, spawn_status_writer};
use crate::provider::kubernetes::{WATCHED_KINDS, spawn_watchers};
use crate::proxy::ProxyConfig;
use crate::translate::{ObjectStatus, TranslateConfig, Translation};

/// Settings of controller mode.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// A kubeconfig file; in-cluster config (or the default kubeconfig) when absent.
    pub kubeconfig: Option<PathBuf>,
    /// Translation settings (controller name, bind address).
    pub translate: TranslateConfig,
    /// Data-plane tunables.
    pub proxy: ProxyConfig,
    /// Where the admin endpoint listens.
    pub admin_addr: SocketAddr,
    /// Leader election.
    pub lease: LeaseConfig,
    /// Gateway Services.
    pub services: ServiceConfig,
}

/// Builds a client from a kubeconfig file, or in-cluster / default config.
pub async fn client(kubeconfig: Option<&PathBuf>) -> anyhow::Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}

/// Starts controller mode.
pub async fn start_controller(options: ControllerOptions) -> anyhow::Result<Gatehouse> {
    let ControllerOptions {
        kubeconfig,
        translate,
        proxy,
        admin_addr,
        lease,
        services,
    } = options;
    let client = client(kubeconfig.as_ref()).await?;
    let (events_tx, events_rx) = mpsc::channel(1024);
    let (_watchers, cluster_status) = spawn_watchers(client.clone(), events_tx);
    let (plans_tx, plans_rx) = watch::channel(Arc::new(Plan::default()));
    let controller_name = translate.controller_name.clone();
    let service_namespace = services.namespace.clone();
    let mode = Controller {
        translate,
        services,
        plans: plans_tx,
        listed: BTreeSet::new(),
    };
    let mut gatehouse = start_pipeline(events_rx, mode, None, proxy, admin_addr).await?;
    let (leader, election) =
        spawn_leader_election(client.clone(), lease, gatehouse.shutdown_signal());
    gatehouse.await_on_shutdown(election);
    spawn_status_writer(
        client.clone(),
        controller_name,
        leader.clone(),
        gatehouse.state.status.subscribe(),
        cluster_status,
        gatehouse.state.metrics.clone(),
    );
    spawn_service_applier(client, service_namespace, leader, plans_rx);
    Ok(gatehouse)
}

/// The controller's [`Mode`]: listeners bind the container ports recorded
/// in Gateway Services, and Gateway addresses come from those Services.
struct Controller {
    translate: TranslateConfig,
    services: ServiceConfig,
    plans: watch::Sender<Arc<Plan>>,
    /// Kinds whose watcher has delivered its first complete list.
    listed: BTreeSet<Kind>,
}

impl Controller {
    fn our_gateways<'i>(&self, index: &'i Index) -> Vec<&'i Gateway> {
        index
            .gateways()
            .filter(|gw| {
                index
                    .gateway_class("", &gw.spec.gateway_class_name)
                    .is_some_and(|c| c.spec.controller_name == self.translate.controller_name)
            })
            .collect()
    }

    fn managed_services<'i>(&self, index: &'i Index) -> Vec<&'i Service> {
        index
            .services()
            .filter(|s| s.metadata.namespace.as_deref() == Some(self.services.namespace.as_str()))
            .collect()
    }
}

impl Mode for Controller {
    fn config(&mut self, index: &Index) -> TranslateConfig {
        let gateways: Vec<_> = self
            .our_gateways(index)
            .into_iter()
            .map(|gw| (gw, gateway_service::parameters_for(index, gw)))
            .collect();
        let existing = self.managed_services(index);
        let plan = gateway_service::plan(&gateways, &existing, &self.services);
        self.plans.send_if_modified(|current| {
            let changed = **current != plan;
            if changed {
                *current = Arc::new(plan);
            }
            changed
        });
        // Bind only what the Services already record, so every replica
        // binds the same ports; the leader writes new allocations first.
        TranslateConfig {
            listener_ports: Some(gateway_service::allocated(&existing)),
            ..self.translate.clone()
        }
    }

    fn finish(&mut self, index: &Index, translation: &mut Translation) {
        let now = k8s_openapi::jiff::Timestamp::now();
        for (key, entry) in &mut translation.status.entries {
            let generation = entry.generation;
            let (Kind::Gateway, ObjectStatus::Gateway(status)) = (key.kind, &mut entry.status)
            else {
                continue;
            };
            let service = index.service(
                &self.services.namespace,
                &gateway_service::service_name(key),
            );
            let requested: Vec<String> = index
                .gateway(&key.namespace, &key.name)
                .and_then(|gw| gw.spec.addresses.clone())
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| a.value)
                .collect();
            addresses_from_service(status, service, &requested, generation, now);
        }
    }

    fn debounce(&self) -> Duration {
        // Watch events of one `kubectl apply` arrive a few milliseconds
        // apart; a relist arrives as one Restart per kind.
        Duration::from_millis(50)
    }

    fn observe(&mut self, event: &Event) {
        if let Event::Restart(kind, _) = event {
            self.listed.insert(*kind);
        }
    }

    fn synced(&self) -> bool {
        WATCHED_KINDS.iter().all(|k| self.listed.contains(k))
    }
}

/// Sets a Gateway's `status.addresses` from its Service and, when the
/// Service did not get the addresses the Gateway asked for, marks it
/// `Programmed: False` with `AddressNotAssigned`.
fn addresses_from_service(
    status: &mut GatewayStatus,
    service: Option<&Service>,
    requested: &[String],
    generation: Option<i64>,
    now: k8s_openapi::jiff::Timestamp,
) {
    let addresses = service.map(service_addresses).unwrap_or_default();
    status.addresses = (!addresses.is_empty()).then(|| addresses.clone());
    let missing: Vec<&String> = requested
        .iter()
        .filter(|r| !addresses.iter().any(|a| &a.value == *r))
        .collect();
    if missing.is_empty() {
        return;
    }
    let service_name = service
        .and_then(|s| s.metadata.name.as_deref())
        .unwrap_or("(not created yet)");
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "Programmed");
    conditions.push(Condition {
        type_: "Programmed".into(),
        status: "False".into(),
        reason: "AddressNotAssigned".into(),
        message: format!(
            "the Service {service_name} did not get the requested addresses {missing:?}"
        ),
        observed_generation: generation,
        last_transition_time: Time(now),
    });
}

/// A Service's addresses as Gateway status shows them: load-balancer
/// ingress IPs and hostnames, else the cluster IP.
fn service_addresses(service: &Service) -> Vec<GatewayStatusAddresses> {
    let ingress: Vec<GatewayStatusAddresses> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| match (&i.ip, &i.hostname) {
            (Some(ip), _) => Some(GatewayStatusAddresses {
                r#type: Some("IPAddress".into()),
                value: ip.clone(),
            }),
            (None, Some(host)) => Some(GatewayStatusAddresses {
                r#type: Some("Hostname".into()),
                value: host.clone(),
            }),
            (None, None) => None,
        })
        .collect();
    if !ingress.is_empty() {
        return ingress;
    }
    service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None")
        .map(|ip| {
            vec![GatewayStatusAddresses {
                r#type: Some("IPAddress".into()),
                value: ip,
            }]
        })
        .unwrap_or_default()
}

/// While leading, applies planned Gateway Services (server-side apply) and
/// deletes the ones whose Gateway is gone.
fn spawn_service_applier(
    client: Client,
    namespace: String,
    mut leader: watch::Receiver<bool>,
    mut plans: watch::Receiver<Arc<Plan>>,
) {
    tokio::spawn(async move {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut applied: BTreeMap<String, Service> = BTreeMap::new();
        loop {
            tokio::select! {
                changed = plans.changed() => if changed.is_err() { return },
                changed = leader.changed() => {
                    if changed.is_err() { return }
                    // A new term: apply everything again.
                    applied.clear();
                }
            }
            if !*leader.borrow_and_update() {
                continue;
            }
            let plan = plans.borrow_and_update().clone();
            for (key, port) in &plan.exhausted {
                tracing::error!(gateway = %key, port, "no free container port left in the range");
            }
            let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
            for service in &plan.services {
                let Some(name) = service.metadata.name.clone() else {
                    continue;
                };
                if applied.get(&name) == Some(service) {
                    continue;
                }
                let mut body = serde_json::to_value(service).unwrap_or_default();
                body["apiVersion"] = "v1".into();
                body["kind"] = "Service".into();
                match api.patch(&name, &params, &Patch::Apply(&body)).await {
                    Ok(_) => {
                        applied.insert(name, service.clone());
                    }
                    Err(error) => {
                        tracing::warn!(service = %name, %error, "cannot apply Gateway Service")
                    }
                }
            }
            let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
            for name in &plan.stale {
                match api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {
                        applied.remove(name);
                    }
                    Err(error) => {
                        tracing::warn!(service = %name, %error, "cannot delete stale Gateway Service");
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        LoadBalancerIngress, LoadBalancerStatus, ServiceSpec, ServiceStatus,
    };

    fn mk_service(cluster_ip: &str, ingress: &[&str]) -> Service {
        Service {
            spec: Some(ServiceSpec {
                cluster_ip: Some(cluster_ip.into()),
                ..Default::default()
            }),
            status: Some(ServiceStatus {
                load_balancer: Some(LoadBalancerStatus {
                    ingress: Some(
                        ingress
                            .iter()
                            .map(|ip| LoadBalancerIngress {
                                ip: Some((*ip).into()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn programmed(status: &GatewayStatus) -> Option<&Condition> {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Programmed")
    }

    #[test]
    fn gateway_addresses_come_from_the_service() {
        let now = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
        let mut status = GatewayStatus::default();
        addresses_from_service(
            &mut status,
            Some(&mk_service("10.96.0.5", &["203.0.113.7"])),
            &[],
            Some(1),
            now,
        );
        assert_eq!(status.addresses.as_ref().unwrap()[0].value, "203.0.113.7");
        assert!(programmed(&status).is_none());
        // No load balancer yet: the cluster IP.
        let mut status = GatewayStatus::default();
        addresses_from_service(
            &mut status,
            Some(&mk_service("10.96.0.5", &[])),
            &[],
            Some(1),
            now,
        );
        assert_eq!(status.addresses.as_ref().unwrap()[0].value, "10.96.0.5");
    }

    #[test]
    fn requested_addresses_the_service_did_not_get_are_not_assigned() {
        let now = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
        let mut status = GatewayStatus::default();
        let service = mk_service("10.96.0.5", &["203.0.113.7"]);
        addresses_from_service(
            &mut status,
            Some(&service),
            &["203.0.113.9".into()],
            Some(2),
            now,
        );
        let c = programmed(&status).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "AddressNotAssigned")
        );
        assert_eq!(c.observed_generation, Some(2));
        let mut status = GatewayStatus::default();
        addresses_from_service(
            &mut status,
            Some(&service),
            &["203.0.113.7".into()],
            Some(2),
            now,
        );
        assert!(programmed(&status).is_none());
    }
}
