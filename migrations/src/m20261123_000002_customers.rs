//! Customers, their email addresses and secondary organisations, and the settings row.

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
                    .table(Customers::Table)
                    .col(pk_uuid(Customers::Id))
                    .col(text(Customers::Email))
                    .col(byte_ordered_text(manager, Customers::EmailKey))
                    .col(text(Customers::EmailDomain))
                    .col(text_null(Customers::Login))
                    .col(text_null(Customers::LoginKey))
                    .col(text(Customers::FirstName))
                    .col(text(Customers::LastName))
                    .col(byte_ordered_text(manager, Customers::NameKey))
                    .col(text(Customers::Title))
                    .col(text(Customers::Phone))
                    .col(text(Customers::Mobile))
                    .col(uuid_null(Customers::OrganisationId))
                    .col(text(Customers::CustomerType))
                    .col(text(Customers::CustomFields))
                    .col(text_null(Customers::ExternalId))
                    .col(text(Customers::Validity))
                    .col(text(Customers::Search))
                    .col(big_integer(Customers::CreateTime))
                    .col(big_integer(Customers::UpdateTime))
                    .col(big_integer(Customers::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customers_organisation")
                            .from(Customers::Table, Customers::OrganisationId)
                            .to(Organisations::Table, Organisations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            ("ux_customers_login_key", &[Customers::LoginKey][..], true),
            (
                "ux_customers_external_id",
                &[Customers::ExternalId][..],
                true,
            ),
            (
                "ix_customers_email_key",
                &[Customers::EmailKey, Customers::Id][..],
                false,
            ),
            (
                "ix_customers_name_key",
                &[Customers::NameKey, Customers::Id][..],
                false,
            ),
            (
                "ix_customers_email_domain",
                &[Customers::EmailDomain][..],
                false,
            ),
            (
                "ix_customers_organisation_id",
                &[Customers::OrganisationId][..],
                false,
            ),
            ("ix_customers_validity", &[Customers::Validity][..], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Customers::Table);
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
                    .table(CustomerEmails::Table)
                    .col(byte_ordered_text(manager, CustomerEmails::EmailKey).primary_key())
                    .col(text(CustomerEmails::Email))
                    .col(uuid(CustomerEmails::CustomerId))
                    .col(boolean(CustomerEmails::IsPrimary))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customer_emails_customer")
                            .from(CustomerEmails::Table, CustomerEmails::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_customer_emails_customer_id")
                    .table(CustomerEmails::Table)
                    .col(CustomerEmails::CustomerId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CustomerOrganisations::Table)
                    .col(uuid(CustomerOrganisations::CustomerId))
                    .col(uuid(CustomerOrganisations::OrganisationId))
                    .primary_key(
                        Index::create()
                            .name("pk_customer_organisations")
                            .col(CustomerOrganisations::CustomerId)
                            .col(CustomerOrganisations::OrganisationId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customer_organisations_customer")
                            .from(
                                CustomerOrganisations::Table,
                                CustomerOrganisations::CustomerId,
                            )
                            .to(Customers::Table, Customers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customer_organisations_organisation")
                            .from(
                                CustomerOrganisations::Table,
                                CustomerOrganisations::OrganisationId,
                            )
                            .to(Organisations::Table, Organisations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_customer_organisations_organisation_id")
                    .table(CustomerOrganisations::Table)
                    .col(CustomerOrganisations::OrganisationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Settings::Table)
                    .col(integer(Settings::Id).primary_key())
                    .col(boolean(Settings::AutoCreateOrganisations))
                    .col(text(Settings::AutoCreateOrganisationCountry))
                    .col(big_integer(Settings::UpdateTime))
                    .col(big_integer(Settings::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Settings::Table)
                    .columns([
                        Settings::Id,
                        Settings::AutoCreateOrganisations,
                        Settings::AutoCreateOrganisationCountry,
                        Settings::UpdateTime,
                        Settings::Version,
                    ])
                    .values_panic([1.into(), false.into(), "".into(), 0i64.into(), 1i64.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Settings::Table.into_iden(),
            CustomerOrganisations::Table.into_iden(),
            CustomerEmails::Table.into_iden(),
            Customers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Customers {
    Table,
    Id,
    Email,
    EmailKey,
    EmailDomain,
    Login,
    LoginKey,
    FirstName,
    LastName,
    NameKey,
    Title,
    Phone,
    Mobile,
    OrganisationId,
    CustomerType,
    CustomFields,
    ExternalId,
    Validity,
    Search,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum CustomerEmails {
    Table,
    EmailKey,
    Email,
    CustomerId,
    IsPrimary,
}

#[derive(DeriveIden)]
enum CustomerOrganisations {
    Table,
    CustomerId,
    OrganisationId,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Id,
    AutoCreateOrganisations,
    AutoCreateOrganisationCountry,
    UpdateTime,
    Version,
}
