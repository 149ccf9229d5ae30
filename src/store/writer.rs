//! SQLite's one writer, and group commit.
//!
//! SQLite lets one transaction write at a time. Writes take turns here, in order (a fair queue
//! is cheaper than SQLite's busy handler), and a write that gets its turn while an earlier
//! write's transaction is still open joins that transaction: each write is a savepoint of it,
//! rolled back alone when the write fails. The shared transaction commits when no write is
//! waiting for its turn, when it holds [`MAX_WRITES`] writes, or once it is [`MAX_AGE`] old.
//! A write's commit returns only after the shared transaction has committed, so nothing is
//! answered that has not committed; when the shared transaction fails, every write in it fails
//! as a conflict and is run again (`server::rerun`).
//!
//! Why: a commit writes every page its transaction changed to the write-ahead log, and a
//! ticket's insert changes the same pages as the next one's (the table's and its indexes' last
//! leaves, the change log's, the counter's); written together, those pages are written once.
//! BENCHMARKS.md, "group commit on SQLite", has the figures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

/// Writes one shared transaction holds at most.
pub(crate) const MAX_WRITES: usize = 32;

/// How long a shared transaction takes in more writes after its first began.
pub(crate) const MAX_AGE: Duration = Duration::from_millis(5);

/// How long a write that has ended waits for its shared transaction to commit before it
/// commits it itself (when the write that held the turn after it went away).
const PATIENCE: Duration = Duration::from_millis(20);

/// A savepoint the shared transaction opens first and releases last: its release fails when
/// SQLite rolled the whole transaction back meanwhile (a full disk, an I/O error), which a
/// write's own savepoint cannot tell.
const OPENED: &str = "SAVEPOINT clientele_shared";
const CLOSED: &str = "RELEASE SAVEPOINT clientele_shared";

/// The one writer of an SQLite database.
#[derive(Debug)]
pub(crate) struct Writer {
    /// The writer's own connection (a pool of one). Every write runs on it, so its page cache
    /// holds what the writes before changed; on one of the readers' connections it would be
    /// thrown away each time another connection had written since.
    db: DatabaseConnection,
    turn: Arc<Mutex<Slot>>,
    /// Writes waiting for their turn.
    waiting: AtomicUsize,
    /// Numbers shared transactions.
    opened: AtomicU64,
    /// Shared transactions committed, for metrics (with the store's other commits).
    commits: Arc<AtomicU64>,
    /// How long a shared transaction takes in more writes: [`MAX_AGE`].
    max_age: Duration,
}

/// What the turn guards: the shared transaction, while one is open.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    shared: Option<Shared>,
}

/// A transaction several writes share.
#[derive(Debug)]
struct Shared {
    number: u64,
    tx: DatabaseTransaction,
    writes: usize,
    begun: Instant,
    outcome: watch::Sender<Option<Outcome>>,
}

/// How a shared transaction ended.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    Committed,
    /// Rolled back: why.
    Failed(String),
}

/// A write's part in a shared transaction: its turn, until it ends, and the answer it waits
/// for after.
#[derive(Debug)]
pub(crate) struct Member {
    writer: Arc<Writer>,
    turn: Option<OwnedMutexGuard<Slot>>,
    number: u64,
    outcome: watch::Receiver<Option<Outcome>>,
}

impl Writer {
    /// The writer of a database through `db`, a pool of one connection; `commits` counts
    /// its commits.
    pub(crate) fn new(db: DatabaseConnection, commits: Arc<AtomicU64>) -> Self {
        Self {
            db,
            turn: Arc::default(),
            waiting: AtomicUsize::new(0),
            opened: AtomicU64::new(0),
            commits,
            max_age: MAX_AGE,
        }
    }

