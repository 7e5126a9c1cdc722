use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;

use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::service::service_fn;
use tokio::net::TcpListener;

use super::*;

const BIG_BODY_CHUNKS: usize = 64;

/// A backend on 127.0.0.1 that counts the connections it accepts. `/big`
/// streams many chunks; every other path answers `ok`. With `keep_alive`
/// false it answers `Connection: close` and hangs up after each response.
async fn mk_backend(keep_alive: bool) -> (Authority, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let body: ProxyBody = if req.uri().path() == "/big" {
                        let chunks = (0..BIG_BODY_CHUNKS).map(|_| {
                            Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))
                        });
                        StreamBody::new(futures_util::stream::iter(chunks))
                            .map_err(|never| match never {})
                            .boxed()
                    } else {
                        Full::new(Bytes::from_static(b"ok"))
                            .map_err(|never| match never {})
                            .boxed()
                    };
                    Ok::<_, Infallible>(Response::new(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr.to_string().parse().unwrap(), accepted)
}

fn mk_pool() -> Http1Pool {
    Http1Pool::new(PoolSettings {
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(90),
        max_idle_per_endpoint: 8,
    })
}

fn mk_request(endpoint: &Authority, path: &str) -> Request<ProxyBody> {
    Request::builder()
        .uri(path)
        .header(http::header::HOST, endpoint.as_str())
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .unwrap()
}

async fn get(pool: &Http1Pool, endpoint: &Authority, path: &str) -> Bytes {
    let response = pool
        .send(endpoint, mk_request(endpoint, path))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_connection_read_to_the_end_serves_the_next_request() {
    let (endpoint, accepted) = mk_backend(true).await;
    let pool = mk_pool();
    for _ in 0..5 {
        assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    }
    assert_eq!(
        get(&pool, &endpoint, "/big").await.len(),
        BIG_BODY_CHUNKS * 16 * 1024
    );
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_dropped_halfway_takes_its_connection_with_it() {
    let (endpoint, accepted) = mk_backend(true).await;
    let pool = mk_pool();
    let response = pool
        .send(&endpoint, mk_request(&endpoint, "/big"))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn concurrent_requests_each_get_a_connection_and_all_come_back() {
    let (endpoint, accepted) = mk_backend(true).await;
    let pool = mk_pool();
    let (a, b, c) = tokio::join!(
        get(&pool, &endpoint, "/big"),
        get(&pool, &endpoint, "/big"),
        get(&pool, &endpoint, "/big"),
    );
    assert_eq!(a.len() + b.len() + c.len(), 3 * BIG_BODY_CHUNKS * 16 * 1024);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    assert_eq!(pool.inner.lock()[&endpoint].len(), 3);
    for _ in 0..3 {
        get(&pool, &endpoint, "/").await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn connection_close_from_the_upstream_is_honoured() {
    let (endpoint, accepted) = mk_backend(false).await;
    let pool = mk_pool();
    for _ in 0..3 {
        assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint: Authority = free.local_addr().unwrap().to_string().parse().unwrap();
    drop(free);
    let error = mk_pool()
        .send(&endpoint, mk_request(&endpoint, "/"))
        .await
        .unwrap_err();
    assert!(matches!(error, PoolError::Connect(_)), "{error:?}");
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let (endpoint, accepted) = mk_backend(true).await;
    let pool = Http1Pool::new(PoolSettings {
        idle_timeout: Duration::from_millis(200),
        ..mk_pool().inner.settings
    });
    get(&pool, &endpoint, "/").await;
    assert_eq!(pool.inner.lock()[&endpoint].len(), 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(pool.inner.lock().get(&endpoint).is_none());
    get(&pool, &endpoint, "/").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
