//! Attachments and their content, kept in chunks so that neither an upload nor a download
//! holds a whole file in memory. An upload writes its chunks as they arrive and becomes
//! visible only when it completes; an incomplete one is discarded.

use std::collections::HashMap;

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    Store, StoreFailure, WriteTx, change_log,
    entities::{attachment, attachment_chunk, comment},
    finish, timestamp,
};
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{Attachment, ChangeEvent, CommentParent},
    store::{CommentCursor, CommentScope},
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
                file_name_key: Set(crate::model::fold_case(&attachment.file_name)),
                content_type: Set(attachment.content_type.clone()),
                description: Set(attachment.description.clone()),
                size: Set(0),
                sha256: Set(String::new()),
                complete: Set(false),
                create_time: Set(attachment.create_time.as_microsecond()),
                update_time: Set(attachment.create_time.as_microsecond()),
                delete_time: Set(None),
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
            room_for_one_more(&tx, comment.id, max_files).await?;
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
            bump_comment(&tx, event.resource_id, now).await?;
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

/// Which attachments a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AttachmentFilter {
    /// Of comments on this parent (a ticket, an organisation, a customer).
    pub parent: Option<CommentParent>,
    /// Of this comment.
    pub comment_id: Option<Uuid>,
    /// Whose file name contains this, case-insensitively.
    pub file_name: Option<String>,
    /// Whose media type starts with this (`image/`, `application/pdf`), case-insensitively.
    pub content_type: Option<String>,
    /// Deleted ones too.
    pub include_deleted: bool,
}

