//! Attachments: uploaded in chunks onto a comment of the uploader's, downloaded in chunks by
//! whoever may read the comment. Neither direction holds more than a chunk in memory; the
//! SHA-256 is computed on the way in and checked on the way out.

use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use uuid::Uuid;

use super::{
    changes,
    comment::{Comments, needs_details, party_of, present},
    fields::{self, Violations},
    paging::{self, Page},
    stream_rights::RIGHTS_TTL,
};
use crate::{
    domain::access::Principal,
    error::{Error, Result},
    model::{
        Attachment, ChangeKind, Comment, CommentParent, DetailsAccess, FieldChange, ResourceType,
        Visibility,
    },
    store::{AttachmentFilter, CommentCursor, Store},
};

/// The largest chunk a client may send at once.
pub const MAX_CHUNK_BYTES: usize = 1024 * 1024;
/// The size of the pieces content is stored and sent in.
const STORED_CHUNK_BYTES: usize = 256 * 1024;
/// The most files one comment carries.
pub const MAX_ATTACHMENTS_PER_COMMENT: usize = 20;

/// What a client says about a file before its content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachmentMetadata {
    /// The comment to attach it to.
    pub comment_id: Option<Uuid>,
    /// The file's name.
    pub file_name: String,
    /// Its media type.
    pub content_type: String,
    /// Free text.
    pub description: String,
    /// The announced size, if any.
    pub size: Option<u64>,
    /// The announced SHA-256 (hex), if any.
    pub sha256: Option<String>,
}

/// An upload in progress. Its database work runs in a task of its own, fed through a small
/// channel, so that a client going away never cuts a write short; dropped before
/// [`Upload::finish`] (the client broke off, a chunk was refused), it has the task discard
/// what was stored.
#[derive(Debug)]
pub struct Upload {
    steps: mpsc::Sender<Step>,
    writer: Option<JoinHandle<Result<()>>>,
    size: u64,
    limit: u64,
}

/// What the writer task is told.
#[derive(Debug)]
enum Step {
    /// Store this piece.
    Chunk(Vec<u8>),
    /// Check and complete the upload, and answer.
    Finish(oneshot::Sender<Result<Attachment>>),
}

