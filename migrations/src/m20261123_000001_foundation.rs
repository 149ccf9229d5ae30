//! Organisations, their email domains, the change log and idempotency keys.

use sea_orm_migration::{prelude::*, schema::*};

use crate::byte_ordered_text;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organisations::Table)
                    .col(pk_uuid(Organisations::Id))
                    .col(text(Organisations::CustomerId))
                    .col(byte_ordered_text(manager, Organisations::CustomerIdKey))
                    .col(text(Organisations::Name))
                    .col(byte_ordered_text(manager, Organisations::NameKey))
                    .col(text(Organisations::Street))
                    .col(text(Organisations::Zip))
                    .col(text(Organisations::City))
                    .col(text(Organisations::Country))
                    .col(text(Organisations::Url))
                    .col(text(Organisations::Comment))
                    .col(text(Organisations::Validity))
                    .col(boolean(Organisations::DomainAssignment))
                    .col(text_null(Organisations::ExternalId))
                    .col(text(Organisations::CustomFields))
                    .col(text(Organisations::Search))
                    .col(big_integer(Organisations::CreateTime))
                    .col(big_integer(Organisations::UpdateTime))
                    .col(big_integer(Organisations::Version))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "ux_organisations_customer_id_key",
                &[Organisations::CustomerIdKey][..],
                true,
            ),
            (
                "ux_organisations_external_id",
                &[Organisations::ExternalId][..],
                true,
            ),
            (
                "ix_organisations_name_key",
                &[Organisations::NameKey, Organisations::Id][..],
                false,
            ),
            (
                "ix_organisations_validity",
                &[Organisations::Validity][..],
                false,
            ),
            (
                "ix_organisations_country",
                &[Organisations::Country][..],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Organisations::Table);
            for column in columns {
                index.col(*column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(OrganisationDomains::Table)
                    .col(byte_ordered_text(manager, OrganisationDomains::Domain).primary_key())
                    .col(uuid(OrganisationDomains::OrganisationId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_organisation_domains_organisation")
                            .from(
                                OrganisationDomains::Table,
                                OrganisationDomains::OrganisationId,
                            )
                            .to(Organisations::Table, Organisations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_organisation_domains_organisation_id")
                    .table(OrganisationDomains::Table)
                    .col(OrganisationDomains::OrganisationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangeEvents::Table)
                    .col(big_pk_auto(ChangeEvents::Seq))
                    .col(big_integer(ChangeEvents::OccurTime))
                    .col(text(ChangeEvents::Actor))
                    .col(text(ChangeEvents::ResourceType))
                    .col(uuid(ChangeEvents::ResourceId))
                    .col(text(ChangeEvents::Kind))
                    .col(text(ChangeEvents::Changes))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_change_events_resource")
                    .table(ChangeEvents::Table)
                    .col(ChangeEvents::ResourceType)
                    .col(ChangeEvents::ResourceId)
                    .col(ChangeEvents::Seq)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::Operation))
                    .col(text(IdempotencyKeys::RequestId))
                    .col(text(IdempotencyKeys::RequestHash))
                    .col(uuid(IdempotencyKeys::ResourceId))
                    .col(big_integer(IdempotencyKeys::CreateTime))
                    .primary_key(
                        Index::create()
                            .name("pk_idempotency_keys")
                            .col(IdempotencyKeys::Operation)
                            .col(IdempotencyKeys::RequestId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            ChangeEvents::Table.into_iden(),
            OrganisationDomains::Table.into_iden(),
            Organisations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Organisations {
    Table,
    Id,
    CustomerId,
    CustomerIdKey,
    Name,
    NameKey,
    Street,
    Zip,
    City,
    Country,
    Url,
    Comment,
    Validity,
    DomainAssignment,
    ExternalId,
    CustomFields,
    Search,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum OrganisationDomains {
    Table,
    Domain,
    OrganisationId,
}

#[derive(DeriveIden)]
enum ChangeEvents {
    Table,
    Seq,
    OccurTime,
    Actor,
    ResourceType,
    ResourceId,
    Kind,
    Changes,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Operation,
    RequestId,
    RequestHash,
    ResourceId,
    CreateTime,
}
