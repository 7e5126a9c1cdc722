//! Keep-alive HTTP/1.1 connections to upstream endpoints.
//!
//! In comes a request for one endpoint (`host:port`); out comes the
//! upstream's response. A connection serves one request at a time: it is
//! taken from its endpoint's idle list (the most recently used first, so
//! surplus connections age out), and goes back when the response body has
//! been read to its end. A response that ends any other way (the client
//! went away, the protocol was switched, the upstream said
//! `Connection: close`) takes its connection with it. A request that meets
//! a pooled connection closed before a byte of it was written is sent again
//! on another connection: it never reached the upstream, so that is safe.
//!
//! Compared with a general-purpose pooled client this skips what a proxy
//! does not need on every request: no URI-keyed lookup, no task spawned per
//! response to watch for the connection becoming idle again.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::ProxyBody;

type Sender = http1::SendRequest<ProxyBody>;

/// How connections are opened and how long idle ones are kept.
#[derive(Clone, Copy, Debug)]
pub(super) struct PoolSettings {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a connection may sit unused before it is closed.
    pub idle_timeout: Duration,
    /// Idle connections kept per endpoint; more are closed when they free up.
    pub max_idle_per_endpoint: usize,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub(super) enum PoolError {
    /// No connection could be made.
    #[error("{0}")]
    Connect(#[source] io::Error),
    /// The connection failed before or while the request was answered.
    #[error("{0}")]
    Request(#[source] hyper::Error),
}

/// Idle HTTP/1.1 connections, by endpoint.
#[derive(Debug)]
pub(super) struct Http1Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    idle: Mutex<HashMap<Authority, Vec<Idle>>>,
    settings: PoolSettings,
    reaper_started: AtomicBool,
}

#[derive(Debug)]
struct Idle {
    sender: Sender,
    since: Instant,
}

impl Http1Pool {
    pub(super) fn new(settings: PoolSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                idle: Mutex::new(HashMap::new()),
                settings,
                reaper_started: AtomicBool::new(false),
            }),
        }
    }

    /// Sends `req` (origin-form URI, `Host` set) to `endpoint`.
    pub(super) async fn send(
        &self,
        endpoint: &Authority,
        mut req: Request<ProxyBody>,
    ) -> Result<Response<PooledBody>, PoolError> {
        loop {
            let (mut sender, reused) = match self.checkout(endpoint).await {
                Some(sender) => (sender, true),
                // Boxed: the rare connect path would otherwise enlarge
                // every request's future, which is moved into place per request.
                None => (Box::pin(self.connect(endpoint)).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(response) => return Ok(self.inner.attach(endpoint, sender, response)),
                Err(mut error) => match error.take_message() {
                    // Not written: safe to send elsewhere. Each pooled
                    // connection is tried once, a fresh one ends the loop.
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(PoolError::Request(error.into_error())),
                },
            }
        }
    }

    /// An idle connection to `endpoint` that is ready for a request.
    async fn checkout(&self, endpoint: &Authority) -> Option<Sender> {
        loop {
            let mut sender = self.inner.take(endpoint)?;
            // The connection task may still be finishing the previous
            // exchange; a closed connection answers with an error.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, endpoint: &Authority) -> Result<Sender, PoolError> {
        let host = endpoint.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = endpoint.port_u16().unwrap_or(80);
        let stream = tokio::time::timeout(
            self.inner.settings.connect_timeout,
            TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| PoolError::Connect(io::Error::new(io::ErrorKind::TimedOut, "timed out")))?
        .map_err(PoolError::Connect)?;
        stream.set_nodelay(true).map_err(PoolError::Connect)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(PoolError::Request)?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        self.start_reaper();
        Ok(sender)
    }

    /// Closes connections idle past the timeout, from a task that ends with
    /// the pool.
    fn start_reaper(&self) {
        if self.inner.reaper_started.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool = Arc::downgrade(&self.inner);
        let period = (self.inner.settings.idle_timeout / 2).max(Duration::from_millis(100));
        tokio::spawn(reap(pool, period));
    }
}

async fn reap(pool: Weak<Inner>, period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let timeout = pool.settings.idle_timeout;
        pool.lock().retain(|_, idle| {
            idle.retain(|conn| !conn.sender.is_closed() && conn.since.elapsed() < timeout);
            !idle.is_empty()
        });
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<Authority, Vec<Idle>>> {
        // The map stays consistent whatever a panicking holder was doing.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, endpoint: &Authority) -> Option<Sender> {
        let mut idle = self.lock();
        let list = idle.get_mut(endpoint)?;
        while let Some(conn) = list.pop() {
            if !conn.sender.is_closed() {
                return Some(conn.sender);
            }
        }
        None
    }

    fn put(&self, endpoint: Authority, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        let list = idle.entry(endpoint).or_default();
        if list.len() < self.settings.max_idle_per_endpoint {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn attach(
        self: &Arc<Self>,
        endpoint: &Authority,
        sender: Sender,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        // After a protocol switch the connection belongs to the upgrade.
        let give_back = (response.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| GiveBack {
            pool: self.clone(),
            endpoint: endpoint.clone(),
            sender,
        });
        response.map(|body| PooledBody { body, give_back })
    }
}

/// A response body that returns its connection to the pool once read to
/// the end.
#[derive(Debug)]
pub(super) struct PooledBody {
    body: Incoming,
    give_back: Option<GiveBack>,
}

#[derive(Debug)]
struct GiveBack {
    pool: Arc<Inner>,
    endpoint: Authority,
    sender: Sender,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(GiveBack {
            pool,
            endpoint,
            sender,
        }) = self.give_back.take()
        {
            pool.put(endpoint, sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.release(),
            Some(Ok(_)) if this.body.is_end_stream() => this.release(),
            Some(Ok(_)) => {}
            // A broken exchange leaves the connection unusable.
            Some(Err(_)) => this.give_back = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body with nothing left (empty, or read to the end) need not be
        // polled again; one dropped halfway closes its connection.
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
mod tests;
