//! Webhooks: subscriptions to the change feed, and the deliveries made to them. A delivery is
//! made for each matching change once its subscription's cursor passes it (in the same
//! transaction that moves the cursor), and stays in the table as the delivery log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Description,
    Secret,
    ResourceTypes,
    Kinds,
    Active,
    MaxAttempts,
    FeedCursor,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    Position,
    Seq,
    ResourceType,
    ResourceId,
    Kind,
    Status,
    Attempts,
    NextAttemptTime,
    LeaseUntil,
    LastStatus,
    LastError,
    DeliveredTime,
    CreateTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(uuid(Webhooks::Id).primary_key())
                    .col(text(Webhooks::Url))
                    .col(text(Webhooks::Description))
                    .col(text(Webhooks::Secret))
                    .col(text(Webhooks::ResourceTypes))
                    .col(text(Webhooks::Kinds))
                    .col(boolean(Webhooks::Active))
                    .col(integer(Webhooks::MaxAttempts))
                    .col(big_integer(Webhooks::FeedCursor))
                    .col(big_integer(Webhooks::CreateTime))
                    .col(big_integer(Webhooks::UpdateTime))
                    .col(big_integer(Webhooks::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(uuid(WebhookDeliveries::Id).primary_key())
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(big_integer(WebhookDeliveries::Position))
                    .col(big_integer(WebhookDeliveries::Seq))
                    .col(text(WebhookDeliveries::ResourceType))
                    .col(uuid(WebhookDeliveries::ResourceId))
                    .col(text(WebhookDeliveries::Kind))
                    .col(text(WebhookDeliveries::Status))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(big_integer(WebhookDeliveries::NextAttemptTime))
                    .col(big_integer_null(WebhookDeliveries::LeaseUntil))
                    .col(integer_null(WebhookDeliveries::LastStatus))
                    .col(text(WebhookDeliveries::LastError))
                    .col(big_integer_null(WebhookDeliveries::DeliveredTime))
                    .col(big_integer(WebhookDeliveries::CreateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_webhook")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            // The delivery log of one subscription, in feed order; one change once.
            (
                "ux_webhook_deliveries_position",
                vec![WebhookDeliveries::WebhookId, WebhookDeliveries::Position],
            ),
            // What is due.
            (
                "ix_webhook_deliveries_due",
                vec![
                    WebhookDeliveries::Status,
                    WebhookDeliveries::NextAttemptTime,
                ],
            ),
            // What of one resource is still pending, for order per resource.
            (
                "ix_webhook_deliveries_resource",
                vec![
                    WebhookDeliveries::WebhookId,
                    WebhookDeliveries::ResourceId,
                    WebhookDeliveries::Status,
                    WebhookDeliveries::Position,
                ],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(WebhookDeliveries::Table);
            if name.starts_with("ux_") {
                index.unique();
            }
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await?;
        Ok(())
    }
}
