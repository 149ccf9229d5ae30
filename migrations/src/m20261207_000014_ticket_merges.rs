//! Ticket merges: a merged ticket points to the ticket it was merged into, and the tickets
//! merged into one are found by that pointer (its history shows theirs).

use sea_orm_migration::{prelude::*, schema::uuid_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    MergedInto,
}

const INDEX: &str = "ix_tickets_merged_into";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(uuid_null(Tickets::MergedInto))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Tickets::Table)
                    .col(Tickets::MergedInto)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Tickets::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::MergedInto)
                    .to_owned(),
            )
            .await
    }
}
