//! Persistence: sea-orm entities and queries on SQLite or PostgreSQL.
//!
//! Every write runs in one transaction together with its change-log event
//! ([`Store::begin_write`]). The store knows no proto types and no callers; it turns database
//! failures into [`Error`]s: unreachable → `Unavailable`, a violated unique key → the
//! `AlreadyExists` of the field it guards, anything else → `Internal`.

mod agent;
mod attachment;
mod catalogue;
mod change_feed;
mod change_log;
mod comment;
mod contact_group;
mod customer;
mod customer_source;
mod direct;
mod directory;
mod entities;
mod erasure;
mod feed;
mod grant;
mod group;
mod idempotency;
mod kept;
mod liveness;
mod organisation;
#[cfg(test)]
mod plans;
mod price_list;
mod reader;
mod scope;
mod search;
mod seed;
mod settings;
mod sla;
mod ticket;
mod token;
mod webhook;
mod writer;

pub use agent::agent_cursor;
pub use attachment::AttachmentFilter;
pub use catalogue::{Catalogue, customer_type_cursor, field_definition_cursor};
pub use comment::{CommentCursor, CommentFilter, CommentScope};
pub use contact_group::{
    contact_group_cursor, contact_group_kind_cursor, contact_group_member_cursor,
};
pub use customer::CustomerCascade;
pub use directory::directory_cursor;
pub use feed::{FeedMessage, NextEvent};
pub use group::group_cursor;
pub use idempotency::{IdempotencyKey, Inserted};
pub use kept::Kept;
pub use price_list::{RankedList, price_list_cursor};
pub use scope::{Scope, TicketPaths, TicketScope};
pub use sla::name_cursor;
pub use ticket::{TicketChange, TicketCounts, TicketRows};
pub use token::TokenHolder;
pub use webhook::Attempt;

use std::{
    ops::Deref,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sea_orm::{
    ColumnTrait, Condition, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, RuntimeErr, SqlErr, TransactionTrait,
    sea_query::LikeExpr,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use uuid::Uuid;

// The query types are the model's; the store's paths to them stay for its own modules.
pub(crate) use crate::model::fold_case;
pub use crate::model::{
    ChangeFilter, Cursor, CustomerFilter, CustomerOrder, GrantFilter, OrganisationFilter,
    OrganisationOrder, StoredChange, TicketCursor, TicketFilter, TicketOrder, TicketOrderKey,
    ValidityFilter,
};
use crate::{
    error::{Error, Result},
    model::Validity,
};

/// The database of the service: a pool of connections and the rules for writing.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// SQLite's one writer: writes take turns there and share transactions (group commit).
    sqlite_writer: Option<Arc<writer::Writer>>,
    /// Committed ticket changes, for the escalation scheduler and watchers.
    feed: feed::TicketFeed,
    /// Organisations read lately (SQLite only).
    organisation_cache: Arc<organisation::OrganisationCache>,
    /// The field catalogue and whether contact groups route tickets, as last read.
    configuration: Arc<catalogue::ConfigurationCache>,
    /// Connections for the reads of one row by its key, past the pool's ping on release.
    direct: Arc<direct::Direct>,
    /// Which idle connections are pinged before use.
    liveness: Arc<liveness::Liveness>,
    /// The pool for reads, which repeat a statement that met a lost connection.
    reader: reader::Reader,
    /// How long writes waited for their transaction, for metrics.
    write_waits: Arc<Waits>,
    /// Write transactions committed (on SQLite, shared ones), for metrics.
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// How long reads waited for a connection, for metrics.
    read_waits: Arc<Waits>,
    /// What wakes the change feed's followers and sequencer.
    changes: Arc<change_feed::ChangeSignal>,
}

/// Statements begun and the time they waited: writes for their connection (and on SQLite,
/// for the one writer) before their transaction began; reads for a pooled connection.
#[derive(Debug, Default)]
pub(crate) struct Waits {
    count: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
}

impl Waits {
    /// One more statement.
    pub(crate) fn begun(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `waited` to the time waited.
    pub(crate) fn waited(&self, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn totals(&self) -> (u64, Duration) {
        (
            self.count.load(Ordering::Relaxed),
            Duration::from_micros(self.micros.load(Ordering::Relaxed)),
        )
    }
}

/// Why an SQLite database could not be opened, with the hint a missing file needs.
fn sqlite_unopened(url: &str, error: &DbErr) -> String {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    let file = url
        .parse::<SqliteConnectOptions>()
        .ok()
        .map(|options| options.get_filename().to_owned());
    match file {
        Some(file) if !file.exists() => format!(
            "cannot open the database: there is no file {} (add `?mode=rwc` to the URL to \
             create it): {error}",
            file.display()
        ),
        _ => format!("cannot open the database: {error}"),
    }
}

/// Why a PostgreSQL pool could not be opened. sqlx's pool reports only that it timed out
/// waiting for a connection; one connection made directly tells the cause (refused, unknown
/// host, authentication, no such database). The password is never part of the message.
async fn unconnected(url: &str, error: DbErr) -> String {
    use sea_orm::sqlx::{Connection, postgres::PgConnectOptions, postgres::PgConnection};
    let Ok(options) = url.parse::<PgConnectOptions>() else {
        return format!("cannot connect to the database: {error}");
    };
    let at = format!(
        "{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or_default()
    );
    let cause =
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
            .await
        {
            Ok(Err(cause)) => cause.to_string(),
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                error.to_string()
            }
            Err(_) => format!("{error} (no answer within 5 s)"),
        };
    format!("cannot connect to the database postgres://{at}: {cause}")
}

/// A statement for [`Store::fetch_one`], built once for each database.
pub(crate) struct PerBackend(std::sync::OnceLock<[String; 2]>);

impl PerBackend {
    pub(crate) const fn new() -> Self {
        Self(std::sync::OnceLock::new())
    }

    /// The statement for `backend`. `select` makes the query for the database it is given;
    /// both are built on first use, so it must not look at `backend` (one process may serve
    /// both: the tests do).
    pub(crate) fn get<E: sea_orm::EntityTrait>(
        &'static self,
        backend: DbBackend,
        select: impl Fn(DbBackend) -> sea_orm::Select<E>,
    ) -> &'static str {
        use sea_orm::QueryTrait;
        let sql = self.0.get_or_init(|| {
            [DbBackend::Sqlite, DbBackend::Postgres].map(|db| db.build(select(db).as_query()).sql)
        });
        match backend {
            DbBackend::Postgres => &sql[1],
            _ => &sql[0],
        }
    }
}

/// What a statement sent through sqlx itself (past sea-orm) failed with, classified as
/// sea-orm's failures are (unavailable, a concurrent write, internal).
pub(crate) fn sqlx_failure(error: sea_orm::sqlx::Error) -> Error {
    Error::from(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error))))
}

