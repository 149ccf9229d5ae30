//! The pool as reads use it. Whoever meets a connection the database ended first (before the
//! listener for other replicas or another read recorded the loss in [`Liveness`]) would
//! hand its client an error for a read that a fresh connection answers. A read holds no
//! state across statements, so a statement that meets a lost connection records the loss
//! (every connection idle before it is then pinged before use) and runs once more. Writes go
//! through transactions and are never repeated here.

use std::{sync::Arc, time::Instant};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};

use super::{
    Waits,
    liveness::{self, Liveness},
};

tokio::task_local! {
    /// When the read running on this task asked the pool for a connection.
    static ASKED: Instant;
}

/// Runs `read` (one statement) as a read: counted, and marked with the time it asks for a
/// connection, so that the pool's hook ([`acquired`]) can tell how long it waited.
pub(crate) async fn timed<T>(waits: &Waits, read: impl Future<Output = T>) -> T {
    waits.begun();
    ASKED.scope(Instant::now(), read).await
}

/// Called by the pool as it hands a pooled connection over: a read asking for it has waited
/// since it asked. Writes and the pool's own upkeep are not marked and not counted here.
pub(crate) fn acquired(waits: &Waits) {
    if let Ok(asked) = ASKED.try_with(|asked| *asked) {
        waits.waited(asked.elapsed());
    }
}

/// The connection pool for reads: a statement that meets a lost connection runs once more.
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    db: DatabaseConnection,
    liveness: Arc<Liveness>,
    waits: Arc<Waits>,
}

impl Reader {
    pub(crate) fn new(db: DatabaseConnection, liveness: Arc<Liveness>, waits: Arc<Waits>) -> Self {
        Self {
            db,
            liveness,
            waits,
        }
    }

    /// Whether `result` failed on a connection the database ended; if so, records the loss.
    fn lost<T>(&self, result: &Result<T, DbErr>) -> bool {
        let lost = match result {
            Err(
                DbErr::Query(RuntimeErr::SqlxError(error))
                | DbErr::Exec(RuntimeErr::SqlxError(error))
                | DbErr::Conn(RuntimeErr::SqlxError(error)),
            ) => liveness::lost(error),
            _ => false,
        };
        if lost {
            self.liveness.lost();
        }
        lost
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Reader {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.db.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let result = timed(&self.waits, self.db.query_one_raw(stmt.clone())).await;
        if self.lost(&result) {
            return timed(&self.waits, self.db.query_one_raw(stmt)).await;
        }
        result
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let result = timed(&self.waits, self.db.query_all_raw(stmt.clone())).await;
        if self.lost(&result) {
            return timed(&self.waits, self.db.query_all_raw(stmt)).await;
        }
        result
    }
}
