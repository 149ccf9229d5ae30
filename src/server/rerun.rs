//! Runs a unary request again when it met a concurrent write.
//!
//! A write that meets another at the same moment (a deadlock, a serialization failure, a row
//! the other removed or took under it) is rolled back whole and answered
//! [`Error::Conflict`](crate::error::Error::Conflict): ABORTED, marked with
//! [`CONFLICT_MARK`]. Run again, the request meets the state the other write left and answers
//! as it would have had it come second (done, NOT_FOUND, ALREADY_EXISTS, a stale etag). This
//! layer does that for every unary RPC that writes, new ones included: it keeps the request's
//! one message as the handler reads it and, on a marked answer, sends the same request through
//! once more after a short, jittered pause, up to [`ATTEMPTS`] times in all. Only then does the client
//! see ABORTED, with `RetryInfo`; the mark never leaves the service.
//!
//! Streaming RPCs are not run again (their messages are not kept); an import runs each row
//! again itself (`domain::import`). Nor are reads, which meet no concurrent write: their
//! messages are not copied, so the hottest calls pay nothing for this layer but a lookup.

use std::{
    collections::HashSet,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};

use super::detach::only_reads;
use crate::{
    error::CONFLICT_MARK,
    retry::{ATTEMPTS, pause},
};

/// gRPC's framing of a message: a flag and a length.
const FRAMING: usize = 5;

/// Makes [`Rerun`] services.
#[derive(Clone, Debug)]
pub struct RerunLayer {
    /// The unary methods that write, by path.
    writes: Arc<HashSet<String>>,
    /// The largest message kept: the server's limit on a request.
    largest: usize,
}

impl RerunLayer {
    /// The layer for the unary methods of the contract that write, as its descriptor set
    /// lists them, keeping requests up to `largest` bytes (the server's limit on a decoded
    /// message; a larger one is refused before it is read whole).
    pub fn new(largest: usize) -> Self {
        let mut writes = unary_methods();
        writes.retain(|path| !only_reads(path));
        Self {
            writes: Arc::new(writes),
            largest,
        }
    }
}

/// The paths (`/package.Service/Method`) of every unary method in the descriptor set.
fn unary_methods() -> HashSet<String> {
    crate::proto::methods()
        .into_iter()
        .filter(|method| !method.client_streaming && !method.server_streaming)
        .map(|method| method.path)
        .collect()
}

impl<S> Layer<S> for RerunLayer {
    type Service = Rerun<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rerun {
            inner,
            writes: self.writes.clone(),
            largest: self.largest,
        }
    }
}

/// The service made by [`RerunLayer`].
#[derive(Clone, Debug)]
pub struct Rerun<S> {
    inner: S,
    /// The unary methods that write, by path.
    writes: Arc<HashSet<String>>,
    /// The largest message kept.
    largest: usize,
}

impl<S, B> Service<http::Request<B>> for Rerun<S>
where
    S: Service<http::Request<Replayable<B>>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        if !self.writes.contains(parts.uri.path()) {
            let request = http::Request::from_parts(parts, Replayable::Live(body, None));
            return Box::pin(self.inner.call(request));
        }
        let kept = Arc::new(Mutex::new(Kept::new(self.largest)));
        let first =
            http::Request::from_parts(parts.clone(), Replayable::Live(body, Some(kept.clone())));
        // The service that was polled ready serves this request; its clone serves the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            let mut response = inner.call(first).await?;
            let mut attempt = 1;
            while response.headers().contains_key(CONFLICT_MARK) && attempt < ATTEMPTS {
                let Some(message) = kept
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .message()
                else {
                    break;
                };
                pause(attempt).await;
                attempt += 1;
                tracing::debug!(attempt, "a concurrent write stood in the way; once more");
                let again = http::Request::from_parts(parts.clone(), Replayable::Again(message));
                std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
                response = inner.call(again).await?;
            }
            response.headers_mut().remove(CONFLICT_MARK);
            Ok(response)
        })
    }
}

/// The bytes of a request's body as the handler read them, up to the largest message and
/// its framing.
#[derive(Debug)]
pub struct Kept {
    bytes: BytesMut,
    too_large: bool,
    largest: usize,
}

impl Kept {
    fn new(largest: usize) -> Self {
        Self {
            bytes: BytesMut::new(),
            too_large: false,
            largest,
        }
    }

    fn keep(&mut self, data: &Bytes) {
        if self.too_large || self.bytes.len() + data.len() > self.largest + FRAMING {
            self.too_large = true;
            self.bytes = BytesMut::new();
        } else {
            self.bytes.extend_from_slice(data);
        }
    }

    /// The request's one message with its framing, if it was read whole.
    fn message(&self) -> Option<Bytes> {
        if self.too_large {
            return None;
        }
        let header = self.bytes.get(..FRAMING)?;
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let whole = self.bytes.get(..FRAMING + length)?;
        Some(Bytes::copy_from_slice(whole))
    }
}

/// A request body as the client sends it (kept as it is read, for a unary RPC), or the kept
/// message sent once more.
#[derive(Debug)]
pub enum Replayable<B> {
    /// The client's body.
    Live(B, Option<Arc<Mutex<Kept>>>),
    /// The kept message, sent once more (empty once sent).
    Again(Bytes),
}

impl<B> Body for Replayable<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Self::Live(body, kept) => {
                let polled = Pin::new(body).poll_frame(cx);
                if let (Poll::Ready(Some(Ok(frame))), Some(kept)) = (&polled, kept)
                    && let Some(data) = frame.data_ref()
                {
                    kept.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .keep(data);
                }
                polled
            }
            Self::Again(message) => {
                if message.is_empty() {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Ok(Frame::data(std::mem::take(message)))))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Live(body, _) => body.is_end_stream(),
            Self::Again(message) => message.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Live(body, _) => body.size_hint(),
            Self::Again(message) => SizeHint::with_exact(message.len() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unary_method_of_the_contract_is_known_and_no_streaming_one() {
        let unary = unary_methods();
        assert!(unary.contains("/clientele.v1.CustomerService/MergeCustomers"));
        assert!(unary.contains("/clientele.v1.TicketService/TransferTickets"));
        assert!(!unary.contains("/clientele.v1.TicketService/ListTickets"));
        assert!(!unary.contains("/clientele.v1.CustomerService/ImportCustomers"));
        assert!(!unary.contains("/clientele.v1.CommentService/UploadAttachment"));
        let writes = RerunLayer::new(1024).writes;
        assert!(writes.contains("/clientele.v1.CustomerService/MergeCustomers"));
        assert!(
            !writes.contains("/clientele.v1.TicketService/GetTicket"),
            "reads keep nothing"
        );
    }

    #[test]
    fn only_a_message_read_whole_is_sent_again() {
        let mut kept = Kept::new(16);
        kept.keep(&Bytes::from_static(&[0, 0, 0, 0, 3, 1]));
        assert_eq!(kept.message(), None, "two of three bytes read");
        kept.keep(&Bytes::from_static(&[2, 3]));
        assert_eq!(
            kept.message().as_deref(),
            Some(&[0, 0, 0, 0, 3, 1, 2, 3][..])
        );
        kept.keep(&Bytes::from(vec![0; 16]));
        assert_eq!(kept.message(), None, "too large to keep");
    }
}