/// The one parameter of a statement read by [`Store::fetch_one`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum RowKey {
    /// A resource's id.
    Id(Uuid),
    /// A ticket's number.
    Number(i64),
}

/// Options for [`Store::connect`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before it fails as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). SQLite files are opened in WAL mode
    /// and created when missing if the URL says `mode=rwc`.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        let liveness = Arc::new(liveness::Liveness::new());
        let read_waits = Arc::new(Waits::default());
        if url.starts_with("sqlite:") {
            // Switching a file to WAL takes an exclusive lock that busy_timeout does not wait
            // for; done once here, before a pool opens connections in parallel, it cannot race.
            let mut single = Self::connect_options(url, options, &liveness, &read_waits);
            single.max_connections(1).min_connections(1);
            let db = Database::connect(single)
                .await
                .map_err(|e| Error::Unavailable(sqlite_unopened(url, &e)))?;
            db.close().await?;
        }
        let db =
            match Database::connect(Self::connect_options(url, options, &liveness, &read_waits))
                .await
            {
                Ok(db) => db,
                Err(error) => return Err(Error::Unavailable(unconnected(url, error).await)),
            };
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sqlite_writer = match db.get_database_backend() {
            DbBackend::Sqlite => {
                let writes = Database::connect(Self::writer_options(url, options))
                    .await
                    .map_err(|e| Error::Unavailable(sqlite_unopened(url, &e)))?;
                Some(Arc::new(writer::Writer::new(writes, commits.clone())))
            }
            _ => None,
        };
        let organisation_cache = Arc::new(organisation::OrganisationCache::new(
            sqlite_writer.is_some(),
        ));
        let direct = Arc::new(match db.get_database_backend() {
            DbBackend::Postgres => direct::Direct::Postgres(direct::DirectReads::new(
                db.get_postgres_connection_pool().connect_options(),
                options.max_connections as usize,
                options.acquire_timeout,
                liveness.clone(),
                read_waits.clone(),
            )),
            // A one-row read returns one row: its statement runs on the calling thread when
            // the connection's own thread is idle, as the writer's do (vendor/README.md).
            _ => direct::Direct::Sqlite(direct::DirectReads::new(
                Arc::new(
                    (*db.get_sqlite_connection_pool().connect_options())
                        .clone()
                        .inline_statements(true),
                ),
                options.max_connections as usize,
                options.acquire_timeout,
                liveness.clone(),
                read_waits.clone(),
            )),
        });
        Ok(Self {
            reader: reader::Reader::new(db.clone(), liveness.clone(), read_waits.clone()),
            write_waits: Arc::default(),
            commits,
            read_waits,
            db,
            sqlite_writer,
            feed: feed::TicketFeed::new(),
            changes: Arc::new(change_feed::ChangeSignal::new()),
            organisation_cache,
            configuration: Arc::default(),
            direct,
            liveness,
        })
    }

    fn connect_options(
        url: &str,
        options: &StoreOptions,
        liveness: &Arc<liveness::Liveness>,
        read_waits: &Arc<Waits>,
    ) -> ConnectOptions {
        let liveness = liveness.clone();
        let (pg_waits, sqlite_waits) = (read_waits.clone(), read_waits.clone());
        let mut connect = ConnectOptions::new(url);
        connect
            .max_connections(options.max_connections)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .sqlx_logging(false)
            // sqlx pings a pooled connection on every checkout by default: a second round
            // trip for every statement. A PostgreSQL connection used within the last second is
            // taken as alive unless the database ended sessions since ([`liveness`]); an
            // SQLite connection cannot be ended from outside.
            .test_before_acquire(false)
            .map_sqlx_postgres_before_acquire(move |connection, meta| {
                reader::acquired(&pg_waits);
                let ping = liveness.must_ping(meta.idle_for);
                Box::pin(async move {
                    use sea_orm::sqlx::Connection;
                    if ping {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            // A read marks when it asked for a connection; the time until a pooled one is
            // handed to it is its wait.
            .map_sqlx_sqlite_before_acquire(move |_connection, _meta| {
                reader::acquired(&sqlite_waits);
                Box::pin(async { Ok(true) })
            })
            .map_sqlx_sqlite_opts(sqlite_settings);
        connect
    }

    /// The options of SQLite's writer's connection: one, opened at once. A connection whose
    /// transaction SQLite rolled back by itself (a full disk, an I/O error) while sqlx counted
    /// it open would run the next write's `BEGIN IMMEDIATE` as a savepoint of nothing: it is
    /// closed and opened anew instead of handed out.
    fn writer_options(url: &str, options: &StoreOptions) -> ConnectOptions {
        let mut connect = ConnectOptions::new(url);
        connect
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .sqlx_logging(false)
            .test_before_acquire(false)
            .map_sqlx_sqlite_before_acquire(|connection, _meta| {
                use sea_orm::sqlx::Connection;
                let settled = !connection.is_in_transaction();
                Box::pin(async move { Ok(settled) })
            })
            .map_sqlx_sqlite_opts(sqlite_writer_settings);
        connect
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<()> {
        use migrations::MigratorTrait;
        migrations::Migrator::up(&self.db, None)
            .await
            .map_err(|e| Error::Internal(format!("migration failed: {e}")))?;
        self.refill_search_documents().await
    }

    /// Every migration of the schema, oldest first, and whether it is applied.
    pub async fn migration_status(&self) -> Result<Vec<(String, bool)>> {
        use migrations::{MigrationStatus, MigratorTrait};
        let migrations = migrations::Migrator::get_migration_with_status(&self.db)
            .await
            .map_err(|e| Error::Internal(format!("reading the migrations failed: {e}")))?;
        Ok(migrations
            .iter()
            .map(|m| (m.name().to_owned(), m.status() == MigrationStatus::Applied))
            .collect())
    }

    /// Undoes the last `steps` applied migrations, newest first.
    pub async fn migrate_down(&self, steps: u32) -> Result<()> {
        use migrations::MigratorTrait;
        migrations::Migrator::down(&self.db, Some(steps))
            .await
            .map_err(|e| Error::Internal(format!("undoing migrations failed: {e}")))
    }

    /// Writes a consistent copy of an SQLite database to `file` while the server may go on
    /// writing (`VACUUM INTO`: one read transaction, so the copy is the database at one
    /// moment, every write committed before it included). PostgreSQL is backed up with its
    /// own tools (`pg_dump`), so this refuses it.
    pub async fn backup_to(&self, file: &std::path::Path) -> Result<()> {
        if self.backend() != DbBackend::Sqlite {
            return Err(Error::invalid(
                "database_url",
                "back up PostgreSQL with pg_dump (README.md, \"Backups\")",
            ));
        }
        if file.exists() {
            return Err(Error::invalid(
                "file",
                format!("{} exists already; give a new file", file.display()),
            ));
        }
        let path = file
            .to_str()
            .ok_or_else(|| Error::invalid("file", "is not valid UTF-8"))?;
        self.db
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Sqlite,
                "VACUUM INTO ?",
                [path.into()],
            ))
            .await
            .map_err(|e| Error::Internal(format!("backup failed: {e}")))?;
        Ok(())
    }

    /// Checks that the database answers. A pooled connection the database ended is no sign
    /// that the database is gone: after a failure the pool pings its idle connections before
    /// use, and the check is made once more on one that works.
    pub async fn ping(&self) -> Result<()> {
        if self.db.ping().await.is_ok() {
            return Ok(());
        }
        self.liveness.lost();
        self.db.ping().await.map_err(Error::from)
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// The connections of the pool now, for metrics.
    pub fn pool_state(&self) -> crate::metrics::PoolState {
        let (open, idle) = match self.backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        let (writes, write_wait) = self.write_waits.totals();
        let (reads, read_wait) = self.read_waits.totals();
        crate::metrics::PoolState {
            open,
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            writes,
            write_wait,
            commits: self.commits.load(Ordering::Relaxed),
            reads,
            read_wait,
        }
    }

    /// The connection pool, for reads.
    pub(crate) fn reader(&self) -> &reader::Reader {
        &self.reader
    }

    /// The row `sql` (a statement with one parameter, `key`) returns, read straight through
    /// sqlx: every read of one resource by its key takes this path. It skips sea-orm's
    /// executor, whose futures are large enough to make copying them a fifth of a read's
    /// cost, and the statement, built once, is prepared once per connection. It also skips
    /// the pool's ping on release while a direct connection is free ([`direct::DirectReads`]).
    pub(crate) async fn fetch_one(
        &self,
        sql: &'static str,
        key: RowKey,
    ) -> Result<Option<sea_orm::QueryResult>> {
        if let Some(row) = self.direct.fetch_one(sql, key).await {
            return row.map_err(sqlx_failure);
        }
        let row = match self.db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                match reader::timed(&self.read_waits, direct::from_pool(pool, sql, key)).await {
                    // The database ended its sessions since this connection was last used:
                    // once more, on a connection the pool now pings first.
                    Err(error) if liveness::lost(&error) => {
                        self.liveness.lost();
                        reader::timed(&self.read_waits, direct::from_pool(pool, sql, key)).await
                    }
                    row => row,
                }
            }
            _ => {
                let pool = self.db.get_sqlite_connection_pool();
                reader::timed(&self.read_waits, direct::from_pool(pool, sql, key)).await
            }
        };
        row.map_err(sqlx_failure)
    }

    /// Starts a write transaction. On SQLite it waits its turn at the one writer and joins the
    /// transaction the writes before it share, or begins one (`BEGIN IMMEDIATE`, so a write
    /// never fails half-way for a lock upgrade); see [`writer`].
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let asked = std::time::Instant::now();
        let (tx, member) = match &self.sqlite_writer {
            Some(writer) => {
                let (tx, member) = writer.join().await?;
                (tx, Some(member))
            }
            None => (self.db.begin().await?, None),
        };
        self.write_waits.begun();
        self.write_waits.waited(asked.elapsed());
        Ok(WriteTx {
            tx,
            member,
            commits: self.commits.clone(),
            feed: self.feed.clone(),
            changes_rights: AtomicBool::new(false),
            changes: self.changes.clone(),
            appended: AtomicBool::new(false),
        })
    }

    /// Closes every pooled connection.
    pub async fn close(self) {
        if let Some(writer) = &self.sqlite_writer
            && let Err(error) = writer.close().await
        {
            tracing::warn!(%error, "closing the writer's connection failed");
        }
        if let Err(error) = self.db.close().await {
            tracing::warn!(%error, "closing the database pool failed");
        }
    }
}

/// The settings of every SQLite connection the service opens (also the benchmark's ceilings,
/// which must run on the same): write-ahead log, `synchronous = NORMAL`, a busy timeout of
/// 10 s, foreign keys on.
pub fn sqlite_settings(
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
) -> sea_orm::sqlx::sqlite::SqliteConnectOptions {
    options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Deleted and overwritten content is zeroed in the file, freed pages too, so that an
        // erasure leaves no bytes of the person behind (README, "Erasure").
        .pragma("secure_delete", "ON")
        // SQLite runs on a thread of its own per connection and hands rows over through a
        // channel; a chunk of a streamed list fits in it whole, so the two threads do not wake
        // each other for every row.
        .row_buffer_size(1024)
}

/// The settings of SQLite's writer connection (also the benchmark's write ceiling):
/// [`sqlite_settings`], and its statements run on the calling thread while the connection's
/// own thread is idle (`inline_statements`, a patch of sqlx-sqlite: vendor/README.md), not
/// handed to that thread and back. Only `BEGIN IMMEDIATE` and `COMMIT`, which may wait for
/// the disk or another process, still go to it.
pub fn sqlite_writer_settings(
    options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
) -> sea_orm::sqlx::sqlite::SqliteConnectOptions {
    sqlite_settings(options).inline_statements(true)
}

/// A write transaction; dropped without [`WriteTx::commit`], it rolls back. On SQLite it is
/// a savepoint of a transaction it may share with other writes ([`writer`]).
pub(crate) struct WriteTx {
    /// Declared before `member`: dropped, it queues its rollback on the connection before the
    /// turn passes on.
    tx: DatabaseTransaction,
    member: Option<writer::Member>,
    /// Counts this transaction's commit (SQLite's writer counts the shared ones).
    commits: Arc<std::sync::atomic::AtomicU64>,
    feed: feed::TicketFeed,
    /// Whether an event written in it may change someone's rights.
    changes_rights: AtomicBool,
    /// What is told when entries written in it commit.
    changes: Arc<change_feed::ChangeSignal>,
    /// Whether an entry of the change log was written in it.
    appended: AtomicBool,
}

impl WriteTx {
    /// Commits everything written in this transaction. A transaction that changed rights
    /// moves the rights generation once it has committed (or may have: a commit whose answer
    /// was lost counts too), before the write returns. On SQLite it returns once the
    /// transaction it shares has committed; if that failed, the write is a conflict, to be run
    /// again.
    pub(crate) async fn commit(self) -> Result<(), StoreFailure> {
        let changes_rights = self.changes_rights.load(Ordering::Acquire);
        let backend = self.tx.get_database_backend();
        let committed = match self.member {
            None => {
                let committed = self.tx.commit().await.map_err(StoreFailure::Db);
                if committed.is_ok() {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                }
                committed
            }
            Some(member) => match self.tx.commit().await {
                Ok(()) => settled(member.end().await).map_err(StoreFailure::Domain),
                Err(error) => {
                    member.break_shared(&error);
                    Err(StoreFailure::Db(error))
                }
            },
        };
        if changes_rights {
            self.feed.rights_changed();
        }
        if committed.is_ok() && self.appended.load(Ordering::Acquire) {
            self.changes.committed(backend);
        }
        committed
    }

    /// Rolls back everything written in this transaction. On SQLite it returns once the
    /// transaction it shared has ended: a write that answers from what it read there (a
    /// replay, a refusal) answers only what committed, and if that failed, it is a conflict
    /// to be run again.
    pub(crate) async fn roll_back(self) -> Result<()> {
        let WriteTx { tx, member, .. } = self;
        // Dropped first: its rollback is queued on the connection before the turn passes on.
        drop(tx);
        match member {
            None => Ok(()),
            Some(member) => settled(member.end().await),
        }
    }

    /// Notes that an entry of the change log was written in this transaction.
    pub(crate) fn note_appended(&self) {
        self.appended.store(true, Ordering::Release);
    }

    /// Notes that `event`, written in this transaction, may change someone's rights: the
    /// other replicas are told when it commits.
    pub(crate) async fn note_rights(&self, event: &crate::model::ChangeEvent) -> Result<(), DbErr> {
        if event.shapes_rights() && !self.changes_rights.swap(true, Ordering::AcqRel) {
            feed::notify_rights(&self.tx, &self.feed).await?;
        }
        Ok(())
    }
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        match &error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Error::Unavailable(error.to_string()),
            _ if is_connection_failure(&error) => Error::Unavailable(error.to_string()),
            _ if is_conflict(&error) => Error::Conflict(error.to_string()),
            _ => Error::Internal(error.to_string()),
        }
    }
}

