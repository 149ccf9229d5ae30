//! Idempotency keys: a create request's `request_id`, remembered with a hash of the request
//! and the id of what it created, so that a retry returns the first result.

use jiff::Timestamp;
use sea_orm::{ActiveValue::Set, DbErr, EntityTrait};
use uuid::Uuid;

use super::{Store, WriteTx, entities::idempotency_key};
use crate::error::{Error, Result};

/// A create request's idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The operation the key belongs to, e.g. `CreateOrganisation`.
    pub operation: &'static str,
    /// The client's `request_id`.
    pub request_id: String,
    /// A hash of the request body without its `request_id`.
    pub request_hash: String,
}

/// What a request with an idempotency key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new; the request goes ahead.
    Fresh,
    /// An earlier request with this key created `resource_id`.
    Replay {
        /// What the earlier request created.
        resource_id: Uuid,
        /// The hash of the earlier request.
        request_hash: String,
    },
}

impl Store {
    /// The earlier request with this key, if there was one.
    pub async fn idempotency_claim(&self, key: &IdempotencyKey) -> Result<Claim> {
        lookup(self.reader(), key).await.map_err(Error::from)
    }
}

async fn lookup(
    conn: &impl sea_orm::ConnectionTrait,
    key: &IdempotencyKey,
) -> Result<Claim, DbErr> {
    let found =
        idempotency_key::Entity::find_by_id((key.operation.to_owned(), key.request_id.clone()))
            .one(conn)
            .await?;
    Ok(match found {
        Some(row) => Claim::Replay {
            resource_id: row.resource_id,
            request_hash: row.request_hash,
        },
        None => Claim::Fresh,
    })
}

/// Records `key` as creating `resource_id`, first in the transaction, so that a concurrent
/// duplicate waits on this row and then fails instead of creating a second resource. Returns
/// the earlier claim when the key is already taken.
pub(crate) async fn claim(
    tx: &WriteTx,
    key: &IdempotencyKey,
    resource_id: Uuid,
    now: Timestamp,
) -> Result<Claim, DbErr> {
    let earlier = lookup(&**tx, key).await?;
    if earlier != Claim::Fresh {
        return Ok(earlier);
    }
    idempotency_key::Entity::insert(idempotency_key::ActiveModel {
        operation: Set(key.operation.to_owned()),
        request_id: Set(key.request_id.clone()),
        request_hash: Set(key.request_hash.clone()),
        resource_id: Set(resource_id),
        create_time: Set(now.as_microsecond()),
    })
    .exec_without_returning(&**tx)
    .await?;
    Ok(Claim::Fresh)
}
