//! Every answer in the form gRPC prescribes, whatever produced it: within the caller's deadline,
//! with the right code for the transport's own failures, and small enough for any client.
//!
//! - **Deadlines.** A call with `grpc-timeout` is answered DEADLINE_EXCEEDED when its deadline
//!   passes: a unary call that has not been answered yet, and a stream in the middle of its
//!   messages (tonic's own timeout covers only the wait for the first answer, and answers it
//!   CANCELLED). A write that has begun still commits whole or not at all (the detach layer);
//!   only its answer is given up, as the deadline promised the client.
//! - **Codes of the framework's own failures.** A body that is not a protobuf message of the
//!   method (tonic and prost say INTERNAL) is INVALID_ARGUMENT with the field it broke at; a
//!   message over the size limit (tonic says OUT_OF_RANGE) is RESOURCE_EXHAUSTED, as gRPC's
//!   status code table has it. This holds for every service, health and reflection included.
//! - **Shutdown.** Once the server's grace for streams has passed ([`Drain`]), a stream still
//!   open ends UNAVAILABLE (`SHUTTING_DOWN`), which a client tells from a normal end; a ticket
//!   list resumes elsewhere from the last `resume_token` it received.
//! - **Size.** No error's `grpc-message` and details together exceed [`TRAILER_BUDGET`]: the
//!   service's own errors are bounded where they are made (`crate::error`); anything else
//!   still too large loses its details and the tail of its message here.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status};
use tower::{Layer, Service};

use crate::error::{Error, FieldViolation, bounded};

/// The most an error's message and details may take in the trailers, well under the 8 KiB
/// that gRPC clients accept by default (Java's and Python's limits).
pub const TRAILER_BUDGET: usize = 6 * 1024;

/// How long before the client's deadline the service answers DEADLINE_EXCEEDED itself, so that
/// its answer is the one sent rather than tonic's CANCELLED for the same moment.
const DEADLINE_MARGIN: Duration = Duration::from_millis(2);

/// The end of the server's streams at shutdown, and the count of requests still being
/// worked on (not counting streams that have begun to answer).
#[derive(Debug)]
pub struct Drain {
    ended: AtomicBool,
    signal: tokio::sync::watch::Sender<bool>,
    in_progress: AtomicUsize,
}

impl Drain {
    /// Streams run on until [`Drain::end_streams`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            ended: AtomicBool::new(false),
            signal: tokio::sync::watch::channel(false).0,
            in_progress: AtomicUsize::new(0),
        })
    }

    /// Ends every stream still open with UNAVAILABLE, at its next message or at once if it
    /// waits.
    pub fn end_streams(&self) {
        self.ended.store(true, Ordering::Release);
        self.signal.send_replace(true);
    }

    /// How many requests are being worked on and have not answered yet.
    pub fn in_progress(&self) -> usize {
        self.in_progress.load(Ordering::Acquire)
    }
}

/// Counts a request in [`Drain::in_progress`] until it has answered (or was dropped).
struct InProgress(Arc<Drain>);

impl InProgress {
    fn new(drain: &Arc<Drain>) -> Self {
        drain.in_progress.fetch_add(1, Ordering::AcqRel);
        Self(drain.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The server-streaming methods (the contract's and health's watch): only their answers are
/// ended at shutdown; a unary answer already made is always delivered.
static STREAMS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    crate::proto::methods()
        .into_iter()
        .filter(|method| method.server_streaming)
        .map(|method| method.path)
        .chain(["/grpc.health.v1.Health/Watch".to_owned()])
        .collect()
});

/// Makes [`Answers`] services.
#[derive(Clone, Debug)]
pub struct AnswersLayer {
    drain: Arc<Drain>,
}

impl AnswersLayer {
    /// Answers whose streams end when `drain` says.
    pub fn new(drain: Arc<Drain>) -> Self {
        Self { drain }
    }
}

impl<S> Layer<S> for AnswersLayer {
    type Service = Answers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Answers {
            inner,
            drain: self.drain.clone(),
        }
    }
}