    /// Waits for the turn and joins the open shared transaction, or begins one
    /// (`BEGIN IMMEDIATE`, so a write never fails half-way for a lock upgrade). Returns the
    /// write's savepoint and its membership.
    pub(crate) async fn join(self: &Arc<Self>) -> Result<(DatabaseTransaction, Member), DbErr> {
        let mut turn = self.take_turn().await;
        if turn.shared.is_none() {
            let tx = self
                .db
                .begin_with_options(TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                })
                .await?;
            tx.execute_unprepared(OPENED).await?;
            turn.shared = Some(Shared {
                number: self.opened.fetch_add(1, Ordering::Relaxed),
                tx,
                writes: 0,
                begun: Instant::now(),
                outcome: watch::channel(None).0,
            });
        }
        let Some(shared) = turn.shared.as_mut() else {
            unreachable!("a shared transaction was opened above");
        };
        match shared.tx.begin().await {
            Ok(savepoint) => {
                shared.writes += 1;
                let member = Member {
                    writer: self.clone(),
                    number: shared.number,
                    outcome: shared.outcome.subscribe(),
                    turn: Some(turn),
                };
                Ok((savepoint, member))
            }
            Err(error) => {
                // The shared transaction's connection is broken: it ends for every write in it.
                if let Some(shared) = turn.shared.take() {
                    let _ = shared
                        .outcome
                        .send(Some(Outcome::Failed(error.to_string())));
                }
                Err(error)
            }
        }
    }

    /// Closes the writer's connection.
    pub(crate) async fn close(&self) -> Result<(), DbErr> {
        self.db.clone().close().await
    }

    /// The turn with no shared transaction open (one that was is committed first), for work
    /// that must not run inside one, such as a checkpoint.
    pub(crate) async fn alone(self: &Arc<Self>) -> OwnedMutexGuard<Slot> {
        loop {
            let turn = self.take_turn().await;
            if turn.shared.is_none() {
                return turn;
            }
            // Committed in a task of its own, as any shared transaction, so that this caller
            // going away cannot leave its writes unanswered; then the turn is asked for again.
            self.commit_shared(turn, None);
        }
    }

    async fn take_turn(self: &Arc<Self>) -> OwnedMutexGuard<Slot> {
        /// Counts a write as waiting until it has its turn or gives up.
        struct Waiting<'w>(&'w AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        self.turn.clone().lock_owned().await
    }

    /// Commits the shared transaction `turn` holds, if it is number `number` (any, when
    /// `None`), in a task of its own so that no cancelled request leaves a commit half
    /// answered; the turn passes on once it has committed.
    fn commit_shared(self: &Arc<Self>, turn: OwnedMutexGuard<Slot>, number: Option<u64>) {
        let mut turn = turn;
        let ours = turn
            .shared
            .as_ref()
            .is_some_and(|shared| number.is_none_or(|n| n == shared.number));
        if !ours {
            return;
        }
        let Some(shared) = turn.shared.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime to commit on (shutting down): the shared transaction rolls back.
            let _ = shared.outcome.send(Some(Outcome::Failed(
                "the service stopped before the write committed".into(),
            )));
            return;
        };
        let commits = self.commits.clone();
        runtime.spawn(async move {
            let _ = commit(shared, &commits).await;
            drop(turn);
        });
    }
}

/// Commits `shared` and tells its writes.
async fn commit(shared: Shared, commits: &AtomicU64) -> Outcome {
    let Shared { tx, outcome, .. } = shared;
    let committed = match tx.execute_unprepared(CLOSED).await {
        Ok(_) => tx.commit().await,
        Err(error) => Err(error),
    };
    let ended = match committed {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            Outcome::Committed
        }
        Err(error) => {
            tracing::warn!(%error, "a shared SQLite transaction did not commit");
            Outcome::Failed(error.to_string())
        }
    };
    let _ = outcome.send(Some(ended.clone()));
    ended
}

impl Member {
    /// Ends this write (its savepoint released or rolled back) and waits for its shared
    /// transaction: commits it now when no write waits for the turn or it is full or old,
    /// else passes the turn to the next write, which joins it.
    pub(crate) async fn end(mut self) -> Outcome {
        if let Some(turn) = self.turn.take() {
            self.pass(turn);
        }
        loop {
            let waited = tokio::time::timeout(PATIENCE, self.outcome.wait_for(Option::is_some))
                .await
                .map(|seen| seen.map(|outcome| outcome.clone()));
            match waited {
                Ok(Ok(Some(outcome))) => return outcome,
                Ok(Ok(None)) => {}
                // Dropped unanswered, which only a rolled-back transaction is.
                Ok(Err(_)) => {
                    return Outcome::Failed("the shared transaction was rolled back".into());
                }
                Err(_) => {
                    // The write after this one went away with the turn handed to it: commit.
                    let turn = self.writer.take_turn().await;
                    self.writer.commit_shared(turn, Some(self.number));
                }
            }
        }
    }

    /// Ends the shared transaction for all its writes without committing: a statement of
    /// this write broke it.
    pub(crate) fn break_shared(mut self, why: &DbErr) {
        if let Some(mut turn) = self.turn.take()
            && let Some(shared) = turn.shared.take()
        {
            let _ = shared.outcome.send(Some(Outcome::Failed(format!(
                "a write in it failed: {why}"
            ))));
        }
    }

    fn pass(&self, turn: OwnedMutexGuard<Slot>) {
        let full = turn.shared.as_ref().is_some_and(|shared| {
            shared.writes >= MAX_WRITES || shared.begun.elapsed() >= self.writer.max_age
        });
        if full || self.writer.waiting.load(Ordering::Acquire) == 0 {
            self.writer.commit_shared(turn, Some(self.number));
        }
    }
}

