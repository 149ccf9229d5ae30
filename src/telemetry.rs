//! Logs: the subscriber (human or JSON) and a tower layer that gives every RPC one span with
//! its method, gRPC code and latency.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};
use tracing::{Instrument, Level, Span, field::Empty};
use tracing_subscriber::EnvFilter;

use crate::metrics::{Metrics, Running};

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Human,
    /// One JSON object per event, with the RPC span's fields.
    Json,
}

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output: the server, as containers expect.
    Stdout,
    /// Standard error: commands whose standard output is their result.
    Stderr,
}

/// Installs the global subscriber. The filter comes from `RUST_LOG`, `info` by default.
pub fn init(format: LogFormat, target: LogTarget) {
    // Without an endpoint nothing can fail to set up.
    let _ = init_with_traces(format, target, None);
}

/// Spans exported over OTLP until [`Traces::shutdown`] sends what is left.
#[derive(Debug)]
pub struct Traces(opentelemetry_sdk::trace::SdkTracerProvider);

impl Traces {
    /// Sends the spans not yet sent and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.0.shutdown() {
            eprintln!("the last spans could not be sent: {error}");
        }
    }
}

/// Like [`init`], and with `otlp_endpoint` (`http://collector:4317`) every RPC's span and its
/// children (the database work, at debug level) are exported over OTLP/gRPC, continuing the
/// caller's W3C `traceparent`.
pub fn init_with_traces(
    format: LogFormat,
    target: LogTarget,
    otlp_endpoint: Option<&str>,
) -> Result<Option<Traces>, String> {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use tracing_subscriber::{Layer as _, layer::SubscriberExt as _, util::SubscriberInitExt as _};

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = match target {
        LogTarget::Stdout => std::io::IsTerminal::is_terminal(&std::io::stdout()),
        LogTarget::Stderr => std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let writer = move || -> Box<dyn std::io::Write> {
        match target {
            LogTarget::Stdout => Box::new(std::io::stdout()),
            LogTarget::Stderr => Box::new(std::io::stderr()),
        }
    };
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(terminal);
    let lines = match format {
        LogFormat::Human => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let (spans, traces) = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()
                .map_err(|error| format!("the OTLP exporter for {endpoint}: {error}"))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("clientele")
                        .build(),
                )
                .build();
            let layer = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("clientele"))
                // The RPCs and the database work under them; not every debug event.
                .with_filter(EnvFilter::new("info,clientele::store=debug"));
            (Some(layer), Some(Traces(provider)))
        }
        None => (None, None),
    };
    let installed = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(spans)
        .try_init();
    if let Err(error) = installed {
        eprintln!("logging was already set up: {error}");
    }
    Ok(traces)
}

/// Wraps every RPC in a span `rpc{method, code, latency_ms}` and logs its end. Health and
/// reflection calls log at debug level, so probes do not flood the log. Counts the RPCs in
/// flight in `metrics`.
#[derive(Clone, Debug, Default)]
pub struct RpcTraceLayer {
    metrics: Arc<Metrics>,
}

impl RpcTraceLayer {
    /// The layer, counting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service made by [`RpcTraceLayer`].
#[derive(Clone, Debug)]
pub struct RpcTrace<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, RequestBody, ResponseBody> Service<http::Request<RequestBody>> for RpcTrace<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TracedBody<ResponseBody>>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let level =
            if method.starts_with("/grpc.health.") || method.starts_with("/grpc.reflection.") {
                Level::DEBUG
            } else {
                Level::INFO
            };
        let request_id = request_id(request.headers());
        let parent = traceparent(request.headers());
        let span = match level {
            Level::DEBUG => {
                tracing::debug_span!(
                    "rpc",
                    method = %method,
                    request_id = %request_id,
                    trace_id = Empty,
                    code = Empty,
                    latency_ms = Empty,
                    message = Empty,
                    principal = Empty
                )
            }
            _ => tracing::info_span!(
                "rpc",
                method = %method,
                request_id = %request_id,
                trace_id = Empty,
                code = Empty,
                latency_ms = Empty,
                message = Empty,
                principal = Empty
            ),
        };
        join_trace(&span, parent);
        let start = Instant::now();
        let in_flight = self.metrics.rpc();
        let metrics = self.metrics.clone();
        let label = crate::metrics::method_label(&method);
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                let response = future.await?;
                let mut finish = RpcEnd {
                    span: Span::current(),
                    metrics,
                    method: label,
                    _in_flight: in_flight,
                    start,
                    code: None,
                    message: None,
                    level,
                };
                finish.read_status(response.headers());
                let (mut parts, body) = response.into_parts();
                // The id the client gave or the one made here, for its logs and support.
                if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                    parts.headers.insert(REQUEST_ID, value);
                }
                Ok(http::Response::from_parts(
                    parts,
                    TracedBody {
                        inner: body,
                        end: Some(finish),
                    },
                ))
            }
            .instrument(span),
        )
    }
}

/// The metadata that names a request, taken from the client or made here.
pub const REQUEST_ID: &str = "x-request-id";

