//! Erasure (GDPR article 17): a change-log entry whose recorded values were erased keeps its
//! field names and says so; the history retention finds the customer entries whose values are
//! due for scrubbing by time without reading the whole log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChangeEvents {
    Table,
    ValuesErased,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ChangeEvents::Table)
                    .add_column(
                        ColumnDef::new(ChangeEvents::ValuesErased)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        // The retention job's work list: customer entries that still hold values, by time.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_change_events_customer_values ON change_events (occur_time) \
                 WHERE resource_type = 'customer' AND values_erased = FALSE",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX ix_change_events_customer_values")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ChangeEvents::Table)
                    .drop_column(ChangeEvents::ValuesErased)
                    .to_owned(),
            )
            .await
    }
}
