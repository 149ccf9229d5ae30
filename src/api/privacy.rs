//! PrivacyService: the erasure and the export of a person's data.

use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};
use tonic::{Request, Response, Status};

use super::{parse_id, principal};
use crate::{
    domain::{Privacy, change_feed::SeenChange, customer::EraseOptions, privacy::ExportItem},
    error::Error,
    model::ErasureReport,
    proto::v1::{self as pb, privacy_service_server::PrivacyService},
};

/// How many export items wait for a slow client.
const EXPORT_BUFFER: usize = 64;

/// The PrivacyService adapter.
#[derive(Clone, Debug)]
pub struct PrivacyApi {
    privacy: Privacy,
}

impl PrivacyApi {
    /// Over the privacy rules.
    pub fn new(privacy: Privacy) -> Self {
        Self { privacy }
    }
}

#[tonic::async_trait]
impl PrivacyService for PrivacyApi {
    type ExportCustomerDataStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ExportCustomerDataResponse, Status>> + Send>,
    >;

    async fn erase_customer(
        &self,
        request: Request<pb::EraseCustomerRequest>,
    ) -> Result<Response<pb::EraseCustomerResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let keep_open_tickets = match pb::OpenTicketHandling::try_from(request.open_ticket_handling)
        {
            Ok(pb::OpenTicketHandling::Unspecified) => false,
            Ok(pb::OpenTicketHandling::Keep) => true,
            Err(_) => {
                return Err(Error::invalid(
                    "open_ticket_handling",
                    "must be OPEN_TICKET_HANDLING_UNSPECIFIED (refuse) or OPEN_TICKET_HANDLING_KEEP",
                )
                .into());
            }
        };
        let options = EraseOptions {
            keep_conversation: request.keep_conversation,
            keep_open_tickets,
        };
        let report = self
            .privacy
            .erase(&principal, id, &request.etag, options)
            .await?;
        Ok(Response::new(report_to_proto(id, report)))
    }

    async fn export_customer_data(
        &self,
        request: Request<pb::ExportCustomerDataRequest>,
    ) -> Result<Response<Self::ExportCustomerDataStream>, Status> {
        let principal = principal(&request)?;
        let id = parse_id("id", &request.into_inner().id)?;
        // Refusals answer the call; once it runs, an error ends the stream.
        let export = self.privacy.export(&principal, id).await?;
        let (items, produced) = mpsc::channel(EXPORT_BUFFER);
        tokio::spawn(async move {
            if let Err(error) = export.run(&items).await {
                let _ = items.send(Err(error)).await;
            }
        });
        let stream =
            ReceiverStream::new(produced).map(|item| item.map(item_to_proto).map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}

fn item_to_proto(item: ExportItem) -> pb::ExportCustomerDataResponse {
    use pb::export_customer_data_response::Item;
    let item = match item {
        ExportItem::Customer(customer) => Item::Customer(super::customer::to_proto(customer)),
        ExportItem::Organisation(organisation) => {
            Item::Organisation(super::organisation::to_proto(organisation))
        }
        ExportItem::Grant(grant) => Item::Grant(super::permission::grant_to_proto(grant)),
        ExportItem::Token(token) => Item::Token(super::agent::token_to_proto(token)),
        ExportItem::Ticket(ticket) => Item::Ticket(super::ticket::to_proto(*ticket)),
        ExportItem::Comment(comment) => Item::Comment(super::comment::to_proto(comment)),
        ExportItem::Change(change) => Item::Change(super::change::to_proto(SeenChange {
            change,
            redacted: false,
            resource: None,
        })),
    };
    pb::ExportCustomerDataResponse { item: Some(item) }
}

fn report_to_proto(id: uuid::Uuid, report: ErasureReport) -> pb::EraseCustomerResponse {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    pb::EraseCustomerResponse {
        id: id.to_string(),
        tombstone: report.tombstone,
        tickets_kept: count(report.tickets_kept),
        comments_deleted: count(report.comments_deleted),
        comments_kept: count(report.comments_kept),
        notes_deleted: count(report.notes_deleted),
        attachments_deleted: count(report.attachments_deleted),
        grants_deleted: count(report.grants_deleted),
        tokens_deleted: count(report.tokens_deleted),
        changes_erased: count(report.changes_erased),
    }
}