/// The service made by [`AnswersLayer`].
#[derive(Clone, Debug)]
pub struct Answers<S> {
    inner: S,
    drain: Arc<Drain>,
}

impl<S, B> Service<http::Request<B>> for Answers<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
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
        let deadline = grpc_timeout(request.headers())
            .map(|timeout| Instant::now() + timeout.saturating_sub(DEADLINE_MARGIN));
        if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            return Box::pin(async { Ok(deadline_exceeded().into_http()) });
        }
        let drain = STREAMS
            .contains(request.uri().path())
            .then(|| self.drain.clone());
        let in_progress = InProgress::new(&self.drain);
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, answer).await {
                    Ok(response) => response?,
                    Err(_) => return Ok(deadline_exceeded().into_http()),
                },
                None => answer.await?,
            };
            drop(in_progress);
            let (mut parts, body) = response.into_parts();
            mend(&mut parts.headers);
            let body = Answer {
                inner: body,
                deadline: deadline.map(|deadline| Box::pin(tokio::time::sleep_until(deadline))),
                drain,
                ending: None,
                done: false,
            };
            Ok(http::Response::from_parts(
                parts,
                tonic::body::Body::new(body),
            ))
        })
    }
}

/// A response body that ends DEADLINE_EXCEEDED when its deadline passes, a stream's UNAVAILABLE
/// when the server ends its streams, and mends the status in its trailers.
struct Answer {
    inner: tonic::body::Body,
    deadline: Option<Pin<Box<Sleep>>>,
    /// For a stream: the signal that ends it.
    drain: Option<Arc<Drain>>,
    /// Waits for that signal, made when the stream first waits.
    ending: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    done: bool,
}

impl Answer {
    /// The last frame: trailers with `status`.
    fn end(&mut self, status: Status) -> Poll<Option<Result<Frame<bytes::Bytes>, Status>>> {
        self.done = true;
        let mut trailers = HeaderMap::new();
        // Adding a small status to an empty map cannot fail.
        let _ = status.add_header(&mut trailers);
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }
}

