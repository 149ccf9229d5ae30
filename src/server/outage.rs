//! Failing fast while the database is unreachable. Once the health watchdog (or a request)
//! has found the database gone, a request gets [`FAIL_FAST`] to be answered before it is
//! answered UNAVAILABLE, instead of each waiting out the pool's acquire timeout: clients
//! learn at once and can try another replica or back off. Every request still tries, so the
//! first one after the database returns succeeds and ends the outage for the rest.

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

use crate::error::Error;

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

    fn is_down(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Makes [`FailFast`] services.
#[derive(Clone, Debug)]
pub struct FailFastLayer {
    outage: Outage,
}

impl FailFastLayer {
    /// Fails requests fast while `outage` says the database is down.
    pub fn new(outage: Outage) -> Self {
        Self { outage }
    }
}

impl<S> Layer<S> for FailFastLayer {
    type Service = FailFast<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FailFast {
            inner,
            outage: self.outage.clone(),
        }
    }
}

/// The service made by [`FailFastLayer`].
#[derive(Clone, Debug)]
pub struct FailFast<S> {
    inner: S,
    outage: Outage,
}

impl<S, B> Service<http::Request<B>> for FailFast<S>
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
        // Health and reflection do not touch the database.
        if request.uri().path().starts_with("/grpc.") {
            return Box::pin(self.inner.call(request));
        }
        let outage = self.outage.clone();
        let down = outage.is_down();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = if down {
                match tokio::time::timeout(FAIL_FAST, answer).await {
                    Ok(response) => response?,
                    Err(_) => {
                        return Ok(tonic::Status::from(Error::Unavailable(
                            "the database is unreachable (failing fast)".into(),
                        ))
                        .into_http());
                    }
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