/// A write's answer from how the transaction it shared ended.
fn settled(outcome: writer::Outcome) -> Result<()> {
    match outcome {
        writer::Outcome::Committed => Ok(()),
        writer::Outcome::Failed(why) => Err(Error::Conflict(format!(
            "this write shared a transaction with others that did not commit ({why}); it was \
             not written"
        ))),
    }
}

/// True when a statement failed because another transaction wrote the same rows at the same
/// moment, so that the same request run again meets the state the other left: PostgreSQL's
/// deadlock (40P01), serialization failure (40001) and lock not available (55P03); SQLite's
/// busy and locked; on either, a foreign key whose row another request removed meanwhile
/// (23503, SQLite 787) and a unique value another request took meanwhile where no known key
/// named it (23505, SQLite 2067 and 1555). Every write checks what it refers to and what it
/// takes before it writes, so only a race gets this far; run again, the request answers as it
/// would have had it come second (NOT_FOUND, ALREADY_EXISTS, a stale etag).
fn is_conflict(error: &DbErr) -> bool {
    let (DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error))) =
        error
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(error) = error.as_ref() else {
        return false;
    };
    let Some(code) = error.code() else {
        return false;
    };
    // SQLSTATEs such as 40001 are digits too: the driver that raised it tells them apart.
    if error
        .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        matches!(&*code, "40P01" | "40001" | "55P03" | "23503" | "23505")
    } else {
        // SQLite: the primary result code is the low byte of the extended one.
        code.parse::<u32>().is_ok_and(|extended| {
            matches!(extended & 0xff, 5 | 6) || matches!(extended, 787 | 2067 | 1555)
        })
    }
}

