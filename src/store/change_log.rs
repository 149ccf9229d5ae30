//! The one change log (DESIGN §3): an event row per mutation, written in the mutation's
//! transaction.

use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{Store, WriteTx, entities::change_event};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, ResourceType, StoredChange},
};

/// Writes `event` in the write transaction `tx` and returns its sequence number.
pub(crate) async fn append(tx: &WriteTx, event: &ChangeEvent) -> Result<i64> {
    tx.note_rights(event).await?;
    tx.note_appended();
    let conn = &**tx;
    let changes = serde_json::to_string(&event.changes)
        .map_err(|e| Error::Internal(format!("cannot encode a change event: {e}")))?;
    let row = change_event::ActiveModel {
        seq: NotSet,
        occur_time: Set(event.time.as_microsecond()),
        actor: Set(event.actor.as_str().to_owned()),
        resource_type: Set(event.resource_type.as_str().to_owned()),
        resource_id: Set(event.resource_id),
        kind: Set(event.kind.as_str().to_owned()),
        changes: Set(changes),
        position: NotSet,
        values_erased: Set(false),
    };
    let result = change_event::Entity::insert(row).exec(conn).await?;
    Ok(result.last_insert_id)
}

impl Store {
    /// Up to `limit` entries of the change log of the resources `resource_ids` (one, or a
    /// ticket and those merged into it) after `after_seq`, oldest first.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn changes_after(
        &self,
        resource_type: ResourceType,
        resource_ids: &[Uuid],
        after_seq: i64,
        limit: u64,
    ) -> Result<Vec<StoredChange>> {
        let rows = change_event::Entity::find()
            .filter(change_event::Column::ResourceType.eq(resource_type.as_str()))
            .filter(change_event::Column::ResourceId.is_in(resource_ids.iter().copied()))
            .filter(change_event::Column::Seq.gt(after_seq))
            .order_by_asc(change_event::Column::Seq)
            .limit(limit)
            .all(self.reader())
            .await?;
        let sqlite = self.backend() != sea_orm::DbBackend::Postgres;
        rows.into_iter().map(|row| stored(row, sqlite)).collect()
    }

    /// The change-log entries with these sequence numbers about resources of
    /// `resource_type`, oldest first.
    #[tracing::instrument(skip(self, seqs), level = "debug", err(level = "debug"))]
    pub async fn changes_by_seq(
        &self,
        resource_type: ResourceType,
        seqs: &[i64],
    ) -> Result<Vec<StoredChange>> {
        let mut found = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(1000) {
            let rows = change_event::Entity::find()
                .filter(change_event::Column::Seq.is_in(chunk.iter().copied()))
                .filter(change_event::Column::ResourceType.eq(resource_type.as_str()))
                .order_by_asc(change_event::Column::Seq)
                .all(self.reader())
                .await?;
            for row in rows {
                found.push(stored(row, self.backend() != sea_orm::DbBackend::Postgres)?);
            }
        }
        Ok(found)
    }

    /// The change log of one resource, oldest first.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn changes_of(
        &self,
        resource_type: ResourceType,
        resource_id: Uuid,
    ) -> Result<Vec<StoredChange>> {
        let rows = change_event::Entity::find()
            .filter(change_event::Column::ResourceType.eq(resource_type.as_str()))
            .filter(change_event::Column::ResourceId.eq(resource_id))
            .order_by_asc(change_event::Column::Seq)
            .all(self.reader())
            .await?;
        let sqlite = self.backend() != sea_orm::DbBackend::Postgres;
        rows.into_iter().map(|row| stored(row, sqlite)).collect()
    }
}

/// A row as read back; on SQLite, where commit order is sequence order, its position in the
/// feed is its sequence number.
pub(super) fn stored(row: change_event::Model, sqlite: bool) -> Result<StoredChange> {
    Ok(StoredChange {
        seq: row.seq,
        position: if sqlite { Some(row.seq) } else { row.position },
        time: super::timestamp(row.occur_time)?,
        actor: row.actor,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
        kind: row.kind,
        changes: serde_json::from_str(&row.changes)
            .map_err(|e| Error::Internal(format!("change event {} is unreadable: {e}", row.seq)))?,
        values_erased: row.values_erased,
    })
}
