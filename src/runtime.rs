//! Wiring: provider → index → translate → table → proxy, and the live state
//! the admin endpoint reads.
//!
//! One task owns the index: it applies provider events, translates when
//! something changed, swaps the new table in and hands it to the listener
//! task, which binds and drains listeners as diffs. What differs between
//! standalone and controller mode (where listeners bind, what decorates the
//! status) is a [`Mode`].

mod binding;
pub mod controller;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::admin;
use crate::index::Index;
use crate::metrics::Metrics;
use crate::provider::Event;
use crate::provider::file::{ProviderState, spawn_file_provider};
use crate::proxy::listener::{BindState, ListenerSet};
use crate::proxy::{ProxyConfig, Shared, TableHandle};
use crate::routing::RouteTable;
use crate::translate::{StatusSet, TranslateConfig, Translation, Translator};

/// Everything the admin endpoint shows about the running gateway.
#[derive(Debug)]
pub struct LiveState {
    /// The routing table being served.
    pub table: TableHandle,
    /// The status computed with it (subscribe to follow changes).
    pub status: watch::Sender<Arc<StatusSet>>,
    /// What the file provider last reported (standalone mode).
    pub provider: Option<watch::Receiver<ProviderState>>,
    /// Which listeners are bound.
    pub binds: ArcSwap<BindState>,
    /// Config applied and listeners reconciled.
    pub ready: AtomicBool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

impl LiveState {
    /// The current status.
    pub fn status(&self) -> Arc<StatusSet> {
        self.status.borrow().clone()
    }
}

/// A pause in the event stream that ends a burst (see [`Mode::debounce`]).
pub const BURST_GAP: Duration = Duration::from_millis(5);

/// What differs between the ways Gatehouse runs.
pub trait Mode: Send + 'static {
    /// Translation settings for the index as it stands.
    fn config(&mut self, index: &Index) -> TranslateConfig;
    /// Adjusts a translation before it is published.
    fn finish(&mut self, _index: &Index, _translation: &mut Translation) {}
    /// The longest a burst of events is collected before translating; the
    /// burst ends earlier at the first pause of [`BURST_GAP`].
    fn debounce(&self) -> Duration {
        Duration::ZERO
    }
    /// Sees every event before the index applies it.
    fn observe(&mut self, _event: &Event) {}
    /// Whether the index is complete enough to translate (e.g. every
    /// watcher has listed once); until then nothing is served or written.
    fn synced(&self) -> bool {
        true
    }
}

/// Standalone mode: fixed settings.
#[derive(Debug)]
struct Standalone(TranslateConfig);

impl Mode for Standalone {
    fn config(&mut self, _index: &Index) -> TranslateConfig {
        self.0.clone()
    }
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

/// A running gateway.
#[derive(Debug)]
pub struct Gatehouse {
    /// The admin endpoint's bound address.
    pub admin_addr: SocketAddr,
    /// The live state.
    pub state: Arc<LiveState>,
    shutdown: watch::Sender<bool>,
    listeners_task: JoinHandle<()>,
    admin_task: JoinHandle<()>,
    /// Tasks that finish their own work on shutdown (e.g. releasing the
    /// leader Lease), awaited after the listeners have drained.
    background: Vec<JoinHandle<()>>,
}

impl Gatehouse {
    /// A receiver that turns true when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Drains every listener (in-flight requests finish, up to the drain
    /// deadline) and stops.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.listeners_task.await;
        for task in self.background {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a background task did not finish within 5s of shutdown");
            }
        }
        self.admin_task.abort();
    }

    /// Adds a task to await on shutdown.
    pub fn await_on_shutdown(&mut self, task: JoinHandle<()>) {
        self.background.push(task);
    }
}

/// Starts standalone mode; returns once the first config is served.
pub async fn start_standalone(options: StandaloneOptions) -> anyhow::Result<Gatehouse> {
    let StandaloneOptions {
        path,
        translate: translate_config,
        proxy,
        admin_addr,
    } = options;
    let (events_tx, events_rx) = mpsc::channel::<Event>(16);
    let (first, provider) = spawn_file_provider(path.clone(), events_tx);
    first.with_context(|| format!("cannot load {}", path.display()))?;
    let gatehouse = start_pipeline(
        events_rx,
        Standalone(translate_config),
        Some(provider),
        proxy,
        admin_addr,
    )
    .await?;
    tokio::time::timeout(Duration::from_secs(10), wait_ready(&gatehouse.state))
        .await
        .context("the first config was not served within 10s")?;
    Ok(gatehouse)
}

