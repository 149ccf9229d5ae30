//! Grants: subjects' levels on groups.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    Store, UniqueKey, WriteTx, change_log,
    entities::{agent, customer, grant, organisation},
    finish, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Grant, GrantContext, GrantFilter, Level, Subject, SubjectKind, Validity},
};

const UNIQUE_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "grant",
    index: "ux_grants_subject_group_context",
    sqlite_column: "grants.subject_type",
    field: "grant",
    reason: "GRANT_CHANGED_CONCURRENTLY",
}];

impl Store {
    /// Every grant of any of `subjects`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn grants_of(&self, subjects: &[Subject]) -> Result<Vec<Grant>> {
        let mut all = Vec::new();
        for kind in [
            SubjectKind::Agent,
            SubjectKind::Customer,
            SubjectKind::Organisation,
        ] {
            let ids: Vec<Uuid> = subjects
                .iter()
                .filter(|s| s.kind() == kind)
                .map(|s| s.id())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let rows = grant::Entity::find()
                .filter(grant::Column::SubjectType.eq(kind.as_str()))
                .filter(grant::Column::SubjectId.is_in(ids))
                .order_by_asc(grant::Column::Id)
                .all(self.reader())
                .await?;
            for row in rows {
                all.push(from_row(row)?);
            }
        }
        Ok(all)
    }

    /// The grant of `subject` on `group_id` in `context`, if there is one.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn grant(
        &self,
        subject: Subject,
        group_id: Uuid,
        context: GrantContext,
    ) -> Result<Option<Grant>> {
        find(self.reader(), subject, group_id, context).await
    }

    /// The grants of `group_id` held by subjects of `kind` in `context`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn grants_on(
        &self,
        group_id: Uuid,
        kind: SubjectKind,
        context: GrantContext,
    ) -> Result<Vec<Grant>> {
        grant::Entity::find()
            .filter(grant::Column::GroupId.eq(group_id))
            .filter(grant::Column::SubjectType.eq(kind.as_str()))
            .filter(grant::Column::Context.eq(context.as_str()))
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Up to `limit` grants matching `filter`, oldest first, after the grant `after`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_grants(
        &self,
        filter: GrantFilter,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Grant>> {
        let mut query = grant::Entity::find();
        query = match filter {
            GrantFilter::Subject(subject) => query
                .filter(grant::Column::SubjectType.eq(subject.kind().as_str()))
                .filter(grant::Column::SubjectId.eq(subject.id())),
            GrantFilter::Group(group_id) => query.filter(grant::Column::GroupId.eq(group_id)),
        };
        if let Some(after) = after {
            query = query.filter(grant::Column::Id.gt(after));
        }
        query
            .order_by_asc(grant::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Writes `puts` (new grants or new levels of existing ones), deletes the grants with
    /// the ids in `deletes`, and records `events`, in one transaction.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(puts = puts.len(), deletes = deletes.len()))]
    pub async fn write_grants(
        &self,
        puts: &[Grant],
        deletes: &[Uuid],
        events: &[ChangeEvent],
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            for grant in puts {
                put(&tx, grant).await?;
            }
            if !deletes.is_empty() {
                for chunk in deletes.chunks(500) {
                    grant::Entity::delete_many()
                        .filter(grant::Column::Id.is_in(chunk.iter().copied()))
                        .exec(&*tx)
                        .await?;
                }
            }
            for event in events {
                change_log::append(&tx, event).await?;
            }
            Ok(())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// The ids of every valid subject of `kind`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn valid_subjects(&self, kind: SubjectKind) -> Result<Vec<Uuid>> {
        let valid = Validity::Valid.as_str();
        let ids: Vec<Uuid> = match kind {
            SubjectKind::Agent => {
                agent::Entity::find()
                    .select_only()
                    .column(agent::Column::Id)
                    .filter(agent::Column::Validity.eq(valid))
                    .into_tuple()
                    .all(self.reader())
                    .await?
            }
            SubjectKind::Customer => {
                customer::Entity::find()
                    .select_only()
                    .column(customer::Column::Id)
                    .filter(customer::Column::Validity.eq(valid))
                    .into_tuple()
                    .all(self.reader())
                    .await?
            }
            SubjectKind::Organisation => {
                organisation::Entity::find()
                    .select_only()
                    .column(organisation::Column::Id)
                    .filter(organisation::Column::Validity.eq(valid))
                    .into_tuple()
                    .all(self.reader())
                    .await?
            }
        };
        Ok(ids)
    }
}

/// Inserts `grant`, or sets the level of the existing grant with its subject, group and
/// context.
async fn put(tx: &WriteTx, grant: &Grant) -> Result<(), sea_orm::DbErr> {
    let updated = grant::Entity::update_many()
        .col_expr(
            grant::Column::Level,
            sea_orm::sea_query::Expr::value(grant.level.as_str()),
        )
        .col_expr(
            grant::Column::UpdateTime,
            sea_orm::sea_query::Expr::value(grant.update_time.as_microsecond()),
        )
        .filter(grant::Column::Id.eq(grant.id))
        .exec(&**tx)
        .await?;
    if updated.rows_affected == 0 {
        grant::Entity::insert(grant::ActiveModel {
            id: Set(grant.id),
            subject_type: Set(grant.subject.kind().as_str().to_owned()),
            subject_id: Set(grant.subject.id()),
            group_id: Set(grant.group_id),
            context: Set(grant.context.as_str().to_owned()),
            level: Set(grant.level.as_str().to_owned()),
            create_time: Set(grant.create_time.as_microsecond()),
            update_time: Set(grant.update_time.as_microsecond()),
        })
        .exec_without_returning(&**tx)
        .await?;
    }
    Ok(())
}

/// Moves every grant of `from` to `to` inside `tx` (merging customers); where `to` already
/// has a grant on the same group and context, the higher level stays. Returns the events.
pub(crate) async fn move_grants(
    tx: &WriteTx,
    from: Subject,
    to: Subject,
    template: &ChangeEvent,
) -> Result<Vec<ChangeEvent>, sea_orm::DbErr> {
    let mine = subject_grants(&**tx, from).await?;
    let theirs = subject_grants(&**tx, to).await?;
    let mut events = Vec::new();
    for grant in mine {
        let existing = theirs
            .iter()
            .find(|t| t.group_id == grant.group_id && t.context == grant.context);
        let mut event = template.clone();
        event.resource_id = grant.id;
        match existing {
            Some(kept) => {
                if grant.level > kept.level {
                    let raised = Grant {
                        level: grant.level,
                        update_time: template.time,
                        ..kept.clone()
                    };
                    put(tx, &raised).await?;
                }
                grant::Entity::delete_by_id(grant.id).exec(&**tx).await?;
                event.kind = crate::model::ChangeKind::Deleted;
            }
            None => {
                grant::Entity::update_many()
                    .col_expr(
                        grant::Column::SubjectId,
                        sea_orm::sea_query::Expr::value(to.id()),
                    )
                    .filter(grant::Column::Id.eq(grant.id))
                    .exec(&**tx)
                    .await?;
            }
        }
        events.push(event);
    }
    Ok(events)
}

/// Deletes every grant of `subject` inside `tx`; returns their ids.
pub(crate) async fn delete_grants_of(
    tx: &WriteTx,
    subject: Subject,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let ids: Vec<Uuid> = subject_grants(&**tx, subject)
        .await?
        .into_iter()
        .map(|g| g.id)
        .collect();
    if !ids.is_empty() {
        grant::Entity::delete_many()
            .filter(grant::Column::Id.is_in(ids.clone()))
            .exec(&**tx)
            .await?;
    }
    Ok(ids)
}

async fn subject_grants(
    conn: &impl ConnectionTrait,
    subject: Subject,
) -> Result<Vec<Grant>, sea_orm::DbErr> {
    let rows = grant::Entity::find()
        .filter(grant::Column::SubjectType.eq(subject.kind().as_str()))
        .filter(grant::Column::SubjectId.eq(subject.id()))
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|row| from_row(row).map_err(|e| sea_orm::DbErr::Custom(e.to_string())))
        .collect()
}

async fn find(
    conn: &impl ConnectionTrait,
    subject: Subject,
    group_id: Uuid,
    context: GrantContext,
) -> Result<Option<Grant>> {
    grant::Entity::find()
        .filter(grant::Column::SubjectType.eq(subject.kind().as_str()))
        .filter(grant::Column::SubjectId.eq(subject.id()))
        .filter(grant::Column::GroupId.eq(group_id))
        .filter(grant::Column::Context.eq(context.as_str()))
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

fn from_row(row: grant::Model) -> Result<Grant> {
    let unreadable = || Error::Internal(format!("grant {} is unreadable", row.id));
    let kind = SubjectKind::parse(&row.subject_type).ok_or_else(unreadable)?;
    Ok(Grant {
        id: row.id,
        subject: Subject::of(kind, row.subject_id),
        group_id: row.group_id,
        context: GrantContext::parse(&row.context).ok_or_else(unreadable)?,
        level: Level::parse(&row.level).ok_or_else(unreadable)?,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
    })
}
