//! Wiring: provider → index → translate → table → proxy, and the live state
//! the admin endpoint reads.
//!
//! One task owns the index: it applies provider events, translates when
//! something changed, swaps the new table in and hands it to the listener
//! task, which binds and drains listeners as diffs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

mod binding;

use crate::admin;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::provider::Event;
use crate::provider::file::{ProviderState, spawn_file_provider};
use crate::proxy::listener::{BindState, ListenerSet};
use crate::proxy::{ProxyConfig, Shared, TableHandle};
use crate::routing::RouteTable;
use crate::translate::{StatusSet, TranslateConfig, translate};

/// Everything the admin endpoint shows about the running gateway.
#[derive(Debug)]
pub struct LiveState {
    /// The routing table being served.
    pub table: TableHandle,
    /// The status computed with it.
    pub status: ArcSwap<StatusSet>,
    /// What the file provider last reported.
    pub provider: watch::Receiver<ProviderState>,
    /// Which listeners are bound.
    pub binds: ArcSwap<BindState>,
    /// Config loaded and every listener bound.
    pub ready: AtomicBool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// Settings of standalone mode.
#[derive(Clone, Debug)]
pub struct StandaloneOptions {
    /// A YAML file or a directory of them.
    pub path: PathBuf,
    /// Translation settings.
    pub translate: TranslateConfig,
    /// Data-plane tunables.
    pub proxy: ProxyConfig,
    /// Where the admin endpoint listens.
    pub admin_addr: SocketAddr,
}

/// A running standalone gateway.
#[derive(Debug)]
pub struct Gatehouse {
    /// The admin endpoint's bound address.
    pub admin_addr: SocketAddr,
    /// The live state.
    pub state: Arc<LiveState>,
    shutdown: watch::Sender<bool>,
    listeners_task: JoinHandle<()>,
    admin_task: JoinHandle<()>,
}

impl Gatehouse {
    /// Drains every listener (in-flight requests finish, up to the drain
    /// deadline) and stops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.listeners_task.await;
        self.admin_task.abort();
    }
}

/// Starts standalone mode; returns once the first config is served.
pub async fn start_standalone(options: StandaloneOptions) -> anyhow::Result<Gatehouse> {
    let StandaloneOptions {
        path,
        translate: translate_config,
        proxy: proxy_config,
        admin_addr,
    } = options;
    let metrics = Arc::new(Metrics::new());
    let (events_tx, events_rx) = mpsc::channel::<Event>(16);
    let (first, provider) = spawn_file_provider(path.clone(), events_tx);
    first.with_context(|| format!("cannot load {}", path.display()))?;
    let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let state = Arc::new(LiveState {
        table: table.clone(),
        status: ArcSwap::from_pointee(StatusSet::default()),
        provider,
        binds: ArcSwap::from_pointee(BindState::default()),
        ready: AtomicBool::new(false),
        metrics: metrics.clone(),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (tables_tx, tables_rx) = watch::channel(Arc::new(RouteTable::default()));
    tokio::spawn(index_task(
        events_rx,
        translate_config,
        state.clone(),
        tables_tx,
        shutdown_rx.clone(),
    ));
    tokio::spawn(count_provider_failures(state.clone()));
    let shared = Shared::new(table, metrics, proxy_config);
    let (served_tx, mut served_rx) = watch::channel(false);
    let listeners_task = tokio::spawn(listener_task(
        shared,
        tables_rx,
        state.clone(),
        served_tx,
        shutdown_rx,
    ));
    let (admin_addr, admin_task) = admin::spawn_admin(admin_addr, state.clone())
        .await
        .with_context(|| format!("cannot bind the admin endpoint on {admin_addr}"))?;
    tokio::time::timeout(
        Duration::from_secs(10),
        served_rx.wait_for(|served| *served),
    )
    .await
    .context("the first config was not served within 10s")?
    .context("the listener task stopped")?;
    Ok(Gatehouse {
        admin_addr,
        state,
        shutdown,
        listeners_task,
        admin_task,
    })
}

/// Owns the index: applies events, translates on change, publishes.
async fn index_task(
    mut events: mpsc::Receiver<Event>,
    config: TranslateConfig,
    state: Arc<LiveState>,
    tables: watch::Sender<Arc<RouteTable>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut index = Index::default();
    let mut translated_once = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = shutdown.changed() => None,
        };
        let Some(event) = event else { return };
        let mut changed = index.handle(event);
        // Apply whatever else is already queued before translating once.
        while let Ok(event) = events.try_recv() {
            changed |= index.handle(event);
        }
        if !changed && translated_once {
            continue;
        }
        translated_once = true;
        let config = config.clone();
        let now = k8s_openapi::jiff::Timestamp::now();
        let result = tokio::task::spawn_blocking(move || {
            let translation = translate(&index, &config, now);
            (index, translation)
        })
        .await;
        let (returned, translation) = match result {
            Ok(pair) => pair,
            Err(error) => {
                tracing::error!(%error, "translation panicked; keeping the last table");
                return;
            }
        };
        index = returned;
        let mut status = translation.status;
        status.carry_transition_times(&state.status.load());
        let table = Arc::new(translation.table);
        state.table.store(table.clone());
        state.status.store(Arc::new(status));
        state.metrics.config_reloads.inc();
        tracing::info!(
            generation = table.generation,
            listeners = table.listeners.len(),
            "config applied"
        );
        if tables.send(table).is_err() {
            return;
        }
    }
}

/// Keeps the listeners in step with the table; drains them on shutdown.
async fn listener_task(
    shared: Arc<Shared>,
    mut tables: watch::Receiver<Arc<RouteTable>>,
    state: Arc<LiveState>,
    served: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut listeners = ListenerSet::new(shared);
    loop {
        tokio::select! {
            changed = tables.changed() => {
                if changed.is_err() {
                    break;
                }
                let table = tables.borrow_and_update().clone();
                let binds = listeners.reconcile(&table);
                if !binds.failed.is_empty() {
                    let status = binding::with_bind_failures(
                        &state.status.load(),
                        &table,
                        &binds.failed,
                        k8s_openapi::jiff::Timestamp::now(),
                    );
                    state.status.store(Arc::new(status));
                }
                // Ready once the first config is applied and its listeners
                // reconciled; a listener that cannot bind is reported in its
                // Gateway's status (and on /readyz), not by failing readiness
                // for every other Gateway.
                state.ready.store(true, Ordering::Relaxed);
                state.binds.store(Arc::new(binds));
                let _ = served.send(true);
            }
            _ = shutdown.changed() => break,
        }
    }
    state.ready.store(false, Ordering::Relaxed);
    listeners.shutdown().await;
}

/// Counts failed config reads in the metrics.
async fn count_provider_failures(state: Arc<LiveState>) {
    let mut provider = state.provider.clone();
    let mut seen = provider.borrow().failures;
    while provider.changed().await.is_ok() {
        let failures = provider.borrow_and_update().failures;
        if failures > seen {
            state.metrics.config_reload_failures.inc_by(failures - seen);
            seen = failures;
        }
    }
}
