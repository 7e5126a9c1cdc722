//! The client side of HTTP/1.1 (RFC 9112) on one upstream connection: the
//! request written, the response head parsed, the response body framed.
//!
//! Everything runs in the task of the request that uses the connection:
//! no connection task, no channel between the request and its connection,
//! no wake-up of a second task per request. The request body is written
//! while the response head is awaited, so an upstream that answers early
//! (or sends `100 Continue`) is heard.

use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::{Body, Frame};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::proxy::{BoxError, ProxyBody};

/// The largest response head (status line and headers) accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most response headers accepted (as hyper's client).
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line accepted (extensions included).
const MAX_CHUNK_LINE: usize = 4096;
/// Read buffer growth step.
const READ_CHUNK: usize = 8 * 1024;

/// Why an exchange or a response body failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// Reading or writing the connection failed.
    #[error("upstream connection: {0}")]
    Io(#[from] io::Error),
    /// The upstream closed the connection before a complete response head.
    #[error("upstream closed the connection before answering")]
    Closed,
    /// The upstream closed the connection in the middle of the body.
    #[error("upstream closed the connection before the end of the response body")]
    Truncated,
    /// The response head is not valid HTTP/1.x.
    #[error("invalid upstream response: {0}")]
    Invalid(&'static str),
    /// The response head is larger than we accept.
    #[error("upstream response head exceeds {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers")]
    HeadTooLarge,
    /// The downstream request body failed while it was being sent.
    #[error("request body: {0}")]
    RequestBody(#[source] BoxError),
    /// The request body did not match its declared length.
    #[error("request body length differs from its Content-Length")]
    RequestBodyLength,
}

/// One open connection to an upstream, with what was read but not yet used.
#[derive(Debug)]
pub(super) struct Connection {
    stream: TcpStream,
    read_buf: BytesMut,
}

impl Connection {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Whether an idle connection can take a request: the upstream has not
    /// closed it nor sent anything unasked. Costs no system call unless the
    /// socket was reported readable.
    pub(super) fn is_open(&mut self) -> bool {
        if !self.read_buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readiness can be left over from the last response; only a
            // read tells an end of stream (or stray bytes) from that.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.read_buf.capacity() - self.read_buf.len() < READ_CHUNK / 2 {
            self.read_buf.reserve(READ_CHUNK);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.read_buf)
    }

    /// Gives up the connection for a protocol switch: the socket and what
    /// was read past the `101` head.
    pub(super) fn into_upgraded(self) -> (TcpStream, Bytes) {
        (self.stream, self.read_buf.freeze())
    }
}

/// A request ready to be written: its head, and the body still to send.
pub(super) struct Outgoing {
    /// The serialized request line and headers.
    head: Bytes,
    body: Option<(ProxyBody, BodyFraming)>,
    /// Whether the response can carry a body (not for `HEAD`).
    response_has_body: bool,
    /// Whether sending the request twice means what sending it once does.
    idempotent: bool,
}

impl Outgoing {
    /// Serializes `req` (origin-form URI, `Host` set). `Content-Length` and
    /// `Transfer-Encoding` are written for the body as it is, not copied.
    pub(super) fn new(req: Request<ProxyBody>) -> Self {
        let (parts, body) = req.into_parts();
        let framing = if body.is_end_stream() {
            None
        } else {
            Some(match body.size_hint().exact() {
                Some(n) => BodyFraming::Length { remaining: n },
                None => BodyFraming::Chunked,
            })
        };
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(parts.method.as_str().as_bytes());
        head.push(b' ');
        let target = match (parts.uri.path_and_query(), parts.uri.authority()) {
            (Some(pq), _) => pq.as_str(),
            (None, Some(authority)) => authority.as_str(),
            (None, None) => "/",
        };
        head.extend_from_slice(target.as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &parts.headers {
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                continue;
            }
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        match framing {
            Some(BodyFraming::Length { remaining }) => {
                let mut line = String::with_capacity(24);
                let _ = write!(line, "content-length: {remaining}\r\n");
                head.extend_from_slice(line.as_bytes());
            }
            Some(BodyFraming::Chunked) => {
                head.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            // Methods whose requests mean to carry content say it is empty
            // (RFC 9110 §8.6), as they would have had the client said so.
            None if parts.headers.contains_key(CONTENT_LENGTH)
                || matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) =>
            {
                head.extend_from_slice(b"content-length: 0\r\n");
            }
            None => {}
        }
        head.extend_from_slice(b"\r\n");
        Self {
            head: Bytes::from(head),
            response_has_body: parts.method != Method::HEAD,
            idempotent: matches!(
                parts.method,
                Method::GET
                    | Method::HEAD
                    | Method::OPTIONS
                    | Method::TRACE
                    | Method::PUT
                    | Method::DELETE
            ),
            body: framing.map(|f| (body, f)),
        }
    }

    /// A copy to send again, should the connection this one goes out on
    /// turn out closed before it answers: only for a request that is all
    /// in its head and idempotent (RFC 9110 §9.2.2), as the upstream may
    /// have seen it.
    pub(super) fn replay(&self) -> Option<Self> {
        (self.body.is_none() && self.idempotent).then(|| Self {
            head: self.head.clone(),
            body: None,
            response_has_body: self.response_has_body,
            idempotent: true,
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum BodyFraming {
    Length { remaining: u64 },
    Chunked,
}

/// A response head and how its body is framed.
pub(super) struct ResponseHead {
    pub response: Response<()>,
    pub framing: Framing,
    /// Whether the connection can serve another request after this one.
    pub reusable: bool,
}

/// How a response body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

/// How far a failed exchange got, to tell whether it may be retried.
pub(super) struct ExchangeFailure {
    pub error: CodecError,
    /// No byte of a response arrived and the request body (if any) was
    /// not started: on a reused connection this is a connection the
    /// upstream had closed, and the request can go elsewhere.
    pub nothing_received: bool,
}

/// Writes `out` on `conn` and reads the response head, skipping interim
/// (1xx) responses but `101`.
pub(super) async fn exchange(
    conn: &mut Connection,
    out: Outgoing,
) -> Result<ResponseHead, ExchangeFailure> {
    let Outgoing {
        head,
        mut body,
        response_has_body,
        ..
    } = out;
    // What is being written: the head, then each body frame as framed.
    let mut pending = head;
    let mut write_error: Option<CodecError> = None;
    let mut received_any = false;
    std::future::poll_fn(|cx| {
        // Send what can be sent without waiting...
        if write_error.is_none()
            && let Err(error) = poll_send(conn, cx, &mut pending, &mut body)
        {
            // A body that fails is our side's fault: give up at once.
            if matches!(
                error,
                CodecError::RequestBody(_) | CodecError::RequestBodyLength
            ) {
                return Poll::Ready(Err(ExchangeFailure {
                    error,
                    nothing_received: false,
                }));
            }
            // The upstream may have answered before it stopped reading.
            write_error = Some(error);
        }
        // ...and look for the answer.
        loop {
            match parse_head(&mut conn.read_buf, response_has_body) {
                Ok(Some(mut head)) => {
                    let sent_all = write_error.is_none() && body.is_none() && pending.is_empty();
                    head.reusable &= sent_all;
                    return Poll::Ready(Ok(head));
                }
                Ok(None) => {}
                Err(error) => {
                    return Poll::Ready(Err(ExchangeFailure {
                        error,
                        nothing_received: false,
                    }));
                }
            }
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    let nothing_received = !received_any;
                    return Poll::Ready(Err(ExchangeFailure {
                        error: write_error.take().unwrap_or(CodecError::Closed),
                        nothing_received,
                    }));
                }
                Poll::Ready(Ok(_)) => received_any = true,
                Poll::Ready(Err(error)) => {
                    let nothing_received = !received_any;
                    return Poll::Ready(Err(ExchangeFailure {
                        error: write_error.take().unwrap_or(CodecError::Io(error)),
                        nothing_received,
                    }));
                }
            }
        }
    })
    .await
}

/// Writes the pending bytes, then as much of the body as is ready.
fn poll_send(
    conn: &mut Connection,
    cx: &mut Context<'_>,
    pending: &mut Bytes,
    body: &mut Option<(ProxyBody, BodyFraming)>,
) -> Result<(), CodecError> {
    loop {
        while !pending.is_empty() {
            match Pin::new(&mut conn.stream).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Poll::Ready(Ok(n)) => pending.advance(n),
                Poll::Ready(Err(error)) => return Err(error.into()),
                Poll::Pending => return Ok(()),
            }
        }
        let Some((stream, framing)) = body.as_mut() else {
            return Ok(());
        };
        match Pin::new(stream).poll_frame(cx) {
            Poll::Pending => return Ok(()),
            Poll::Ready(Some(Err(error))) => return Err(CodecError::RequestBody(error)),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => match framing {
                    BodyFraming::Length { remaining } => {
                        let len = data.len() as u64;
                        if len > *remaining {
                            return Err(CodecError::RequestBodyLength);
                        }
                        *remaining -= len;
                        *pending = data;
                    }
                    BodyFraming::Chunked if data.is_empty() => {}
                    BodyFraming::Chunked => {
                        let mut chunk = BytesMut::with_capacity(data.len() + 20);
                        let _ = write!(chunk, "{:x}\r\n", data.len());
                        chunk.extend_from_slice(&data);
                        chunk.extend_from_slice(b"\r\n");
                        *pending = chunk.freeze();
                    }
                },
                Err(frame) => {
                    // Trailers end the body; only chunked coding carries them.
                    if let (Ok(trailers), BodyFraming::Chunked) = (frame.into_trailers(), *framing)
                    {
                        let mut end = BytesMut::with_capacity(64);
                        end.extend_from_slice(b"0\r\n");
                        for (name, value) in &trailers {
                            end.extend_from_slice(name.as_str().as_bytes());
                            end.extend_from_slice(b": ");
                            end.extend_from_slice(value.as_bytes());
                            end.extend_from_slice(b"\r\n");
                        }
                        end.extend_from_slice(b"\r\n");
                        *pending = end.freeze();
                        *body = None;
                    }
                }
            },
            Poll::Ready(None) => {
                match framing {
                    BodyFraming::Length { remaining: 0 } => {}
                    BodyFraming::Length { .. } => return Err(CodecError::RequestBodyLength),
                    BodyFraming::Chunked => *pending = Bytes::from_static(b"0\r\n\r\n"),
                }
                *body = None;
            }
        }
    }
}

/// Parses a final response head off the front of `buf`, dropping interim
/// responses; `None` until a whole head is there.
fn parse_head(
    buf: &mut BytesMut,
    response_has_body: bool,
) -> Result<Option<ResponseHead>, CodecError> {
    loop {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                return Err(CodecError::HeadTooLarge);
            }
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(CodecError::HeadTooLarge),
            Err(_) => return Err(CodecError::Invalid("malformed status line or header")),
        };
        let status = parsed
            .code
            .and_then(|c| StatusCode::from_u16(c).ok())
            .ok_or(CodecError::Invalid("status code"))?;
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            let _ = buf.split_to(len);
            continue;
        }
        let version = match parsed.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        // Header values share the head's buffer rather than being copied.
        let base = buf.as_ptr() as usize;
        let mut spans = Vec::with_capacity(parsed.headers.len());
        for header in parsed.headers.iter() {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| CodecError::Invalid("header name"))?;
            let start = header.value.as_ptr() as usize - base;
            spans.push((name, start, start + header.value.len()));
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(spans.len());
        for (name, start, end) in spans {
            let value = HeaderValue::from_maybe_shared(head.slice(start..end))
                .map_err(|_| CodecError::Invalid("header value"))?;
            headers.append(name, value);
        }
        let (framing, mut reusable) = framing(status, &headers, response_has_body)?;
        reusable &= keeps_alive(version, &headers);
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        return Ok(Some(ResponseHead {
            response,
            framing,
            reusable,
        }));
    }
}

