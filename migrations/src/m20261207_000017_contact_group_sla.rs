//! SLA contracts of contact groups: a default level and a level (an SLA policy) per severity;
//! tickets get the severity an agent assessed and the contact group whose contract they got.

use sea_orm_migration::{
    prelude::*,
    schema::{text, uuid_null},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Severity,
    SlaContactGroupId,
}

#[derive(DeriveIden)]
enum ContactGroups {
    Table,
    SlaDefaultPolicyId,
    SlaLevels,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            text(Tickets::Severity).default("").to_owned(),
            uuid_null(Tickets::SlaContactGroupId).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            uuid_null(ContactGroups::SlaDefaultPolicyId).to_owned(),
            text(ContactGroups::SlaLevels).default("[]").to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ContactGroups::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [ContactGroups::SlaLevels, ContactGroups::SlaDefaultPolicyId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ContactGroups::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [Tickets::SlaContactGroupId, Tickets::Severity] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
