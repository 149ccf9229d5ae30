//! The change feed: every change-log entry, once, in commit order (DESIGN §3).
//!
//! On SQLite one writer commits at a time, so the entries' sequence numbers are commit order
//! and the feed reads by `seq`. On PostgreSQL a sequence number is taken at insert and becomes
//! visible at commit: two transactions that commit out of sequence order would let a follower
//! that resumes after the highest number it saw skip the late one. There the feed reads by
//! `position`, which a sequencer hands out to committed entries in a transaction of its own,
//! one sequencer at a time across all replicas (a transaction-level advisory lock): every
//! position given by one run is larger than every position given by the runs before it, and
//! all of one run's become visible at once, so what a follower can read is always a prefix of
//! the feed. The sequencer of a replica runs a moment after each of its commits that wrote an
//! entry, and every [`SWEEP`] in any case, for entries a replica committed and could not
//! place before it died. When it placed entries it sends a `NOTIFY` (delivered at its commit)
//! that wakes the followers on the other replicas.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use super::{Store, change_log::stored, entities::change_event};
use crate::{
    error::Result,
    model::{ChangeFilter, StoredChange},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement, TransactionTrait,
};
use tokio::sync::{Notify, watch};

/// The PostgreSQL channel on which a sequencer says that it placed entries in the feed.
pub const CHANNEL: &str = "clientele_changes";
/// The most entries one sequencer run places.
const BATCH: i64 = 10_000;
/// How often a sequencer looks for entries nobody placed.
const SWEEP: Duration = Duration::from_secs(1);
/// How long a sequencer gathers commits after a wake-up, so that under load one run places
/// the entries of many writes.
const GATHER: Duration = Duration::from_millis(2);
/// The longest a read of the feed waits for this replica's latest entries to be placed.
const SETTLE: Duration = Duration::from_secs(2);
/// The advisory lock that lets one sequencer run at a time ("clientel" in ASCII).
const SEQUENCER_LOCK: i64 = 0x636c_6965_6e74_656c;

/// What tells followers and the sequencer that entries were committed.
#[derive(Debug)]
pub(crate) struct ChangeSignal {
    /// Moves whenever entries may have become readable in the feed.
    generation: watch::Sender<u64>,
    /// Wakes this replica's sequencer (PostgreSQL).
    sequencer: Notify,
    /// How many transactions that wrote entries committed on this replica.
    commits: AtomicU64,
    /// How many of them the sequencer has placed (each run places every entry committed
    /// before it began).
    placed: watch::Sender<u64>,
}

impl ChangeSignal {
    pub(crate) fn new() -> Self {
        Self {
            generation: watch::Sender::new(0),
            sequencer: Notify::new(),
            commits: AtomicU64::new(0),
            placed: watch::Sender::new(0),
        }
    }

    /// A transaction that wrote entries committed on this replica.
    pub(crate) fn committed(&self, backend: DbBackend) {
        if backend == DbBackend::Postgres {
            self.commits.fetch_add(1, Ordering::AcqRel);
            self.sequencer.notify_one();
        } else {
            self.advance();
        }
    }

    /// Entries may have become readable.
    pub(crate) fn advance(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }
}

