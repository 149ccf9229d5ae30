//! API tokens, known by the hash of their secret.

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::{Store, StoreFailure, UniqueKey, change_log, entities::token, finish, timestamp};
use crate::{
    error::{Error, Result},
    model::{Agent, ChangeEvent, Customer, Token, TokenOwner},
};

const UNIQUE_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "token",
    index: "tokens_secret_hash",
    sqlite_column: "tokens.secret_hash",
    field: "secret",
    reason: "TOKEN_TAKEN",
}];

/// A token together with who holds it, as authentication needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenHolder {
    /// An administrator.
    Admin,
    /// An agent, as stored now.
    Agent(Agent),
    /// A customer, as stored now.
    Customer(Box<Customer>),
    /// The agent or customer is gone.
    Gone,
}

impl Store {
    /// Inserts `token`, whose secret hashes to `secret_hash`, with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %token.id))]
    pub async fn insert_token(
        &self,
        token: &Token,
        secret_hash: &str,
        event: &ChangeEvent,
    ) -> Result<Token> {
        let tx = self.begin_write().await?;
        let outcome = async {
            token::Entity::insert(token::ActiveModel {
                id: Set(token.id),
                secret_hash: Set(secret_hash.to_owned()),
                kind: Set(token.owner.kind().to_owned()),
                subject_id: Set(token.owner.subject_id()),
                description: Set(token.description.clone()),
                create_time: Set(token.create_time.as_microsecond()),
                expire_time: Set(token.expire_time.map(Timestamp::as_microsecond)),
                revoke_time: Set(token.revoke_time.map(Timestamp::as_microsecond)),
            })
            .exec_without_returning(&*tx)
            .await?;
            change_log::append(&tx, event).await?;
            Ok(token.clone())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// The token with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn token(&self, id: Uuid) -> Result<Option<Token>> {
        token::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// The token whose secret hashes to `secret_hash`, and who holds it now.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"))]
    pub async fn token_by_secret(&self, secret_hash: &str) -> Result<Option<(Token, TokenHolder)>> {
        let row = token::Entity::find()
            .filter(token::Column::SecretHash.eq(secret_hash))
            .one(self.reader())
            .await?;
        self.with_holder(row).await
    }

    /// The token `id`, and who holds it now.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn token_with_holder(&self, id: Uuid) -> Result<Option<(Token, TokenHolder)>> {
        let row = token::Entity::find_by_id(id).one(self.reader()).await?;
        self.with_holder(row).await
    }

    async fn with_holder(&self, row: Option<token::Model>) -> Result<Option<(Token, TokenHolder)>> {
        let Some(row) = row else {
            return Ok(None);
        };
        let token = from_row(row)?;
        let holder = match token.owner {
            TokenOwner::Admin => TokenHolder::Admin,
            TokenOwner::Agent(id) => self
                .agent(id)
                .await?
                .map_or(TokenHolder::Gone, TokenHolder::Agent),
            TokenOwner::Customer(id) => self
                .customer(&super::Scope::everything(), id)
                .await?
                .map_or(TokenHolder::Gone, |c| TokenHolder::Customer(Box::new(c))),
        };
        Ok(Some((token, holder)))
    }

    /// Whether an admin token works at `now`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn has_active_admin_token(&self, now: Timestamp) -> Result<bool> {
        let found = token::Entity::find()
            .filter(token::Column::Kind.eq(TokenOwner::Admin.kind()))
            .filter(token::Column::RevokeTime.is_null())
            .filter(active_at(now))
            .one(self.reader())
            .await?;
        Ok(found.is_some())
    }

    /// Up to `limit` tokens, oldest first after the token `after`: of `owner` if given, and
    /// only those working at `now` unless `include_inactive`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_tokens(
        &self,
        owner: Option<TokenOwner>,
        include_inactive: bool,
        now: Timestamp,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Token>> {
        let mut query = token::Entity::find();
        if let Some(owner) = owner {
            query = query.filter(token::Column::Kind.eq(owner.kind()));
            query = match owner.subject_id() {
                Some(id) => query.filter(token::Column::SubjectId.eq(id)),
                None => query.filter(token::Column::SubjectId.is_null()),
            };
        }
        if !include_inactive {
            query = query
                .filter(token::Column::RevokeTime.is_null())
                .filter(active_at(now));
        }
        if let Some(after) = after {
            query = query.filter(token::Column::Id.gt(after));
        }
        query
            .order_by_asc(token::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Marks token `id` revoked at `time` (unless it already is) and records `event`.
    #[tracing::instrument(skip(self, event), level = "debug", err(level = "debug"))]
    pub async fn revoke_token(
        &self,
        id: Uuid,
        time: Timestamp,
        event: &ChangeEvent,
    ) -> Result<Token> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = token::Entity::update_many()
                .col_expr(
                    token::Column::RevokeTime,
                    sea_orm::sea_query::Expr::value(time.as_microsecond()),
                )
                .filter(token::Column::Id.eq(id))
                .filter(token::Column::RevokeTime.is_null())
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::NotFound { resource: "token" }));
            }
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await?;
        self.token(id)
            .await?
            .ok_or(Error::NotFound { resource: "token" })
    }
}

/// Tokens without expiry or expiring after `now`.
fn active_at(now: Timestamp) -> Condition {
    Condition::any()
        .add(token::Column::ExpireTime.is_null())
        .add(token::Column::ExpireTime.gt(now.as_microsecond()))
}

fn from_row(row: token::Model) -> Result<Token> {
    let owner = TokenOwner::parse(&row.kind, row.subject_id)
        .ok_or_else(|| Error::Internal(format!("token {} has an unknown owner", row.id)))?;
    Ok(Token {
        id: row.id,
        owner,
        description: row.description,
        create_time: timestamp(row.create_time)?,
        expire_time: row.expire_time.map(timestamp).transpose()?,
        revoke_time: row.revoke_time.map(timestamp).transpose()?,
    })
}
