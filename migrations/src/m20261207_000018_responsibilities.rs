//! Responsibility per processing area: for each contact group and ticket group, the agent
//! new tickets of the group's members are assigned to, and optionally a reader group that
//! limits who reads them (`tickets.reader_group_id`); and the default area of tickets created
//! without a group (`settings.default_group_id`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ContactGroupResponsibilities {
    Table,
    ContactGroupId,
    GroupId,
    AgentId,
    ReaderGroupId,
}

#[derive(DeriveIden)]
enum ContactGroups {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Agents {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    ReaderGroupId,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    DefaultGroupId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ContactGroupResponsibilities as R;
        manager
            .create_table(
                Table::create()
                    .table(R::Table)
                    .col(uuid(R::ContactGroupId))
                    .col(uuid(R::GroupId))
                    .col(uuid(R::AgentId))
                    .col(uuid_null(R::ReaderGroupId))
                    .primary_key(Index::create().col(R::ContactGroupId).col(R::GroupId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_responsibilities_contact_group")
                            .from(R::Table, R::ContactGroupId)
                            .to(ContactGroups::Table, ContactGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_responsibilities_group")
                            .from(R::Table, R::GroupId)
                            .to(Groups::Table, Groups::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_responsibilities_agent")
                            .from(R::Table, R::AgentId)
                            .to(Agents::Table, Agents::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_contact_group_responsibilities_reader_group")
                            .from(R::Table, R::ReaderGroupId)
                            .to(Groups::Table, Groups::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(uuid_null(Tickets::ReaderGroupId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Settings::Table)
                    .add_column(uuid_null(Settings::DefaultGroupId))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Settings::Table)
                    .drop_column(Settings::DefaultGroupId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::ReaderGroupId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(ContactGroupResponsibilities::Table)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