/// Waits until the first config is applied and its listeners reconciled.
pub async fn wait_ready(state: &LiveState) {
    while !state.ready.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Starts the index, listener and admin tasks for a mode and a provider's
/// events.
pub async fn start_pipeline(
    events: mpsc::Receiver<Event>,
    mode: impl Mode,
    provider: Option<watch::Receiver<ProviderState>>,
    proxy: ProxyConfig,
    admin_addr: SocketAddr,
) -> anyhow::Result<Gatehouse> {
    let metrics = Arc::new(Metrics::new());
    let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
    let (status, _) = watch::channel(Arc::new(StatusSet::default()));
    let state = Arc::new(LiveState {
        table: table.clone(),
        status,
        provider,
        binds: ArcSwap::from_pointee(BindState::default()),
        ready: AtomicBool::new(false),
        metrics: metrics.clone(),
    });
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (tables_tx, tables_rx) = watch::channel(Arc::new(RouteTable::default()));
    tokio::spawn(index_task(
        events,
        mode,
        state.clone(),
        tables_tx,
        shutdown_rx.clone(),
    ));
    if state.provider.is_some() {
        tokio::spawn(count_provider_failures(state.clone()));
    }
    let shared = Shared::new(table, metrics, proxy);
    let listeners_task = tokio::spawn(listener_task(shared, tables_rx, state.clone(), shutdown_rx));
    let (admin_addr, admin_task) = admin::spawn_admin(admin_addr, state.clone())
        .await
        .with_context(|| format!("cannot bind the admin endpoint on {admin_addr}"))?;
    Ok(Gatehouse {
        admin_addr,
        state,
        shutdown,
        listeners_task,
        admin_task,
        background: Vec::new(),
    })
}

/// Owns the index: applies events, translates on change, publishes.
async fn index_task(
    mut events: mpsc::Receiver<Event>,
    mut mode: impl Mode,
    state: Arc<LiveState>,
    tables: watch::Sender<Arc<RouteTable>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut index = Index::default();
    let mut translator = Translator::default();
    let mut translated_once = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = shutdown.changed() => None,
        };
        let Some(event) = event else { return };
        let arrived = std::time::Instant::now();
        mode.observe(&event);
        let mut changed = index.handle(event);
        // A burst of changes (a relist, an `kubectl apply` of many objects)
        // becomes one translation; a lone change is translated after a
        // short pause, not after the whole debounce.
        let debounce = mode.debounce();
        if !debounce.is_zero() {
            let deadline = tokio::time::Instant::now() + debounce;
            loop {
                let pause = deadline.min(tokio::time::Instant::now() + BURST_GAP);
                match tokio::time::timeout_at(pause, events.recv()).await {
                    Ok(Some(event)) => {
                        mode.observe(&event);
                        changed |= index.handle(event);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        while let Ok(event) = events.try_recv() {
            mode.observe(&event);
            changed |= index.handle(event);
        }
        // A partial index would serve 500s for Services not listed yet and
        // write status that flaps: wait until the mode says it is whole.
        if !mode.synced() || (!changed && translated_once) {
            continue;
        }
        translated_once = true;
        let config = mode.config(&index);
        let now = k8s_openapi::jiff::Timestamp::now();
        let started = std::time::Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let translation = translator.translate(&index, &config, now);
            (index, translator, translation)
        })
        .await;
        let translate_seconds = started.elapsed().as_secs_f64();
        state.metrics.translate_duration.observe(translate_seconds);
        let translate_ms = translate_seconds * 1e3;
        let (returned, kept, mut translation) = match result {
            Ok(returned) => returned,
            Err(error) => {
                tracing::error!(%error, "translation panicked; keeping the last table");
                return;
            }
        };
        (index, translator) = (returned, kept);
        mode.finish(&index, &mut translation);
        // Traffic first: the status can follow.
        let table = Arc::new(translation.table);
        state.table.store(table.clone());
        state
            .metrics
            .config_apply_duration
            .observe(arrived.elapsed().as_secs_f64());
        let mut status = translation.status;
        status.carry_transition_times(&state.status());
        let old_status = state.status.send_replace(Arc::new(status));
        state.metrics.config_reloads.inc();
        tracing::info!(
            generation = table.generation,
            listeners = table.listeners.len(),
            translate_ms,
            "config applied"
        );
        if tables.is_closed() {
            return;
        }
        // Freeing a large table takes milliseconds: do it off this task,
        // which the next change is waiting on.
        let old_table = tables.send_replace(table);
        tokio::task::spawn_blocking(move || drop((old_table, old_status)));
    }
}

/// Keeps the listeners in step with the table; drains them on shutdown.
async fn listener_task(
    shared: Arc<Shared>,
    mut tables: watch::Receiver<Arc<RouteTable>>,
    state: Arc<LiveState>,
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
                        &state.status(),
                        &table,
                        &binds.failed,
                        k8s_openapi::jiff::Timestamp::now(),
                    );
                    state.status.send_replace(Arc::new(status));
                }
                // Ready once the first config is applied and its listeners
                // reconciled; a listener that cannot bind is reported in its
                // Gateway's status (and on /readyz), not by failing readiness
                // for every other Gateway.
                state.binds.store(Arc::new(binds));
                state.ready.store(true, Ordering::Relaxed);
            }
            _ = shutdown.changed() => break,
        }
    }
    state.ready.store(false, Ordering::Relaxed);
    listeners.shutdown().await;
}

/// Counts failed config reads in the metrics.
async fn count_provider_failures(state: Arc<LiveState>) {
    let Some(mut provider) = state.provider.clone() else {
        return;
    };
    let mut seen = provider.borrow().failures;
    while provider.changed().await.is_ok() {
        let failures = provider.borrow_and_update().failures;
        if failures > seen {
            state.metrics.config_reload_failures.inc_by(failures - seen);
            seen = failures;
        }
    }
}
