//! The field catalogue (OneDesk): customer types and custom-field definitions for customers
//! and organisations. Empty, it changes nothing: types and custom fields stay free-form.

use sea_orm_migration::{prelude::*, schema::*};

use crate::byte_ordered_text;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CustomerTypes {
    Table,
    Id,
    Name,
    NameKey,
    Comment,
    Validity,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum FieldDefinitions {
    Table,
    Id,
    RecordType,
    Key,
    DisplayName,
    ValueType,
    Required,
    AllowedValues,
    Comment,
    Validity,
    CreateTime,
    UpdateTime,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CustomerTypes::Table)
                    .col(uuid(CustomerTypes::Id).primary_key())
                    .col(text(CustomerTypes::Name))
                    .col(byte_ordered_text(manager, CustomerTypes::NameKey))
                    .col(text(CustomerTypes::Comment))
                    .col(text(CustomerTypes::Validity))
                    .col(big_integer(CustomerTypes::CreateTime))
                    .col(big_integer(CustomerTypes::UpdateTime))
                    .col(big_integer(CustomerTypes::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(FieldDefinitions::Table)
                    .col(uuid(FieldDefinitions::Id).primary_key())
                    .col(text(FieldDefinitions::RecordType))
                    .col(byte_ordered_text(manager, FieldDefinitions::Key))
                    .col(text(FieldDefinitions::DisplayName))
                    .col(text(FieldDefinitions::ValueType))
                    .col(boolean(FieldDefinitions::Required))
                    .col(text(FieldDefinitions::AllowedValues))
                    .col(text(FieldDefinitions::Comment))
                    .col(text(FieldDefinitions::Validity))
                    .col(big_integer(FieldDefinitions::CreateTime))
                    .col(big_integer(FieldDefinitions::UpdateTime))
                    .col(big_integer(FieldDefinitions::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_customer_types_name_key")
                    .table(CustomerTypes::Table)
                    .col(CustomerTypes::NameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_field_definitions_key")
                    .table(FieldDefinitions::Table)
                    .col(FieldDefinitions::RecordType)
                    .col(FieldDefinitions::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FieldDefinitions::Table.into_iden(),
            CustomerTypes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