/// The body framing of a response, and whether it leaves the connection
/// reusable (RFC 9112 §6.3).
fn framing(
    status: StatusCode,
    headers: &HeaderMap,
    response_has_body: bool,
) -> Result<(Framing, bool), CodecError> {
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Ok((Framing::Empty, false));
    }
    if !response_has_body || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Framing::Empty, true));
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|c| !c.is_empty());
        let chunked = last.is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
        // With Content-Length too, the message was built to smuggle: close
        // after it.
        let reusable = chunked && !headers.contains_key(CONTENT_LENGTH);
        return Ok((
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            },
            reusable,
        ));
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value
            .to_str()
            .map_err(|_| CodecError::Invalid("content-length"))?
            .split(',')
        {
            let n: u64 = part
                .trim()
                .parse()
                .map_err(|_| CodecError::Invalid("content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(CodecError::Invalid("content-length"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => (Framing::Empty, true),
        Some(n) => (Framing::Length(n), true),
        None => (Framing::UntilClose, false),
    })
}

/// Whether the upstream keeps the connection open after this response.
fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for token in headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
    {
        close |= token.eq_ignore_ascii_case("close");
        keep_alive |= token.eq_ignore_ascii_case("keep-alive");
    }
    match version {
        Version::HTTP_10 => keep_alive && !close,
        _ => !close,
    }
}