/// The state of an upload, owned by its writer task.
#[derive(Debug)]
struct Writer {
    store: Store,
    attachment: Attachment,
    hasher: Sha256,
    size: u64,
    seq: i32,
    announced_size: Option<u64>,
    announced_sha256: Option<String>,
    actor: crate::model::Actor,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// A download in progress. It checks again, at most every [`RIGHTS_TTL`], that its caller
/// may still read the attachment: a revoked token or an invalid holder ends it with
/// UNAUTHENTICATED, an attachment no longer readable with PERMISSION_DENIED.
#[derive(Debug)]
pub struct Download {
    comments: Comments,
    principal: Principal,
    checked: Instant,
    store: Store,
    /// What is being downloaded.
    pub attachment: Attachment,
    hasher: Sha256,
    seq: i32,
    done: bool,
}

impl Comments {
    /// Starts an upload onto a comment of the caller's.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn begin_upload(
        &self,
        principal: &Principal,
        metadata: AttachmentMetadata,
    ) -> Result<Upload> {
        let mut violations = Violations::default();
        let file_name = file_name(&mut violations, &metadata.file_name);
        let content_type = content_type(&mut violations, &metadata.content_type);
        let description = fields::single_line(
            &mut violations,
            "metadata.description",
            &metadata.description,
            1000,
            false,
        );
        if metadata.comment_id.is_none() {
            violations.add("metadata.comment_id", "is required");
        }
        if let Some(size) = metadata.size
            && size > self.attachment_limit
        {
            violations.add(
                "metadata.size",
                format!(
                    "the file is larger than the limit of {} bytes",
                    self.attachment_limit
                ),
            );
        }
        let sha256 = match metadata.sha256.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(hex) if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) => {
                Some(hex.to_ascii_lowercase())
            }
            Some(_) => {
                violations.add("metadata.sha256", "must be 64 hexadecimal digits");
                None
            }
        };
        violations.finish()?;
        let Some(comment_id) = metadata.comment_id else {
            return Err(Error::invalid("metadata.comment_id", "is required"));
        };
        let comment = self
            .get(principal, comment_id)
            .await
            .map_err(|error| match error {
                Error::NotFound { .. } => {
                    Error::invalid("metadata.comment_id", "no comment you may read has this id")
                }
                other => other,
            })?;
        if comment.author != party_of(principal) {
            return Err(Error::denied(
                "NOT_AUTHOR",
                "files are attached by the comment's author",
            ));
        }
        if !matches!(comment.parent, CommentParent::Ticket(_)) {
            needs_details(principal, DetailsAccess::Write)?;
        }
        if comment.delete_time.is_some() {
            return Err(Error::FailedPrecondition {
                reason: "COMMENT_DELETED",
                message: "a deleted comment takes no files; restore it first".into(),
                violations: vec![crate::error::PreconditionViolation {
                    kind: "COMMENT_DELETED".into(),
                    subject: comment.id.to_string(),
                    description: "the comment is deleted".into(),
                }],
            });
        }
        if comment.attachments.len() >= MAX_ATTACHMENTS_PER_COMMENT {
            return Err(Error::FailedPrecondition {
                reason: "TOO_MANY_ATTACHMENTS",
                message: format!("a comment carries at most {MAX_ATTACHMENTS_PER_COMMENT} files"),
                violations: vec![crate::error::PreconditionViolation {
                    kind: "TOO_MANY_ATTACHMENTS".into(),
                    subject: comment.id.to_string(),
                    description: "the comment has as many files as it may".into(),
                }],
            });
        }
        let attachment = Attachment {
            id: Uuid::now_v7(),
            comment_id: comment.id,
            file_name,
            content_type,
            description,
            size: 0,
            sha256: String::new(),
            create_time: self.clock.now(),
            delete_time: None,
        };
        self.store.begin_attachment(&attachment).await?;
        let writer = Writer {
            store: self.store.clone(),
            attachment,
            hasher: Sha256::new(),
            size: 0,
            seq: 0,
            announced_size: metadata.size,
            announced_sha256: sha256,
            actor: principal.actor(),
            clock: self.clock.clone(),
        };
        let (steps, received) = mpsc::channel(2);
        Ok(Upload {
            steps,
            writer: Some(tokio::spawn(writer.run(received))),
            size: 0,
            limit: self.attachment_limit,
        })
    }

    /// Starts the download of an attachment the caller may read.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn download(&self, principal: &Principal, id: Uuid) -> Result<Download> {
        let attachment = self
            .store
            .attachment(id)
            .await?
            .filter(|a| a.delete_time.is_none())
            .ok_or(Error::NotFound {
                resource: "attachment",
            })?;
        self.readable(principal, &attachment).await?;
        Ok(Download {
            comments: self.clone(),
            principal: principal.clone(),
            checked: Instant::now(),
            store: self.store.clone(),
            attachment,
            hasher: Sha256::new(),
            seq: 0,
            done: false,
        })
    }

    /// Whether `principal` may read `attachment` (NOT_FOUND, as for a missing one, if not):
    /// its comment is readable, neither deleted nor a stub, and not internal to a customer.
    async fn readable(&self, principal: &Principal, attachment: &Attachment) -> Result<Comment> {
        let not_found = || Error::NotFound {
            resource: "attachment",
        };
        let comment =
            self.get(principal, attachment.comment_id)
                .await
                .map_err(|error| match error {
                    Error::NotFound { .. } => not_found(),
                    other => other,
                })?;
        let comment = present(comment, party_of(principal));
        if comment.redacted
            || comment.delete_time.is_some()
            || (comment.visibility == Visibility::Internal && !party_of(principal).is_staff())
        {
            return Err(not_found());
        }
        Ok(comment)
    }

    /// One page of the attachments the caller may read (of comments it reads with their
    /// content), oldest first; with `include_deleted`, deleted ones too.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn list_attachments(
        &self,
        principal: &Principal,
        query: &AttachmentQuery,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<(Attachment, CommentParent)>> {
        let limit = paging::page_size(page_size)?;
        let mut violations = Violations::default();
        let file_name =
            fields::single_line(&mut violations, "file_name", &query.file_name, 255, false);
        let content_type = fields::single_line(
            &mut violations,
            "content_type",
            &query.content_type,
            255,
            false,
        );
        violations.finish()?;
        if let Some(CommentParent::Organisation(_) | CommentParent::Customer(_)) = query.parent {
            needs_details(principal, DetailsAccess::Read)?;
        }
        let filter = AttachmentFilter {
            parent: query.parent,
            comment_id: query.comment_id,
            file_name: (!file_name.is_empty()).then_some(file_name),
            content_type: (!content_type.is_empty()).then_some(content_type),
            include_deleted: query.include_deleted,
        };
        let fingerprint = paging::fingerprint(&("attachments", &filter));
        let cursor: Option<CommentCursor> = paging::decode_token(page_token, &fingerprint)?;
        let scope = self.scope(principal).await?;
        let items = self
            .store
            .list_attachments(&scope, &filter, cursor.as_ref(), limit + 1)
            .await?;
        Ok(paging::page(
            items,
            limit,
            &fingerprint,
            |(attachment, _)| CommentCursor {
                time: attachment.create_time.as_microsecond(),
                id: attachment.id,
            },
        ))
    }

    /// Deletes attachment `id` softly (`deleted`) or restores it: whoever may delete its
    /// comment may (its author, staff who may write on its parent, admins); on a note, only
    /// with details_access WRITE. The comment must be readable and not deleted (restore it
    /// first). A retry of a call that went through answers as it did.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn set_attachment_deleted(
        &self,
        principal: &Principal,
        id: Uuid,
        deleted: bool,
    ) -> Result<(Attachment, CommentParent)> {
        let not_found = || Error::NotFound {
            resource: "attachment",
        };
        let current = self.store.attachment(id).await?.ok_or_else(not_found)?;
        let comment = self.readable(principal, &current).await?;
        self.may_delete(principal, &comment).await?;
        if current.delete_time.is_some() == deleted {
            return Ok((current, comment.parent));
        }
        let now = self.clock.now();
        let mut next = current.clone();
        next.delete_time = deleted.then_some(now);
        let event = changes::event(
            &principal.actor(),
            now,
            ResourceType::Comment,
            comment.id,
            if deleted {
                ChangeKind::AttachmentDeleted
            } else {
                ChangeKind::AttachmentRestored
            },
            vec![FieldChange {
                field: "attachments".into(),
                old: serde_json::json!({"id": current.id, "file_name": current.file_name, "deleted": !deleted}),
                new: serde_json::json!({"id": current.id, "file_name": current.file_name, "deleted": deleted}),
            }],
        );
        self.store
            .set_attachment_deleted(id, next.delete_time, &event, MAX_ATTACHMENTS_PER_COMMENT)
            .await?;
        // A concurrent call that got there first leaves the same state: answered alike.
        Ok((next, comment.parent))
    }
}