impl Drop for Member {
    /// A write dropped with its turn (failed or cancelled; its savepoint's rollback is queued
    /// on the connection already) passes the turn on as one that ended would.
    fn drop(&mut self) {
        if let Some(turn) = self.turn.take() {
            self.pass(turn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, atomic::Ordering},
        time::Duration,
    };

    use sea_orm::{ConnectionTrait, DbBackend, Statement};

    use super::Writer;
    use crate::{
        error::Error,
        store::{Store, StoreFailure, StoreOptions, WriteTx},
    };

    /// On a connection with the writer's settings a statement runs on the calling thread
    /// only when the connection's own thread is idle (vendor/README.md): a statement asked
    /// for while the rollback of a dropped transaction still waits for that thread runs after
    /// the rollback, outside the transaction, and stays.
    #[tokio::test]
    async fn a_statement_after_a_dropped_transaction_runs_after_its_rollback() {
        use sea_orm::sqlx::{
            self, Connection,
            sqlite::{SqliteConnectOptions, SqliteConnection},
        };

        let dir = tempfile::tempdir().expect("temporary directory");
        let options = crate::store::sqlite_writer_settings(
            SqliteConnectOptions::new()
                .filename(dir.path().join("inline.db"))
                .create_if_missing(true),
        );
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .expect("connection");
        sqlx::query("CREATE TABLE scratch (n INTEGER PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .expect("table");
        for n in 0..50_i64 {
            {
                let mut tx = conn.begin().await.expect("begin");
                sqlx::query("INSERT INTO scratch VALUES (?)")
                    .bind(1_000 + n)
                    .execute(&mut *tx)
                    .await
                    .expect("insert in the transaction");
                // Dropped: its rollback is queued for the connection's thread.
            }
            sqlx::query("INSERT INTO scratch VALUES (?)")
                .bind(n)
                .execute(&mut conn)
                .await
                .expect("insert after it");
        }
        let kept: Vec<i64> = sqlx::query_scalar("SELECT n FROM scratch ORDER BY n")
            .fetch_all(&mut conn)
            .await
            .expect("rows");
        assert_eq!(
            kept,
            (0..50).collect::<Vec<i64>>(),
            "every row written after a dropped transaction stays, none written in one does"
        );
        assert!(!conn.is_in_transaction());
    }

    /// A store of one connection (whatever a write leaves on it, the next one meets) whose
    /// shared transactions do not age while a busy machine runs the test.
    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("writes.db").display()
        );
        let options = StoreOptions {
            max_connections: 1,
            ..StoreOptions::default()
        };
        let mut store = Store::connect(&url, &options).await.expect("database");
        store.sqlite_writer = Some(Arc::new(Writer {
            max_age: Duration::from_secs(3600),
            ..Writer::new(
                store.sqlite_writer.as_ref().expect("SQLite").db.clone(),
                store.commits.clone(),
            )
        }));
        store
            .db
            .execute_unprepared("CREATE TABLE scratch (n INTEGER PRIMARY KEY)")
            .await
            .expect("table");
        (dir, store)
    }

