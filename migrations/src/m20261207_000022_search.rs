//! Substring search that does not read the table: on PostgreSQL a trigram index (`pg_trgm`,
//! GIN) on the search documents of customers and organisations; on SQLite an FTS5 table with
//! the trigram tokenizer beside each, kept by triggers, keyed by a row number of its own (the
//! tables' implicit rowids may change on VACUUM). The documents change form (folded, with
//! phone digits and email domains): they are emptied here and written again by the server
//! when it migrates (`Store::migrate`).

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables searched, and the name of their id's column in the row-number table.
const TABLES: [(&str, &str); 2] = [
    ("customers", "customer_id"),
    ("organisations", "organisation_id"),
];

fn singular(table: &str) -> &str {
    table.strip_suffix('s').unwrap_or(table)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
                .await?;
            for (table, _) in TABLES {
                db.execute_unprepared(&format!(
                    "CREATE INDEX ix_{table}_search ON {table} USING gin (search gin_trgm_ops)"
                ))
                .await?;
                db.execute_unprepared(&format!("UPDATE {table} SET search = ''"))
                    .await?;
            }
            return Ok(());
        }
        for (table, id) in TABLES {
            let one = singular(table);
            let statements = [
                format!(
                    "CREATE TABLE {one}_search_rows (rowid INTEGER PRIMARY KEY, {id} BLOB NOT NULL UNIQUE)"
                ),
                format!(
                    "CREATE VIRTUAL TABLE {one}_search USING fts5(search, tokenize = 'trigram')"
                ),
                format!(
                    "CREATE TRIGGER {one}_search_insert AFTER INSERT ON {table} BEGIN \
                     INSERT INTO {one}_search_rows ({id}) VALUES (new.id); \
                     INSERT INTO {one}_search (rowid, search) VALUES (last_insert_rowid(), new.search); \
                     END"
                ),
                format!(
                    "CREATE TRIGGER {one}_search_update AFTER UPDATE OF search ON {table} \
                     WHEN old.search IS NOT new.search BEGIN \
                     UPDATE {one}_search SET search = new.search \
                     WHERE rowid = (SELECT rowid FROM {one}_search_rows WHERE {id} = new.id); \
                     END"
                ),
                format!(
                    "CREATE TRIGGER {one}_search_delete AFTER DELETE ON {table} BEGIN \
                     DELETE FROM {one}_search \
                     WHERE rowid = (SELECT rowid FROM {one}_search_rows WHERE {id} = old.id); \
                     DELETE FROM {one}_search_rows WHERE {id} = old.id; \
                     END"
                ),
                format!("INSERT INTO {one}_search_rows ({id}) SELECT id FROM {table}"),
                format!(
                    "INSERT INTO {one}_search (rowid, search) SELECT rowid, '' FROM {one}_search_rows"
                ),
                format!("UPDATE {table} SET search = ''"),
            ];
            for statement in statements {
                db.execute_unprepared(&statement).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            for (table, _) in TABLES {
                db.execute_unprepared(&format!("DROP INDEX ix_{table}_search"))
                    .await?;
            }
            return Ok(());
        }
        for (table, _) in TABLES {
            let one = singular(table);
            for statement in [
                format!("DROP TRIGGER {one}_search_insert"),
                format!("DROP TRIGGER {one}_search_update"),
                format!("DROP TRIGGER {one}_search_delete"),
                format!("DROP TABLE {one}_search"),
                format!("DROP TABLE {one}_search_rows"),
            ] {
                db.execute_unprepared(&statement).await?;
            }
        }
        Ok(())
    }
}
