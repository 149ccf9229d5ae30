//! Agents.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Store, StoreFailure, UniqueKey, after, change_log,
    entities::agent, finish, fold_case, idempotency, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{Agent, ChangeEvent, Validity},
};

const UNIQUE_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "agent",
    index: "agents_login_key",
    sqlite_column: "agents.login_key",
    field: "login",
    reason: "LOGIN_TAKEN",
}];

impl Store {
    /// Inserts `agent` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %agent.id))]
    pub async fn insert_agent(
        &self,
        agent: &Agent,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<Agent>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, agent.id, agent.create_time).await? {
                return Ok(replay);
            }
            agent::Entity::insert(active_model(agent))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(agent.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &UNIQUE_KEYS).await
    }

    /// The agent with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn agent(&self, id: Uuid) -> Result<Option<Agent>> {
        agent::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// The agent with this login (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn agent_by_login(&self, login: &str) -> Result<Option<Agent>> {
        if !super::storable(login) {
            return Ok(None);
        }
        agent::Entity::find()
            .filter(agent::Column::LoginKey.eq(fold_case(login)))
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// Writes `agent` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %agent.id))]
    pub async fn update_agent(
        &self,
        agent: &Agent,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<Agent> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = agent::Entity::update_many()
                .set(active_model(agent))
                .filter(agent::Column::Id.eq(agent.id))
                .filter(agent::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag { resource: "agent" }));
            }
            change_log::append(&tx, event).await?;
            Ok(agent.clone())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// Up to `limit` agents by login after `cursor`; valid ones only unless `include_invalid`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_agents(
        &self,
        include_invalid: bool,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Agent>> {
        let mut query = agent::Entity::find();
        if !include_invalid {
            query = query.filter(agent::Column::Validity.eq(Validity::Valid.as_str()));
        }
        if let Some(cursor) = cursor {
            query = query.filter(after(agent::Column::LoginKey, agent::Column::Id, cursor));
        }
        query
            .order_by_asc(agent::Column::LoginKey)
            .order_by_asc(agent::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }
}

/// The cursor that resumes the agent list after `agent`.
pub fn agent_cursor(agent: &Agent) -> Cursor {
    Cursor {
        key: fold_case(&agent.login),
        id: agent.id,
    }
}

fn active_model(agent: &Agent) -> agent::ActiveModel {
    agent::ActiveModel {
        id: Set(agent.id),
        login: Set(agent.login.clone()),
        login_key: Set(fold_case(&agent.login)),
        first_name: Set(agent.first_name.clone()),
        last_name: Set(agent.last_name.clone()),
        email: Set(agent.email.clone()),
        manage_customers: Set(agent.manage_customers),
        details_access: Set(agent.details_access.as_str().to_owned()),
        validity: Set(agent.validity.as_str().to_owned()),
        create_time: Set(agent.create_time.as_microsecond()),
        update_time: Set(agent.update_time.as_microsecond()),
        version: Set(agent.version),
    }
}

fn from_row(row: agent::Model) -> Result<Agent> {
    Ok(Agent {
        id: row.id,
        validity: super::validity(&row.validity)?,
        login: row.login,
        first_name: row.first_name,
        last_name: row.last_name,
        email: row.email,
        manage_customers: row.manage_customers,
        details_access: crate::model::DetailsAccess::parse(&row.details_access).ok_or_else(
            || {
                crate::error::Error::Internal(format!(
                    "unknown stored details access {:?}",
                    row.details_access
                ))
            },
        )?,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
