//! Directories (address books) and who reads them.

use std::collections::HashSet;

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Scope, Store, StoreFailure, UniqueKey, after, change_log,
    entities::directory, finish, fold_case, idempotency, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Directory},
};

const KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "directory",
    index: "ux_directories_name_key",
    sqlite_column: "directories.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

impl Store {
    /// Inserts `directory` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %directory.id))]
    pub async fn insert_directory(
        &self,
        directory: &Directory,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<Directory>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                idempotency::claim(&tx, key, directory.id, directory.create_time).await?
            {
                return Ok(replay);
            }
            directory::Entity::insert(model(directory))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(directory.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &KEYS).await
    }

    /// The directory with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn directory(&self, id: Uuid) -> Result<Option<Directory>> {
        directory::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// Writes `directory` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %directory.id))]
    pub async fn update_directory(
        &self,
        directory: &Directory,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<Directory> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = directory::Entity::update_many()
                .set(model(directory))
                .filter(directory::Column::Id.eq(directory.id))
                .filter(directory::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "directory",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(directory.clone())
        }
        .await;
        finish(tx, outcome, &KEYS).await
    }

    /// Up to `limit` directories by name after `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_directories(
        &self,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Directory>> {
        use directory::Column;
        let mut query = directory::Entity::find();
        if let Some(cursor) = cursor {
            query = query.filter(after(Column::NameKey, Column::Id, cursor));
        }
        query
            .order_by_asc(Column::NameKey)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Of customers `customers` and organisations `organisations`, the ids `scope` does not
    /// reach (those that do not exist among them): empty unless directories hide contacts
    /// from the scope's holder. Two statements, whatever the number of ids.
    pub async fn hidden_contacts(
        &self,
        scope: &Scope,
        customers: &[Uuid],
        organisations: &[Uuid],
    ) -> Result<HashSet<Uuid>> {
        let mut hidden = HashSet::new();
        if !scope.hides_filed() {
            return Ok(hidden);
        }
        if !customers.is_empty() {
            let readable: HashSet<Uuid> = self
                .readable_customers(scope, customers)
                .await?
                .into_iter()
                .collect();
            hidden.extend(customers.iter().filter(|id| !readable.contains(id)));
        }
        if !organisations.is_empty() {
            let readable: HashSet<Uuid> = self
                .readable_organisations(scope, organisations)
                .await?
                .into_iter()
                .collect();
            hidden.extend(organisations.iter().filter(|id| !readable.contains(id)));
        }
        Ok(hidden)
    }

    /// Every directory, for compiling who reads which (a deployment has a handful).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn all_directories(&self) -> Result<Vec<Directory>> {
        directory::Entity::find()
            .order_by_asc(directory::Column::Id)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }
}

/// The cursor that resumes a list of directories after `directory`.
pub fn directory_cursor(directory: &Directory) -> Cursor {
    Cursor {
        key: fold_case(&directory.name),
        id: directory.id,
    }
}

fn model(directory: &Directory) -> directory::ActiveModel {
    directory::ActiveModel {
        id: Set(directory.id),
        name: Set(directory.name.clone()),
        name_key: Set(fold_case(&directory.name)),
        comment: Set(directory.comment.clone()),
        reader_agent_ids: Set(super::encode_json(&directory.reader_agent_ids)),
        reader_group_ids: Set(super::encode_json(&directory.reader_group_ids)),
        create_time: Set(directory.create_time.as_microsecond()),
        update_time: Set(directory.update_time.as_microsecond()),
        version: Set(directory.version),
    }
}

fn from_row(row: directory::Model) -> Result<Directory> {
    Ok(Directory {
        id: row.id,
        reader_agent_ids: super::decode_json(&row.reader_agent_ids, "directory readers")?,
        reader_group_ids: super::decode_json(&row.reader_group_ids, "directory readers")?,
        name: row.name,
        comment: row.comment,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
