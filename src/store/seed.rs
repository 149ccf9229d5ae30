//! Bulk rows for the benchmark tool: organisations, customers and tickets written many to a
//! statement, without change-log events (they record no one's change, they make a database
//! of a given size). The service never calls these.

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};

use super::{
    Store, StoreFailure,
    entities::{customer, customer_email, organisation, ticket},
    finish,
};
use crate::{
    error::Result,
    model::{Customer, Organisation, Ticket},
};

/// Rows per statement: within SQLite's and PostgreSQL's limits on bound parameters.
const BATCH: usize = 500;

impl Store {
    /// Inserts `organisations` (without email domains) in one transaction.
    pub async fn seed_organisations(&self, organisations: &[Organisation]) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            for batch in organisations.chunks(BATCH) {
                organisation::Entity::insert_many(
                    batch.iter().map(super::organisation::active_model),
                )
                .exec_without_returning(&*tx)
                .await?;
            }
            Ok::<_, StoreFailure>(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Inserts `customers` with their addresses (primary organisations only) in one
    /// transaction.
    pub async fn seed_customers(&self, customers: &[Customer]) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            for batch in customers.chunks(BATCH) {
                customer::Entity::insert_many(batch.iter().map(super::customer::active_model))
                    .exec_without_returning(&*tx)
                    .await?;
                customer_email::Entity::insert_many(
                    batch.iter().flat_map(super::customer::address_rows),
                )
                .exec_without_returning(&*tx)
                .await?;
            }
            Ok::<_, StoreFailure>(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// On PostgreSQL, gathers the planner's statistics of the seeded tables, as autovacuum
    /// does after a bulk load where it runs (it may be off, as on the development machine).
    pub async fn analyze(&self) -> Result<()> {
        if self.backend() == DbBackend::Postgres {
            self.reader().execute_unprepared("ANALYZE").await?;
        }
        Ok(())
    }

    /// Inserts `tickets` (without additional customers) in one transaction.
    pub async fn seed_tickets(&self, tickets: &[Ticket]) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            for batch in tickets.chunks(BATCH) {
                ticket::Entity::insert_many(batch.iter().map(super::ticket::active_model))
                    .exec_without_returning(&*tx)
                    .await?;
            }
            Ok::<_, StoreFailure>(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }
}

impl Store {
    /// Appends `count` change-log entries (renames of one organisation) in one transaction,
    /// for measuring how fast the feed is followed. They become readable in the feed as the
    /// server's sequencer places them (PostgreSQL) or at once (SQLite).
    pub async fn seed_changes(&self, count: u64, time: i64) -> Result<()> {
        let tx = self.begin_write().await?;
        let backend = tx.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO change_events (occur_time, actor, resource_type, resource_id, kind, changes) \
                 SELECT $1, 'system', 'organisation', $2, 'updated', \
                   '[{\"field\":\"name\",\"old\":\"Acme\",\"new\":\"Acme Ltd\"}]' \
                 FROM generate_series(1, $3)"
            }
            _ => {
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?3) \
                 INSERT INTO change_events (occur_time, actor, resource_type, resource_id, kind, changes) \
                 SELECT ?1, 'system', 'organisation', ?2, 'updated', \
                   '[{\"field\":\"name\",\"old\":\"Acme\",\"new\":\"Acme Ltd\"}]' FROM n"
            }
        };
        let outcome = tx
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [
                    time.into(),
                    uuid::Uuid::now_v7().into(),
                    i64::try_from(count).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await
            .map(|_| ())
            .map_err(StoreFailure::from);
        finish(tx, outcome, &[]).await
    }
}