impl Body for Answer {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(drain) = &this.drain
            && drain.ended.load(Ordering::Acquire)
        {
            return this.end(Error::ShuttingDown.into());
        }
        // A stream that always has its next message ready is ended at its deadline too.
        if this
            .deadline
            .as_ref()
            .is_some_and(|deadline| deadline.is_elapsed())
        {
            return this.end(deadline_exceeded());
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_trailers() {
                    Ok(mut trailers) => {
                        mend(&mut trailers);
                        this.done = true;
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Pending => {
                if let Some(deadline) = &mut this.deadline
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return this.end(deadline_exceeded());
                }
                if let Some(drain) = &this.drain {
                    let ending = this.ending.get_or_insert_with(|| {
                        let mut signal = drain.signal.subscribe();
                        Box::pin(async move {
                            let _ = signal.wait_for(|ended| *ended).await;
                        })
                    });
                    if ending.as_mut().poll(cx).is_ready() {
                        return this.end(Error::ShuttingDown.into());
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn deadline_exceeded() -> Status {
    Status::deadline_exceeded(
        "the deadline of the call passed before it was answered in full; a write may still \
         have committed",
    )
}

/// The deadline a client sent as `grpc-timeout`: at most eight digits and a unit (`H`, `M`,
/// `S`, `m`, `u`, `n`). A header that does not parse is ignored, as tonic ignores it.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// Gives the status in `headers` (a trailers-only answer's headers, or trailers) the code
/// gRPC prescribes and a size every client accepts.
fn mend(headers: &mut HeaderMap) {
    let Some(code) = headers.get("grpc-status") else {
        return;
    };
    if code.as_bytes() == b"0" {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let mended = match status.code() {
        Code::Internal if status.message().starts_with(DECODE_FAILURE) => {
            Some(Status::from(malformed(status.message())))
        }
        // tonic's own framing: a frame cut short, a compressed flag that is neither 0 nor 1
        // or set without an encoding (gRPC's compression document asks INTERNAL for that; a
        // client sent it, so here it is bad input like the rest), a body that does not
        // decompress.
        Code::Internal
            if FRAMING_FAILURES
                .iter()
                .any(|prefix| status.message().starts_with(prefix)) =>
        {
            Some(Status::from(Error::InvalidArgument {
                reason: "MALFORMED_MESSAGE",
                violations: vec![FieldViolation {
                    field: String::new(),
                    description: format!(
                        "the request is not framed as gRPC requires: {}",
                        bounded(status.message(), 256)
                    ),
                }],
            }))
        }
        Code::OutOfRange
            if status
                .message()
                .starts_with("Error, decoded message length too large")
                || status
                    .message()
                    .starts_with("Error, encoded message length too large") =>
        {
            Some(Status::from(Error::ResourceExhausted {
                reason: "MESSAGE_TOO_LARGE",
                message: bounded(status.message(), 512),
                retry_after: None,
            }))
        }
        _ => None,
    };
    // Percent-encoding may triple the message; base64 adds a third to the details.
    let size = |status: &Status| 3 * status.message().len() + status.details().len() * 4 / 3;
    let status = match mended {
        Some(status) => status,
        None if size(&status) > TRAILER_BUDGET => {
            Status::new(status.code(), bounded(status.message(), 512))
        }
        None => return,
    };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    // The mended status is small and its message valid text: adding it cannot fail.
    let _ = status.add_header(headers);
}

/// How prost's decode errors begin.
const DECODE_FAILURE: &str = "failed to decode Protobuf message";

/// How tonic's errors for a badly framed request body begin.
const FRAMING_FAILURES: &[&str] = &[
    "Unexpected EOF decoding stream",
    "protocol error: received message with invalid compression flag",
    "protocol error: received message with compressed-flag but no grpc-encoding",
    "Error decompressing",
];

/// The answer to a body that is not a protobuf message of the method. prost names where it
/// failed as `Message.field: ` for each level, innermost first (`Customer.email:
/// CreateCustomerRequest.customer: invalid string value: data is not UTF-8 encoded`); the
/// field's path is those fields, outermost first.
fn malformed(message: &str) -> Error {
    let rest = message
        .strip_prefix(DECODE_FAILURE)
        .unwrap_or(message)
        .trim_start_matches(':')
        .trim_start();
    let mut fields = Vec::new();
    let mut remaining = rest;
    while let Some((level, after)) = remaining.split_once(": ") {
        let Some((message_name, field)) = level.split_once('.') else {
            break;
        };
        let ident = |text: &str| {
            !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        };
        if !ident(message_name) || !ident(field) {
            break;
        }
        fields.push(field);
        remaining = after;
    }
    fields.reverse();
    Error::InvalidArgument {
        reason: "MALFORMED_MESSAGE",
        violations: vec![FieldViolation {
            field: fields.join("."),
            description: format!(
                "the request is not a valid protobuf message of this method: {}",
                bounded(remaining, 256)
            ),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_nonsense_is_ignored() {
        let parse = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().unwrap());
            grpc_timeout(&headers)
        };
        assert_eq!(parse("1S"), Some(Duration::from_secs(1)));
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse("1u"), Some(Duration::from_micros(1)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
        assert_eq!(parse("123456789S"), None);
        assert_eq!(parse("S"), None);
        assert_eq!(parse("-1S"), None);
        assert_eq!(parse("1x"), None);
    }

    #[test]
    fn a_decode_failure_names_the_field_it_broke_at() {
        let Error::InvalidArgument { violations, .. } = malformed(
            "failed to decode Protobuf message: Customer.email: CreateCustomerRequest.customer: \
             invalid string value: data is not UTF-8 encoded",
        ) else {
            panic!("not invalid argument");
        };
        assert_eq!(violations[0].field, "customer.email");
        assert!(
            violations[0]
                .description
                .ends_with("data is not UTF-8 encoded")
        );
        let Error::InvalidArgument { violations, .. } =
            malformed("failed to decode Protobuf message: invalid wire type value: 7")
        else {
            panic!("not invalid argument");
        };
        assert_eq!(violations[0].field, "");
    }
}