/// True when a query failed because the database went away, not because of the query.
fn is_connection_failure(error: &DbErr) -> bool {
    let text = error.to_string();
    [
        "Connection refused",
        "connection reset",
        "broken pipe",
        "terminating connection",
        "PoolTimedOut",
        "pool timed out",
        "Io(",
        "error communicating with database",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// A unique key of the schema and the request field it guards.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UniqueKey {
    /// The kind of resource the key belongs to.
    pub(crate) resource: &'static str,
    /// The index or constraint name (PostgreSQL reports it).
    pub(crate) index: &'static str,
    /// `table.column` as SQLite reports it.
    pub(crate) sqlite_column: &'static str,
    /// The request field whose value is taken.
    pub(crate) field: &'static str,
    /// The `ErrorInfo` reason.
    pub(crate) reason: &'static str,
}

/// If `error` is a violation of one of `keys`, that key.
pub(crate) fn violated_key<'k>(error: &DbErr, keys: &'k [UniqueKey]) -> Option<&'k UniqueKey> {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) => keys
            .iter()
            .find(|key| message.contains(key.index) || message.contains(key.sqlite_column)),
        _ => None,
    }
}

/// What a failed write means to the client: a violated unique key becomes `AlreadyExists`
/// naming its field; anything else goes through `From<DbErr>`.
pub(crate) fn write_error(keys: &[UniqueKey], error: DbErr) -> Error {
    match violated_key(&error, keys) {
        Some(key) => Error::AlreadyExists {
            resource: key.resource,
            field: key.field.to_owned(),
            reason: key.reason,
        },
        None => Error::from(error),
    }
}

