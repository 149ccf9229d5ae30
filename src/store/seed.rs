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
