//! Runs every unary and server-streaming RPC that writes in a task of its own, so that a
//! client that goes away (a timeout, a cancelled call) cannot cut a database write short in
//! the middle of a statement: the RPC finishes — committing with its events or failing whole
//! — and only its answer is lost. Reads (Get…, List…, Check…, WhoAmI, Watch…, Download…,
//! health, reflection) write nothing and stay on the connection's task, which spares them a
//! task hand-over. Server-streaming RPCs return their stream at once; the stream itself still
//! stops when the client goes. Client-streaming RPCs (imports, uploads) stay tied to their
//! client: a client that breaks off must stop them; each keeps its own writes whole (a row of
//! an import is one transaction, an upload writes through a task of its own).
//!
//! A client-streaming request's body is watched for the way it ends: tonic reads a client's
//! cancel (RST_STREAM CANCEL) as the clean end of the stream, so a handler could take half an
//! upload for the whole file. [`BrokenOff`], in the request's extensions, tells the two
//! apart.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tower::{Layer, Service};
use tracing::Instrument;

use crate::api::BrokenOff;

/// The client-streaming RPCs, which end with their client.
const CLIENT_STREAMING: &[&str] = &[
    "/clientele.v1.CustomerService/ImportCustomers",
    "/clientele.v1.OrganisationService/ImportOrganisations",
    "/clientele.v1.CommentService/UploadAttachment",
];

/// Whether the RPC at `path` only reads. Read methods are named so in `proto/` (AIP's Get
/// and List, and the questions Check, WhoAmI, Watch and Download); a test holds every method
/// of the API to that naming.
pub fn only_reads(path: &str) -> bool {
    if path.starts_with("/grpc.") {
        return true;
    }
    let method = path.rsplit('/').next().unwrap_or_default();
    READ_VERBS.iter().any(|verb| method.starts_with(verb))
}

/// The verbs of methods that only read.
const READ_VERBS: &[&str] = &[
    "Get", "List", "Check", "WhoAmI", "Watch", "Download", "Export", "Render",
];

/// Makes [`Detach`] services.
#[derive(Clone, Copy, Debug, Default)]
pub struct DetachLayer;

impl<S> Layer<S> for DetachLayer {
    type Service = Detach<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Detach { inner }
    }
}

/// The service made by [`DetachLayer`].
#[derive(Clone, Debug)]
pub struct Detach<S> {
    inner: S,
}

/// A request body that records in [`BrokenOff`] an error it passes on.
#[derive(Debug)]
pub struct Watched<B> {
    inner: B,
    broken_off: Option<BrokenOff>,
}

