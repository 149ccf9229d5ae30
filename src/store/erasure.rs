//! Erasure of a person (GDPR article 17) in one transaction, and the retention that scrubs
//! old recorded values of customers; on SQLite followed by a checkpoint, so that the erased
//! bytes leave the write-ahead log too (secure deletion zeroes them in the database file).

use std::collections::BTreeSet;

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Store, StoreFailure, WriteTx, change_log, comment,
    customer::{delete_customer, lock_customers, refuse_open_tickets, update_customer},
    entities::{change_event, idempotency_key, token},
    finish, grant, ticket,
};
use crate::{
    error::{Error, Result},
    model::{
        ChangeKind, Erasure, ErasureReport, FieldChange, ResourceType, Subject, erased_values,
    },
};

/// How many change-log entries one retention run scrubs in one transaction.
const RETENTION_BATCH: u64 = 500;

/// The entries the retention scrubs: the predicate of the partial index
/// `ix_change_events_customer_values` (migration 13), word for word.
const RETENTION_PREDICATE: &str = "resource_type = 'customer' AND values_erased = FALSE";

impl Store {
    /// Carries out `erasure` in one transaction with its events, then (SQLite) checkpoints
    /// the write-ahead log.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %erasure.id))]
    pub async fn erase_customer(&self, erasure: &Erasure) -> Result<ErasureReport> {
        let tx = self.begin_write().await?;
        let outcome = erase_in(&tx, erasure).await;
        let report = finish(tx, outcome, &[]).await?;
        self.checkpoint().await;
        Ok(report)
    }

    /// Erases the recorded values of customer changes made before `before`, up to `limit`
    /// entries a run; returns how many it scrubbed.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn scrub_customer_history(&self, before: Timestamp, limit: u64) -> Result<u64> {
        let mut scrubbed = 0;
        while scrubbed < limit {
            let tx = self.begin_write().await?;
            let outcome = async {
                // The partial index's predicate written as it is (not as bound parameters,
                // which neither planner matches against it).
                let rows = change_event::Entity::find()
                    .filter(Expr::cust(RETENTION_PREDICATE))
                    .filter(change_event::Column::OccurTime.lt(before.as_microsecond()))
                    .order_by_asc(change_event::Column::OccurTime)
                    .limit(RETENTION_BATCH.min(limit - scrubbed))
                    .all(&*tx)
                    .await?;
                let count = rows.len() as u64;
                for row in rows {
                    scrub(&tx, row).await?;
                }
                Ok::<_, StoreFailure>(count)
            }
            .await;
            let count = finish(tx, outcome, &[]).await?;
            scrubbed += count;
            if count < RETENTION_BATCH {
                break;
            }
        }
        if scrubbed > 0 {
            self.checkpoint().await;
        }
        Ok(scrubbed)
    }

    /// On SQLite, copies the write-ahead log into the database file and truncates it, so that
    /// page images written before an erasure are gone from the disk; a reader still holding
    /// an old snapshot delays it (a few tries). The erasure has committed whatever happens
    /// here: a checkpoint that cannot finish is logged, and the next one finishes it.
    async fn checkpoint(&self) {
        if let Err(error) = self.try_checkpoint().await {
            tracing::warn!(%error, "the write-ahead log was not checkpointed after an erasure");
        }
    }

    async fn try_checkpoint(&self) -> Result<()> {
        let Some(writer) = &self.sqlite_writer else {
            return Ok(());
        };
        for attempt in 0..20 {
            let busy = {
                let _one_writer = writer.alone().await;
                let row = self
                    .db
                    .query_one_raw(Statement::from_string(
                        DbBackend::Sqlite,
                        "PRAGMA wal_checkpoint(TRUNCATE)",
                    ))
                    .await?
                    .ok_or_else(|| Error::Internal("a checkpoint answered nothing".into()))?;
                row.try_get_by_index::<i32>(0)?
            };
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10 << attempt.min(5))).await;
        }
        Err(Error::Unavailable(
            "readers kept old snapshots open; the next erasure checkpoints again".into(),
        ))
    }
}