/// Why a write transaction stopped: a rule found inside it, or the database.
pub(crate) enum StoreFailure {
    /// A rule, e.g. a stale version or a taken value found by a check.
    Domain(Error),
    /// The database refused a statement.
    Db(DbErr),
}

impl From<DbErr> for StoreFailure {
    fn from(error: DbErr) -> Self {
        Self::Db(error)
    }
}

impl From<Error> for StoreFailure {
    fn from(error: Error) -> Self {
        Self::Domain(error)
    }
}

impl Store {
    /// A failure found outside a transaction, as the client sees it.
    pub(crate) fn failure(&self, failure: StoreFailure) -> Error {
        match failure {
            StoreFailure::Domain(error) => error,
            StoreFailure::Db(error) => Error::from(error),
        }
    }
}

/// Commits `tx` if `outcome` succeeded, else rolls it back; either way failures become client
/// errors through [`write_error`].
pub(crate) async fn finish<T>(
    tx: WriteTx,
    outcome: Result<T, StoreFailure>,
    keys: &[UniqueKey],
) -> Result<T> {
    let failure = match outcome {
        Ok(value) => match tx.commit().await {
            Ok(()) => return Ok(value),
            Err(failure) => failure,
        },
        Err(failure) => {
            tx.roll_back().await?;
            failure
        }
    };
    Err(match failure {
        StoreFailure::Domain(error) => error,
        StoreFailure::Db(error) => write_error(keys, error),
    })
}