    async fn rows(store: &Store) -> Vec<i64> {
        store
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT n FROM scratch ORDER BY n",
            ))
            .await
            .expect("rows")
            .iter()
            .map(|row| row.try_get_by_index::<i64>(0).expect("n"))
            .collect()
    }

    /// Begins a second write on `store` that waits for the turn the caller holds, and returns
    /// once it waits.
    async fn second_write<F>(
        store: &Store,
        body: impl FnOnce(WriteTx) -> F + Send + 'static,
    ) -> tokio::task::JoinHandle<Result<(), String>>
    where
        F: Future<Output = Result<(), String>> + Send,
    {
        let writer = store.sqlite_writer.clone().expect("SQLite");
        let other = store.clone();
        let handle = tokio::spawn(async move {
            let tx = other.begin_write().await.map_err(|e| e.to_string())?;
            body(tx).await
        });
        while writer.waiting.load(Ordering::Acquire) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        handle
    }

    /// A write that has its turn and has written `n`.
    async fn write(store: &Store, n: i64) -> WriteTx {
        let tx = store.begin_write().await.expect("a write");
        insert(&tx, n).await.expect("insert");
        tx
    }

    async fn insert(tx: &WriteTx, n: i64) -> Result<(), String> {
        tx.execute_unprepared(&format!("INSERT INTO scratch VALUES ({n})"))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// A second write that waits for the turn, then writes `n` and commits.
    async fn second_commit(store: &Store, n: i64) -> tokio::task::JoinHandle<Result<(), String>> {
        second_write(store, move |tx| async move {
            insert(&tx, n).await?;
            tx.commit().await.map_err(|_| "commit".to_owned())
        })
        .await
    }

    fn conflict(failure: StoreFailure) -> bool {
        matches!(failure, StoreFailure::Domain(Error::Conflict(_)))
    }

    #[tokio::test]
    async fn a_write_that_waited_for_the_turn_commits_in_the_transaction_it_waited_for() {
        let (_dir, store) = store().await;
        let first = write(&store, 1).await;
        let second = second_commit(&store, 2).await;
        assert!(first.commit().await.is_ok(), "the first write commits");
        assert_eq!(second.await.expect("task"), Ok(()));
        assert_eq!(rows(&store).await, [1, 2]);
        assert_eq!(
            store.pool_state().commits,
            1,
            "two writes, one commit: the second joined the first's transaction"
        );
        assert_eq!(store.pool_state().writes, 2);
    }

    #[tokio::test]
    async fn a_write_dropped_with_its_turn_passes_it_on_and_leaves_nothing_behind() {
        let (_dir, store) = store().await;
        let first = write(&store, 1).await;
        let second = second_commit(&store, 2).await;
        // A request cancelled (or failed) in the middle of its write.
        drop(first);
        assert_eq!(second.await.expect("task"), Ok(()));
        assert_eq!(rows(&store).await, [2]);
        assert_eq!(store.pool_state().commits, 1, "one transaction, shared");
    }

    #[tokio::test]
    async fn work_alone_at_the_writer_finds_the_shared_transaction_committed() {
        let (_dir, store) = store().await;
        let first = write(&store, 1).await;
        let writer = store.sqlite_writer.clone().expect("SQLite");
        let other = store.clone();
        let alone = tokio::spawn(async move {
            let turn = other.sqlite_writer.clone().expect("SQLite").alone().await;
            let open = turn.shared.is_some();
            (open, rows(&other).await)
        });
        while writer.waiting.load(Ordering::Acquire) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Ended with a write waiting, the first write leaves its transaction open for it.
        assert!(first.commit().await.is_ok(), "the first write commits");
        assert_eq!(alone.await.expect("task"), (false, vec![1]));
        assert_eq!(store.pool_state().commits, 1);
    }

    #[tokio::test]
    async fn a_write_rolled_back_in_a_shared_transaction_takes_only_its_own_rows() {
        let (_dir, store) = store().await;
        let first = write(&store, 1).await;
        let second = second_write(&store, |tx| async move {
            insert(&tx, 2).await?;
            // A primary key taken in the same shared transaction, by the first write.
            let taken = tx
                .execute_unprepared("INSERT INTO scratch VALUES (1)")
                .await;
            assert!(taken.is_err(), "1 is taken");
            tx.roll_back().await.map_err(|e| e.to_string())
        })
        .await;
        assert!(first.commit().await.is_ok(), "the first write commits");
        assert_eq!(second.await.expect("task"), Ok(()));
        assert_eq!(rows(&store).await, [1]);
        // The next write begins a transaction of its own and commits.
        assert!(write(&store, 3).await.commit().await.is_ok());
        assert_eq!(rows(&store).await, [1, 3]);
    }

    #[tokio::test]
    async fn no_write_is_acknowledged_when_the_database_dropped_their_shared_transaction() {
        let (_dir, store) = store().await;
        let first = write(&store, 1).await;
        let second = second_write(&store, |tx| async move {
            // As SQLite does on a full disk or an I/O error: the whole transaction is gone,
            // the savepoints with it.
            tx.execute_unprepared("ROLLBACK")
                .await
                .map_err(|e| e.to_string())?;
            match tx.roll_back().await {
                Err(Error::Conflict(_)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        let first = first.commit().await;
        assert!(
            first.is_err_and(conflict),
            "the first write is a conflict, to be run again"
        );
        assert_eq!(second.await.expect("task"), Ok(()));
        assert_eq!(rows(&store).await, Vec::<i64>::new());
        assert_eq!(store.pool_state().commits, 0);
        // The connection that transaction ran on is not handed out again (sqlx still counts
        // it in a transaction), and writes go on.
        {
            use sea_orm::sqlx::Connection;
            let writer = store.sqlite_writer.as_ref().expect("SQLite");
            let pool = writer.db.get_sqlite_connection_pool();
            let connection = pool.acquire().await.expect("the writer's connection");
            assert!(!connection.is_in_transaction());
        }
        for n in [3, 4, 5] {
            assert!(
                write(&store, n).await.commit().await.is_ok(),
                "write {n} commits"
            );
        }
        assert_eq!(rows(&store).await, [3, 4, 5]);
        assert_eq!(store.pool_state().commits, 3);
    }
}
