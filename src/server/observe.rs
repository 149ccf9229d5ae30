//! The operator's listener beside the gRPC port (`--metrics-listen`, off by default): plain
//! HTTP/1.1 with `GET /metrics` (Prometheus's text format), `GET /ready` (200 while the server
//! serves: the database answers and no shutdown began; 503 otherwise, for load balancers and
//! readiness probes) and `GET /live` (200 while the process runs).

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::outage::Outage;
use crate::{metrics::Metrics, store::Store};

/// What the listener reports on.
#[derive(Clone)]
pub(super) struct Observed {
    pub(super) metrics: Arc<Metrics>,
    pub(super) store: Store,
    pub(super) outage: Outage,
    /// Set when the shutdown begins.
    pub(super) stopping: Arc<AtomicBool>,
}

impl Observed {
    fn ready(&self) -> bool {
        !self.outage.is_down() && !self.stopping.load(Ordering::Acquire)
    }

    fn answer(&self, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let text = |status: StatusCode, body: String, kind: &'static str| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(kind),
            );
            response
        };
        const PLAIN: &str = "text/plain; charset=utf-8";
        if request.method() != http::Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), PLAIN);
        }
        match request.uri().path() {
            "/metrics" => text(
                StatusCode::OK,
                self.metrics
                    .exposition(self.store.pool_state(), self.ready()),
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            ),
            "/ready" if self.ready() => text(StatusCode::OK, "SERVING\n".into(), PLAIN),
            "/ready" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "NOT_SERVING\n".into(),
                PLAIN,
            ),
            "/live" => text(StatusCode::OK, "alive\n".into(), PLAIN),
            _ => text(
                StatusCode::NOT_FOUND,
                "/metrics, /ready and /live are served here\n".into(),
                PLAIN,
            ),
        }
    }
}

/// Serves `observed` on `listener` until the task is aborted.
pub(super) async fn serve(listener: TcpListener, observed: Observed) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "metrics listener cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let observed = observed.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = observed.answer(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics connection ended");
            }
        });
    }
}