/// The request's id: the client's `x-request-id` when it is 1 to 128 visible ASCII characters
/// (anything else could forge log lines), else a new UUID.
fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The caller's span, from a W3C `traceparent` (`00-<32 hex trace>-<16 hex span>-<2 hex
/// flags>`, ids not all zeros): its trace id, span id and whether it is sampled.
fn traceparent(headers: &http::HeaderMap) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    let value = headers.get("traceparent")?.to_str().ok()?;
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |part: &str, length: usize| {
        part.len() == length
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !(hex(version, 2) && version != "ff" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)) {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(parent).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Makes `span` a child of the caller's span when there is one, and records the trace id its
/// log lines carry: the caller's, the exported span's, or (nothing exported) a new one.
fn join_trace(span: &Span, parent: Option<opentelemetry::trace::SpanContext>) {
    use opentelemetry::trace::{TraceContextExt as _, TraceId};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let trace_id = match parent {
        Some(parent) => {
            let trace_id = parent.trace_id();
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
            trace_id
        }
        None => span.context().span().span_context().trace_id(),
    };
    let trace_id = if trace_id == TraceId::INVALID {
        let mut random = [0u8; 16];
        // Without the system's randomness the id is still unique enough from the clock.
        if getrandom::fill(&mut random).is_err() {
            random = uuid::Uuid::now_v7().into_bytes();
        }
        TraceId::from_bytes(random)
    } else {
        trace_id
    };
    span.record("trace_id", tracing::field::display(trace_id));
}

/// Undoes the percent-encoding of `grpc-message`.
fn percent_decode(bytes: &[u8]) -> String {
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        let escaped = (first == b'%')
            .then(|| tail.get(..2))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                rest = &tail[2..];
            }
            None => {
                decoded.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn grpc_code(value: &http::HeaderValue) -> Option<tonic::Code> {
    let number: i32 = value.to_str().ok()?.parse().ok()?;
    Some(tonic::Code::from(number))
}

/// The end of an RPC: logged once, when the response body finishes or is dropped.
struct RpcEnd {
    span: Span,
    metrics: Arc<Metrics>,
    /// The method, as a metrics label.
    method: &'static str,
    /// Counts the RPC as in flight until its body has ended or been dropped.
    _in_flight: Running,
    start: Instant,
    code: Option<tonic::Code>,
    /// The status message of a failed RPC (as sent: percent-encoded where needed).
    message: Option<String>,
    level: Level,
}

impl RpcEnd {
    /// Takes the gRPC status from response headers (trailers-only responses) or trailers.
    fn read_status(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = headers.get("grpc-status").and_then(grpc_code) {
            self.code = Some(code);
            self.message = headers
                .get("grpc-message")
                .map(|m| percent_decode(m.as_bytes()));
        }
    }
}

impl Drop for RpcEnd {
    fn drop(&mut self) {
        // No status at all means the client went away before the server finished.
        let status = self.code.unwrap_or(tonic::Code::Cancelled);
        let code = format!("{status:?}");
        let latency = self.start.elapsed();
        self.metrics.finished(self.method, status, latency);
        let latency_ms = latency.as_secs_f64() * 1000.0;
        self.span.record("code", code.as_str());
        self.span.record("latency_ms", latency_ms);
        if let Some(message) = &self.message {
            self.span.record("message", message.as_str());
        }
        let _entered = self.span.enter();
        if self.level == Level::DEBUG {
            tracing::debug!("rpc finished");
        } else {
            tracing::info!("rpc finished");
        }
    }
}

/// A response body that watches for the gRPC status in the trailers.
pub struct TracedBody<B> {
    inner: B,
    end: Option<RpcEnd>,
}

impl<B> Body for TracedBody<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(trailers), Some(end)) = (frame.trailers_ref(), this.end.as_mut()) {
                    end.read_status(trailers);
                }
            }
            Some(Err(_)) => {
                if let Some(end) = this.end.as_mut() {
                    end.code = Some(tonic::Code::Internal);
                }
            }
            None => {
                this.end.take();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_str(value).expect("value"),
                )
            })
            .collect()
    }

    #[test]
    fn a_valid_traceparent_is_continued_and_anything_else_is_not() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let continued = headers(&[("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))]);
        let parent = traceparent(&continued).expect("a parent");
        assert_eq!(parent.trace_id().to_string(), trace);
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parent.is_sampled());
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(
                traceparent(&headers(&[("traceparent", bad)])).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_request_id_is_kept_when_printable_and_short_and_made_otherwise() {
        assert_eq!(request_id(&headers(&[(REQUEST_ID, "abc-123")])), "abc-123");
        let long = "x".repeat(129);
        for bad in ["has space", long.as_str()] {
            let made = request_id(&headers(&[(REQUEST_ID, bad)]));
            assert!(uuid::Uuid::parse_str(&made).is_ok(), "{bad}: {made}");
        }
        assert!(uuid::Uuid::parse_str(&request_id(&http::HeaderMap::new())).is_ok());
    }
}