/// The erasure inside `tx`: refusals first, then everything about the person, then the
/// record (a tombstone, or gone), then the events.
async fn erase_in(tx: &WriteTx, erasure: &Erasure) -> Result<ErasureReport, StoreFailure> {
    let id = erasure.id;
    let locked = lock_customers(tx, &[id]).await?;
    match locked.first() {
        None => {
            return Err(StoreFailure::Domain(Error::NotFound {
                resource: "customer",
            }));
        }
        Some((_, version)) if *version != erasure.expected_version => {
            return Err(StoreFailure::Domain(Error::StaleEtag {
                resource: "customer",
            }));
        }
        Some(_) => {}
    }
    if erasure.refuse_tickets {
        let numbers =
            ticket::ticket_numbers_of_customer(&**tx, id, ticket::MAX_COUNTED_TICKETS).await?;
        if !numbers.is_empty() {
            return Err(StoreFailure::Domain(ticket::tickets_in_the_way(
                "HAS_TICKETS",
                "a customer with tickets is not deleted: move them to another customer with \
                 TransferTickets first, or erase the person with PrivacyService.EraseCustomer"
                    .into(),
                &numbers,
                "a ticket of the customer (open or closed)",
            )));
        }
    }
    if !erasure.keep_open_tickets {
        refuse_open_tickets(tx, &[id], &[]).await?;
    }
    let mut report = ErasureReport {
        tickets_kept: ticket::count_tickets_of_customer(&**tx, id).await?,
        ..ErasureReport::default()
    };

    // Comments: the notes about the person go, and what they wrote unless it is kept.
    let (notes, written) = comment::notes_and_comments_of(&**tx, id).await?;
    let mut deleted_comments = notes.clone();
    if erasure.keep_conversation {
        report.comments_kept = written.len() as u64;
    } else {
        report.comments_deleted = written.len() as u64;
        deleted_comments.extend(&written);
    }
    report.notes_deleted = notes.len() as u64;
    report.attachments_deleted = comment::delete_comments(tx, &deleted_comments).await?;
    comment::forget_recipient(tx, id).await?;

    // Grants and tokens.
    let grants = grant::delete_grants_of(tx, Subject::Customer(id)).await?;
    report.grants_deleted = grants.len() as u64;
    let tokens: Vec<Uuid> = token::Entity::find()
        .select_only()
        .column(token::Column::Id)
        .filter(token::Column::Kind.eq(crate::model::TokenOwner::Customer(id).kind()))
        .filter(token::Column::SubjectId.eq(id))
        .into_tuple()
        .all(&**tx)
        .await?;
    if !tokens.is_empty() {
        token::Entity::delete_many()
            .filter(token::Column::Id.is_in(tokens.clone()))
            .exec(&**tx)
            .await?;
    }
    report.tokens_deleted = tokens.len() as u64;

    // Idempotency records: of the person's own requests, and of those that made the record or
    // the deleted comments (their hashes are of personal data).
    let caller = crate::model::Actor::named("customer", id);
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Caller.eq(caller.as_str()))
        .exec(&**tx)
        .await?;
    let made: Vec<Uuid> = std::iter::once(id)
        .chain(deleted_comments.iter().copied())
        .collect();
    for chunk in made.chunks(500) {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::ResourceId.is_in(chunk.to_vec()))
            .exec(&**tx)
            .await?;
    }

    // The recorded values: of the record, of the duplicates merged into it (their addresses
    // became its own), of the deleted comments and of the tokens.
    let records = merged_into(tx, id).await?;
    report.changes_erased = scrub_of(tx, ResourceType::Customer, &records).await?
        + scrub_of(tx, ResourceType::Comment, &deleted_comments).await?
        + scrub_of(tx, ResourceType::Token, &tokens).await?;

    // The record: a tombstone while tickets or kept comments name it, otherwise gone.
    report.tombstone = report.tickets_kept > 0 || report.comments_kept > 0;
    if report.tombstone {
        update_customer(tx, &erasure.tombstone, erasure.expected_version).await?;
    } else {
        delete_customer(tx, id, erasure.expected_version).await?;
    }

    // The events, none with personal data.
    let mut gone = erasure.event.clone();
    gone.kind = ChangeKind::Deleted;
    gone.changes = Vec::new();
    for (resource_type, ids) in [
        (ResourceType::Grant, &grants),
        (ResourceType::Token, &tokens),
        (ResourceType::Comment, &deleted_comments),
    ] {
        gone.resource_type = resource_type;
        for id in ids {
            gone.resource_id = *id;
            change_log::append(tx, &gone).await?;
        }
    }
    let mut event = erasure.event.clone();
    event.changes = report.changes();
    change_log::append(tx, &event).await?;
    Ok(report)
}

/// Customer `id` and every duplicate merged into it, directly or through others.
async fn merged_into(tx: &WriteTx, id: Uuid) -> Result<Vec<Uuid>, StoreFailure> {
    let mut found = BTreeSet::from([id]);
    let mut next = vec![id];
    while !next.is_empty() {
        let rows = change_event::Entity::find()
            .filter(change_event::Column::ResourceType.eq(ResourceType::Customer.as_str()))
            .filter(change_event::Column::ResourceId.is_in(next.clone()))
            .filter(change_event::Column::Kind.eq(ChangeKind::Merged.as_str()))
            .all(&**tx)
            .await?;
        next.clear();
        for row in rows {
            let changes: Vec<FieldChange> = serde_json::from_str(&row.changes).unwrap_or_default();
            let sources = changes
                .iter()
                .filter(|change| change.field == "merged_from")
                .filter_map(|change| change.new.as_str()?.parse::<Uuid>().ok());
            for source in sources {
                if found.insert(source) {
                    next.push(source);
                }
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// Erases the recorded values of every entry about the resources `ids` of `resource_type`;
/// returns how many entries it changed.
async fn scrub_of(
    tx: &WriteTx,
    resource_type: ResourceType,
    ids: &[Uuid],
) -> Result<u64, StoreFailure> {
    let mut count = 0;
    for chunk in ids.chunks(500) {
        let rows = change_event::Entity::find()
            .filter(change_event::Column::ResourceType.eq(resource_type.as_str()))
            .filter(change_event::Column::ResourceId.is_in(chunk.to_vec()))
            .filter(change_event::Column::ValuesErased.eq(false))
            .all(&**tx)
            .await?;
        for row in rows {
            scrub(tx, row).await?;
            count += 1;
        }
    }
    Ok(count)
}

/// Writes `row` back with its values erased (an entry unreadable as changes loses them all).
async fn scrub(tx: &WriteTx, row: change_event::Model) -> Result<(), StoreFailure> {
    let changes: Vec<FieldChange> = serde_json::from_str(&row.changes).unwrap_or_default();
    let changes = serde_json::to_string(&erased_values(&changes))
        .map_err(|e| Error::Internal(format!("cannot encode a change event: {e}")))?;
    change_event::Entity::update(change_event::ActiveModel {
        seq: sea_orm::ActiveValue::Unchanged(row.seq),
        changes: Set(changes),
        values_erased: Set(true),
        ..Default::default()
    })
    .exec(&**tx)
    .await?;
    Ok(())
}
