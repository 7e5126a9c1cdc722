//! Bound listeners, kept in step with the routing table as diffs.
//!
//! In comes a table; the set binds the addresses it newly names, drains the
//! ones it no longer names, and leaves every other listener (and all of its
//! connections) alone. Draining stops accepting, lets in-flight requests
//! finish and closes idle connections, up to a deadline.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::Shared;
use super::handler::{ConnInfo, handle};
use super::tls::server_config;
use crate::routing::{ListenerProtocol, RouteTable};

/// One running listener.
#[derive(Debug)]
struct Running {
    protocol: ListenerProtocol,
    local: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What is bound, and what could not be.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct BindState {
    /// Configured address → the address actually bound.
    pub bound: BTreeMap<SocketAddr, SocketAddr>,
    /// Configured address → why it could not be bound.
    pub failed: BTreeMap<SocketAddr, String>,
}

/// The data-plane listeners.
#[derive(Debug)]
pub struct ListenerSet {
    shared: Arc<Shared>,
    running: BTreeMap<SocketAddr, Running>,
    failed: BTreeMap<SocketAddr, String>,
}

impl ListenerSet {
    /// An empty set.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            running: BTreeMap::new(),
            failed: BTreeMap::new(),
        }
    }

    /// Binds, keeps and drains listeners so that exactly the table's
    /// addresses are served.
    pub fn reconcile(&mut self, table: &RouteTable) -> BindState {
        let stale: Vec<SocketAddr> = self
            .running
            .iter()
            .filter(|(addr, r)| {
                table
                    .listeners
                    .get(addr)
                    .is_none_or(|p| p.protocol != r.protocol)
            })
            .map(|(addr, _)| *addr)
            .collect();
        for addr in stale {
            if let Some(running) = self.running.remove(&addr) {
                tracing::info!(%addr, "closing listener");
                let _ = running.stop.send(true);
            }
        }
        self.failed
            .retain(|addr, _| table.listeners.contains_key(addr));
        for (addr, port) in &table.listeners {
            if self.running.contains_key(addr) {
                continue;
            }
            match self.start(*addr, port.protocol) {
                Ok(running) => {
                    tracing::info!(%addr, local = %running.local, protocol = ?port.protocol, "listening");
                    self.failed.remove(addr);
                    self.running.insert(*addr, running);
                }
                Err(error) => {
                    tracing::error!(%addr, %error, "cannot bind listener");
                    self.failed.insert(*addr, error);
                }
            }
        }
        self.state()
    }

    /// What is bound now.
    pub fn state(&self) -> BindState {
        BindState {
            bound: self.running.iter().map(|(k, r)| (*k, r.local)).collect(),
            failed: self.failed.clone(),
        }
    }

    fn start(&self, addr: SocketAddr, protocol: ListenerProtocol) -> Result<Running, String> {
        let listener = bind(addr).map_err(|e| e.to_string())?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let tls = match protocol {
            ListenerProtocol::Http => None,
            ListenerProtocol::Https => Some(TlsAcceptor::from(
                server_config(self.shared.table.clone(), addr).map_err(|e| e.to_string())?,
            )),
        };
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            self.shared.clone(),
            listener,
            addr,
            tls,
            stop_rx,
        ));
        Ok(Running {
            protocol,
            local,
            stop,
            task,
        })
    }

    /// Stops accepting everywhere and waits (up to the drain deadline) for
    /// in-flight requests to finish.
    pub async fn shutdown(&mut self) {
        let running = std::mem::take(&mut self.running);
        for r in running.values() {
            let _ = r.stop.send(true);
        }
        for (_, r) in running {
            let _ = r.task.await;
        }
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Rebinding right after a restart must not wait out TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout)
        .max_buf_size(shared.config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(shared.config.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(%addr, %error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = Arc::new(ConnInfo::new(remote, addr, tls.is_some()));
                let watcher = graceful.watcher();
                let shared = shared.clone();
                let builder = builder.clone();
                let tls = tls.clone();
                tokio::spawn(serve_connection(shared, builder, stream, conn, tls, watcher));
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let deadline = shared.config.drain_timeout;
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(%addr, ?deadline, "drain deadline passed; closing remaining connections");
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    conn: Arc<ConnInfo>,
    tls: Option<TlsAcceptor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    shared.metrics.open_connections.inc();
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handle(shared.clone(), conn.clone(), req))
    };
    let result = match tls {
        None => {
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            watcher.watch(conn.into_owned()).await
        }
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(shared.config.header_read_timeout, acceptor.accept(stream))
                    .await;
            match handshake {
                Ok(Ok(tls_stream)) => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), service);
                    watcher.watch(conn.into_owned()).await
                }
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    Ok(())
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    Ok(())
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
    shared.metrics.open_connections.dec();
}
