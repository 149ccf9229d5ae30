//! Comments and their recipients. Reads take a [`CommentScope`]: comments on tickets the
//! caller may not read, internal comments for customers, and agents' notes for customers are
//! never loaded.

use std::collections::HashMap;

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    IdempotencyKey, Inserted, Store, StoreFailure, TicketChange, TicketScope, WriteTx, attachment,
    change_log, contains,
    entities::{comment, comment_recipient, ticket},
    finish, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Comment, CommentParent, Party, Visibility},
};

const RESOURCE: &str = "comment";

/// What of the comments a caller may see.
#[derive(Clone, Debug)]
pub struct CommentScope {
    /// The tickets whose comments it may read.
    pub tickets: TicketScope,
    /// Whether it reads agents' notes on organisations and customers (staff).
    pub notes: bool,
    /// The contacts whose notes it reads, when it reads notes.
    pub contacts: super::Scope,
    /// Whether it sees internal comments (staff).
    pub internal: bool,
    /// Who it is: private comments show their text to their author and recipients only, and
    /// a text search looks into those alone.
    pub reader: Party,
}

impl CommentScope {
    pub(super) fn condition(&self) -> Condition {
        let tickets = if self.tickets.is_everything() {
            Condition::all().add(comment::Column::ParentType.eq("ticket"))
        } else {
            let readable = Query::select()
                .column(ticket::Column::Id)
                .from(ticket::Entity)
                .cond_where(self.tickets.condition())
                .to_owned();
            Condition::all()
                .add(comment::Column::ParentType.eq("ticket"))
                .add(comment::Column::ParentId.in_subquery(readable))
        };
        let mut parents = Condition::any().add(tickets);
        if self.notes && self.contacts.hides_filed() {
            // Only the notes of contacts it reads.
            use super::entities::{customer, organisation};
            let organisations = Query::select()
                .column(organisation::Column::Id)
                .from(organisation::Entity)
                .cond_where(self.contacts.filed(organisation::Column::DirectoryId))
                .to_owned();
            let customers = Query::select()
                .column(customer::Column::Id)
                .from(customer::Entity)
                .cond_where(self.contacts.filed(customer::Column::DirectoryId))
                .to_owned();
            parents = parents
                .add(
                    Condition::all()
                        .add(comment::Column::ParentType.eq("organisation"))
                        .add(comment::Column::ParentId.in_subquery(organisations)),
                )
                .add(
                    Condition::all()
                        .add(comment::Column::ParentType.eq("customer"))
                        .add(comment::Column::ParentId.in_subquery(customers)),
                );
        } else if self.notes {
            parents = parents.add(comment::Column::ParentType.is_in(["organisation", "customer"]));
        }
        let mut condition = Condition::all().add(parents);
        if !self.internal {
            condition =
                condition.add(comment::Column::Visibility.ne(Visibility::Internal.as_str()));
        }
        condition
    }

    /// The comments whose text this reader may read: not private, or its own, or addressed
    /// to it.
    pub(super) fn readable_text(&self) -> Condition {
        let addressed = Query::select()
            .column(comment_recipient::Column::CommentId)
            .from(comment_recipient::Entity)
            .and_where(Expr::col(comment_recipient::Column::RecipientId).eq(self.reader.id()))
            .to_owned();
        Condition::any()
            .add(comment::Column::Visibility.ne(Visibility::Private.as_str()))
            .add(comment::Column::AuthorId.eq(self.reader.id()))
            .add(comment::Column::Id.in_subquery(addressed))
    }
}

/// Which comments a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CommentFilter {
    /// Comments on this parent.
    pub parent: Option<CommentParent>,
    /// Comments by this author.
    pub author: Option<Party>,
    /// Written at or after (microseconds).
    pub created_from: Option<i64>,
    /// Written before (microseconds).
    pub created_until: Option<i64>,
    /// Case-insensitive substring of the text (searched only where the reader may read it).
    pub text: Option<String>,
    /// Deleted comments too.
    pub include_deleted: bool,
    /// Newest first (else oldest first).
    pub newest_first: bool,
}

