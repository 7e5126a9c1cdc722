//! Keep-alive HTTP/1.1 connections to upstream endpoints.
//!
//! In comes a request for one endpoint (`host:port`); out comes the
//! upstream's response. A connection serves one request at a time: it is
//! taken from its endpoint's idle list (the most recently used first, so
//! surplus connections age out), and goes back when the response body has
//! been read to its end. A response that ends any other way (the client
//! went away, the protocol was switched, the upstream said
//! `Connection: close`, the body ends with the connection) takes its
//! connection with it. An idle connection the upstream has closed is seen
//! at checkout from the readiness the runtime already holds (no system
//! call); a bodiless idempotent request that meets a closed reused
//! connection anyway, before a byte of answer, is sent again on a fresh one.
//!
//! The exchange itself ([`codec`]) runs in the request's own task: no
//! connection task and no channel per request, which a general-purpose
//! client (hyper's `client::conn`) needs and a proxy does not.

mod codec;

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::uri::Authority;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use super::ProxyBody;
pub(super) use codec::CodecError;
use codec::{Connection, Decoder, Outgoing};

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
    Request(#[source] CodecError),
}

/// An upstream response, and the connection itself when the upstream
/// switched protocols (`101`): the socket and the bytes read past the head.
pub(super) struct Answer {
    pub response: Response<PooledBody>,
    pub upgraded: Option<(TcpStream, Bytes)>,
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
    conn: Connection,
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
        req: Request<ProxyBody>,
    ) -> Result<Answer, PoolError> {
        let mut out = Outgoing::new(req);
        loop {
            let (mut conn, reused) = match self.inner.take(endpoint) {
                Some(conn) => (conn, true),
                // Boxed: the rare connect path would otherwise enlarge
                // every request's future, which is moved into place per request.
                None => (Box::pin(self.connect(endpoint)).await?, false),
            };
            let again = if reused { out.replay() } else { None };
            match codec::exchange(&mut conn, out).await {
                Ok(head) => return Ok(self.inner.attach(endpoint, conn, head)),
                Err(failure) => match again {
                    Some(replay) if failure.nothing_received => out = replay,
                    _ => return Err(PoolError::Request(failure.error)),
                },
            }
        }
    }

    async fn connect(&self, endpoint: &Authority) -> Result<Connection, PoolError> {
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
        self.start_reaper();
        Ok(Connection::new(stream))
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
            idle.retain_mut(|idle| idle.since.elapsed() < timeout && idle.conn.is_open());
            !idle.is_empty()
        });
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<Authority, Vec<Idle>>> {
        // The map stays consistent whatever a panicking holder was doing.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection to `endpoint` that is open.
    fn take(&self, endpoint: &Authority) -> Option<Connection> {
        let mut idle = self.lock();
        let list = idle.get_mut(endpoint)?;
        while let Some(mut idle) = list.pop() {
            if idle.conn.is_open() {
                return Some(idle.conn);
            }
        }
        None
    }

    fn put(&self, endpoint: Authority, conn: Connection) {
        let mut idle = self.lock();
        let list = idle.entry(endpoint).or_default();
        if list.len() < self.settings.max_idle_per_endpoint {
            list.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    fn attach(
        self: &Arc<Self>,
        endpoint: &Authority,
        conn: Connection,
        head: codec::ResponseHead,
    ) -> Answer {
        let codec::ResponseHead {
            response,
            framing,
            reusable,
        } = head;
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The connection now belongs to the upgrade.
            let body = PooledBody {
                decoder: Decoder::new(codec::Framing::Empty),
                conn: None,
                give_back: None,
            };
            return Answer {
                response: response.map(|()| body),
                upgraded: Some(conn.into_upgraded()),
            };
        }
        let mut body = PooledBody {
            decoder: Decoder::new(framing),
            conn: Some(conn),
            give_back: reusable.then(|| GiveBack {
                pool: self.clone(),
                endpoint: endpoint.clone(),
            }),
        };
        if body.decoder.is_done() {
            body.release();
        }
        Answer {
            response: response.map(|()| body),
            upgraded: None,
        }
    }
}

/// A response body read off its connection, which returns to the pool once
/// the body has been read to the end (and is closed otherwise).
#[derive(Debug)]
pub(super) struct PooledBody {
    decoder: Decoder,
    conn: Option<Connection>,
    /// Where the connection goes when done, if it can serve again.
    give_back: Option<GiveBack>,
}

#[derive(Debug)]
struct GiveBack {
    pool: Arc<Inner>,
    endpoint: Authority,
}

impl PooledBody {
    fn release(&mut self) {
        let conn = self.conn.take();
        if let (Some(GiveBack { pool, endpoint }), Some(conn)) = (self.give_back.take(), conn) {
            pool.put(endpoint, conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = CodecError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CodecError>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = std::task::ready!(this.decoder.poll_frame(conn, cx));
        match &frame {
            // A broken exchange leaves the connection unusable.
            Some(Err(_)) => {
                this.conn = None;
                this.give_back = None;
            }
            _ if this.decoder.is_done() => this.release(),
            _ => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests;
