//! Customer activities (ConSol CM): named actions an agent runs on a customer or an
//! organisation, each bound to a webhook that receives the run.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Activities {
    Table,
    Id,
    Name,
    NameKey,
    Description,
    WebhookId,
    AppliesTo,
    CustomerTypes,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .col(uuid(Activities::Id).primary_key())
                    .col(text(Activities::Name))
                    .col(crate::byte_ordered_text(manager, Activities::NameKey))
                    .col(text(Activities::Description))
                    .col(uuid(Activities::WebhookId))
                    .col(text(Activities::AppliesTo))
                    .col(text(Activities::CustomerTypes))
                    .col(big_integer(Activities::CreateTime))
                    .col(big_integer(Activities::UpdateTime))
                    .col(big_integer(Activities::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activities_webhook")
                            .from(Activities::Table, Activities::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("activities_name_key")
                    .table(Activities::Table)
                    .col(Activities::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Activities::Table).to_owned())
            .await?;
        Ok(())
    }
}
