use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;

use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
        .unwrap()
        .response;
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
        .unwrap()
        .response;
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
        .err()
        .unwrap();
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

/// What a scripted upstream does after reading one request.
enum Reply {
    /// Writes these bytes and waits for the next request.
    Keep(&'static [u8]),
    /// Writes these bytes and closes the connection.
    Close(&'static [u8]),
    /// Writes these bytes as soon as the request head is in, without
    /// reading the body, then holds the connection open.
    Early(&'static [u8]),
}

/// A raw upstream on 127.0.0.1 that answers requests with the given
/// replies in turn, whatever connection they come on, and records every
/// request as it arrived on the wire.
async fn scripted(replies: Vec<Reply>) -> (Authority, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint: Authority = listener.local_addr().unwrap().to_string().parse().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    let (counter, log) = (accepted.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let (replies, log) = (replies.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(head_end) = read_until(&mut stream, &mut buf, 0, b"\r\n\r\n").await
                    else {
                        return;
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let reply = replies
                        .lock()
                        .unwrap()
                        .next()
                        .expect("a reply for every request");
                    if let Reply::Early(bytes) = reply {
                        log.lock().unwrap().push(head);
                        let _ = stream.write_all(bytes).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    let end = if head.contains("transfer-encoding: chunked") {
                        // The last chunk, then the (maybe empty) trailers.
                        match read_until(&mut stream, &mut buf, head_end - 2, b"\r\n0\r\n").await {
                            Some(last) => {
                                read_until(&mut stream, &mut buf, last - 2, b"\r\n\r\n").await
                            }
                            None => None,
                        }
                    } else {
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                        while buf.len() < head_end + length {
                            let mut more = [0u8; 4096];
                            match stream.read(&mut more).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&more[..n]),
                            }
                        }
                        Some(head_end + length)
                    };
                    let Some(end) = end else { return };
                    log.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..end]).into_owned());
                    buf.drain(..end);
                    match reply {
                        Reply::Keep(bytes) => {
                            if stream.write_all(bytes).await.is_err() {
                                return;
                            }
                        }
                        Reply::Close(bytes) => {
                            let _ = stream.write_all(bytes).await;
                            return;
                        }
                        Reply::Early(_) => unreachable!(),
                    }
                }
            });
        }
    });
    (endpoint, accepted, seen)
}

/// Reads until `buf` holds `pattern` at or after `from`; the index just
/// past it.
async fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    from: usize,
    pattern: &[u8],
) -> Option<usize> {
    loop {
        if let Some(at) = buf[from.min(buf.len())..]
            .windows(pattern.len())
            .position(|w| w == pattern)
        {
            return Some(from + at + pattern.len());
        }
        let mut more = [0u8; 4096];
        match stream.read(&mut more).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&more[..n]),
        }
    }
}

fn with_body(endpoint: &Authority, method: &str, body: ProxyBody) -> Request<ProxyBody> {
    Request::builder()
        .method(method)
        .uri("/upload")
        .header(http::header::HOST, endpoint.as_str())
        .body(body)
        .unwrap()
}

