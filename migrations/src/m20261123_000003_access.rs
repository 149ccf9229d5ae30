//! Agents, groups, grants, API tokens, and the settings that shape customer rights.

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
                    .table(Agents::Table)
                    .col(pk_uuid(Agents::Id))
                    .col(text(Agents::Login))
                    .col(byte_ordered_text(manager, Agents::LoginKey).unique_key())
                    .col(text(Agents::FirstName))
                    .col(text(Agents::LastName))
                    .col(text(Agents::Email))
                    .col(boolean(Agents::ManageCustomers))
                    .col(text(Agents::Validity))
                    .col(big_integer(Agents::CreateTime))
                    .col(big_integer(Agents::UpdateTime))
                    .col(big_integer(Agents::Version))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Groups::Table)
                    .col(pk_uuid(Groups::Id))
                    .col(text(Groups::Name))
                    .col(byte_ordered_text(manager, Groups::NameKey).unique_key())
                    .col(text(Groups::Comment))
                    .col(text(Groups::Validity))
                    .col(uuid_null(Groups::ResponsibleAgentId))
                    .col(big_integer(Groups::CreateTime))
                    .col(big_integer(Groups::UpdateTime))
                    .col(big_integer(Groups::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_groups_responsible_agent")
                            .from(Groups::Table, Groups::ResponsibleAgentId)
                            .to(Agents::Table, Agents::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Grants::Table)
                    .col(pk_uuid(Grants::Id))
                    .col(text(Grants::SubjectType))
                    .col(uuid(Grants::SubjectId))
                    .col(uuid(Grants::GroupId))
                    .col(text(Grants::Context))
                    .col(text(Grants::Level))
                    .col(big_integer(Grants::CreateTime))
                    .col(big_integer(Grants::UpdateTime))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_grants_group")
                            .from(Grants::Table, Grants::GroupId)
                            .to(Groups::Table, Groups::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_grants_subject_group_context")
                    .table(Grants::Table)
                    .col(Grants::SubjectType)
                    .col(Grants::SubjectId)
                    .col(Grants::GroupId)
                    .col(Grants::Context)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_grants_group")
                    .table(Grants::Table)
                    .col(Grants::GroupId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(pk_uuid(Tokens::Id))
                    .col(text(Tokens::SecretHash).unique_key())
                    .col(text(Tokens::Kind))
                    .col(uuid_null(Tokens::SubjectId))
                    .col(text(Tokens::Description))
                    .col(big_integer(Tokens::CreateTime))
                    .col(big_integer_null(Tokens::ExpireTime))
                    .col(big_integer_null(Tokens::RevokeTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_tokens_subject")
                    .table(Tokens::Table)
                    .col(Tokens::Kind)
                    .col(Tokens::SubjectId)
                    .to_owned(),
            )
            .await?;

        for column in [
            boolean(Settings::CustomerGroupSupport).default(true).take(),
            text(Settings::AlwaysGroups).default("[]").take(),
            text(Settings::CompanyAlwaysGroups).default("[]").take(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Settings::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Settings::CustomerGroupSupport,
            Settings::AlwaysGroups,
            Settings::CompanyAlwaysGroups,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Settings::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for table in [
            Tokens::Table.into_iden(),
            Grants::Table.into_iden(),
            Groups::Table.into_iden(),
            Agents::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
    Login,
    LoginKey,
    FirstName,
    LastName,
    Email,
    ManageCustomers,
    Validity,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
    Name,
    NameKey,
    Comment,
    Validity,
    ResponsibleAgentId,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    SubjectType,
    SubjectId,
    GroupId,
    Context,
    Level,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    SecretHash,
    Kind,
    SubjectId,
    Description,
    CreateTime,
    ExpireTime,
    RevokeTime,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    CustomerGroupSupport,
    AlwaysGroups,
    CompanyAlwaysGroups,
}
