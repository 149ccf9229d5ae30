//! Finding the tickets that call for attention (a watch's snapshot) without reading them
//! all: a column that says so, kept with every write of a ticket, indexed with the group and
//! the number (the snapshot's filter and order).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(
                        ColumnDef::new(Tickets::Attention)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE tickets SET attention = (escalation <> 'none' OR reminder_due)",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_tickets_attention")
                    .table(Tickets::Table)
                    .col(Tickets::Attention)
                    .col(Tickets::GroupId)
                    .col(Tickets::Number)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_tickets_attention")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::Attention)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Attention,
    GroupId,
    Number,
}
