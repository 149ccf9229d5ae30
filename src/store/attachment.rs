//! Attachments and their content, kept in chunks so that neither an upload nor a download
//! holds a whole file in memory. An upload writes its chunks as they arrive and becomes
//! visible only when it completes; an incomplete one is discarded.

use std::collections::HashMap;

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Store, StoreFailure, change_log,
    entities::{attachment, attachment_chunk, comment},
    finish, timestamp,
};
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{Attachment, ChangeEvent},
};

impl Store {
    /// Starts the upload of `attachment` (invisible until completed).
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %attachment.id))]
    pub async fn begin_attachment(&self, attachment: &Attachment) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            attachment::Entity::insert(attachment::ActiveModel {
                id: Set(attachment.id),
                comment_id: Set(attachment.comment_id),
                file_name: Set(attachment.file_name.clone()),
                content_type: Set(attachment.content_type.clone()),
                description: Set(attachment.description.clone()),
                size: Set(0),
                sha256: Set(String::new()),
                complete: Set(false),
                create_time: Set(attachment.create_time.as_microsecond()),
                update_time: Set(attachment.create_time.as_microsecond()),
            })
            .exec_without_returning(&*tx)
            .await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Stores chunk `seq` of the upload `id` and marks the upload alive at `now` (so that no
    /// replica takes it for abandoned). An upload discarded meanwhile is
    /// [`Error::FailedPrecondition`] `UPLOAD_DISCARDED`.
    pub async fn append_attachment_chunk(
        &self,
        id: Uuid,
        seq: i32,
        data: Vec<u8>,
        now: Timestamp,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let alive = attachment::Entity::update_many()
                .col_expr(
                    attachment::Column::UpdateTime,
                    Expr::value(now.as_microsecond()),
                )
                .filter(attachment::Column::Id.eq(id))
                .filter(attachment::Column::Complete.eq(false))
                .exec(&*tx)
                .await?;
            if alive.rows_affected == 0 {
                return Err(StoreFailure::Domain(upload_discarded(id)));
            }
            attachment_chunk::Entity::insert(attachment_chunk::ActiveModel {
                attachment_id: Set(id),
                seq: Set(seq),
                data: Set(data),
            })
            .exec_without_returning(&*tx)
            .await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Makes the upload `id` visible with its `size` and `sha256`, and records `event` on its
    /// comment (whose version moves on). Checked again here, where no other write runs: the
    /// upload must still be there, the comment not deleted, and carry fewer than `max_files`.
    #[tracing::instrument(skip(self, event), level = "debug", err(level = "debug"))]
    pub async fn complete_attachment(
        &self,
        id: Uuid,
        size: i64,
        sha256: &str,
        now: Timestamp,
        event: &ChangeEvent,
        max_files: usize,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let comment = comment::Entity::find_by_id(event.resource_id)
                .lock_exclusive()
                .one(&*tx)
                .await?
                .ok_or(StoreFailure::Domain(Error::NotFound {
                    resource: "comment",
                }))?;
            if comment.delete_time.is_some() {
                return Err(StoreFailure::Domain(Error::FailedPrecondition {
                    reason: "COMMENT_DELETED",
                    message: "the comment was deleted during the upload; restore it first".into(),
                    violations: vec![PreconditionViolation {
                        kind: "COMMENT_DELETED".into(),
                        subject: comment.id.to_string(),
                        description: "the comment is deleted".into(),
                    }],
                }));
            }
            let files = attachment::Entity::find()
                .filter(attachment::Column::CommentId.eq(comment.id))
                .filter(attachment::Column::Complete.eq(true))
                .count(&*tx)
                .await?;
            if files >= max_files as u64 {
                return Err(StoreFailure::Domain(Error::FailedPrecondition {
                    reason: "TOO_MANY_ATTACHMENTS",
                    message: format!("a comment carries at most {max_files} files"),
                    violations: vec![PreconditionViolation {
                        kind: "TOO_MANY_ATTACHMENTS".into(),
                        subject: comment.id.to_string(),
                        description: "the comment has as many files as it may".into(),
                    }],
                }));
            }
            let completed = attachment::Entity::update_many()
                .col_expr(attachment::Column::Size, Expr::value(size))
                .col_expr(attachment::Column::Sha256, Expr::value(sha256))
                .col_expr(attachment::Column::Complete, Expr::value(true))
                .col_expr(
                    attachment::Column::UpdateTime,
                    Expr::value(now.as_microsecond()),
                )
                .filter(attachment::Column::Id.eq(id))
                .filter(attachment::Column::Complete.eq(false))
                .exec(&*tx)
                .await?;
            if completed.rows_affected == 0 {
                return Err(StoreFailure::Domain(upload_discarded(id)));
            }
            let bumped = comment::Entity::update_many()
                .col_expr(
                    comment::Column::Version,
                    sea_orm::sea_query::ExprTrait::add(Expr::col(comment::Column::Version), 1),
                )
                .col_expr(
                    comment::Column::UpdateTime,
                    Expr::value(now.as_microsecond()),
                )
                .filter(comment::Column::Id.eq(event.resource_id))
                .exec(&*tx)
                .await?;
            if bumped.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::NotFound {
                    resource: "comment",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Deletes the upload `id` and whatever of it was stored.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn discard_attachment(&self, id: Uuid) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            attachment_chunk::Entity::delete_many()
                .filter(attachment_chunk::Column::AttachmentId.eq(id))
                .exec(&*tx)
                .await?;
            attachment::Entity::delete_many()
                .filter(attachment::Column::Id.eq(id))
                .filter(attachment::Column::Complete.eq(false))
                .exec(&*tx)
                .await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Deletes uploads that began before `before` and never completed (their server went
    /// away); returns how many.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn discard_abandoned_uploads(&self, before: Timestamp) -> Result<u64> {
        let abandoned: Vec<Uuid> = attachment::Entity::find()
            .select_only()
            .column(attachment::Column::Id)
            .filter(attachment::Column::Complete.eq(false))
            .filter(attachment::Column::UpdateTime.lt(before.as_microsecond()))
            .into_tuple()
            .all(self.reader())
            .await?;
        for id in &abandoned {
            self.discard_attachment(*id).await?;
        }
        Ok(abandoned.len() as u64)
    }

    /// The complete attachment `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn attachment(&self, id: Uuid) -> Result<Option<Attachment>> {
        attachment::Entity::find_by_id(id)
            .filter(attachment::Column::Complete.eq(true))
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// Chunk `seq` of attachment `id`, if there is one.
    pub async fn attachment_chunk(&self, id: Uuid, seq: i32) -> Result<Option<Vec<u8>>> {
        let data: Option<Vec<u8>> = attachment_chunk::Entity::find()
            .select_only()
            .column(attachment_chunk::Column::Data)
            .filter(attachment_chunk::Column::AttachmentId.eq(id))
            .filter(attachment_chunk::Column::Seq.eq(seq))
            .into_tuple()
            .one(self.reader())
            .await?;
        Ok(data)
    }
}

/// The refusal of an upload that was discarded while it ran (taken for abandoned).
fn upload_discarded(id: Uuid) -> Error {
    Error::FailedPrecondition {
        reason: "UPLOAD_DISCARDED",
        message: "the upload was discarded as abandoned; start it again".into(),
        violations: vec![PreconditionViolation {
            kind: "UPLOAD_DISCARDED".into(),
            subject: id.to_string(),
            description: "the upload is gone".into(),
        }],
    }
}

/// The complete attachments of `comments`, in upload order.
pub(crate) async fn complete_of(
    conn: &impl ConnectionTrait,
    comments: &[Uuid],
) -> Result<HashMap<Uuid, Vec<Attachment>>> {
    let rows = attachment::Entity::find()
        .filter(attachment::Column::CommentId.is_in(comments.iter().copied()))
        .filter(attachment::Column::Complete.eq(true))
        .order_by_asc(attachment::Column::UpdateTime)
        .order_by_asc(attachment::Column::Id)
        .all(conn)
        .await?;
    let mut by_comment: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
    for row in rows {
        by_comment
            .entry(row.comment_id)
            .or_default()
            .push(from_row(row)?);
    }
    Ok(by_comment)
}

fn from_row(row: attachment::Model) -> Result<Attachment> {
    Ok(Attachment {
        id: row.id,
        comment_id: row.comment_id,
        file_name: row.file_name,
        content_type: row.content_type,
        description: row.description,
        size: row.size,
        sha256: row.sha256,
        create_time: timestamp(row.update_time)?,
    })
}
