//! Idempotency keys per caller: the same `request_id` from another principal is another
//! request. The key becomes (operation, caller, request_id). Keys are kept for retries of
//! moments ago, so the table is made anew rather than converted: a key written before the
//! upgrade names no caller and could match nobody's retry.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        create(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await?;
        create(manager, false).await
    }
}

/// The table, keyed by caller too when `per_caller`.
async fn create(manager: &SchemaManager<'_>, per_caller: bool) -> Result<(), DbErr> {
    let mut key = Index::create();
    key.name("pk_idempotency_keys")
        .col(IdempotencyKeys::Operation);
    let mut table = Table::create();
    table
        .table(IdempotencyKeys::Table)
        .col(text(IdempotencyKeys::Operation));
    if per_caller {
        table.col(text(IdempotencyKeys::Caller));
        key.col(IdempotencyKeys::Caller);
    }
    key.col(IdempotencyKeys::RequestId);
    table
        .col(text(IdempotencyKeys::RequestId))
        .col(text(IdempotencyKeys::RequestHash))
        .col(uuid(IdempotencyKeys::ResourceId))
        .col(big_integer(IdempotencyKeys::CreateTime))
        .primary_key(&mut key);
    manager.create_table(table.to_owned()).await
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Operation,
    Caller,
    RequestId,
    RequestHash,
    ResourceId,
    CreateTime,
}
