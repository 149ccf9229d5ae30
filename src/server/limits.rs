//! The limits of what one server takes on, all configurable (`clientele serve --help`,
//! README.md): message sizes, HTTP/2 keepalive and streams per connection, the requests it
//! runs at once, and a rate per principal (`crate::auth::rate`). Past the global limit a
//! request is shed at once with RESOURCE_EXHAUSTED and `RetryInfo`, rather than queued
//! without end behind the others.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::{auth::rate::Rate, error::Error};

/// How long a shed client is told to wait.
const SHED_RETRY_DELAY: Duration = Duration::from_millis(200);

/// The server's limits.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// The largest request message, in bytes; a larger one is RESOURCE_EXHAUSTED.
    pub max_decoding_message_size: usize,
    /// The largest response message, in bytes.
    pub max_encoding_message_size: usize,
    /// How often an idle connection is pinged; `None` never.
    pub http2_keepalive_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// The most concurrent streams (calls) on one connection.
    pub max_concurrent_streams: Option<u32>,
    /// The most requests the server works on at once; the rest are shed. A stream counts
    /// until its first answer, not while it streams (open streams are bounded per
    /// connection).
    pub max_in_flight: Option<usize>,
    /// The rate each principal may call at.
    pub rate: Option<Rate>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_decoding_message_size: 4 * 1024 * 1024,
            max_encoding_message_size: 4 * 1024 * 1024,
            http2_keepalive_interval: Some(Duration::from_secs(60)),
            http2_keepalive_timeout: Duration::from_secs(20),
            max_concurrent_streams: Some(1024),
            max_in_flight: None,
            rate: None,
        }
    }
}

/// Makes [`Shed`] services.
#[derive(Clone, Debug)]
pub struct ShedLayer {
    permits: Option<Arc<Semaphore>>,
    limit: usize,
}

impl ShedLayer {
    /// Sheds what passes `limit` requests at once; `None` sheds nothing.
    pub fn new(limit: Option<usize>) -> Self {
        Self {
            permits: limit.map(|limit| Arc::new(Semaphore::new(limit))),
            limit: limit.unwrap_or_default(),
        }
    }
}

impl<S> Layer<S> for ShedLayer {
    type Service = Shed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Shed {
            inner,
            permits: self.permits.clone(),
            limit: self.limit,
        }
    }
}

/// The service made by [`ShedLayer`].
#[derive(Clone, Debug)]
pub struct Shed<S> {
    inner: S,
    permits: Option<Arc<Semaphore>>,
    limit: usize,
}

impl<S, B> Service<http::Request<B>> for Shed<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Health is never shed: a busy server is still a live one.
        let Some(permits) = self
            .permits
            .as_ref()
            .filter(|_| !request.uri().path().starts_with("/grpc.health."))
        else {
            return Box::pin(self.inner.call(request));
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let limit = self.limit;
            return Box::pin(async move {
                Ok(tonic::Status::from(Error::ResourceExhausted {
                    reason: "SERVER_BUSY",
                    message: format!(
                        "the server is working on its limit of {limit} requests at once; retry \
                         after the delay in RetryInfo"
                    ),
                    retry_after: Some(SHED_RETRY_DELAY),
                })
                .into_http())
            });
        };
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await;
            drop(permit);
            response
        })
    }
}
