//! Contact groups (AyMINE): a catalogue of kinds, contact groups of customers and
//! organisations, and price lists applied to contact groups by precedence. A new database gets
//! four kinds: Colleagues, Customers, Suppliers, Partners.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::prelude::Uuid};

use crate::byte_ordered_text;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactGroupKinds {
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
enum ContactGroups {
    Table,
    Id,
    Name,
    NameKey,
    KindId,
    Comment,
    Validity,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum PriceLists {
    Table,
    Id,
    Name,
    NameKey,
    Currency,
    Comment,
    Validity,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum PriceListItems {
    Table,
    PriceListId,
    ItemCodeKey,
    ItemCode,
    Name,
    UnitPrice,
}

#[derive(DeriveIden)]
enum ContactGroupPriceLists {
    Table,
    ContactGroupId,
    PriceListId,
    Precedence,
}

#[derive(DeriveIden)]
enum ContactGroupMembers {
    Table,
    ContactGroupId,
    MemberId,
    CustomerId,
    OrganisationId,
    CreateTime,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
}

/// The kinds a new database starts with, with fixed ids so that every installation names
/// them alike.
const KINDS: [(&str, &str); 4] = [
    ("0193a000-0000-7000-8000-000000000001", "Colleagues"),
    ("0193a000-0000-7000-8000-000000000002", "Customers"),
    ("0193a000-0000-7000-8000-000000000003", "Suppliers"),
    ("0193a000-0000-7000-8000-000000000004", "Partners"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ContactGroupKinds::Table)
                    .col(uuid(ContactGroupKinds::Id).primary_key())
                    .col(text(ContactGroupKinds::Name))
                    .col(byte_ordered_text(manager, ContactGroupKinds::NameKey))
                    .col(text(ContactGroupKinds::Comment))
                    .col(text(ContactGroupKinds::Validity))
                    .col(big_integer(ContactGroupKinds::CreateTime))
                    .col(big_integer(ContactGroupKinds::UpdateTime))
                    .col(big_integer(ContactGroupKinds::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactGroups::Table)
                    .col(uuid(ContactGroups::Id).primary_key())
                    .col(text(ContactGroups::Name))
                    .col(byte_ordered_text(manager, ContactGroups::NameKey))
                    .col(uuid(ContactGroups::KindId))
                    .col(text(ContactGroups::Comment))
                    .col(text(ContactGroups::Validity))
                    .col(big_integer(ContactGroups::CreateTime))
                    .col(big_integer(ContactGroups::UpdateTime))
                    .col(big_integer(ContactGroups::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_groups_kind")
                            .from(ContactGroups::Table, ContactGroups::KindId)
                            .to(ContactGroupKinds::Table, ContactGroupKinds::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PriceLists::Table)
                    .col(uuid(PriceLists::Id).primary_key())
                    .col(text(PriceLists::Name))
                    .col(byte_ordered_text(manager, PriceLists::NameKey))
                    .col(text(PriceLists::Currency))
                    .col(text(PriceLists::Comment))
                    .col(text(PriceLists::Validity))
                    .col(big_integer(PriceLists::CreateTime))
                    .col(big_integer(PriceLists::UpdateTime))
                    .col(big_integer(PriceLists::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PriceListItems::Table)
                    .col(uuid(PriceListItems::PriceListId))
                    .col(byte_ordered_text(manager, PriceListItems::ItemCodeKey))
                    .col(text(PriceListItems::ItemCode))
                    .col(text(PriceListItems::Name))
                    .col(big_integer(PriceListItems::UnitPrice))
                    .primary_key(
                        Index::create()
                            .col(PriceListItems::PriceListId)
                            .col(PriceListItems::ItemCodeKey),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_price_list_items_list")
                            .from(PriceListItems::Table, PriceListItems::PriceListId)
                            .to(PriceLists::Table, PriceLists::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ContactGroupPriceLists::Table)
                    .col(uuid(ContactGroupPriceLists::ContactGroupId))
                    .col(uuid(ContactGroupPriceLists::PriceListId))
                    .col(integer(ContactGroupPriceLists::Precedence))
                    .primary_key(
                        Index::create()
                            .col(ContactGroupPriceLists::ContactGroupId)
                            .col(ContactGroupPriceLists::PriceListId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_price_lists_group")
                            .from(
                                ContactGroupPriceLists::Table,
                                ContactGroupPriceLists::ContactGroupId,
                            )
                            .to(ContactGroups::Table, ContactGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_price_lists_list")
                            .from(
                                ContactGroupPriceLists::Table,
                                ContactGroupPriceLists::PriceListId,
                            )
                            .to(PriceLists::Table, PriceLists::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per member: `member_id` is the customer's or the organisation's id, the
        // other two columns hold it as a reference, so that deleting or erasing either takes
        // its memberships with it.
        manager
            .create_table(
                Table::create()
                    .table(ContactGroupMembers::Table)
                    .col(uuid(ContactGroupMembers::ContactGroupId))
                    .col(uuid(ContactGroupMembers::MemberId))
                    .col(uuid_null(ContactGroupMembers::CustomerId))
                    .col(uuid_null(ContactGroupMembers::OrganisationId))
                    .col(big_integer(ContactGroupMembers::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(ContactGroupMembers::ContactGroupId)
                            .col(ContactGroupMembers::MemberId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_members_group")
                            .from(
                                ContactGroupMembers::Table,
                                ContactGroupMembers::ContactGroupId,
                            )
                            .to(ContactGroups::Table, ContactGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_members_customer")
                            .from(ContactGroupMembers::Table, ContactGroupMembers::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_members_organisation")
                            .from(
                                ContactGroupMembers::Table,
                                ContactGroupMembers::OrganisationId,
                            )
                            .to(Organisations::Table, Organisations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, table, columns) in [
            (
                "ux_contact_group_kinds_name_key",
                ContactGroupKinds::Table.into_iden(),
                vec![ContactGroupKinds::NameKey.into_iden()],
            ),
            (
                "ux_contact_groups_name_key",
                ContactGroups::Table.into_iden(),
                vec![ContactGroups::NameKey.into_iden()],
            ),
            // The contact groups of one kind, by name.
            (
                "ix_contact_groups_kind",
                ContactGroups::Table.into_iden(),
                vec![
                    ContactGroups::KindId.into_iden(),
                    ContactGroups::NameKey.into_iden(),
                ],
            ),
            (
                "ux_price_lists_name_key",
                PriceLists::Table.into_iden(),
                vec![PriceLists::NameKey.into_iden()],
            ),
            (
                "ix_contact_group_price_lists_list",
                ContactGroupPriceLists::Table.into_iden(),
                vec![ContactGroupPriceLists::PriceListId.into_iden()],
            ),
            // A contact group's members in the order they joined.
            (
                "ix_contact_group_members_joined",
                ContactGroupMembers::Table.into_iden(),
                vec![
                    ContactGroupMembers::ContactGroupId.into_iden(),
                    ContactGroupMembers::CreateTime.into_iden(),
                    ContactGroupMembers::MemberId.into_iden(),
                ],
            ),
            // What a customer or organisation is in (and what its delete cascades to).
            (
                "ix_contact_group_members_customer",
                ContactGroupMembers::Table.into_iden(),
                vec![ContactGroupMembers::CustomerId.into_iden()],
            ),
            (
                "ix_contact_group_members_organisation",
                ContactGroupMembers::Table.into_iden(),
                vec![ContactGroupMembers::OrganisationId.into_iden()],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(table);
            if name.starts_with("ux_") {
                index.unique();
            }
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros() as i64);
        let mut insert = Query::insert();
        insert.into_table(ContactGroupKinds::Table).columns([
            ContactGroupKinds::Id,
            ContactGroupKinds::Name,
            ContactGroupKinds::NameKey,
            ContactGroupKinds::Comment,
            ContactGroupKinds::Validity,
            ContactGroupKinds::CreateTime,
            ContactGroupKinds::UpdateTime,
            ContactGroupKinds::Version,
        ]);
        for (id, name) in KINDS {
            let id = Uuid::parse_str(id).map_err(|e| DbErr::Migration(e.to_string()))?;
            insert.values_panic([
                id.into(),
                name.into(),
                name.to_lowercase().into(),
                "".into(),
                "valid".into(),
                now.into(),
                now.into(),
                1i64.into(),
            ]);
        }
        manager.exec_stmt(insert.to_owned()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ContactGroupMembers::Table.into_iden(),
            ContactGroupPriceLists::Table.into_iden(),
            PriceListItems::Table.into_iden(),
            PriceLists::Table.into_iden(),
            ContactGroups::Table.into_iden(),
            ContactGroupKinds::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