#[tokio::test]
async fn chunked_bodies_are_decoded_with_their_trailers_and_the_connection_serves_again() {
    let (endpoint, accepted, _) = scripted(vec![
        Reply::Keep(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\n",
        ),
        Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let pool = mk_pool();
    let response = pool
        .send(&endpoint, mk_request(&endpoint, "/"))
        .await
        .unwrap()
        .response;
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(collected.to_bytes(), "hello world");
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_that_ends_with_the_connection_is_read_and_the_connection_not_reused() {
    let (endpoint, accepted, _) = scripted(vec![
        Reply::Close(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"),
        Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let pool = mk_pool();
    assert_eq!(get(&pool, &endpoint, "/").await, "until the end");
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn bodiless_answers_head_204_and_interim_responses_keep_the_connection() {
    let (endpoint, accepted, _) = scripted(vec![
        // HEAD: the length describes the body a GET would get.
        Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
        Reply::Keep(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
        Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let pool = mk_pool();
    let mut head = mk_request(&endpoint, "/");
    *head.method_mut() = http::Method::HEAD;
    let response = pool.send(&endpoint, head).await.unwrap().response;
    assert_eq!(response.headers()["content-length"], "5");
    assert!(response.body().is_end_stream());
    assert!(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .is_empty()
    );
    let response = pool
        .send(&endpoint, mk_request(&endpoint, "/"))
        .await
        .unwrap()
        .response;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.body().is_end_stream());
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn request_bodies_are_framed_by_length_or_chunked_with_trailers() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let (endpoint, _, seen) =
        scripted(vec![Reply::Keep(ok), Reply::Keep(ok), Reply::Keep(ok)]).await;
    let pool = mk_pool();
    let sized = Full::new(Bytes::from_static(b"hello"))
        .map_err(|never| match never {})
        .boxed();
    pool.send(&endpoint, with_body(&endpoint, "POST", sized))
        .await
        .unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-sum", http::HeaderValue::from_static("7"));
    let frames = vec![
        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"abc"))),
        Ok(Frame::data(Bytes::from_static(b"defghijklmnopqrstu"))),
        Ok(Frame::trailers(trailers)),
    ];
    let streamed = StreamBody::new(futures_util::stream::iter(frames))
        .map_err(|never| match never {})
        .boxed();
    pool.send(&endpoint, with_body(&endpoint, "PUT", streamed))
        .await
        .unwrap();
    let empty = Empty::new().map_err(|never| match never {}).boxed();
    pool.send(&endpoint, with_body(&endpoint, "POST", empty))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let host = endpoint.as_str();
    assert_eq!(
        seen[0],
        format!("POST /upload HTTP/1.1\r\nhost: {host}\r\ncontent-length: 5\r\n\r\nhello")
    );
    assert_eq!(
        seen[1],
        format!(
            "PUT /upload HTTP/1.1\r\nhost: {host}\r\ntransfer-encoding: chunked\r\n\r\n\
             3\r\nabc\r\n12\r\ndefghijklmnopqrstu\r\n0\r\nx-sum: 7\r\n\r\n"
        )
    );
    assert_eq!(
        seen[2],
        format!("POST /upload HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\n\r\n")
    );
}

#[tokio::test]
async fn an_answer_before_the_request_body_is_sent_is_returned_and_the_connection_dropped() {
    let (endpoint, accepted, _) = scripted(vec![
        Reply::Early(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n"),
        Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
    ])
    .await;
    let pool = mk_pool();
    // A body whose end never comes: the answer must not wait for it.
    let (_feed, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    let endless = StreamBody::new(tokio_stream_from(rx))
        .map_err(|never| match never {})
        .boxed();
    let response = tokio::time::timeout(
        Duration::from_secs(5),
        pool.send(&endpoint, with_body(&endpoint, "POST", endless)),
    )
    .await
    .expect("answered without the body")
    .unwrap()
    .response;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    drop(response);
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test]
async fn a_pooled_connection_the_upstream_closed_is_replaced() {
    // The first answer leaves the connection looking reusable, then the
    // upstream hangs up: the next request must still be answered.
    let (endpoint, accepted, _) = scripted(vec![
        Reply::Close(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        Reply::Keep(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nagain"),
    ])
    .await;
    let pool = mk_pool();
    assert_eq!(get(&pool, &endpoint, "/").await, "ok");
    assert_eq!(get(&pool, &endpoint, "/").await, "again");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_body_cut_short_and_a_malformed_answer_are_errors() {
    let (endpoint, _, _) = scripted(vec![
        Reply::Close(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"),
        Reply::Close(b"HTTP/1.1 200 OK\r\ncontent-length: ten\r\n\r\n"),
        Reply::Close(b"SMTP ready\r\n\r\n"),
    ])
    .await;
    let pool = mk_pool();
    let response = pool
        .send(&endpoint, mk_request(&endpoint, "/"))
        .await
        .unwrap()
        .response;
    let error = response.into_body().collect().await.err().unwrap();
    assert!(matches!(error, CodecError::Truncated), "{error:?}");
    for _ in 0..2 {
        let error = pool
            .send(&endpoint, mk_request(&endpoint, "/"))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(error, PoolError::Request(CodecError::Invalid(_))),
            "{error:?}"
        );
    }
}