/// Where a comment list stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommentCursor {
    /// The creation time of the last comment (microseconds).
    pub time: i64,
    /// Its id.
    pub id: Uuid,
}

impl Store {
    /// Inserts `comment` with `event`, and with `ticket` the change it makes to its ticket
    /// (first response, customer contact); with `key`, first claims the idempotency key. A
    /// ticket changed meanwhile fails the whole write as a stale ticket.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %comment.id))]
    pub async fn insert_comment(
        &self,
        comment: &Comment,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
        ticket: Option<&TicketChange>,
    ) -> Result<Inserted<Comment>> {
        if let Some(replay) = self.before_create(key, async { Ok(()) }).await? {
            return Ok(replay);
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                super::idempotency::claim(&tx, key, comment.id, comment.create_time).await?
            {
                return Ok((replay, Vec::new()));
            }
            if let (CommentParent::Ticket(id), None) = (comment.parent, ticket) {
                // A comment that does not change its ticket checks here that no merge has
                // closed it meanwhile (one that does checks the ticket's version).
                super::ticket::refuse_merged_ticket(&tx, id).await?;
            }
            comment::Entity::insert(active_model(comment))
                .exec_without_returning(&*tx)
                .await?;
            insert_recipients(&tx, comment).await?;
            change_log::append(&tx, event).await?;
            let mut seqs = Vec::new();
            if let Some(change) = ticket {
                // A comment moves the ticket's clocks, never its customers.
                if !super::ticket::write_ticket(&tx, &change.ticket, change.expected_version, false)
                    .await?
                {
                    return Err(StoreFailure::Domain(Error::StaleEtag {
                        resource: "ticket",
                    }));
                }
                seqs = self.append_ticket_events(&tx, &change.events).await?;
            }
            Ok((Inserted::New(comment.clone()), seqs))
        }
        .await;
        let (outcome, seqs) = match outcome {
            Ok((inserted, seqs)) => (Ok(inserted), seqs),
            Err(failure) => (Err(failure), Vec::new()),
        };
        let inserted = self.finish_create(tx, outcome, key, &[]).await?;
        self.published(
            seqs,
            super::NextEvent::of(ticket.map(|change| &change.ticket)),
        );
        Ok(inserted)
    }

