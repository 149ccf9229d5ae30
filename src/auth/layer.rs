//! The tower layer that authenticates and authorises every RPC before it reaches a service.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tower::{Layer, Service};

use super::{Authenticator, policy, rate::RateLimiter, tokens::bearer};
use crate::error::Error;

/// Puts the caller's [`super::Principal`] into the request extensions, or answers
/// UNAUTHENTICATED / PERMISSION_DENIED itself. Health and reflection pass untouched.
/// Over its rate (when one is set), a principal's call is answered RESOURCE_EXHAUSTED.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    limiter: Option<Arc<RateLimiter>>,
}

impl AuthLayer {
    /// A layer that verifies tokens with `authenticator` and holds each principal to
    /// `limiter`'s rate.
    pub fn new(authenticator: Arc<Authenticator>, limiter: Option<Arc<RateLimiter>>) -> Self {
        Self {
            authenticator,
            limiter,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            authenticator: self.authenticator.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    limiter: Option<Arc<RateLimiter>>,
}

impl<S, B> Service<http::Request<B>> for Auth<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        if policy::is_open(&path) {
            return Box::pin(self.inner.call(request));
        }
        // The service that was polled ready serves this request; its clone serves the next.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let authenticator = self.authenticator.clone();
        let limiter = self.limiter.clone();
        Box::pin(async move {
            let Some(callers) = policy::callers(&path) else {
                return Ok(refuse(Error::denied(
                    "METHOD_NOT_IN_POLICY",
                    format!("{path} is open to no one"),
                )));
            };
            let principal = match bearer(request.headers().get(http::header::AUTHORIZATION)) {
                Ok(secret) => match authenticator.authenticate(secret).await {
                    Ok(principal) => principal,
                    Err(error) => return Ok(refuse(error)),
                },
                Err(error) => return Ok(refuse(error)),
            };
            let actor = principal.actor();
            tracing::Span::current().record("principal", actor.as_str());
            if let Some(limiter) = limiter
                && let Err(wait) = limiter.admit(actor.as_str())
            {
                return Ok(refuse(Error::ResourceExhausted {
                    reason: "RATE_LIMITED",
                    message: "this caller has sent more requests than its rate allows; retry \
                              after the delay in RetryInfo"
                        .into(),
                    retry_after: Some(wait),
                }));
            }
            if !callers.admit(principal.role()) {
                return Ok(refuse(Error::denied(
                    "ROLE_NOT_ALLOWED",
                    format!("the {} role may not call {path}", principal.role().name()),
                )));
            }
            request.extensions_mut().insert(principal);
            inner.call(request).await
        })
    }
}

fn refuse(error: Error) -> http::Response<tonic::body::Body> {
    tonic::Status::from(error).into_http()
}
