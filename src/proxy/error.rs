//! What can go wrong while proxying a request, who is at fault, and the
//! status code the client gets.

use http::StatusCode;

use super::BoxError;

/// A failure on the request path.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No listener or route matches the request.
    #[error("no route matches the request")]
    NoRoute,
    /// The request has no usable host.
    #[error("the request has no Host")]
    MissingHost,
    /// The rule's backends all have weight 0, or there are none.
    #[error("the route has no backend to send the request to")]
    NoBackend,
    /// The chosen backendRef did not resolve (the spec's 500 for invalid refs).
    #[error("invalid backend reference: {0}")]
    InvalidBackend(String),
    /// The backend has no ready endpoint.
    #[error("no ready endpoint for backend {0}")]
    NoReadyEndpoint(String),
    /// Connecting to the upstream failed.
    #[error("cannot connect to upstream {backend}: {source}")]
    UpstreamConnect {
        /// The backend.
        backend: String,
        /// The cause.
        source: BoxError,
    },
    /// The upstream failed after the connection was made.
    #[error("upstream {backend} failed: {source}")]
    Upstream {
        /// The backend.
        backend: String,
        /// The cause.
        source: BoxError,
    },
    /// `timeouts.backendRequest` elapsed.
    #[error("upstream {0} did not answer in time")]
    BackendTimeout(String),
    /// `timeouts.request` elapsed.
    #[error("the request did not complete in time")]
    RequestTimeout,
    /// The request body could not be read (for a mirrored request).
    #[error("cannot read the request body: {0}")]
    RequestBody(String),
    /// The rewritten request could not be built.
    #[error("cannot build the upstream request: {0}")]
    BadRewrite(String),
}

/// Who caused a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client or its request.
    Downstream,
    /// Our configuration.
    Config,
    /// The upstream service.
    Upstream,
}

impl ProxyError {
    /// The status code the client receives. The one place errors become codes.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::MissingHost => StatusCode::BAD_REQUEST,
            ProxyError::NoBackend | ProxyError::InvalidBackend(_) | ProxyError::BadRewrite(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ProxyError::NoReadyEndpoint(_) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::UpstreamConnect { .. } | ProxyError::Upstream { .. } => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::BackendTimeout(_) | ProxyError::RequestTimeout => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::RequestBody(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// Who is at fault.
    pub fn fault(&self) -> Fault {
        match self {
            ProxyError::NoRoute | ProxyError::MissingHost | ProxyError::RequestBody(_) => {
                Fault::Downstream
            }
            ProxyError::NoBackend | ProxyError::InvalidBackend(_) | ProxyError::BadRewrite(_) => {
                Fault::Config
            }
            ProxyError::NoReadyEndpoint(_)
            | ProxyError::UpstreamConnect { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::BackendTimeout(_)
            | ProxyError::RequestTimeout => Fault::Upstream,
        }
    }

    /// Whether the request may be sent again to another endpoint: only when
    /// it never reached an upstream.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProxyError::UpstreamConnect { .. } | ProxyError::NoReadyEndpoint(_)
        )
    }
}
