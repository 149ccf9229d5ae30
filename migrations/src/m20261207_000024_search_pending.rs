//! PostgreSQL: the trigram indexes of the search documents write every change into the index
//! itself (`fastupdate = off`) instead of GIN's pending list. Every search reads the whole
//! pending list besides the index (up to `gin_pending_list_limit`, 4 MB), and the planner
//! prices it in: with 490 pending pages a one-hit search of 100,000 customers took 26 ms in
//! the index and PostgreSQL scanned the 10,000 organisations instead of using theirs; without
//! them, 0.2 ms (BENCHMARKS.md). What is pending now is moved into the index. SQLite: nothing.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [&str; 2] = ["ix_customers_search", "ix_organisations_search"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for index in INDEXES {
            db.execute_unprepared(&format!("ALTER INDEX {index} SET (fastupdate = off)"))
                .await?;
            db.execute_unprepared(&format!("SELECT gin_clean_pending_list('{index}')"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for index in INDEXES {
            db.execute_unprepared(&format!("ALTER INDEX {index} RESET (fastupdate)"))
                .await?;
        }
        Ok(())
    }
}
