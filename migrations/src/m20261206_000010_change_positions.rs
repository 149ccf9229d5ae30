//! The change feed's order (DESIGN §3), and lists by update time. On SQLite one writer commits at a time, so the
//! sequence number `seq` is commit order and the feed reads by it. On PostgreSQL a sequence
//! value is taken at insert and becomes visible at commit, out of order when transactions
//! commit out of order; there the feed reads by `position`, which one sequencer at a time
//! hands out to committed events in a transaction of its own, so that a follower that has
//! seen position `p` never sees a smaller one appear later.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChangeEvents {
    Table,
    Position,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ChangeEvents::Table)
                    .add_column(ColumnDef::new(ChangeEvents::Position).big_integer().null())
                    .to_owned(),
            )
            .await?;
        // Lists by update time (incremental sync), a page at a time.
        for (name, table) in [
            ("ix_customers_update_time", "customers"),
            ("ix_organisations_update_time", "organisations"),
        ] {
            manager
                .get_connection()
                .execute_unprepared(&format!("CREATE INDEX {name} ON {table} (update_time, id)"))
                .await?;
        }
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // Every event committed before this migration is in commit order already for any
        // follower that starts now.
        db.execute_unprepared("UPDATE change_events SET position = seq")
            .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX ux_change_events_position ON change_events (position)",
        )
        .await?;
        // The sequencer's work list: the events committed and not yet in the feed's order.
        db.execute_unprepared(
            "CREATE INDEX ix_change_events_unpositioned ON change_events (seq) \
             WHERE position IS NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["ix_customers_update_time", "ix_organisations_update_time"] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX {name}"))
                .await?;
        }
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            let db = manager.get_connection();
            db.execute_unprepared("DROP INDEX ix_change_events_unpositioned")
                .await?;
            db.execute_unprepared("DROP INDEX ux_change_events_position")
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ChangeEvents::Table)
                    .drop_column(ChangeEvents::Position)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
