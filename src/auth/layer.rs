//! The tower layer that authenticates and authorises every RPC before it reaches a service.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tower::{Layer, Service};

use super::{Authenticator, policy, tokens::bearer};
use crate::error::Error;

/// Puts the caller's [`super::Principal`] into the request extensions, or answers
/// UNAUTHENTICATED / PERMISSION_DENIED itself. Health and reflection pass untouched.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    /// A layer that verifies tokens with `authenticator`.
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        Self { authenticator }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

/// The service made by [`AuthLayer`].
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
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
            tracing::Span::current().record("principal", principal.actor().as_str());
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
