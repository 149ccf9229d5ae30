//! gRPC health: SERVING while the database answers, NOT_SERVING while it does not, and
//! NOT_SERVING for good once the server shuts down.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tonic_health::{
    ServingStatus,
    pb::{HealthCheckRequest, HealthCheckResponse, health_server::Health},
    server::{HealthReporter, HealthService},
};

use super::SERVICE_NAMES;
use crate::store::Store;

/// Sets the server ("") and every service to `status`.
pub(super) async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status("", status).await;
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Pings the database every `interval` and reports the outcome whenever it changes.
pub(super) async fn watch_database(
    store: Store,
    reporter: HealthReporter,
    interval: Duration,
    outage: super::outage::Outage,
) {
    let mut serving = true;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let answered = matches!(
            tokio::time::timeout(interval.max(Duration::from_secs(1)), store.ping()).await,
            Ok(Ok(()))
        );
        if answered != serving {
            serving = answered;
            outage.set(!serving);
            if serving {
                tracing::info!("database reachable again: SERVING");
                set_all(&reporter, ServingStatus::Serving).await;
            } else {
                tracing::warn!("database unreachable: NOT_SERVING");
                set_all(&reporter, ServingStatus::NotServing).await;
            }
        }
    }
}

/// tonic-health's service, except that its Watch streams end once the server shuts down,
/// after the NOT_SERVING they are owed: a load balancer that watches health must not hold
/// the server's drain open until the shutdown timeout.
pub(super) struct ClosingHealth {
    inner: HealthService,
    closing: watch::Receiver<bool>,
}

impl ClosingHealth {
    /// The service reporting what `reporter` is told; its watches end when `closing` turns
    /// true.
    pub(super) fn new(reporter: HealthReporter, closing: watch::Receiver<bool>) -> Self {
        Self {
            inner: HealthService::from_health_reporter(reporter),
            closing,
        }
    }
}

#[tonic::async_trait]
impl Health for ClosingHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.inner.check(request).await
    }

    type WatchStream = UntilClosing<tonic_health::server::WatchStream>;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let statuses = self.inner.watch(request).await?.into_inner();
        let mut closing = self.closing.clone();
        Ok(Response::new(UntilClosing {
            statuses,
            closed: Box::pin(async move {
                // A dropped sender means the server is gone: closed as well.
                let _ = closing.wait_for(|closing| *closing).await;
            }),
            ended: false,
        }))
    }
}

/// The statuses of a health watch until the server shuts down. A status already reported
/// (the NOT_SERVING of the shutdown) is delivered before the stream ends.
pub(super) struct UntilClosing<S> {
    statuses: S,
    closed: Pin<Box<dyn Future<Output = ()> + Send>>,
    ended: bool,
}

impl<S> Stream for UntilClosing<S>
where
    S: Stream<Item = Result<HealthCheckResponse, Status>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(status) = Pin::new(&mut self.statuses).poll_next(cx) {
            return Poll::Ready(status);
        }
        // The NOT_SERVING went out first (it is set before the watches close); then the
        // watch ends UNAVAILABLE, which a client tells from a normal end.
        self.closed.as_mut().poll(cx).map(|()| {
            self.ended = true;
            Some(Err(crate::error::Error::ShuttingDown.into()))
        })
    }
}