/// What a list of attachments shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachmentQuery {
    /// Of comments on this parent.
    pub parent: Option<CommentParent>,
    /// Of this comment.
    pub comment_id: Option<Uuid>,
    /// File names containing this, case-insensitively.
    pub file_name: String,
    /// Media types starting with this (`image/`).
    pub content_type: String,
    /// Deleted ones too.
    pub include_deleted: bool,
}

impl Upload {
    /// Stores the next piece of the content.
    pub async fn chunk(&mut self, data: Vec<u8>) -> Result<()> {
        if data.len() > MAX_CHUNK_BYTES {
            return Err(Error::invalid(
                "chunk",
                format!("a chunk may be at most {MAX_CHUNK_BYTES} bytes"),
            ));
        }
        self.size += data.len() as u64;
        if self.size > self.limit {
            return Err(Error::invalid(
                "chunk",
                format!("the file is larger than the limit of {} bytes", self.limit),
            ));
        }
        if self.steps.send(Step::Chunk(data)).await.is_err() {
            return Err(self.writer_failure().await);
        }
        Ok(())
    }

    /// Checks the content against what was announced and makes the attachment visible.
    pub async fn finish(mut self) -> Result<Attachment> {
        let (reply, answer) = oneshot::channel();
        if self.steps.send(Step::Finish(reply)).await.is_err() {
            return Err(self.writer_failure().await);
        }
        match answer.await {
            Ok(outcome) => outcome,
            Err(_) => Err(self.writer_failure().await),
        }
    }

    /// Why the writer task stopped early.
    async fn writer_failure(&mut self) -> Error {
        match self.writer.take() {
            Some(writer) => match writer.await {
                Ok(Err(error)) => error,
                Ok(Ok(())) => Error::Internal("the upload writer stopped early".into()),
                Err(error) => Error::Internal(format!("the upload writer failed: {error}")),
            },
            None => Error::Internal("the upload writer is gone".into()),
        }
    }
}

impl Writer {
    /// Stores what the request sends until it finishes; discards everything if it does not.
    async fn run(mut self, mut steps: mpsc::Receiver<Step>) -> Result<()> {
        while let Some(step) = steps.recv().await {
            match step {
                Step::Chunk(data) => {
                    if let Err(error) = self.write(data).await {
                        self.discard().await;
                        return Err(error);
                    }
                }
                Step::Finish(reply) => {
                    let outcome = self.finish().await;
                    if outcome.is_err() {
                        self.discard().await;
                    }
                    let _ = reply.send(outcome);
                    return Ok(());
                }
            }
        }
        // The request ended without finishing: the client broke off, or a chunk was refused.
        self.discard().await;
        Ok(())
    }

    async fn write(&mut self, data: Vec<u8>) -> Result<()> {
        self.size += data.len() as u64;
        self.hasher.update(&data);
        for piece in data.chunks(STORED_CHUNK_BYTES) {
            self.store
                .append_attachment_chunk(
                    self.attachment.id,
                    self.seq,
                    piece.to_vec(),
                    self.clock.now(),
                )
                .await?;
            self.seq += 1;
        }
        Ok(())
    }