    /// Of the comments `ids`, those `scope` may see, each with whether it may read their text
    /// (a private comment only its author and recipients may).
    #[tracing::instrument(skip(self, scope, ids), level = "debug", err(level = "debug"))]
    pub async fn comments_seen(
        &self,
        scope: &CommentScope,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, bool)>> {
        let mut seen = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let visible: Vec<Uuid> = comment::Entity::find()
                .select_only()
                .column(comment::Column::Id)
                .filter(comment::Column::Id.is_in(chunk.iter().copied()))
                .filter(scope.condition())
                .into_tuple()
                .all(self.reader())
                .await?;
            let readable: std::collections::HashSet<Uuid> = comment::Entity::find()
                .select_only()
                .column(comment::Column::Id)
                .filter(comment::Column::Id.is_in(visible.iter().copied()))
                .filter(scope.readable_text())
                .into_tuple::<Uuid>()
                .all(self.reader())
                .await?
                .into_iter()
                .collect();
            seen.extend(visible.into_iter().map(|id| (id, readable.contains(&id))));
        }
        Ok(seen)
    }

    /// The comment `id` within `scope`, with its recipients and complete attachments.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn comment(&self, scope: &CommentScope, id: Uuid) -> Result<Option<Comment>> {
        let row = comment::Entity::find_by_id(id)
            .filter(scope.condition())
            .one(self.reader())
            .await?;
        Ok(self.with_details(row.into_iter().collect()).await?.pop())
    }

    /// Up to `limit` comments within `scope` matching `filter`, oldest first, after
    /// `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_comments(
        &self,
        scope: &CommentScope,
        filter: &CommentFilter,
        cursor: Option<&CommentCursor>,
        limit: u64,
    ) -> Result<Vec<Comment>> {
        let mut condition = scope.condition();
        if let Some(parent) = filter.parent {
            condition = condition
                .add(comment::Column::ParentType.eq(parent.kind()))
                .add(comment::Column::ParentId.eq(parent.id()));
        }
        if let Some(author) = filter.author {
            condition = condition
                .add(comment::Column::AuthorType.eq(author.kind()))
                .add(comment::Column::AuthorId.eq(author.id()));
        }
        if let Some(from) = filter.created_from {
            condition = condition.add(comment::Column::CreateTime.gte(from));
        }
        if let Some(until) = filter.created_until {
            condition = condition.add(comment::Column::CreateTime.lt(until));
        }
        if let Some(text) = &filter.text {
            condition = condition
                .add(comment::Column::Search.like(contains(text)))
                .add(scope.readable_text());
        }
        if !filter.include_deleted {
            condition = condition.add(comment::Column::DeleteTime.is_null());
        }
        if let Some(cursor) = cursor {
            condition = if filter.newest_first {
                condition
                    .add(comment::Column::CreateTime.lte(cursor.time))
                    .add(
                        Condition::any()
                            .add(comment::Column::CreateTime.lt(cursor.time))
                            .add(comment::Column::Id.lt(cursor.id)),
                    )
            } else {
                condition
                    .add(comment::Column::CreateTime.gte(cursor.time))
                    .add(
                        Condition::any()
                            .add(comment::Column::CreateTime.gt(cursor.time))
                            .add(comment::Column::Id.gt(cursor.id)),
                    )
            };
        }
        let order = if filter.newest_first {
            sea_orm::Order::Desc
        } else {
            sea_orm::Order::Asc
        };
        let rows = comment::Entity::find()
            .filter(condition)
            .order_by(comment::Column::CreateTime, order.clone())
            .order_by(comment::Column::Id, order)
            .limit(limit)
            .all(self.reader())
            .await?;
        self.with_details(rows).await
    }

    /// Writes the deletion state of `comment` over its stored `expected_version`, with
    /// `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %comment.id))]
    pub async fn update_comment(
        &self,
        comment: &Comment,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = comment::Entity::update_many()
                .col_expr(
                    comment::Column::DeleteTime,
                    Expr::value(comment.delete_time.map(Timestamp::as_microsecond)),
                )
                .col_expr(
                    comment::Column::UpdateTime,
                    Expr::value(comment.update_time.as_microsecond()),
                )
                .col_expr(comment::Column::Version, Expr::value(comment.version))
                .filter(comment::Column::Id.eq(comment.id))
                .filter(comment::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: RESOURCE,
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// The comments with recipients and complete attachments.
    async fn with_details(&self, rows: Vec<comment::Model>) -> Result<Vec<Comment>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut recipients: HashMap<Uuid, Vec<Party>> = HashMap::new();
        for row in comment_recipient::Entity::find()
            .filter(comment_recipient::Column::CommentId.is_in(ids.clone()))
            .all(self.reader())
            .await?
        {
            let party = Party::of(&row.recipient_type, row.recipient_id).ok_or_else(|| {
                Error::Internal(format!("unknown recipient type {:?}", row.recipient_type))
            })?;
            recipients.entry(row.comment_id).or_default().push(party);
        }
        let mut attachments = attachment::complete_of(self.reader(), &ids).await?;
        rows.into_iter()
            .map(|row| {
                let mut to = recipients.remove(&row.id).unwrap_or_default();
                to.sort();
                let files = attachments.remove(&row.id).unwrap_or_default();
                from_row(row, to, files)
            })
            .collect()
    }
}

