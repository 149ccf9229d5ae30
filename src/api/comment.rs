//! `clientele.v1.CommentService`, with the chunked attachment upload (client streaming) and
//! download (server streaming).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::{parse_id, principal, timestamp};
use crate::{
    domain::{
        Comments,
        attachment::{AttachmentMetadata, AttachmentQuery},
        comment::{CommentInput, CommentQuery},
        fields,
    },
    error::{Error, Result},
    model::{Attachment, Comment, CommentParent, Party, Visibility},
    proto::v1::{self as pb, comment_service_server::CommentService},
};

/// How many download chunks wait for a slow client.
const DOWNLOAD_BUFFER: usize = 4;

/// The gRPC face of [`Comments`].
#[derive(Clone, Debug)]
pub struct CommentApi {
    comments: Comments,
}

impl CommentApi {
    /// Serves `comments`.
    pub fn new(comments: Comments) -> Self {
        Self { comments }
    }
}

#[tonic::async_trait]
impl CommentService for CommentApi {
    type DownloadAttachmentStream = ReceiverStream<Result<pb::DownloadAttachmentResponse, Status>>;

    async fn create_comment(
        &self,
        request: Request<pb::CreateCommentRequest>,
    ) -> Result<Response<pb::CreateCommentResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let request_id = fields::request_id(&request.request_id)?;
        let input = input(request.comment.unwrap_or_default()).map_err(|e| e.within("comment"))?;
        let comment = self
            .comments
            .create(&principal, input, request_id)
            .await
            .map_err(|e| e.within("comment"))?;
        Ok(Response::new(pb::CreateCommentResponse {
            comment: Some(to_proto(comment)),
        }))
    }

    async fn get_comment(
        &self,
        request: Request<pb::GetCommentRequest>,
    ) -> Result<Response<pb::GetCommentResponse>, Status> {
        let principal = principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let comment = self.comments.get(&principal, id).await?;
        Ok(Response::new(pb::GetCommentResponse {
            comment: Some(to_proto(comment)),
        }))
    }

    async fn list_attachments(
        &self,
        request: Request<pb::ListAttachmentsRequest>,
    ) -> Result<Response<pb::ListAttachmentsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let query = AttachmentQuery {
            parent: request
                .parent
                .as_ref()
                .map(|p| parent("parent", p))
                .transpose()?,
            comment_id: super::parse_optional_id("comment_id", &request.comment_id)?,
            file_name: request.file_name,
            content_type: request.content_type,
            include_deleted: request.include_deleted,
        };
        let page = self
            .comments
            .list_attachments(&principal, &query, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListAttachmentsResponse {
            attachments: page
                .items
                .into_iter()
                .map(listed_attachment_to_proto)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_attachment(
        &self,
        request: Request<pb::DeleteAttachmentRequest>,
    ) -> Result<Response<pb::DeleteAttachmentResponse>, Status> {
        let principal = principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let attachment = self
            .comments
            .set_attachment_deleted(&principal, id, true)
            .await?;
        Ok(Response::new(pb::DeleteAttachmentResponse {
            attachment: Some(listed_attachment_to_proto(attachment)),
        }))
    }

    async fn undelete_attachment(
        &self,
        request: Request<pb::UndeleteAttachmentRequest>,
    ) -> Result<Response<pb::UndeleteAttachmentResponse>, Status> {
        let principal = principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let attachment = self
            .comments
            .set_attachment_deleted(&principal, id, false)
            .await?;
        Ok(Response::new(pb::UndeleteAttachmentResponse {
            attachment: Some(listed_attachment_to_proto(attachment)),
        }))
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let query = CommentQuery {
            parent: request
                .parent
                .as_ref()
                .map(|p| parent("parent", p))
                .transpose()?,
            author: request
                .author
                .as_ref()
                .map(|a| party("author", a))
                .transpose()?,
            created_from: super::parse_time("created_after", request.created_after)?,
            created_until: super::parse_time("created_before", request.created_before)?,
            text: request.text,
            include_deleted: request.include_deleted,
            newest_first: false,
        };
        let page = self
            .comments
            .list(&principal, &query, request.page_size, &request.page_token)
            .await?;
        Ok(Response::new(pb::ListCommentsResponse {
            comments: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_comment(
        &self,
        request: Request<pb::DeleteCommentRequest>,
    ) -> Result<Response<pb::DeleteCommentResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let comment = self
            .comments
            .set_deleted(&principal, id, &request.etag, true)
            .await?;
        Ok(Response::new(pb::DeleteCommentResponse {
            comment: Some(to_proto(comment)),
        }))
    }

    async fn undelete_comment(
        &self,
        request: Request<pb::UndeleteCommentRequest>,
    ) -> Result<Response<pb::UndeleteCommentResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let id = parse_id("id", &request.id)?;
        let comment = self
            .comments
            .set_deleted(&principal, id, &request.etag, false)
            .await?;
        Ok(Response::new(pb::UndeleteCommentResponse {
            comment: Some(to_proto(comment)),
        }))
    }

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadAttachmentRequest>>,
    ) -> Result<Response<pb::UploadAttachmentResponse>, Status> {
        use pb::upload_attachment_request::Part;
        let principal = principal(&request)?;
        let broken_off = request
            .extensions()
            .get::<super::BrokenOff>()
            .cloned()
            .unwrap_or_default();
        let mut parts = request.into_inner();
        let metadata = match parts.message().await? {
            Some(pb::UploadAttachmentRequest {
                part: Some(Part::Metadata(metadata)),
            }) => metadata,
            _ => {
                return Err(Error::invalid(
                    "metadata",
                    "the first message of an upload names the comment and the file",
                )
                .into());
            }
        };
        let metadata = AttachmentMetadata {
            comment_id: if metadata.comment_id.is_empty() {
                None
            } else {
                Some(parse_id("metadata.comment_id", &metadata.comment_id)?)
            },
            file_name: metadata.file_name,
            content_type: metadata.content_type,
            description: metadata.description,
            size: match metadata.size {
                ..0 => return Err(Error::invalid("metadata.size", "must not be negative").into()),
                0 => None,
                n => Some(n.unsigned_abs()),
            },
            sha256: (!metadata.sha256.is_empty()).then_some(metadata.sha256),
        };
        let mut upload = self.comments.begin_upload(&principal, metadata).await?;
        // An error of the stream (the client broke off) drops the upload, which discards it.
        while let Some(part) = parts.message().await? {
            match part.part {
                Some(Part::Chunk(data)) => upload.chunk(data).await?,
                _ => {
                    return Err(
                        Error::invalid("metadata", "comes once, before the first chunk").into(),
                    );
                }
            }
        }
        // tonic ends the stream the same way for a client's cancel as for its end of stream;
        // a cancelled upload is half a file, and is discarded with the upload.
        if broken_off.is_set() {
            return Err(Status::cancelled("the client cancelled the upload"));
        }
        let attachment = upload.finish().await?;
        Ok(Response::new(pb::UploadAttachmentResponse {
            attachment: Some(attachment_to_proto(attachment)),
        }))
    }

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        use pb::download_attachment_response::Part;
        let principal = principal(&request)?;
        let id = parse_id("id", &request.get_ref().id)?;
        let mut download = self.comments.download(&principal, id).await?;
        let (sender, receiver) = mpsc::channel(DOWNLOAD_BUFFER);
        let first = pb::DownloadAttachmentResponse {
            part: Some(Part::Attachment(attachment_to_proto(
                download.attachment.clone(),
            ))),
        };
        tokio::spawn(async move {
            if sender.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                // A piece is read (and the caller's rights checked) only once the client has
                // room for it: nothing is read ahead for a caller who may have lost access.
                let Ok(place) = sender.reserve().await else {
                    return;
                };
                let next = tokio::select! {
                    () = sender.closed() => return,
                    next = download.next_chunk() => next,
                };
                match next {
                    Ok(Some(data)) => place.send(Ok(pb::DownloadAttachmentResponse {
                        part: Some(Part::Chunk(data)),
                    })),
                    Ok(None) => return,
                    Err(error) => {
                        place.send(Err(Status::from(error)));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

fn input(comment: pb::Comment) -> Result<CommentInput> {
    let visibility = match pb::CommentVisibility::try_from(comment.visibility) {
        Ok(pb::CommentVisibility::Unspecified) => None,
        Ok(pb::CommentVisibility::Public) => Some(Visibility::Public),
        Ok(pb::CommentVisibility::Internal) => Some(Visibility::Internal),
        Ok(pb::CommentVisibility::Private) => Some(Visibility::Private),
        Err(_) => return Err(Error::invalid("visibility", "is not a CommentVisibility")),
    };
    let mut recipients = Vec::with_capacity(comment.recipients.len());
    for (index, recipient) in comment.recipients.iter().enumerate() {
        recipients.push(party(&format!("recipients[{index}]"), recipient)?);
    }
    Ok(CommentInput {
        parent: comment
            .parent
            .as_ref()
            .map(|p| parent("parent", p))
            .transpose()?,
        body: comment.body,
        visibility,
        recipients,
    })
}

fn parent(field: &str, parent: &pb::CommentParent) -> Result<CommentParent> {
    use pb::comment_parent::Parent;
    match &parent.parent {
        Some(Parent::TicketId(id)) => Ok(CommentParent::Ticket(parse_id(
            &format!("{field}.ticket_id"),
            id,
        )?)),
        Some(Parent::OrganisationId(id)) => Ok(CommentParent::Organisation(parse_id(
            &format!("{field}.organisation_id"),
            id,
        )?)),
        Some(Parent::CustomerId(id)) => Ok(CommentParent::Customer(parse_id(
            &format!("{field}.customer_id"),
            id,
        )?)),
        None => Err(Error::invalid(
            field,
            "name a ticket_id, an organisation_id or a customer_id",
        )),
    }
}

fn party(field: &str, party: &pb::Party) -> Result<Party> {
    use pb::party::Party as P;
    match &party.party {
        Some(P::AgentId(id)) => Ok(Party::Agent(parse_id(&format!("{field}.agent_id"), id)?)),
        Some(P::CustomerId(id)) => Ok(Party::Customer(parse_id(
            &format!("{field}.customer_id"),
            id,
        )?)),
        Some(P::AdminTokenId(id)) => Ok(Party::Admin(parse_id(
            &format!("{field}.admin_token_id"),
            id,
        )?)),
        None => Err(Error::invalid(field, "name an agent_id or a customer_id")),
    }
}

fn parent_to_proto(parent: CommentParent) -> pb::CommentParent {
    use pb::comment_parent::Parent;
    pb::CommentParent {
        parent: Some(match parent {
            CommentParent::Ticket(id) => Parent::TicketId(id.to_string()),
            CommentParent::Organisation(id) => Parent::OrganisationId(id.to_string()),
            CommentParent::Customer(id) => Parent::CustomerId(id.to_string()),
        }),
    }
}

fn party_to_proto(party: Party) -> pb::Party {
    use pb::party::Party as P;
    let id = |id: Uuid| id.to_string();
    pb::Party {
        party: Some(match party {
            Party::Agent(agent) => P::AgentId(id(agent)),
            Party::Customer(customer) => P::CustomerId(id(customer)),
            Party::Admin(token) => P::AdminTokenId(id(token)),
        }),
    }
}

fn listed_attachment_to_proto((attachment, parent): (Attachment, CommentParent)) -> pb::Attachment {
    pb::Attachment {
        parent: Some(parent_to_proto(parent)),
        ..attachment_to_proto(attachment)
    }
}

fn attachment_to_proto(attachment: Attachment) -> pb::Attachment {
    pb::Attachment {
        delete_time: attachment.delete_time.map(timestamp),
        parent: None,
        id: attachment.id.to_string(),
        comment_id: attachment.comment_id.to_string(),
        file_name: attachment.file_name,
        content_type: attachment.content_type,
        description: attachment.description,
        size: attachment.size,
        sha256: attachment.sha256,
        create_time: Some(timestamp(attachment.create_time)),
    }
}

pub(crate) fn to_proto(comment: Comment) -> pb::Comment {
    pb::Comment {
        etag: comment.etag(),
        id: comment.id.to_string(),
        parent: Some(parent_to_proto(comment.parent)),
        author: Some(party_to_proto(comment.author)),
        body: comment.body,
        visibility: match comment.visibility {
            Visibility::Public => pb::CommentVisibility::Public,
            Visibility::Internal => pb::CommentVisibility::Internal,
            Visibility::Private => pb::CommentVisibility::Private,
        }
        .into(),
        recipients: comment.recipients.into_iter().map(party_to_proto).collect(),
        attachments: comment
            .attachments
            .into_iter()
            .map(attachment_to_proto)
            .collect(),
        redacted: comment.redacted,
        create_time: Some(timestamp(comment.create_time)),
        update_time: Some(timestamp(comment.update_time)),
        delete_time: comment.delete_time.map(timestamp),
    }
}