    async fn discard(&self) {
        if let Err(error) = self.store.discard_attachment(self.attachment.id).await {
            tracing::warn!(id = %self.attachment.id, %error, "cannot discard an unfinished upload");
        }
    }

    async fn finish(&self) -> Result<Attachment> {
        let sha256: String = self
            .hasher
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(announced) = self.announced_size
            && announced != self.size
        {
            return Err(Error::invalid(
                "metadata.size",
                format!("announced {announced} bytes, received {}", self.size),
            ));
        }
        if let Some(announced) = &self.announced_sha256
            && *announced != sha256
        {
            return Err(Error::invalid(
                "metadata.sha256",
                "the content does not match the announced SHA-256",
            ));
        }
        if self.size == 0 {
            return Err(Error::invalid("chunk", "the file is empty"));
        }
        let size = i64::try_from(self.size).unwrap_or(i64::MAX);
        let now = self.clock.now();
        let event = changes::event(
            &self.actor,
            now,
            ResourceType::Comment,
            self.attachment.comment_id,
            ChangeKind::AttachmentAdded,
            vec![FieldChange {
                field: "attachments".into(),
                old: serde_json::Value::Null,
                new: serde_json::json!({
                    "id": self.attachment.id,
                    "file_name": self.attachment.file_name,
                    "size": size,
                    "sha256": sha256,
                }),
            }],
        );
        self.store
            .complete_attachment(
                self.attachment.id,
                size,
                &sha256,
                now,
                &event,
                MAX_ATTACHMENTS_PER_COMMENT,
            )
            .await?;
        let mut attachment = self.attachment.clone();
        attachment.size = size;
        attachment.sha256 = sha256;
        attachment.create_time = now;
        Ok(attachment)
    }
}

impl Download {
    /// The next piece of the content; `None` at its end, after the content was checked
    /// against its SHA-256.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        if self.checked.elapsed() >= RIGHTS_TTL {
            self.recheck().await?;
        }
        match self
            .store
            .attachment_chunk(self.attachment.id, self.seq)
            .await?
        {
            Some(data) => {
                self.seq += 1;
                self.hasher.update(&data);
                Ok(Some(data))
            }
            None => {
                self.done = true;
                let sha256: String = self
                    .hasher
                    .clone()
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if sha256 != self.attachment.sha256 {
                    return Err(Error::DataLoss(format!(
                        "attachment {} no longer matches its SHA-256",
                        self.attachment.id
                    )));
                }
                Ok(None)
            }
        }
    }
}

impl Download {
    /// Ends the download when its caller's token no longer works or the attachment is no
    /// longer readable to it.
    async fn recheck(&mut self) -> Result<()> {
        let tickets = &self.comments.tickets;
        let now = tickets.stream_principal(&self.principal).await?;
        let still_there = self
            .store
            .attachment(self.attachment.id)
            .await?
            .is_some_and(|a| a.delete_time.is_none());
        if !still_there {
            return Err(Error::denied(
                "ATTACHMENT_NO_LONGER_READABLE",
                "the attachment was deleted",
            ));
        }
        self.comments
            .readable(&now, &self.attachment)
            .await
            .map_err(|error| match error {
                Error::NotFound { .. } => Error::denied(
                    "ATTACHMENT_NO_LONGER_READABLE",
                    "the attachment is no longer readable to the caller",
                ),
                other => other,
            })?;
        self.checked = Instant::now();
        Ok(())
    }
}

/// A file name: 1 to 255 characters, no path, no control characters.
fn file_name(violations: &mut Violations, raw: &str) -> String {
    let name = raw.trim();
    if name.is_empty() {
        violations.add("metadata.file_name", "is required");
    } else if name.chars().count() > 255 {
        violations.add("metadata.file_name", "must be at most 255 characters long");
    } else if name.contains(['/', '\\']) || name == "." || name == ".." {
        violations.add("metadata.file_name", "must be a file name, not a path");
    } else if name.chars().any(char::is_control) {
        violations.add("metadata.file_name", "must not contain control characters");
    }
    name.to_owned()
}

/// A media type `type/subtype` of RFC 6838 characters (parameters allowed); empty means
/// `application/octet-stream`.
fn content_type(violations: &mut Violations, raw: &str) -> String {
    let value = raw.trim();
    if value.is_empty() {
        return "application/octet-stream".into();
    }
    let token = |part: &str| {
        !part.is_empty()
            && part.len() <= 127
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let valid = value.len() <= 255
        && !value.chars().any(char::is_control)
        && essence
            .split_once('/')
            .is_some_and(|(kind, sub)| token(kind) && token(sub));
    if !valid {
        violations.add(
            "metadata.content_type",
            "must be a media type such as application/pdf",
        );
    }
    value.to_ascii_lowercase()
}