impl Store {
    /// Up to `limit` complete attachments `filter` names, of comments `scope` reads with their
    /// content (a private comment's only for its author and recipients) and that are not
    /// deleted, oldest first after `after`; each with the parent of its comment.
    #[tracing::instrument(skip(self, scope), level = "debug", err(level = "debug"))]
    pub async fn list_attachments(
        &self,
        scope: &CommentScope,
        filter: &AttachmentFilter,
        after: Option<&CommentCursor>,
        limit: u64,
    ) -> Result<Vec<(Attachment, CommentParent)>> {
        use sea_orm::sea_query::{Func, Query};
        let mut comments = Condition::all()
            .add(scope.condition())
            .add(scope.readable_text())
            .add(comment::Column::DeleteTime.is_null());
        if let Some(parent) = filter.parent {
            comments = comments
                .add(comment::Column::ParentType.eq(parent.kind()))
                .add(comment::Column::ParentId.eq(parent.id()));
        }
        if let Some(id) = filter.comment_id {
            comments = comments.add(comment::Column::Id.eq(id));
        }
        let readable = Query::select()
            .column(comment::Column::Id)
            .from(comment::Entity)
            .cond_where(comments)
            .to_owned();
        let mut select = attachment::Entity::find()
            .filter(attachment::Column::Complete.eq(true))
            .filter(attachment::Column::CommentId.in_subquery(readable));
        if !filter.include_deleted {
            select = select.filter(attachment::Column::DeleteTime.is_null());
        }
        if let Some(name) = &filter.file_name {
            select = select.filter(attachment::Column::FileNameKey.like(super::contains(name)));
        }
        if let Some(prefix) = &filter.content_type {
            select = select.filter(
                Expr::expr(Func::lower(Expr::col(attachment::Column::ContentType)))
                    .like(super::starts_with(prefix)),
            );
        }
        if let Some(after) = after {
            select = select.filter(
                Condition::any()
                    .add(attachment::Column::UpdateTime.gt(after.time))
                    .add(
                        Condition::all()
                            .add(attachment::Column::UpdateTime.eq(after.time))
                            .add(attachment::Column::Id.gt(after.id)),
                    ),
            );
        }
        let rows = select
            .order_by_asc(attachment::Column::UpdateTime)
            .order_by_asc(attachment::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?;
        let ids: Vec<Uuid> = rows.iter().map(|row| row.comment_id).collect();
        let parents: HashMap<Uuid, (String, Uuid)> = comment::Entity::find()
            .select_only()
            .column(comment::Column::Id)
            .column(comment::Column::ParentType)
            .column(comment::Column::ParentId)
            .filter(comment::Column::Id.is_in(ids))
            .into_tuple::<(Uuid, String, Uuid)>()
            .all(self.reader())
            .await?
            .into_iter()
            .map(|(id, kind, parent)| (id, (kind, parent)))
            .collect();
        // A comment erased between the two reads takes its files with it: they are left out.
        rows.into_iter()
            .filter_map(|row| {
                let parent = parents
                    .get(&row.comment_id)
                    .and_then(|(kind, id)| CommentParent::of(kind, *id))?;
                Some(from_row(row).map(|attachment| (attachment, parent)))
            })
            .collect()
    }

    /// Marks attachment `id` deleted at `delete_time` (or restores it with `None`, if its
    /// comment has fewer than `max_files` files), with `event` and a new version of its
    /// comment; false if it is already so.
    #[tracing::instrument(skip(self, event), level = "debug", err(level = "debug"))]
    pub async fn set_attachment_deleted(
        &self,
        id: Uuid,
        delete_time: Option<Timestamp>,
        event: &ChangeEvent,
        max_files: usize,
    ) -> Result<bool> {
        let tx = self.begin_write().await?;
        let outcome = async {
            // The comment first, as an upload completing on it locks it.
            let _locked: Option<Uuid> = comment::Entity::find_by_id(event.resource_id)
                .select_only()
                .column(comment::Column::Id)
                .lock_exclusive()
                .into_tuple()
                .one(&*tx)
                .await?;
            if delete_time.is_none() {
                room_for_one_more(&tx, event.resource_id, max_files).await?;
            }
            let mut update = attachment::Entity::update_many()
                .col_expr(
                    attachment::Column::DeleteTime,
                    Expr::value(delete_time.map(Timestamp::as_microsecond)),
                )
                .filter(attachment::Column::Id.eq(id))
                .filter(attachment::Column::Complete.eq(true));
            update = if delete_time.is_some() {
                update.filter(attachment::Column::DeleteTime.is_null())
            } else {
                update.filter(attachment::Column::DeleteTime.is_not_null())
            };
            if update.exec(&*tx).await?.rows_affected == 0 {
                return Ok(false);
            }
            bump_comment(&tx, event.resource_id, event.time).await?;
            change_log::append(&tx, event).await?;
            Ok(true)
        }
        .await;
        finish(tx, outcome, &[]).await
    }
}

/// FAILED_PRECONDITION (TOO_MANY_ATTACHMENTS) if comment `id` carries `max_files` files that
/// are not deleted.
async fn room_for_one_more(tx: &WriteTx, id: Uuid, max_files: usize) -> Result<(), StoreFailure> {
    let files = attachment::Entity::find()
        .filter(attachment::Column::CommentId.eq(id))
        .filter(attachment::Column::Complete.eq(true))
        .filter(attachment::Column::DeleteTime.is_null())
        .count(&**tx)
        .await?;
    if files < max_files as u64 {
        return Ok(());
    }
    Err(StoreFailure::Domain(Error::FailedPrecondition {
        reason: "TOO_MANY_ATTACHMENTS",
        message: format!("a comment carries at most {max_files} files"),
        violations: vec![PreconditionViolation {
            kind: "TOO_MANY_ATTACHMENTS".into(),
            subject: id.to_string(),
            description: "the comment has as many files as it may".into(),
        }],
    }))
}

/// A new version of comment `id` (its files changed at `now`); NOT_FOUND if it is gone.
async fn bump_comment(tx: &WriteTx, id: Uuid, now: Timestamp) -> Result<(), StoreFailure> {
    let bumped = comment::Entity::update_many()
        .col_expr(
            comment::Column::Version,
            ExprTrait::add(Expr::col(comment::Column::Version), 1),
        )
        .col_expr(
            comment::Column::UpdateTime,
            Expr::value(now.as_microsecond()),
        )
        .filter(comment::Column::Id.eq(id))
        .exec(&**tx)
        .await?;
    if bumped.rows_affected == 0 {
        return Err(StoreFailure::Domain(Error::NotFound {
            resource: "comment",
        }));
    }
    Ok(())
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
        .filter(attachment::Column::DeleteTime.is_null())
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
        delete_time: row.delete_time.map(timestamp).transpose()?,
    })
}
