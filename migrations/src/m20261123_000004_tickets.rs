//! SLA calendars and policies, tickets with their additional customers, and ticket numbers.

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
                    .table(SlaCalendars::Table)
                    .col(pk_uuid(SlaCalendars::Id))
                    .col(text(SlaCalendars::Name))
                    .col(byte_ordered_text(manager, SlaCalendars::NameKey).unique_key())
                    .col(text(SlaCalendars::TimeZone))
                    .col(text(SlaCalendars::BusinessHours))
                    .col(text(SlaCalendars::Holidays))
                    .col(big_integer(SlaCalendars::CreateTime))
                    .col(big_integer(SlaCalendars::UpdateTime))
                    .col(big_integer(SlaCalendars::Version))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SlaPolicies::Table)
                    .col(pk_uuid(SlaPolicies::Id))
                    .col(text(SlaPolicies::Name))
                    .col(byte_ordered_text(manager, SlaPolicies::NameKey).unique_key())
                    .col(big_integer_null(SlaPolicies::FirstResponseSeconds))
                    .col(big_integer_null(SlaPolicies::UpdateSeconds))
                    .col(big_integer_null(SlaPolicies::SolutionSeconds))
                    .col(integer(SlaPolicies::WarningPercent))
                    .col(uuid_null(SlaPolicies::CalendarId))
                    .col(big_integer(SlaPolicies::CreateTime))
                    .col(big_integer(SlaPolicies::UpdateTime))
                    .col(big_integer(SlaPolicies::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sla_policies_calendar")
                            .from(SlaPolicies::Table, SlaPolicies::CalendarId)
                            .to(SlaCalendars::Table, SlaCalendars::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (table, column) in [
            (
                Organisations::Table.into_iden(),
                Organisations::SlaPolicyId.into_iden(),
            ),
            (
                Organisations::Table.into_iden(),
                Organisations::DefaultAssigneeId.into_iden(),
            ),
            (
                Groups::Table.into_iden(),
                Groups::DefaultSlaPolicyId.into_iden(),
            ),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(ColumnDef::new(column).uuid().null())
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(TicketCounters::Table)
                    .col(big_integer(TicketCounters::Day).primary_key())
                    .col(big_integer(TicketCounters::Last))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(pk_uuid(Tickets::Id))
                    .col(big_integer(Tickets::Number).unique_key())
                    .col(text(Tickets::Title))
                    .col(text(Tickets::Search))
                    .col(uuid(Tickets::GroupId))
                    .col(uuid(Tickets::CustomerId))
                    .col(uuid_null(Tickets::OrganisationId))
                    .col(text(Tickets::State))
                    .col(integer(Tickets::Priority))
                    .col(uuid_null(Tickets::AssigneeId))
                    .col(uuid_null(Tickets::SlaPolicyId))
                    .col(uuid_null(Tickets::AppliedSlaPolicyId))
                    .col(big_integer_null(Tickets::PendingUntil))
                    .col(big_integer_null(Tickets::FirstResponseTime))
                    .col(big_integer_null(Tickets::CloseTime))
                    .col(big_integer(Tickets::LastCustomerContact))
                    .col(big_integer_null(Tickets::LastAgentResponse))
                    .col(big_integer_null(Tickets::PendingSince))
                    .col(text(Tickets::Clocks))
                    .col(big_integer_null(Tickets::FirstResponseDue))
                    .col(big_integer_null(Tickets::UpdateDue))
                    .col(big_integer_null(Tickets::SolutionDue))
                    .col(text(Tickets::Alerts))
                    .col(text(Tickets::Escalation))
                    .col(boolean(Tickets::ReminderDue))
                    .col(big_integer_null(Tickets::NextEventTime))
                    .col(big_integer(Tickets::CreateTime))
                    .col(big_integer(Tickets::UpdateTime))
                    .col(big_integer(Tickets::Version))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_group")
                            .from(Tickets::Table, Tickets::GroupId)
                            .to(Groups::Table, Groups::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_customer")
                            .from(Tickets::Table, Tickets::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tickets_organisation")
                            .from(Tickets::Table, Tickets::OrganisationId)
                            .to(Organisations::Table, Organisations::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("ix_tickets_group", &[Tickets::GroupId, Tickets::Number][..]),
            ("ix_tickets_customer", &[Tickets::CustomerId][..]),
            ("ix_tickets_organisation", &[Tickets::OrganisationId][..]),
            ("ix_tickets_state", &[Tickets::State][..]),
            ("ix_tickets_next_event", &[Tickets::NextEventTime][..]),
            ("ix_tickets_escalation", &[Tickets::Escalation][..]),
            (
                "ix_tickets_update_time",
                &[Tickets::UpdateTime, Tickets::Id][..],
            ),
            ("ix_tickets_assignee", &[Tickets::AssigneeId][..]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Tickets::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(TicketCustomers::Table)
                    .col(uuid(TicketCustomers::TicketId))
                    .col(uuid(TicketCustomers::CustomerId))
                    .primary_key(
                        Index::create()
                            .name("pk_ticket_customers")
                            .col(TicketCustomers::TicketId)
                            .col(TicketCustomers::CustomerId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ticket_customers_ticket")
                            .from(TicketCustomers::Table, TicketCustomers::TicketId)
                            .to(Tickets::Table, Tickets::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_ticket_customers_customer")
                            .from(TicketCustomers::Table, TicketCustomers::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_ticket_customers_customer")
                    .table(TicketCustomers::Table)
                    .col(TicketCustomers::CustomerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TicketCustomers::Table.into_iden(),
            Tickets::Table.into_iden(),
            TicketCounters::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for (table, column) in [
            (
                Groups::Table.into_iden(),
                Groups::DefaultSlaPolicyId.into_iden(),
            ),
            (
                Organisations::Table.into_iden(),
                Organisations::DefaultAssigneeId.into_iden(),
            ),
            (
                Organisations::Table.into_iden(),
                Organisations::SlaPolicyId.into_iden(),
            ),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        for table in [
            SlaPolicies::Table.into_iden(),
            SlaCalendars::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SlaCalendars {
    Table,
    Id,
    Name,
    NameKey,
    TimeZone,
    BusinessHours,
    Holidays,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum SlaPolicies {
    Table,
    Id,
    Name,
    NameKey,
    FirstResponseSeconds,
    UpdateSeconds,
    SolutionSeconds,
    WarningPercent,
    CalendarId,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    Id,
    SlaPolicyId,
    DefaultAssigneeId,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
    DefaultSlaPolicyId,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TicketCounters {
    Table,
    Day,
    Last,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tickets {
    Table,
    Id,
    Number,
    Title,
    Search,
    GroupId,
    CustomerId,
    OrganisationId,
    State,
    Priority,
    AssigneeId,
    SlaPolicyId,
    AppliedSlaPolicyId,
    PendingUntil,
    FirstResponseTime,
    CloseTime,
    LastCustomerContact,
    LastAgentResponse,
    PendingSince,
    Clocks,
    FirstResponseDue,
    UpdateDue,
    SolutionDue,
    Alerts,
    Escalation,
    ReminderDue,
    NextEventTime,
    CreateTime,
    UpdateTime,
    Version,
}

#[derive(DeriveIden)]
enum TicketCustomers {
    Table,
    TicketId,
    CustomerId,
}