impl Store {
    /// Moves whenever entries may have become readable in the feed (on this replica or, on
    /// PostgreSQL, on any other).
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changes.generation.subscribe()
    }

    fn feed_column(&self) -> change_event::Column {
        match self.backend() {
            DbBackend::Postgres => change_event::Column::Position,
            _ => change_event::Column::Seq,
        }
    }

    /// Waits (a moment at most) until every entry committed on this replica before the call
    /// is in the feed, so that a client reads its own writes there (PostgreSQL; on SQLite an
    /// entry is in the feed when it commits). Other replicas' entries follow as their
    /// sequencers place them.
    pub async fn settle_changes(&self) {
        if self.backend() != DbBackend::Postgres {
            return;
        }
        let target = self.changes.commits.load(Ordering::Acquire);
        let mut placed = self.changes.placed.subscribe();
        let _ = tokio::time::timeout(SETTLE, placed.wait_for(|placed| *placed >= target)).await;
    }

    /// Up to `limit` entries of the feed after position `after` that pass `filter`, in the
    /// feed's order, each with its position.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn changes_in_feed(
        &self,
        after: i64,
        filter: &ChangeFilter,
        limit: u64,
    ) -> Result<Vec<StoredChange>> {
        let column = self.feed_column();
        let mut query = change_event::Entity::find().filter(column.gt(after));
        if !filter.resource_types.is_empty() {
            query = query.filter(
                change_event::Column::ResourceType
                    .is_in(filter.resource_types.iter().map(|kind| kind.as_str())),
            );
        }
        if let Some(id) = filter.resource_id {
            query = query.filter(change_event::Column::ResourceId.eq(id));
        }
        let rows = query
            .order_by_asc(column)
            .limit(limit)
            .all(self.reader())
            .await?;
        let sqlite = self.backend() != DbBackend::Postgres;
        rows.into_iter().map(|row| stored(row, sqlite)).collect()
    }

    /// The position of the latest entry in the feed; 0 while it is empty.
    pub async fn feed_head(&self) -> Result<i64> {
        let column = self.feed_column();
        let head: Option<Option<i64>> = change_event::Entity::find()
            .select_only()
            .column_as(column.max(), "head")
            .into_tuple()
            .one(self.reader())
            .await?;
        Ok(head.flatten().unwrap_or(0))
    }

    /// Places committed entries that have no position yet in the feed's order (PostgreSQL;
    /// on SQLite there is nothing to place) and returns how many it placed. One run at a
    /// time across every replica: each waits for the one before it to commit.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn sequence_changes(&self) -> Result<u64> {
        if self.backend() != DbBackend::Postgres {
            return Ok(0);
        }
        // Every entry committed on this replica up to here is visible to this run.
        let commits = self.changes.commits.load(Ordering::Acquire);
        let tx = self.db.begin().await?;
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [SEQUENCER_LOCK.into()],
        ))
        .await?;
        // Read after the lock was granted: the runs before this one have committed, and this
        // statement's snapshot sees their positions and every entry committed since.
        let placed = tx
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "WITH head AS (SELECT COALESCE(MAX(position), 0) AS position FROM change_events), \
                 pending AS (SELECT seq, ROW_NUMBER() OVER (ORDER BY seq) AS rank \
                             FROM change_events WHERE position IS NULL ORDER BY seq LIMIT $1), \
                 placed AS (UPDATE change_events AS e SET position = head.position + pending.rank \
                            FROM head, pending WHERE e.seq = pending.seq RETURNING e.position) \
                 SELECT COUNT(*) AS placed, COALESCE(MAX(position), 0) AS head FROM placed",
                [BATCH.into()],
            ))
            .await?;
        let (count, head) = match placed {
            Some(row) => (
                row.try_get::<i64>("", "placed")?,
                row.try_get::<i64>("", "head")?,
            ),
            None => (0, 0),
        };
        if count > 0 {
            tx.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), head.to_string().into()],
            ))
            .await?;
        }
        tx.commit().await?;
        if count > 0 {
            self.changes.advance();
        }
        // A run that stopped at its batch size may have left this replica's entries for the
        // next one.
        if count < BATCH {
            self.changes.placed.send_if_modified(|placed| {
                std::mem::replace(placed, commits.max(*placed)) != *placed
            });
        }
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Runs this replica's sequencer until the store closes (PostgreSQL; returns at once on
    /// SQLite).
    pub async fn run_sequencer(&self) {
        if self.backend() != DbBackend::Postgres {
            return;
        }
        loop {
            // A wake-up that comes while a run is on keeps its permit: the next run follows.
            let _ = tokio::time::timeout(SWEEP, self.changes.sequencer.notified()).await;
            tokio::time::sleep(GATHER).await;
            loop {
                match self.sequence_changes().await {
                    Ok(placed) if placed == u64::try_from(BATCH).unwrap_or(u64::MAX) => continue,
                    Ok(_) => break,
                    Err(error) => {
                        if self.db.get_postgres_connection_pool().is_closed() {
                            return;
                        }
                        tracing::warn!(%error, "cannot place changes in the feed; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    }
}
