//! Supplementary details (notes on organisations and customers, with their attachments) get
//! rights of their own: each agent reads, writes or does not see them (`details_access`;
//! existing agents keep what they had: customer administrators write, the others read); and
//! attachments are deleted one by one, softly, so that they can be restored.

use sea_orm_migration::{
    prelude::*,
    schema::{big_integer_null, text},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Agents {
    Table,
    DetailsAccess,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    DeleteTime,
    FileNameKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .add_column(text(Agents::DetailsAccess).default("read"))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE agents SET details_access = 'write' WHERE manage_customers = TRUE",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .add_column(big_integer_null(Attachments::DeleteTime))
                    .to_owned(),
            )
            .await?;
        // The file name case-folded (by the service, for every new file; here by the
        // database, for those before), what ListAttachments searches.
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .add_column(text(Attachments::FileNameKey).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE attachments SET file_name_key = LOWER(file_name)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .drop_column(Attachments::FileNameKey)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Attachments::Table)
                    .drop_column(Attachments::DeleteTime)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Agents::Table)
                    .drop_column(Agents::DetailsAccess)
                    .to_owned(),
            )
            .await
    }
}
