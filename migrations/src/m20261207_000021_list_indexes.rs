//! Pages in logarithmic time: an index for every list order under its default filter (valid
//! only, or one exact validity), so that a page is read in order from an index and never by
//! sorting the table. The single-column validity indexes made SQLite pick them and then sort
//! every valid row; they go.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The new indexes: name, table, columns.
const INDEXES: [(&str, &str, &str); 7] = [
    (
        "ix_customers_validity_name",
        "customers",
        "validity, name_key, id",
    ),
    (
        "ix_customers_validity_email",
        "customers",
        "validity, email_key, id",
    ),
    (
        "ix_customers_validity_update",
        "customers",
        "validity, update_time, id",
    ),
    (
        "ix_customers_type_name",
        "customers",
        "customer_type, validity, name_key, id",
    ),
    (
        "ix_organisations_validity_name",
        "organisations",
        "validity, name_key, id",
    ),
    (
        "ix_organisations_validity_code",
        "organisations",
        "validity, customer_id_key, id",
    ),
    (
        "ix_organisations_validity_update",
        "organisations",
        "validity, update_time, id",
    ),
];

/// The indexes they replace: name, table, column.
const REPLACED: [(&str, &str, &str); 2] = [
    ("ix_customers_validity", "customers", "validity"),
    ("ix_organisations_validity", "organisations", "validity"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, table, columns) in INDEXES {
            db.execute_unprepared(&format!("CREATE INDEX {name} ON {table} ({columns})"))
                .await?;
        }
        for (name, _, _) in REPLACED {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (name, table, column) in REPLACED {
            db.execute_unprepared(&format!("CREATE INDEX {name} ON {table} ({column})"))
                .await?;
        }
        for (name, _, _) in INDEXES {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
