//! Idempotency keys: a create request's `request_id`, remembered with a hash of the request
//! and the id of what it created, so that a retry returns the first result.

use jiff::Timestamp;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use uuid::Uuid;

use super::{
    Store, StoreFailure, UniqueKey, WriteTx, entities::idempotency_key, finish, violated_key,
};
use crate::error::{Error, Result};

/// A create request's idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The operation the key belongs to, e.g. `CreateOrganisation`.
    pub operation: &'static str,
    /// Who asked (the change log's actor): another caller's request with the same
    /// `request_id` is another request.
    pub caller: String,
    /// The client's `request_id`.
    pub request_id: String,
    /// A hash of the request body without its `request_id`.
    pub request_hash: String,
}

/// The outcome of a create that may be the retry of an earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted<T> {
    /// Created now.
    New(T),
    /// The idempotency key was used before: by a request with `request_hash`, which created
    /// `resource_id`.
    Replay {
        /// What the earlier request created.
        resource_id: Uuid,
        /// The hash of the earlier request.
        request_hash: String,
    },
}

const IDEMPOTENCY_KEY: UniqueKey = UniqueKey {
    resource: "request",
    index: "idempotency_keys",
    sqlite_column: "idempotency_keys.",
    field: "request_id",
    reason: "REQUEST_ID_TAKEN",
};

async fn lookup<T>(
    conn: &impl ConnectionTrait,
    key: &IdempotencyKey,
) -> Result<Option<Inserted<T>>, DbErr> {
    let found = idempotency_key::Entity::find_by_id((
        key.operation.to_owned(),
        key.caller.clone(),
        key.request_id.clone(),
    ))
    .one(conn)
    .await?;
    Ok(found.map(|row| Inserted::Replay {
        resource_id: row.resource_id,
        request_hash: row.request_hash,
    }))
}

/// Records `key` as creating `resource_id`, first in the transaction, so that a concurrent
/// duplicate waits on this row and then fails instead of creating a second resource. Returns
/// the earlier request's outcome when the key is already taken.
pub(crate) async fn claim<T>(
    tx: &WriteTx,
    key: Option<&IdempotencyKey>,
    resource_id: Uuid,
    now: Timestamp,
) -> Result<Option<Inserted<T>>, DbErr> {
    let Some(key) = key else {
        return Ok(None);
    };
    if let Some(earlier) = lookup(&**tx, key).await? {
        return Ok(Some(earlier));
    }
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        operation: Set(key.operation.to_owned()),
        caller: Set(key.caller.clone()),
        request_id: Set(key.request_id.clone()),
        request_hash: Set(key.request_hash.clone()),
        resource_id: Set(resource_id),
        create_time: Set(now.as_microsecond()),
    })
    .exec_without_returning(&**tx)
    .await?;
    Ok(None)
}

impl Store {
    /// Before a create's write transaction: an earlier request with `key` answers the create;
    /// otherwise `checks` (the unique checks) run. A check that fails because a concurrent
    /// duplicate has just committed is answered with that duplicate's outcome too.
    pub(crate) async fn before_create<T>(
        &self,
        key: Option<&IdempotencyKey>,
        checks: impl Future<Output = Result<(), StoreFailure>>,
    ) -> Result<Option<Inserted<T>>> {
        if let Some(key) = key
            && let Some(earlier) = lookup(self.reader(), key).await?
        {
            return Ok(Some(earlier));
        }
        match checks.await {
            Ok(()) => Ok(None),
            Err(failure) => {
                if let Some(key) = key
                    && let Some(earlier) = lookup(self.reader(), key).await?
                {
                    return Ok(Some(earlier));
                }
                Err(self.failure(failure))
            }
        }
    }

    /// Ends the transaction of a create that began with [`claim`]: commits a new resource,
    /// rolls back a replay, and answers a concurrent duplicate that claimed the key first with
    /// that duplicate's outcome.
    pub(crate) async fn finish_create<T>(
        &self,
        tx: WriteTx,
        outcome: Result<Inserted<T>, StoreFailure>,
        key: Option<&IdempotencyKey>,
        keys: &[UniqueKey],
    ) -> Result<Inserted<T>> {
        match (outcome, key) {
            (Err(StoreFailure::Db(error)), Some(key))
                if violated_key(&error, &[IDEMPOTENCY_KEY]).is_some() =>
            {
                tx.roll_back().await?;
                // The duplicate that claimed the key first has committed by now.
                lookup(self.reader(), key).await?.ok_or_else(|| {
                    Error::Unavailable("a concurrent duplicate failed; retry".into())
                })
            }
            (Ok(replay @ Inserted::Replay { .. }), _) => {
                // What it replays may have been written in the transaction this one shared.
                tx.roll_back().await?;
                Ok(replay)
            }
            (outcome, _) => finish(tx, outcome, keys).await,
        }
    }
}
