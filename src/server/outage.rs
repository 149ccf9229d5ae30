//! Failing fast while the database is unreachable. Once the health watchdog (or a request)
//! has found the database gone, a read gets [`FAIL_FAST`] to be answered before it is
//! answered UNAVAILABLE, instead of each waiting out the pool's acquire timeout: clients
//! learn at once and can try another replica or back off. A write is not started at all until
//! the database answers a ping within that time: a write cut off after it began could still
//! commit after its client was told UNAVAILABLE, which clients take as safe to send again.
//! Every request still tries, so the first one after the database returns succeeds and ends
//! the outage for the rest.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tower::{Layer, Service};

use super::detach::only_reads;
use crate::{error::Error, store::Store};

/// How long a request may take while the database is unreachable.
pub const FAIL_FAST: Duration = Duration::from_millis(80);

/// Whether the database is known to be unreachable, shared by the watchdog and the layer.
#[derive(Clone, Debug, Default)]
pub struct Outage(Arc<AtomicBool>);

impl Outage {
    /// Records whether the database answers.
    pub fn set(&self, down: bool) {
        if self.0.swap(down, Ordering::AcqRel) != down && !down {
            tracing::info!("a request reached the database again: the outage is over");
        }
    }

    pub(super) fn is_down(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Makes [`FailFast`] services.
#[derive(Clone, Debug)]
pub struct FailFastLayer {
    outage: Outage,
    store: Store,
}

impl FailFastLayer {
    /// Fails requests fast while `outage` says the database of `store` is down.
    pub fn new(outage: Outage, store: Store) -> Self {
        Self { outage, store }
    }
}

impl<S> Layer<S> for FailFastLayer {
    type Service = FailFast<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FailFast {
            inner,
            outage: self.outage.clone(),
            store: self.store.clone(),
        }
    }
}

/// The service made by [`FailFastLayer`].
#[derive(Clone, Debug)]
pub struct FailFast<S> {
    inner: S,
    outage: Outage,
    store: Store,
}

impl<S, B> Service<http::Request<B>> for FailFast<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // Health and reflection do not touch the database.
        if request.uri().path().starts_with("/grpc.") {
            return Box::pin(self.inner.call(request));
        }
        let outage = self.outage.clone();
        let down = outage.is_down();
        if down && !only_reads(request.uri().path()) {
            // The service that was polled ready serves this request; its clone the next.
            let ready = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, ready);
            let store = self.store.clone();
            return Box::pin(async move {
                match tokio::time::timeout(FAIL_FAST, store.ping()).await {
                    Ok(Ok(())) => {
                        outage.set(false);
                        inner.call(request).await
                    }
                    _ => Ok(unreachable()),
                }
            });
        }
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = if down {
                match tokio::time::timeout(FAIL_FAST, answer).await {
                    Ok(response) => response?,
                    Err(_) => return Ok(unreachable()),
                }
            } else {
                answer.await?
            };
            // An UNAVAILABLE answer comes from a database that could not be reached. A call
            // that succeeded (its status comes in the trailers, not here) says it is back;
            // other errors may not have asked it at all (a refused token, a shed request).
            match response
                .headers()
                .get("grpc-status")
                .map(|code| code.as_bytes())
            {
                Some(b"14") => outage.set(true),
                None if down => outage.set(false),
                _ => {}
            }
            Ok(response)
        })
    }
}

fn unreachable() -> http::Response<tonic::body::Body> {
    tonic::Status::from(Error::Unavailable(
        "the database is unreachable (failing fast)".into(),
    ))
    .into_http()
}