/// Moves what customer `from` has of comments to customer `to` inside `tx` (a merge): the
/// comments it wrote, the notes on it, and its place among recipients. `touched` (those
/// comments) get a new version and `now` as their update time, so that their etags change.
pub(crate) async fn move_comments(
    tx: &WriteTx,
    from: Uuid,
    to: Uuid,
    touched: &[Uuid],
    now: Timestamp,
) -> Result<(), StoreFailure> {
    for ids in touched.chunks(500) {
        comment::Entity::update_many()
            .col_expr(
                comment::Column::Version,
                Expr::col(comment::Column::Version).add(1),
            )
            .col_expr(
                comment::Column::UpdateTime,
                Expr::value(now.as_microsecond()),
            )
            .filter(comment::Column::Id.is_in(ids.iter().copied()))
            .exec(&**tx)
            .await?;
    }
    comment::Entity::update_many()
        .col_expr(comment::Column::AuthorId, Expr::value(to))
        .filter(comment::Column::AuthorType.eq("customer"))
        .filter(comment::Column::AuthorId.eq(from))
        .exec(&**tx)
        .await?;
    comment::Entity::update_many()
        .col_expr(comment::Column::ParentId, Expr::value(to))
        .filter(comment::Column::ParentType.eq("customer"))
        .filter(comment::Column::ParentId.eq(from))
        .exec(&**tx)
        .await?;
    // Where both were recipients, the target's place suffices.
    let both = Query::select()
        .column(comment_recipient::Column::CommentId)
        .from(comment_recipient::Entity)
        .and_where(Expr::col(comment_recipient::Column::RecipientId).eq(to))
        .to_owned();
    comment_recipient::Entity::delete_many()
        .filter(comment_recipient::Column::RecipientId.eq(from))
        .filter(comment_recipient::Column::CommentId.in_subquery(both))
        .exec(&**tx)
        .await?;
    comment_recipient::Entity::update_many()
        .col_expr(comment_recipient::Column::RecipientId, Expr::value(to))
        .filter(comment_recipient::Column::RecipientType.eq("customer"))
        .filter(comment_recipient::Column::RecipientId.eq(from))
        .exec(&**tx)
        .await?;
    Ok(())
}

/// Deletes, inside `tx`, the comments `ids` with their recipients and files, for good (an
/// erasure); returns how many files went with them.
pub(crate) async fn delete_comments(tx: &WriteTx, ids: &[Uuid]) -> Result<u64, sea_orm::DbErr> {
    use super::entities::{attachment, attachment_chunk};

    let mut files = 0;
    for ids in ids.chunks(500) {
        let of_these = Query::select()
            .column(attachment::Column::Id)
            .from(attachment::Entity)
            .and_where(Expr::col(attachment::Column::CommentId).is_in(ids.iter().copied()))
            .to_owned();
        attachment_chunk::Entity::delete_many()
            .filter(attachment_chunk::Column::AttachmentId.in_subquery(of_these))
            .exec(&**tx)
            .await?;
        files += attachment::Entity::delete_many()
            .filter(attachment::Column::CommentId.is_in(ids.iter().copied()))
            .exec(&**tx)
            .await?
            .rows_affected;
        comment_recipient::Entity::delete_many()
            .filter(comment_recipient::Column::CommentId.is_in(ids.iter().copied()))
            .exec(&**tx)
            .await?;
        comment::Entity::delete_many()
            .filter(comment::Column::Id.is_in(ids.iter().copied()))
            .exec(&**tx)
            .await?;
    }
    Ok(files)
}

