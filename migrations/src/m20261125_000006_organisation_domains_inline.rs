//! Organisations keep a copy of their email domains in their own row, so that reading one is
//! one query; `organisation_domains` stays the index that keeps domains unique and finds the
//! organisation claiming one.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organisations::Table)
                    .add_column(
                        ColumnDef::new(Organisations::EmailDomains)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE organisations SET email_domains = COALESCE((SELECT json_agg(d.domain ORDER BY d.domain)::text FROM organisation_domains d WHERE d.organisation_id = organisations.id), '[]')"
            }
            _ => {
                "UPDATE organisations SET email_domains = COALESCE((SELECT json_group_array(domain) FROM (SELECT d.domain FROM organisation_domains d WHERE d.organisation_id = organisations.id ORDER BY d.domain)), '[]')"
            }
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organisations::Table)
                    .drop_column(Organisations::EmailDomains)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Organisations {
    Table,
    EmailDomains,
}