/// The condition that the custom field `key` of `table`'s rows holds exactly `value` (an
/// empty value: that it is missing or empty). The key and value are bound parameters; the
/// stored `custom_fields` is a JSON object of strings.
pub(crate) fn custom_field_is(
    backend: DbBackend,
    table: &str,
    key: &str,
    value: &str,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::Expr;
    match backend {
        DbBackend::Postgres => Expr::cust_with_values(
            format!("COALESCE(CAST(\"{table}\".\"custom_fields\" AS jsonb) ->> $1, '') = $2"),
            [key.to_owned(), value.to_owned()],
        ),
        _ => Expr::cust_with_values(
            format!("COALESCE(json_extract(\"{table}\".\"custom_fields\", ?), '') = ?"),
            [format!("$.\"{key}\""), value.to_owned()],
        ),
    }
}

/// Rows after `cursor` in the order (`key`, `id`): a range on `key` narrowed by the
/// tie-break, which an index on `key` serves (an `OR` of the two would sort every remaining
/// row for each page).
pub(crate) fn after(key: impl ColumnTrait, id: impl ColumnTrait, cursor: &Cursor) -> Condition {
    Condition::all().add(key.gte(cursor.key.as_str())).add(
        Condition::any()
            .add(key.gt(cursor.key.as_str()))
            .add(id.gt(cursor.id)),
    )
}