/// The ids of the notes on customer `id`, and of the comments it wrote.
pub(crate) async fn notes_and_comments_of(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<(Vec<Uuid>, Vec<Uuid>), sea_orm::DbErr> {
    let notes = comment::Entity::find()
        .select_only()
        .column(comment::Column::Id)
        .filter(comment::Column::ParentType.eq("customer"))
        .filter(comment::Column::ParentId.eq(id))
        .into_tuple()
        .all(conn)
        .await?;
    let written = comment::Entity::find()
        .select_only()
        .column(comment::Column::Id)
        .filter(comment::Column::AuthorType.eq("customer"))
        .filter(comment::Column::AuthorId.eq(id))
        .into_tuple()
        .all(conn)
        .await?;
    Ok((notes, written))
}

/// Takes customer `id` off the recipients of every private comment, inside `tx`.
pub(crate) async fn forget_recipient(tx: &WriteTx, id: Uuid) -> Result<(), sea_orm::DbErr> {
    comment_recipient::Entity::delete_many()
        .filter(comment_recipient::Column::RecipientType.eq("customer"))
        .filter(comment_recipient::Column::RecipientId.eq(id))
        .exec(&**tx)
        .await?;
    Ok(())
}

/// The ids of the comments customer `id` wrote or is addressed by, or that are notes on it.
pub(crate) async fn comments_of_customer(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let addressed = Query::select()
        .column(comment_recipient::Column::CommentId)
        .from(comment_recipient::Entity)
        .and_where(Expr::col(comment_recipient::Column::RecipientId).eq(id))
        .to_owned();
    comment::Entity::find()
        .select_only()
        .column(comment::Column::Id)
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(comment::Column::AuthorType.eq("customer"))
                        .add(comment::Column::AuthorId.eq(id)),
                )
                .add(
                    Condition::all()
                        .add(comment::Column::ParentType.eq("customer"))
                        .add(comment::Column::ParentId.eq(id)),
                )
                .add(comment::Column::Id.in_subquery(addressed)),
        )
        .into_tuple()
        .all(conn)
        .await
}

async fn insert_recipients(tx: &WriteTx, comment: &Comment) -> Result<(), sea_orm::DbErr> {
    if comment.recipients.is_empty() {
        return Ok(());
    }
    let rows = comment
        .recipients
        .iter()
        .map(|party| comment_recipient::ActiveModel {
            comment_id: Set(comment.id),
            recipient_type: Set(party.kind().to_owned()),
            recipient_id: Set(party.id()),
        });
    comment_recipient::Entity::insert_many(rows)
        .exec_without_returning(&**tx)
        .await?;
    Ok(())
}

fn active_model(comment: &Comment) -> comment::ActiveModel {
    comment::ActiveModel {
        id: Set(comment.id),
        parent_type: Set(comment.parent.kind().to_owned()),
        parent_id: Set(comment.parent.id()),
        author_type: Set(comment.author.kind().to_owned()),
        author_id: Set(comment.author.id()),
        body: Set(comment.body.clone()),
        search: Set(super::fold_case(&comment.body)),
        visibility: Set(comment.visibility.as_str().to_owned()),
        create_time: Set(comment.create_time.as_microsecond()),
        update_time: Set(comment.update_time.as_microsecond()),
        delete_time: Set(comment.delete_time.map(Timestamp::as_microsecond)),
        version: Set(comment.version),
    }
}

fn from_row(
    row: comment::Model,
    recipients: Vec<Party>,
    attachments: Vec<crate::model::Attachment>,
) -> Result<Comment> {
    Ok(Comment {
        id: row.id,
        parent: CommentParent::of(&row.parent_type, row.parent_id).ok_or_else(|| {
            Error::Internal(format!("unknown comment parent type {:?}", row.parent_type))
        })?,
        author: Party::of(&row.author_type, row.author_id).ok_or_else(|| {
            Error::Internal(format!("unknown comment author type {:?}", row.author_type))
        })?,
        body: row.body,
        visibility: Visibility::parse(&row.visibility).ok_or_else(|| {
            Error::Internal(format!("unknown comment visibility {:?}", row.visibility))
        })?,
        recipients,
        attachments,
        redacted: false,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        delete_time: row.delete_time.map(timestamp).transpose()?,
        version: row.version,
    })
}
