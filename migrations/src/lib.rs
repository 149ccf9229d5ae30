//! Clientele's database schema as sea-orm migrations. One migration serves SQLite and
//! PostgreSQL: tables are described with the schema builder, not raw SQL.
//!
//! Conventions: identifiers are UUIDs; times are `BIGINT` microseconds since the Unix epoch
//! (UTC), which sort and compare the same on both backends; text that is searched or ordered
//! case-insensitively has a lower-cased `*_key` column beside it, compared byte-wise (`COLLATE
//! "C"` on PostgreSQL) so that both backends order it alike.

pub use sea_orm_migration::{MigrationStatus, prelude::*};

mod m20261123_000001_foundation;
mod m20261123_000002_customers;
mod m20261123_000003_access;
mod m20261123_000004_tickets;
mod m20261125_000005_comments;
mod m20261125_000006_organisation_domains_inline;
mod m20261125_000007_ticket_attention_index;
mod m20261127_000008_ticket_number_sequence;
mod m20261130_000009_idempotency_per_caller;
mod m20261206_000010_change_positions;
mod m20261206_000011_webhooks;
mod m20261206_000012_activities;
mod m20261207_000013_erasure;
mod m20261207_000014_ticket_merges;
mod m20261207_000015_supplementary_details;
mod m20261207_000016_contact_groups;
mod m20261207_000017_contact_group_sla;
mod m20261207_000018_responsibilities;
mod m20261207_000019_field_catalogue;
mod m20261207_000020_directories;
mod m20261207_000021_list_indexes;
mod m20261207_000022_search;
mod m20261207_000023_customer_sources;
mod m20261207_000024_search_pending;

/// The list of migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_foundation::Migration),
            Box::new(m20261123_000002_customers::Migration),
            Box::new(m20261123_000003_access::Migration),
            Box::new(m20261123_000004_tickets::Migration),
            Box::new(m20261125_000005_comments::Migration),
            Box::new(m20261125_000006_organisation_domains_inline::Migration),
            Box::new(m20261125_000007_ticket_attention_index::Migration),
            Box::new(m20261127_000008_ticket_number_sequence::Migration),
            Box::new(m20261130_000009_idempotency_per_caller::Migration),
            Box::new(m20261206_000010_change_positions::Migration),
            Box::new(m20261206_000011_webhooks::Migration),
            Box::new(m20261206_000012_activities::Migration),
            Box::new(m20261207_000013_erasure::Migration),
            Box::new(m20261207_000014_ticket_merges::Migration),
            Box::new(m20261207_000015_supplementary_details::Migration),
            Box::new(m20261207_000016_contact_groups::Migration),
            Box::new(m20261207_000017_contact_group_sla::Migration),
            Box::new(m20261207_000018_responsibilities::Migration),
            Box::new(m20261207_000019_field_catalogue::Migration),
            Box::new(m20261207_000020_directories::Migration),
            Box::new(m20261207_000021_list_indexes::Migration),
            Box::new(m20261207_000022_search::Migration),
            Box::new(m20261207_000023_customer_sources::Migration),
            Box::new(m20261207_000024_search_pending::Migration),
        ]
    }
}

/// A text column that is compared byte-wise on every backend, for keys that are ordered and
/// paged by (PostgreSQL would otherwise order by the database's locale).
pub(crate) fn byte_ordered_text(manager: &SchemaManager, column: impl IntoIden) -> ColumnDef {
    let mut def = ColumnDef::new(column);
    def.text().not_null();
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DatabaseBackend::Postgres {
        def.extra("COLLATE \"C\"");
    }
    def
}
