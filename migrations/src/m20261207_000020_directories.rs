//! Directories (address books): which agents read which contacts. A customer or organisation
//! is filed in at most one directory; one filed in none is read by every agent. No index on
//! `directory_id`: lists filter by it while they read the order's index (with one, SQLite
//! took it for `directory_id IS NULL OR …` and sorted every unfiled row).

use sea_orm_migration::{prelude::*, schema::*};

use crate::byte_ordered_text;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Directories {
    Table,
    Id,
    Name,
    NameKey,
    Comment,
    /// JSON array of agent ids.
    ReaderAgentIds,
    /// JSON array of group ids.
    ReaderGroupIds,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    DirectoryId,
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    DirectoryId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Directories::Table)
                    .col(uuid(Directories::Id).primary_key())
                    .col(text(Directories::Name))
                    .col(byte_ordered_text(manager, Directories::NameKey))
                    .col(text(Directories::Comment))
                    .col(text(Directories::ReaderAgentIds))
                    .col(text(Directories::ReaderGroupIds))
                    .col(big_integer(Directories::CreateTime))
                    .col(big_integer(Directories::UpdateTime))
                    .col(big_integer(Directories::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_directories_name_key")
                    .table(Directories::Table)
                    .col(Directories::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Customers::Table)
                    .add_column(uuid_null(Customers::DirectoryId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Organisations::Table)
                    .add_column(uuid_null(Organisations::DirectoryId))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (
                Customers::Table.into_iden(),
                Customers::DirectoryId.into_iden(),
            ),
            (
                Organisations::Table.into_iden(),
                Organisations::DirectoryId.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(Directories::Table).to_owned())
            .await?;
        Ok(())
    }
}
