//! Customer sources: customers read from an LDAP directory carry the source's name and the
//! entry's key (`source`, `source_key`, unique together) and the number of the last sync run
//! that saw the entry (`source_seen`); `customer_source_syncs` keeps each source's last sync,
//! shared by every replica, with the lease that lets one replica at a time run it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Customers {
    Table,
    Source,
    SourceKey,
    SourceSeen,
}

#[derive(DeriveIden)]
enum CustomerSourceSyncs {
    Table,
    Name,
    /// Which sync run is the latest (each run's number marks the entries it saw).
    Run,
    LeaseUntil,
    LeaseHolder,
    LastStartTime,
    LastEndTime,
    LastSuccessTime,
    LastFullSyncTime,
    /// `full` or `incremental`.
    Kind,
    EntriesRead,
    EntriesChanged,
    EntriesRefused,
    EntriesInvalidated,
    /// Why the last sync failed; empty when it did not.
    Error,
    /// JSON array of the refused entries of the last sync.
    Refusals,
    /// The newest `modifyTimestamp` a successful sync has read.
    Watermark,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            text_null(Customers::Source),
            text_null(Customers::SourceKey),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Customers::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Customers::Table)
                    .add_column(big_integer_null(Customers::SourceSeen))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_customers_source_key")
                    .table(Customers::Table)
                    .col(Customers::Source)
                    .col(Customers::SourceKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CustomerSourceSyncs::Table)
                    .col(text(CustomerSourceSyncs::Name).primary_key())
                    .col(big_integer(CustomerSourceSyncs::Run))
                    .col(big_integer_null(CustomerSourceSyncs::LeaseUntil))
                    .col(text(CustomerSourceSyncs::LeaseHolder))
                    .col(big_integer_null(CustomerSourceSyncs::LastStartTime))
                    .col(big_integer_null(CustomerSourceSyncs::LastEndTime))
                    .col(big_integer_null(CustomerSourceSyncs::LastSuccessTime))
                    .col(big_integer_null(CustomerSourceSyncs::LastFullSyncTime))
                    .col(text(CustomerSourceSyncs::Kind))
                    .col(big_integer(CustomerSourceSyncs::EntriesRead))
                    .col(big_integer(CustomerSourceSyncs::EntriesChanged))
                    .col(big_integer(CustomerSourceSyncs::EntriesRefused))
                    .col(big_integer(CustomerSourceSyncs::EntriesInvalidated))
                    .col(text(CustomerSourceSyncs::Error))
                    .col(text(CustomerSourceSyncs::Refusals))
                    .col(text(CustomerSourceSyncs::Watermark))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CustomerSourceSyncs::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("ux_customers_source_key")
                    .table(Customers::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Customers::Source.into_iden(),
            Customers::SourceKey.into_iden(),
            Customers::SourceSeen.into_iden(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Customers::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
