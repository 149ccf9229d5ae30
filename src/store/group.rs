//! Groups.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Store, StoreFailure, UniqueKey, after, change_log,
    entities::group, finish, fold_case, idempotency, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Group, Validity},
};

const UNIQUE_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "group",
    index: "groups_name_key",
    sqlite_column: "groups.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

impl Store {
    /// Inserts `group` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %group.id))]
    pub async fn insert_group(
        &self,
        group: &Group,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<Group>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, group.id, group.create_time).await? {
                return Ok(replay);
            }
            group::Entity::insert(active_model(group))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(group.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &UNIQUE_KEYS).await
    }

    /// The group with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn group(&self, id: Uuid) -> Result<Option<Group>> {
        static SQL: super::PerBackend = super::PerBackend::new();
        let sql = SQL.get(self.backend(), |_| {
            group::Entity::find().filter(group::Column::Id.eq(Uuid::nil()))
        });
        self.fetch_one(sql, super::RowKey::Id(id))
            .await?
            .map(|row| from_row(group::Model::from_query_result(&row, "")?))
            .transpose()
    }

    /// The ids of every valid group.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn valid_group_ids(&self) -> Result<Vec<Uuid>> {
        Ok(group::Entity::find()
            .select_only()
            .column(group::Column::Id)
            .filter(group::Column::Validity.eq(Validity::Valid.as_str()))
            .into_tuple::<Uuid>()
            .all(self.reader())
            .await?)
    }

    /// The groups with these ids.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn groups(&self, ids: &[Uuid]) -> Result<Vec<Group>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        group::Entity::find()
            .filter(group::Column::Id.is_in(ids.iter().copied()))
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// The group with this name (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn group_by_name(&self, name: &str) -> Result<Option<Group>> {
        group::Entity::find()
            .filter(group::Column::NameKey.eq(fold_case(name)))
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// Writes `group` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %group.id))]
    pub async fn update_group(
        &self,
        group: &Group,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<Group> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = group::Entity::update_many()
                .set(active_model(group))
                .filter(group::Column::Id.eq(group.id))
                .filter(group::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag { resource: "group" }));
            }
            change_log::append(&tx, event).await?;
            Ok(group.clone())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// Up to `limit` groups by name after `cursor`; valid ones only unless `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_groups(
        &self,
        include_invalid: bool,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Group>> {
        let mut query = group::Entity::find();
        if !include_invalid {
            query = query.filter(group::Column::Validity.eq(Validity::Valid.as_str()));
        }
        if let Some(cursor) = cursor {
            query = query.filter(after(group::Column::NameKey, group::Column::Id, cursor));
        }
        query
            .order_by_asc(group::Column::NameKey)
            .order_by_asc(group::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }
}

/// The cursor that resumes the group list after `group`.
pub fn group_cursor(group: &Group) -> Cursor {
    Cursor {
        key: fold_case(&group.name),
        id: group.id,
    }
}

fn active_model(group: &Group) -> group::ActiveModel {
    group::ActiveModel {
        id: Set(group.id),
        name: Set(group.name.clone()),
        name_key: Set(fold_case(&group.name)),
        comment: Set(group.comment.clone()),
        validity: Set(group.validity.as_str().to_owned()),
        responsible_agent_id: Set(group.responsible_agent_id),
        default_sla_policy_id: Set(group.default_sla_policy_id),
        create_time: Set(group.create_time.as_microsecond()),
        update_time: Set(group.update_time.as_microsecond()),
        version: Set(group.version),
    }
}

fn from_row(row: group::Model) -> Result<Group> {
    Ok(Group {
        id: row.id,
        validity: super::validity(&row.validity)?,
        name: row.name,
        comment: row.comment,
        responsible_agent_id: row.responsible_agent_id,
        default_sla_policy_id: row.default_sla_policy_id,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