/// Rows after `cursor` in the order (`key`, `id`) where `key` holds times (microseconds) and
/// the cursor's key is one written as a number.
pub(crate) fn after_time(
    key: impl ColumnTrait,
    id: impl ColumnTrait,
    cursor: &Cursor,
) -> Result<Condition> {
    let time: i64 = cursor
        .key
        .parse()
        .map_err(|_| Error::invalid("page_token", "does not belong to this list"))?;
    Ok(Condition::all()
        .add(key.gte(time))
        .add(Condition::any().add(key.gt(time)).add(id.gt(cursor.id))))
}

/// The condition a validity filter puts on a `validity` column.
pub(crate) trait ValidityCondition {
    fn condition(self, column: impl ColumnTrait) -> Condition;
}

impl ValidityCondition for ValidityFilter {
    fn condition(self, column: impl ColumnTrait) -> Condition {
        match self {
            Self::ValidOnly => Condition::all().add(column.eq(Validity::Valid.as_str())),
            Self::All => Condition::all(),
            Self::Exactly(validity) => Condition::all().add(column.eq(validity.as_str())),
        }
    }
}

/// A LIKE pattern (with `ESCAPE '\'`) matching the case-folded `text` anywhere; `%`, `_`
/// and `\` in `text` are taken literally.
pub(crate) fn contains(text: &str) -> LikeExpr {
    like(text, true)
}

/// A LIKE pattern (with `ESCAPE '\'`) matching what starts with the case-folded `text`.
pub(crate) fn starts_with(text: &str) -> LikeExpr {
    like(text, false)
}

fn like(text: &str, anywhere: bool) -> LikeExpr {
    let prefix = if anywhere { "%" } else { "" };
    pattern(&[prefix, &escape_like(&fold_case(text)), "%"])
}

/// `text` with the characters LIKE gives a meaning (`%`, `_`, `\`) escaped by `\`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A LIKE pattern (with `ESCAPE '\'`) of `parts`, already escaped where they are text.
pub(crate) fn pattern(parts: &[&str]) -> LikeExpr {
    LikeExpr::new(parts.concat()).escape('\\')
}

/// The tables whose rows tests and tooling count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// `organisations`
    Organisations,
    /// `organisation_domains`
    OrganisationDomains,
    /// `change_events`
    ChangeEvents,
    /// `idempotency_keys`
    IdempotencyKeys,
    /// `customers`
    Customers,
    /// `customer_emails`
    CustomerEmails,
    /// `customer_organisations`
    CustomerOrganisations,
    /// `grants`
    Grants,
    /// `tokens`
    Tokens,
    /// `tickets`
    Tickets,
    /// `ticket_customers`
    TicketCustomers,
    /// `comments`
    Comments,
    /// `attachments`
    Attachments,
    /// `attachment_chunks`
    AttachmentChunks,
    /// `contact_groups`
    ContactGroups,
    /// `contact_group_members`
    ContactGroupMembers,
    /// `price_lists`
    PriceLists,
    /// `price_list_items`
    PriceListItems,
    /// `customer_types`
    CustomerTypes,
    /// `field_definitions`
    FieldDefinitions,
    /// `directories`
    Directories,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Organisations => "organisations",
            Self::OrganisationDomains => "organisation_domains",
            Self::ChangeEvents => "change_events",
            Self::IdempotencyKeys => "idempotency_keys",
            Self::Customers => "customers",
            Self::CustomerEmails => "customer_emails",
            Self::CustomerOrganisations => "customer_organisations",
            Self::Grants => "grants",
            Self::Tokens => "tokens",
            Self::Tickets => "tickets",
            Self::TicketCustomers => "ticket_customers",
            Self::Comments => "comments",
            Self::Attachments => "attachments",
            Self::AttachmentChunks => "attachment_chunks",
            Self::ContactGroups => "contact_groups",
            Self::ContactGroupMembers => "contact_group_members",
            Self::PriceLists => "price_lists",
            Self::PriceListItems => "price_list_items",
            Self::CustomerTypes => "customer_types",
            Self::FieldDefinitions => "field_definitions",
            Self::Directories => "directories",
        }
    }
}

