//! Connections for the one-row reads (a resource by its key), held beside sqlx's pool, on
//! both databases.
//!
//! sqlx's pool tests every connection it takes back with a round trip of its own (a ping on
//! release, to clean up after a statement that was cancelled half-way), so a one-statement
//! read through it costs two round trips: to PostgreSQL over the socket, to SQLite through
//! the thread sqlx runs each connection on (two thread hand-offs each). A connection here goes
//! back to the idle list only after its statement completed; one whose statement failed or was
//! cancelled is dropped (closed), which is the clean-up the ping stands in for. When no
//! connection here can be had, the read goes through the pool as before.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use sea_orm::{
    QueryResult,
    sqlx::{self, Connection, postgres::PgConnection, sqlite::SqliteConnection},
};
use tokio::sync::Semaphore;

use super::{
    RowKey,
    liveness::{Liveness, lost},
};

/// A read of one row, boxed: sqlx's statement futures are large, and every RPC's future would
/// otherwise carry their layout.
type Fetch<'c> =
    Pin<Box<dyn Future<Output = Result<Option<QueryResult>, sqlx::Error>> + Send + 'c>>;

/// A connection that reads one row by its key: one statement, prepared once per connection.
pub(crate) trait KeyedRead: Connection + Sized + 'static {
    /// The row `sql` (one parameter, `key`) returns.
    fn fetch(&mut self, sql: &'static str, key: RowKey) -> Fetch<'_>;
}

/// [`KeyedRead`] for a connection type whose `&mut` is an executor.
macro_rules! keyed_read {
    ($connection:ty) => {
        impl KeyedRead for $connection {
            fn fetch(&mut self, sql: &'static str, key: RowKey) -> Fetch<'_> {
                let query = sqlx::query(sql);
                let query = match key {
                    RowKey::Id(id) => query.bind(id),
                    RowKey::Number(number) => query.bind(number),
                };
                Box::pin(async move {
                    let row = query.fetch_optional(self).await?;
                    Ok(row.map(QueryResult::from))
                })
            }
        }
    };
}

keyed_read!(PgConnection);
keyed_read!(SqliteConnection);

/// The row `sql` (one parameter, `key`) returns, read on a connection of `pool`: what a read
/// does when no direct connection can be had.
pub(crate) async fn from_pool<DB>(
    pool: &sqlx::Pool<DB>,
    sql: &'static str,
    key: RowKey,
) -> Result<Option<QueryResult>, sqlx::Error>
where
    DB: sqlx::Database,
    DB::Connection: KeyedRead,
{
    let mut connection = pool.acquire().await?;
    connection.fetch(sql, key).await
}

/// The direct connections of the database in use.
#[derive(Debug)]
pub(crate) enum Direct {
    Postgres(DirectReads<PgConnection>),
    Sqlite(DirectReads<SqliteConnection>),
}

impl Direct {
    /// See [`DirectReads::fetch_one`].
    pub(crate) async fn fetch_one(
        &self,
        sql: &'static str,
        key: RowKey,
    ) -> Option<Result<Option<QueryResult>, sqlx::Error>> {
        match self {
            Self::Postgres(direct) => direct.fetch_one(sql, key).await,
            Self::Sqlite(direct) => direct.fetch_one(sql, key).await,
        }
    }
}

/// Connections for [`DirectReads::fetch_one`].
#[derive(Debug)]
pub(crate) struct DirectReads<C: Connection> {
    options: Arc<C::Options>,
    /// How long a read waits for a free connection here, and for a new one to connect.
    wait: Duration,
    /// One permit per connection that may exist: bounds what this adds to the database's load.
    permits: Semaphore,
    /// Connections that completed their last statement, with the instant they did.
    idle: Mutex<Vec<(C, Instant)>>,
    /// Which of them are pinged before use.
    liveness: Arc<Liveness>,
    /// The reads' count and wait, with the pool's.
    waits: Arc<super::Waits>,
}

impl<C: KeyedRead> DirectReads<C> {
    /// Up to `connections` connections made with `options`, opened when first needed; a read
    /// waits at most `wait` for one.
    pub(crate) fn new(
        options: Arc<C::Options>,
        connections: usize,
        wait: Duration,
        liveness: Arc<Liveness>,
        waits: Arc<super::Waits>,
    ) -> Self {
        Self {
            options,
            wait,
            permits: Semaphore::new(connections),
            idle: Mutex::new(Vec::with_capacity(connections)),
            liveness,
            waits,
        }
    }

    /// The row `sql` (one parameter, `key`) returns, or `None` when no connection here became
    /// free in time or none can be made: the caller then reads through the pool, which
    /// waits for the database and reports it unavailable as for every other read.
    pub(crate) async fn fetch_one(
        &self,
        sql: &'static str,
        key: RowKey,
    ) -> Option<Result<Option<QueryResult>, sqlx::Error>> {
        // A timer only when a connection must be waited for.
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => {
                self.waits.begun();
                permit
            }
            Err(_) => {
                let asked = Instant::now();
                let permit = tokio::time::timeout(self.wait, self.permits.acquire()).await;
                self.waits.waited(asked.elapsed());
                let permit = permit.ok()?.ok()?;
                self.waits.begun();
                permit
            }
        };
        let (mut connection, reused) = self.connection().await?;
        let mut row = connection.fetch(sql, key).await;
        if reused && row.as_ref().is_err_and(lost) {
            // The database ended its sessions (a restart, a failover, an operator): the
            // other idle connections are as dead as this one, and so are the pool's. Once
            // more on a new connection.
            self.liveness.lost();
            self.idle().clear();
            connection = self.connect().await?;
            row = connection.fetch(sql, key).await;
        }
        // A connection whose statement failed is dropped, whatever state it is in; so is one
        // whose statement was cancelled, with this future.
        if row.is_ok() {
            self.idle().push((connection, Instant::now()));
        }
        Some(row)
    }

    /// An idle connection known to be alive (and `true`), or a new one (and `false`).
    async fn connection(&self) -> Option<(C, bool)> {
        loop {
            let taken = self.idle().pop();
            let Some((mut connection, since)) = taken else {
                return Some((self.connect().await?, false));
            };
            if !self.liveness.must_ping(since.elapsed()) || connection.ping().await.is_ok() {
                return Some((connection, true));
            }
        }
    }

    async fn connect(&self) -> Option<C> {
        // Boxed: sqlx's connect future is deep (TLS, authentication), and every future that
        // awaits a read would otherwise carry its layout; a new connection is rare.
        let connect = Box::pin(C::connect_with(&self.options));
        match tokio::time::timeout(self.wait, connect).await {
            Ok(Ok(connection)) => Some(connection),
            Ok(Err(error)) => {
                tracing::debug!(%error, "no direct connection");
                None
            }
            Err(_) => {
                tracing::debug!("no direct connection in time");
                None
            }
        }
    }

    fn idle(&self) -> MutexGuard<'_, Vec<(C, Instant)>> {
        // Nothing panics while holding the lock; a poisoned list is still a list.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