impl<B> http_body::Body for Watched<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let (Poll::Ready(Some(Err(_))), Some(broken_off)) = (&polled, &this.broken_off) {
            broken_off.set();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, B> Service<http::Request<B>> for Detach<S>
where
    S: Service<http::Request<Watched<B>>, Response = http::Response<tonic::body::Body>>
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
        let path = request.uri().path();
        if CLIENT_STREAMING.contains(&path) {
            let broken_off = BrokenOff::default();
            let (mut parts, body) = request.into_parts();
            parts.extensions.insert(broken_off.clone());
            let body = Watched {
                inner: body,
                broken_off: Some(broken_off),
            };
            return Box::pin(self.inner.call(http::Request::from_parts(parts, body)));
        }
        let request = request.map(|inner| Watched {
            inner,
            broken_off: None,
        });
        if only_reads(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        // The task carries the RPC's span, so what it logs stays attached to the call.
        let call = tokio::spawn(inner.call(request).in_current_span());
        Box::pin(async move {
            match call.await {
                Ok(outcome) => outcome,
                Err(error) => {
                    tracing::error!(%error, "an RPC task failed");
                    Ok(tonic::Status::internal("internal error").into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::{CLIENT_STREAMING, only_reads};

    /// Every method of the API, as `/package.Service/Method`.
    fn methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        set.file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service.method.iter().map(move |method| {
                        format!("/{}.{}/{}", file.package(), service.name(), method.name())
                    })
                })
            })
            .collect()
    }

    /// The methods taken for reads are exactly these, each checked to write nothing; a new
    /// method named like a read must be added here after the same check.
    #[test]
    fn the_methods_that_are_not_detached_only_read() {
        let mut reads: Vec<String> = methods().into_iter().filter(|m| only_reads(m)).collect();
        reads.sort();
        assert_eq!(
            reads,
            [
                "/clientele.v1.AgentService/GetAgent",
                "/clientele.v1.AgentService/ListAgents",
                "/clientele.v1.AgentService/ListTokens",
                "/clientele.v1.AgentService/WhoAmI",
                "/clientele.v1.ChangeService/GetHistory",
                "/clientele.v1.ChangeService/ListChanges",
                "/clientele.v1.ChangeService/WatchChanges",
                "/clientele.v1.CommentService/DownloadAttachment",
                "/clientele.v1.CommentService/GetComment",
                "/clientele.v1.CommentService/ListAttachments",
                "/clientele.v1.CommentService/ListComments",
                "/clientele.v1.ContactGroupService/GetContactGroup",
                "/clientele.v1.ContactGroupService/ListContactGroupKinds",
                "/clientele.v1.ContactGroupService/ListContactGroupMembers",
                "/clientele.v1.ContactGroupService/ListContactGroupMemberships",
                "/clientele.v1.ContactGroupService/ListContactGroups",
                "/clientele.v1.CustomerService/GetCustomer",
                "/clientele.v1.CustomerService/ListCustomers",
                "/clientele.v1.CustomerService/RenderCustomerSheet",
                "/clientele.v1.CustomerSourceService/ListCustomerSources",
                "/clientele.v1.DirectoryService/GetDirectory",
                "/clientele.v1.DirectoryService/ListDirectories",
                "/clientele.v1.FieldCatalogueService/ListCustomerTypes",
                "/clientele.v1.FieldCatalogueService/ListFieldDefinitions",
                "/clientele.v1.GroupService/GetGroup",
                "/clientele.v1.GroupService/ListGroups",
                "/clientele.v1.OrganisationService/GetOrganisation",
                "/clientele.v1.OrganisationService/ListOrganisations",
                "/clientele.v1.PermissionService/CheckPermission",
                "/clientele.v1.PermissionService/GetEffectivePermissions",
                "/clientele.v1.PermissionService/GetSettings",
                "/clientele.v1.PermissionService/ListGrants",
                "/clientele.v1.PriceListService/GetEffectivePrices",
                "/clientele.v1.PriceListService/GetPriceList",
                "/clientele.v1.PriceListService/ListPriceLists",
                "/clientele.v1.PrivacyService/ExportCustomerData",
                "/clientele.v1.SlaService/GetCalendar",
                "/clientele.v1.SlaService/GetSlaPolicy",
                "/clientele.v1.SlaService/ListCalendars",
                "/clientele.v1.SlaService/ListSlaPolicies",
                "/clientele.v1.TicketService/GetCustomerOverview",
                "/clientele.v1.TicketService/GetOrganisationOverview",
                "/clientele.v1.TicketService/GetTicket",
                "/clientele.v1.TicketService/GetTicketHistory",
                "/clientele.v1.TicketService/ListTickets",
                "/clientele.v1.TicketService/WatchEscalations",
                "/clientele.v1.WebhookService/GetWebhook",
                "/clientele.v1.WebhookService/ListActivities",
                "/clientele.v1.WebhookService/ListWebhookDeliveries",
                "/clientele.v1.WebhookService/ListWebhooks",
            ]
        );
        assert!(only_reads("/grpc.health.v1.Health/Check"));
        assert!(!only_reads("/clientele.v1.TicketService/UpdateTicket"));
    }

    #[test]
    fn the_client_streaming_methods_are_exactly_those_of_the_api() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let mut found: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service
                        .method
                        .iter()
                        .filter(|method| method.client_streaming())
                        .map(move |method| {
                            format!("/{}.{}/{}", file.package(), service.name(), method.name())
                        })
                })
            })
            .collect();
        found.sort();
        let mut listed: Vec<String> = CLIENT_STREAMING.iter().map(|m| (*m).to_owned()).collect();
        listed.sort();
        assert_eq!(found, listed);
    }
}