impl Store {
    /// How many rows `table` holds.
    pub async fn count_rows(&self, table: Table) -> Result<i64> {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.backend(),
                format!("SELECT COUNT(*) AS n FROM {}", table.name()),
            ))
            .await?
            .ok_or_else(|| Error::Internal("COUNT returned no row".into()))?;
        row.try_get::<i64>("", "n").map_err(Error::from)
    }
}

/// A stored time (microseconds since the epoch) as a timestamp.
pub(crate) fn timestamp(micros: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(micros)
        .map_err(|e| Error::Internal(format!("stored time {micros} is out of range: {e}")))
}

/// A stored validity name as a validity.
pub(crate) fn validity(name: &str) -> Result<Validity> {
    Validity::parse(name)
        .ok_or_else(|| Error::Internal(format!("unknown stored validity {name:?}")))
}

/// A value as stored in a JSON text column.
pub(crate) fn encode_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

/// A JSON text column as a value.
pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("stored {what} unreadable: {e}")))
}

/// A page's statement: `select` (without a limit) with its LIMIT written into the text rather
/// than bound. PostgreSQL plans a statement whose LIMIT is a parameter as if it read a tenth of
/// the table, so the plan it could keep always looks worse than one made for the values at
/// hand, and it plans every execution anew: for a page of customers planning took twice as
/// long as running (0.18 against 0.09 ms, BENCHMARKS.md). With the number in the text it keeps
/// one plan per statement and page size. `select` ends with its ORDER BY (no limit, offset or
/// lock of its own). Used where a test reads that plan (`store::plans`): the lists of customers
/// and organisations. A ticket list is streamed in chunks, so its planning is shared by a
/// chunk's rows, and its filters (states, queues, owners) are skewed enough that one plan for
/// every value is a risk no test covers yet.
pub(crate) fn limited(
    select: &impl sea_orm::QueryTrait,
    backend: DbBackend,
    limit: u64,
) -> sea_orm::Statement {
    let mut statement = select.build(backend);
    statement.sql = format!("{} LIMIT {limit}", statement.sql);
    statement
}

/// Whether a looked-up key can match a stored row at all. No stored text holds a NUL
/// character (every write refuses control characters), and PostgreSQL fails a query that
/// binds one, so such a key is answered "no row" without asking the database.
pub(crate) fn storable(key: &str) -> bool {
    !key.contains('\0')
}

/// Rows read by position (a column at its discriminant, `position`) need `Entity::find()` to
/// select the columns in the order they are declared.
#[cfg(test)]
pub(crate) fn assert_columns_selected_in_discriminant_order<E: sea_orm::EntityTrait>(
    position: impl Fn(E::Column) -> usize,
) {
    use sea_orm::{IdenStatic, Iterable, QueryTrait};
    for (index, column) in E::Column::iter().enumerate() {
        assert_eq!(position(column), index, "{}", column.as_str());
    }
    let sql = E::find().build(DbBackend::Sqlite).to_string();
    let mut from = 0;
    for column in E::Column::iter() {
        let name = format!("\"{}\"", column.as_str());
        let found = sql[from..]
            .find(&name)
            .unwrap_or_else(|| panic!("{name} not in order in {sql}"));
        from += found + name.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the query planner stability guarantee, SQLite re-prepares every statement with
    /// a bound LIMIT on every run (see `.cargo/config.toml`).
    #[tokio::test]
    async fn the_bundled_sqlite_keeps_its_query_plans() {
        let store = Store::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .expect("in-memory database");
        let options = store
            .reader()
            .query_all_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA compile_options",
            ))
            .await
            .expect("compile options");
        let options: Vec<String> = options
            .iter()
            .filter_map(|row| row.try_get_by_index::<String>(0).ok())
            .collect();
        assert!(
            options.iter().any(|option| option == "ENABLE_QPSG"),
            "{options:?}"
        );
    }
}