/// Where a response body's decoding stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decoder {
    /// This many bytes still to come.
    Length(u64),
    /// Expecting a chunk-size line.
    ChunkSize,
    /// Inside a chunk: this many bytes still to come.
    ChunkData(u64),
    /// Expecting the CRLF after a chunk's data.
    ChunkEnd,
    /// Expecting the trailer section (possibly empty) after the last chunk.
    Trailers,
    /// Until the connection closes.
    UntilClose,
    /// Done.
    Done,
}

impl Decoder {
    pub(super) fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Decoder::Done,
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::ChunkSize,
            Framing::UntilClose => Decoder::UntilClose,
        }
    }

    pub(super) fn is_done(self) -> bool {
        self == Decoder::Done
    }

    /// Bytes still to come, when known.
    pub(super) fn remaining(self) -> Option<u64> {
        match self {
            Decoder::Length(n) => Some(n),
            Decoder::Done => Some(0),
            _ => None,
        }
    }

    /// The next frame of the body read from `conn`; `None` at its end.
    pub(super) fn poll_frame(
        &mut self,
        conn: &mut Connection,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CodecError>>> {
        loop {
            let buf = &mut conn.read_buf;
            match *self {
                Decoder::Done => return Poll::Ready(None),
                Decoder::Length(remaining) | Decoder::ChunkData(remaining) if !buf.is_empty() => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    let data = buf.split_to(n).freeze();
                    let left = remaining - n as u64;
                    *self = match (*self, left) {
                        (Decoder::Length(_), 0) => Decoder::Done,
                        (Decoder::Length(_), _) => Decoder::Length(left),
                        (_, 0) => Decoder::ChunkEnd,
                        _ => Decoder::ChunkData(left),
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoder::UntilClose if !buf.is_empty() => {
                    let data = buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Decoder::ChunkSize => {
                    if let Some(line_end) = find_crlf(buf) {
                        let size = chunk_size(&buf[..line_end])?;
                        let _ = buf.split_to(line_end + 2);
                        *self = if size == 0 {
                            Decoder::Trailers
                        } else {
                            Decoder::ChunkData(size)
                        };
                        continue;
                    }
                    if buf.len() > MAX_CHUNK_LINE {
                        return Poll::Ready(Some(Err(CodecError::Invalid("chunk size line"))));
                    }
                }
                Decoder::ChunkEnd if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return Poll::Ready(Some(Err(CodecError::Invalid("chunk end"))));
                    }
                    let _ = buf.split_to(2);
                    *self = Decoder::ChunkSize;
                    continue;
                }
                Decoder::Trailers => {
                    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut slots) {
                        Ok(httparse::Status::Complete((len, fields))) => {
                            let mut trailers = HeaderMap::new();
                            for field in fields {
                                if let (Ok(name), Ok(value)) = (
                                    HeaderName::from_bytes(field.name.as_bytes()),
                                    HeaderValue::from_bytes(field.value),
                                ) {
                                    trailers.append(name, value);
                                }
                            }
                            let _ = buf.split_to(len);
                            *self = Decoder::Done;
                            if trailers.is_empty() {
                                return Poll::Ready(None);
                            }
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
                            return Poll::Ready(Some(Err(CodecError::HeadTooLarge)));
                        }
                        Ok(httparse::Status::Partial) => {}
                        Err(_) => return Poll::Ready(Some(Err(CodecError::Invalid("trailers")))),
                    }
                }
                _ => {}
            }
            // Nothing usable buffered: read more.
            match ready!(conn.poll_fill(cx)) {
                Ok(0) if *self == Decoder::UntilClose => {
                    *self = Decoder::Done;
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Ready(Some(Err(CodecError::Truncated))),
                Ok(_) => {}
                Err(error) => return Poll::Ready(Some(Err(error.into()))),
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The size on a chunk-size line (hex digits, then optional extensions).
fn chunk_size(line: &[u8]) -> Result<u64, CodecError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    if digits == 0 || digits > 16 || !(rest.is_empty() || matches!(rest[0], b';' | b' ' | b'\t')) {
        return Err(CodecError::Invalid("chunk size"));
    }
    let text =
        std::str::from_utf8(&line[..digits]).map_err(|_| CodecError::Invalid("chunk size"))?;
    u64::from_str_radix(text, 16).map_err(|_| CodecError::Invalid("chunk size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_parse_with_and_without_extensions() {
        assert_eq!(chunk_size(b"1a").unwrap(), 26);
        assert_eq!(chunk_size(b"0").unwrap(), 0);
        assert_eq!(chunk_size(b"FF;name=value").unwrap(), 255);
        assert!(chunk_size(b"").is_err());
        assert!(chunk_size(b"zz").is_err());
        assert!(chunk_size(b"1x").is_err());
        assert!(chunk_size(b"11111111111111111").is_err());
    }

    fn head(text: &str, response_has_body: bool) -> Result<Option<ResponseHead>, CodecError> {
        parse_head(&mut BytesMut::from(text), response_has_body)
    }

    #[test]
    fn response_framing_follows_rfc_9112() {
        let framing_of = |text: &str| {
            let h = head(text, true).unwrap().unwrap();
            (h.framing, h.reusable)
        };
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"),
            (Framing::Chunked, true)
        );
        assert_eq!(
            framing_of(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n"
            ),
            (Framing::Chunked, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\n\r\n"),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framing_of("HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n"),
            (Framing::Empty, true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n"),
            (Framing::Length(5), false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n"),
            (Framing::Length(5), false)
        );
        assert_eq!(
            framing_of("HTTP/1.0 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n"),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n"),
            (Framing::Length(5), true)
        );
        let to_head = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(to_head.framing, Framing::Empty);
        assert!(matches!(
            head(
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
                true
            ),
            Err(CodecError::Invalid(_))
        ));
        assert!(matches!(
            head("HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", true),
            Err(CodecError::Invalid(_))
        ));
    }

    #[test]
    fn interim_responses_are_skipped_and_partial_heads_wait() {
        let mut buf = BytesMut::from(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
        );
        let h = parse_head(&mut buf, true).unwrap().unwrap();
        assert_eq!(h.response.status(), StatusCode::CREATED);
        assert_eq!(&buf[..], b"ok");
        assert!(
            head("HTTP/1.1 200 OK\r\ncontent-le", true)
                .unwrap()
                .is_none()
        );
        let big = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD_BYTES + 1));
        assert!(matches!(head(&big, true), Err(CodecError::HeadTooLarge)));
    }
}
