//! Leader election on a `coordination.k8s.io` Lease.
//!
//! Every replica serves traffic; only the Lease holder writes status and
//! manages Gateway Services. The decision is a pure function of the Lease,
//! our identity and the time ([`decide`]); the loop around it reads the
//! Lease, writes it with optimistic concurrency (resourceVersion), and
//! publishes whether we lead.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// Settings of leader election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The Lease's namespace (Gatehouse's own).
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a holder keeps the Lease without renewing it.
    pub lease_duration: Duration,
    /// How often the holder renews (and followers check).
    pub renew_interval: Duration,
}

/// What to do with the Lease as it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or the holder let it expire: take it.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds a live Lease.
    Follow {
        /// The holder.
        holder: String,
    },
}

/// Decides from the Lease spec, our identity and the time.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return Decision::Acquire;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(15));
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(|t| t.0);
    let expired = match renewed {
        Some(t) => t + SignedDuration::from_secs(duration) < now,
        None => true,
    };
    if expired {
        Decision::Acquire
    } else {
        Decision::Follow {
            holder: holder.to_string(),
        }
    }
}

/// The Lease spec after `decision` by `identity` at `now`.
pub fn next_spec(
    current: Option<&LeaseSpec>,
    decision: &Decision,
    config: &LeaseConfig,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let mut spec = current.cloned().unwrap_or_default();
    match decision {
        Decision::Follow { .. } => return None,
        Decision::Acquire => {
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        Decision::Renew => {}
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds =
        Some(i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX));
    Some(spec)
}

/// Runs leader election until `shutdown` fires, publishing whether we lead.
/// On shutdown the Lease is released so a successor need not wait for it
/// to expire: await the returned task before exiting.
pub fn spawn_leader_election(
    client: Client,
    config: LeaseConfig,
    mut shutdown: watch::Receiver<bool>,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (leader_tx, leader_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let mut last_renewal: Option<std::time::Instant> = None;
        loop {
            let leading = match step(&api, &config).await {
                Ok(leading) => {
                    if leading {
                        last_renewal = Some(std::time::Instant::now());
                    }
                    leading
                }
                Err(error) => {
                    tracing::warn!(%error, "leader election step failed");
                    // Keep leading only while our last renewal is still valid.
                    last_renewal.is_some_and(|t| t.elapsed() < config.lease_duration)
                }
            };
            leader_tx.send_if_modified(|current| {
                let changed = *current != leading;
                if changed {
                    tracing::info!(leading, identity = %config.identity, "leadership changed");
                    *current = leading;
                }
                changed
            });
            tokio::select! {
                _ = tokio::time::sleep(config.renew_interval) => {}
                _ = shutdown.changed() => break,
            }
        }
        if *leader_tx.borrow() {
            // Step down first, so nothing more is written as leader.
            leader_tx.send_replace(false);
            match release(&api, &config).await {
                Ok(()) => tracing::info!("released the leader Lease"),
                Err(error) => tracing::warn!(%error, "cannot release the leader Lease"),
            }
        }
    });
    (leader_rx, task)
}

async fn step(api: &Api<Lease>, config: &LeaseConfig) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&config.name).await?;
    let decision = decide(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &config.identity,
        now,
    );
    let Some(spec) = next_spec(
        current.as_ref().and_then(|l| l.spec.as_ref()),
        &decision,
        config,
        now,
    ) else {
        return Ok(false);
    };
    let result = match current {
        // replace() carries the resourceVersion we read: if someone else
        // wrote the Lease meanwhile, the API server answers 409 and we lost.
        Some(mut lease) => {
            lease.spec = Some(spec);
            api.replace(&config.name, &PostParams::default(), &lease)
                .await
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

async fn release(api: &Api<Lease>, config: &LeaseConfig) -> Result<(), kube::Error> {
    if let Some(mut lease) = api.get_opt(&config.name).await? {
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(config.identity.as_str());
        if ours {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            api.replace(&config.name, &PostParams::default(), &lease)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk_config(identity: &str) -> LeaseConfig {
        LeaseConfig {
            namespace: "gatehouse".into(),
            name: "gatehouse-leader".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn election_state_transitions() {
        let a = mk_config("pod-a");
        let b = mk_config("pod-b");
        // No Lease: a acquires.
        assert_eq!(decide(None, "pod-a", at(0)), Decision::Acquire);
        let held = next_spec(None, &Decision::Acquire, &a, at(0)).unwrap();
        assert_eq!(held.holder_identity.as_deref(), Some("pod-a"));
        assert_eq!(held.lease_transitions, Some(1));
        // b follows while a's Lease is live; a renews.
        assert_eq!(
            decide(Some(&held), "pod-b", at(10)),
            Decision::Follow {
                holder: "pod-a".into()
            }
        );
        assert_eq!(decide(Some(&held), "pod-a", at(10)), Decision::Renew);
        let renewed = next_spec(Some(&held), &Decision::Renew, &a, at(10)).unwrap();
        assert_eq!(renewed.acquire_time, held.acquire_time);
        assert_eq!(renewed.renew_time, Some(MicroTime(at(10))));
        // a stops renewing: after the duration b takes over (fail-over).
        assert!(matches!(
            decide(Some(&renewed), "pod-b", at(24)),
            Decision::Follow { .. }
        ));
        assert_eq!(decide(Some(&renewed), "pod-b", at(26)), Decision::Acquire);
        let taken = next_spec(Some(&renewed), &Decision::Acquire, &b, at(26)).unwrap();
        assert_eq!(taken.holder_identity.as_deref(), Some("pod-b"));
        assert_eq!(taken.lease_transitions, Some(2));
        // A released Lease (no holder) is free at once.
        let mut released = taken.clone();
        released.holder_identity = None;
        assert_eq!(decide(Some(&released), "pod-a", at(27)), Decision::Acquire);
        // Followers write nothing.
        assert!(
            next_spec(
                Some(&taken),
                &Decision::Follow {
                    holder: "pod-b".into()
                },
                &a,
                at(27)
            )
            .is_none()
        );
    }
}
