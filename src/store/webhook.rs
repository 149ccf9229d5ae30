//! Webhooks and their deliveries. A subscription's cursor moves along the change feed in the
//! same transaction that makes its deliveries, so each matching change is delivered to it
//! once made; a delivery is taken by one replica at a time (a lease), and a later change of a
//! resource waits until the earlier ones of that resource are delivered or given up.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Store, StoreFailure, UniqueKey, change_log,
    entities::{activity, change_event, webhook, webhook_delivery},
    finish, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{
        Activity, ActivityTarget, ChangeEvent, ChangeFilter, ChangeKind, Delivery, DeliveryStatus,
        ResourceType, StoredChange, Webhook,
    },
};

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered {
        /// The status it answered.
        status: i32,
    },
    /// It failed; the next attempt is due at `retry_at` (microseconds), unless this was the
    /// last one.
    Failed {
        /// The HTTP status, if the receiver answered.
        status: Option<i32>,
        /// Why.
        error: String,
        /// When to try again.
        retry_at: i64,
    },
}

impl Store {
    /// Inserts `webhook` with its creation event; it delivers the changes committed after it.
    pub async fn insert_webhook(&self, webhook: &Webhook, event: &ChangeEvent) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let head = feed_head_in(&*tx).await?;
            webhook::Entity::insert(active_model(webhook, head))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// The webhook `id`.
    pub async fn webhook(&self, id: Uuid) -> Result<Option<Webhook>> {
        webhook::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(from_row)
            .transpose()
    }

    /// Up to `limit` webhooks after `after` (an id), by id.
    pub async fn list_webhooks(&self, after: Option<Uuid>, limit: u64) -> Result<Vec<Webhook>> {
        let mut query = webhook::Entity::find();
        if let Some(after) = after {
            query = query.filter(webhook::Column::Id.gt(after));
        }
        query
            .order_by_asc(webhook::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// Writes `webhook` over version `expected_version`; a webhook made active again
    /// delivers the changes committed from now on, not those made while it was inactive.
    pub async fn update_webhook(
        &self,
        webhook: &Webhook,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            // Locked: the delivery loop moves the cursor under the same lock.
            let current = locked_webhook(&tx, webhook.id, expected_version).await?;
            let mut row = active_model(webhook, current.feed_cursor);
            row.feed_cursor = if webhook.active && !current.active {
                Set(feed_head_in(&*tx).await?)
            } else {
                sea_orm::ActiveValue::NotSet
            };
            webhook::Entity::update(row).exec(&*tx).await?;
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Deletes webhook `id` at version `expected_version`, with its delivery log; refused
    /// while activities deliver to it.
    pub async fn delete_webhook(
        &self,
        id: Uuid,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            locked_webhook(&tx, id, expected_version).await?;
            let bound: Vec<(Uuid, String)> = activity::Entity::find()
                .select_only()
                .column(activity::Column::Id)
                .column(activity::Column::Name)
                .filter(activity::Column::WebhookId.eq(id))
                .into_tuple()
                .all(&*tx)
                .await?;
            if !bound.is_empty() {
                return Err(StoreFailure::Domain(Error::FailedPrecondition {
                    reason: "WEBHOOK_IN_USE",
                    message: "activities deliver to this webhook: delete them first".into(),
                    violations: bound
                        .into_iter()
                        .map(|(activity, name)| crate::error::PreconditionViolation {
                            kind: "WEBHOOK_IN_USE".into(),
                            subject: activity.to_string(),
                            description: format!("the activity {name:?} delivers to it"),
                        })
                        .collect(),
                }));
            }
            webhook_delivery::Entity::delete_many()
                .filter(webhook_delivery::Column::WebhookId.eq(id))
                .exec(&*tx)
                .await?;
            webhook::Entity::delete_by_id(id).exec(&*tx).await?;
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Makes the deliveries of up to `limit` changes of the feed after webhook `id`'s cursor
    /// and moves the cursor past them, in one transaction (taken by one replica at a time);
    /// returns how many changes it passed.
    pub async fn fan_out(&self, id: Uuid, now: i64, limit: u64) -> Result<u64> {
        // Looked at first without a write transaction: most rounds find nothing new.
        let cursor: Option<i64> = webhook::Entity::find_by_id(id)
            .select_only()
            .column(webhook::Column::FeedCursor)
            .into_tuple()
            .one(self.reader())
            .await?;
        let Some(cursor) = cursor else {
            return Ok(0);
        };
        if self
            .changes_in_feed(cursor, &ChangeFilter::default(), 1)
            .await?
            .is_empty()
        {
            return Ok(0);
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            let lock = if tx.get_database_backend() == DbBackend::Postgres {
                " FOR UPDATE SKIP LOCKED"
            } else {
                ""
            };
            let row = tx
                .query_one_raw(Statement::from_sql_and_values(
                    tx.get_database_backend(),
                    format!(
                        "SELECT feed_cursor, active, resource_types, kinds FROM webhooks \
                         WHERE id = {}{lock}",
                        placeholder(tx.get_database_backend(), 1)
                    ),
                    [id.into()],
                ))
                .await?;
            let Some(row) = row else {
                // Gone, or another replica is at it.
                return Ok(0);
            };
            let cursor: i64 = row.try_get("", "feed_cursor")?;
            let active: bool = row.try_get("", "active")?;
            if !active {
                return Ok(0);
            }
            let types: Vec<ResourceType> = names(
                &row.try_get::<String>("", "resource_types")?,
                ResourceType::from_name,
            );
            let kinds: Vec<ChangeKind> =
                names(&row.try_get::<String>("", "kinds")?, ChangeKind::from_name);
            // Every change is read: an activity run bound to this webhook is delivered to it
            // whatever its filters.
            let changes = self
                .changes_in_feed(cursor, &ChangeFilter::default(), limit)
                .await
                .map_err(StoreFailure::Domain)?;
            let Some(last) = changes.last().and_then(|change| change.position) else {
                return Ok(0);
            };
            let deliveries: Vec<webhook_delivery::ActiveModel> = changes
                .iter()
                .filter(|change| {
                    let kind = ChangeKind::from_name(&change.kind);
                    let bound = kind == Some(ChangeKind::ActivityRun)
                        && change.changes.iter().any(|field| {
                            field.field == "webhook_id" && field.new == serde_json::json!(id)
                        });
                    let typed = types.is_empty()
                        || ResourceType::from_name(&change.resource_type)
                            .is_some_and(|t| types.contains(&t));
                    let kinded = kinds.is_empty() || kind.is_some_and(|k| kinds.contains(&k));
                    bound || (typed && kinded)
                })
                .map(|change| webhook_delivery::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    webhook_id: Set(id),
                    position: Set(change.position.unwrap_or(change.seq)),
                    seq: Set(change.seq),
                    resource_type: Set(change.resource_type.clone()),
                    resource_id: Set(change.resource_id),
                    kind: Set(change.kind.clone()),
                    status: Set(DeliveryStatus::Pending.as_str().to_owned()),
                    attempts: Set(0),
                    next_attempt_time: Set(now),
                    lease_until: Set(None),
                    last_status: Set(None),
                    last_error: Set(String::new()),
                    delivered_time: Set(None),
                    create_time: Set(now),
                })
                .collect();
            for chunk in deliveries.chunks(200) {
                webhook_delivery::Entity::insert_many(chunk.to_vec())
                    .on_conflict(
                        OnConflict::columns([
                            webhook_delivery::Column::WebhookId,
                            webhook_delivery::Column::Position,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(&*tx)
                    .await?;
            }
            webhook::Entity::update_many()
                .col_expr(webhook::Column::FeedCursor, last.into())
                .filter(webhook::Column::Id.eq(id))
                .exec(&*tx)
                .await?;
            Ok(changes.len() as u64)
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Takes up to `limit` deliveries that are due at `now` for this replica until
    /// `lease_until` (see [`due_from`]), oldest first.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: u64,
    ) -> Result<Vec<Delivery>> {
        // Looked at first without a write transaction: most rounds find nothing due.
        let backend = self.backend();
        let due = self
            .reader()
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                format!("SELECT d.id {} LIMIT 1", due_from(backend)),
                [now.into()],
            ))
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            let lock = if backend == DbBackend::Postgres {
                " FOR UPDATE OF d SKIP LOCKED"
            } else {
                ""
            };
            let sql = format!(
                "UPDATE webhook_deliveries SET lease_until = {lease} WHERE id IN ( \
                   SELECT d.id {due} ORDER BY d.position LIMIT {limit}{lock}) \
                 RETURNING id",
                lease = placeholder(backend, 2),
                due = due_from(backend),
                limit = placeholder(backend, 3),
            );
            let rows = tx
                .query_all_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    [
                        now.into(),
                        lease_until.into(),
                        i64::try_from(limit).unwrap_or(i64::MAX).into(),
                    ],
                ))
                .await?;
            let ids: Vec<Uuid> = rows
                .iter()
                .map(|row| row.try_get::<Uuid>("", "id"))
                .collect::<Result<_, _>>()?;
            let claimed = webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::Id.is_in(ids))
                .order_by_asc(webhook_delivery::Column::Position)
                .all(&*tx)
                .await?;
            Ok(claimed)
        }
        .await;
        finish(tx, outcome, &[])
            .await?
            .into_iter()
            .map(delivery_from_row)
            .collect()
    }

    /// Records how an attempt at delivery `id`, made under the lease that ends at `lease`,
    /// ended; a failed last attempt gives it up. An attempt whose lease ran out meanwhile
    /// (another replica may have taken the delivery) is not recorded.
    pub async fn record_attempt(
        &self,
        id: Uuid,
        lease: i64,
        attempt: &Attempt,
        now: i64,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let Some(row) = webhook_delivery::Entity::find_by_id(id)
                .lock_exclusive()
                .one(&*tx)
                .await?
            else {
                return Ok(());
            };
            if row.lease_until != Some(lease) || row.status != DeliveryStatus::Pending.as_str() {
                return Ok(());
            }
            let max_attempts = webhook::Entity::find_by_id(row.webhook_id)
                .one(&*tx)
                .await?
                .map_or(1, |webhook| webhook.max_attempts);
            let attempts = row.attempts + 1;
            let mut update: webhook_delivery::ActiveModel = row.into();
            update.attempts = Set(attempts);
            update.lease_until = Set(None);
            match attempt {
                Attempt::Delivered { status } => {
                    update.status = Set(DeliveryStatus::Delivered.as_str().to_owned());
                    update.last_status = Set(Some(*status));
                    update.last_error = Set(String::new());
                    update.delivered_time = Set(Some(now));
                }
                Attempt::Failed {
                    status,
                    error,
                    retry_at,
                } => {
                    let status_now = if attempts >= max_attempts {
                        DeliveryStatus::Dead
                    } else {
                        DeliveryStatus::Pending
                    };
                    update.status = Set(status_now.as_str().to_owned());
                    update.last_status = Set(*status);
                    update.last_error = Set(error.chars().take(500).collect());
                    update.next_attempt_time = Set(*retry_at);
                }
            }
            webhook_delivery::Entity::update(update).exec(&*tx).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Up to `limit` deliveries of webhook `id` after feed position `after`, in feed order,
    /// only those of `status` when given.
    pub async fn list_deliveries(
        &self,
        id: Uuid,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: u64,
    ) -> Result<Vec<Delivery>> {
        let mut query = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(id))
            .filter(webhook_delivery::Column::Position.gt(after));
        if let Some(status) = status {
            query = query.filter(webhook_delivery::Column::Status.eq(status.as_str()));
        }
        query
            .order_by_asc(webhook_delivery::Column::Position)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(delivery_from_row)
            .collect()
    }

    /// Puts a dead delivery back in line, due at `now`, with a fresh count of attempts.
    /// `None` when there is no such delivery; FAILED_PRECONDITION when it is not dead.
    pub async fn retry_delivery(&self, id: Uuid, now: i64) -> Result<Option<Delivery>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let Some(row) = webhook_delivery::Entity::find_by_id(id).one(&*tx).await? else {
                return Ok(None);
            };
            if row.status != DeliveryStatus::Dead.as_str() {
                return Err(StoreFailure::Domain(Error::FailedPrecondition {
                    reason: "DELIVERY_NOT_DEAD",
                    message: "only a dead-lettered delivery can be retried".into(),
                    violations: vec![crate::error::PreconditionViolation {
                        kind: "DELIVERY_NOT_DEAD".into(),
                        subject: id.to_string(),
                        description: format!("the delivery is {}", row.status),
                    }],
                }));
            }
            let mut update: webhook_delivery::ActiveModel = row.into();
            update.status = Set(DeliveryStatus::Pending.as_str().to_owned());
            update.attempts = Set(0);
            update.next_attempt_time = Set(now);
            update.lease_until = Set(None);
            let row = webhook_delivery::Entity::update(update).exec(&*tx).await?;
            Ok(Some(row))
        }
        .await;
        finish(tx, outcome, &[])
            .await?
            .map(delivery_from_row)
            .transpose()
    }

    /// The change-log entries with these sequence numbers, in sequence order.
    pub async fn changes_with_seqs(&self, seqs: &[i64]) -> Result<Vec<StoredChange>> {
        let sqlite = self.backend() != DbBackend::Postgres;
        let rows = change_event::Entity::find()
            .filter(change_event::Column::Seq.is_in(seqs.iter().copied()))
            .order_by_asc(change_event::Column::Seq)
            .all(self.reader())
            .await?;
        rows.into_iter()
            .map(|row| change_log::stored(row, sqlite))
            .collect()
    }
}

const ACTIVITY_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "activity",
    index: "activities_name_key",
    sqlite_column: "activities.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

impl Store {
    /// Inserts `activity` with its creation event.
    pub async fn insert_activity(&self, activity: &Activity, event: &ChangeEvent) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            activity::Entity::insert(activity_model(activity))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &ACTIVITY_KEYS).await
    }

    /// The activity `id`.
    pub async fn activity(&self, id: Uuid) -> Result<Option<Activity>> {
        activity::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(activity_from_row)
            .transpose()
    }

    /// Every activity, by name.
    pub async fn activities(&self) -> Result<Vec<Activity>> {
        activity::Entity::find()
            .order_by_asc(activity::Column::NameKey)
            .all(self.reader())
            .await?
            .into_iter()
            .map(activity_from_row)
            .collect()
    }

    /// Deletes activity `id` at version `expected_version`.
    pub async fn delete_activity(
        &self,
        id: Uuid,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let deleted = activity::Entity::delete_many()
                .filter(activity::Column::Id.eq(id))
                .filter(activity::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if deleted.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "activity",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Records a run of an activity: `event`, in the change log (and so in the feed its
    /// webhook follows). Returns its sequence number.
    pub async fn record_activity_run(&self, event: &ChangeEvent) -> Result<i64> {
        let tx = self.begin_write().await?;
        let outcome = change_log::append(&tx, event)
            .await
            .map_err(StoreFailure::Domain);
        finish(tx, outcome, &[]).await
    }
}

fn activity_model(activity: &Activity) -> activity::ActiveModel {
    activity::ActiveModel {
        id: Set(activity.id),
        name: Set(activity.name.clone()),
        name_key: Set(super::fold_case(&activity.name)),
        description: Set(activity.description.clone()),
        webhook_id: Set(activity.webhook_id),
        applies_to: Set(activity.applies_to.as_str().to_owned()),
        customer_types: Set(
            serde_json::to_string(&activity.customer_types).unwrap_or_else(|_| "[]".into())
        ),
        create_time: Set(activity.create_time.as_microsecond()),
        update_time: Set(activity.update_time.as_microsecond()),
        version: Set(activity.version),
    }
}

fn activity_from_row(row: activity::Model) -> Result<Activity> {
    Ok(Activity {
        id: row.id,
        name: row.name,
        description: row.description,
        webhook_id: row.webhook_id,
        applies_to: ActivityTarget::from_name(&row.applies_to).ok_or_else(|| {
            Error::Internal(format!(
                "unknown stored activity target {:?}",
                row.applies_to
            ))
        })?,
        customer_types: serde_json::from_str(&row.customer_types).unwrap_or_default(),
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

/// Webhook `id` at version `expected_version`, locked for the rest of the transaction.
async fn locked_webhook(
    tx: &super::WriteTx,
    id: Uuid,
    expected_version: i64,
) -> Result<webhook::Model, StoreFailure> {
    let current = webhook::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&**tx)
        .await?
        .ok_or(StoreFailure::Domain(Error::NotFound {
            resource: "webhook",
        }))?;
    if current.version != expected_version {
        return Err(StoreFailure::Domain(Error::StaleEtag {
            resource: "webhook",
        }));
    }
    Ok(current)
}

/// The deliveries due at the statement's first parameter (`now`): pending, their time come,
/// not held by a replica, the earliest pending one of their webhook and resource, and their
/// webhook active. `FROM … WHERE …` of a select of `d`.
fn due_from(backend: DbBackend) -> String {
    let now = placeholder(backend, 1);
    format!(
        "FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
         WHERE w.active AND d.status = 'pending' AND d.next_attempt_time <= {now} \
           AND (d.lease_until IS NULL OR d.lease_until < {now}) \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e \
             WHERE e.webhook_id = d.webhook_id AND e.resource_id = d.resource_id \
               AND e.status = 'pending' AND e.position < d.position)"
    )
}

/// The `n`th parameter of a statement on `backend`.
fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

/// The feed's head, read in the transaction `conn`.
async fn feed_head_in(conn: &impl ConnectionTrait) -> Result<i64, sea_orm::DbErr> {
    let column = match conn.get_database_backend() {
        DbBackend::Postgres => "position",
        _ => "seq",
    };
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            format!("SELECT COALESCE(MAX({column}), 0) AS head FROM change_events"),
        ))
        .await?;
    row.map_or(Ok(0), |row| row.try_get::<i64>("", "head"))
}

fn names<T>(json: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    serde_json::from_str::<Vec<String>>(json)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| parse(name))
        .collect()
}

fn active_model(webhook: &Webhook, feed_cursor: i64) -> webhook::ActiveModel {
    let names = |list: Vec<&str>| serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
    webhook::ActiveModel {
        id: Set(webhook.id),
        url: Set(webhook.url.clone()),
        description: Set(webhook.description.clone()),
        secret: Set(webhook.secret.clone()),
        resource_types: Set(names(
            webhook.resource_types.iter().map(|t| t.as_str()).collect(),
        )),
        kinds: Set(names(webhook.kinds.iter().map(|k| k.as_str()).collect())),
        active: Set(webhook.active),
        max_attempts: Set(webhook.max_attempts),
        feed_cursor: Set(feed_cursor),
        create_time: Set(webhook.create_time.as_microsecond()),
        update_time: Set(webhook.update_time.as_microsecond()),
        version: Set(webhook.version),
    }
}

fn from_row(row: webhook::Model) -> Result<Webhook> {
    Ok(Webhook {
        id: row.id,
        url: row.url,
        description: row.description,
        secret: row.secret,
        resource_types: names(&row.resource_types, ResourceType::from_name),
        kinds: names(&row.kinds, ChangeKind::from_name),
        active: row.active,
        max_attempts: row.max_attempts,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

fn delivery_from_row(row: webhook_delivery::Model) -> Result<Delivery> {
    Ok(Delivery {
        id: row.id,
        webhook_id: row.webhook_id,
        position: row.position,
        seq: row.seq,
        resource_type: row.resource_type,
        resource_id: row.resource_id,
        kind: row.kind,
        status: DeliveryStatus::from_name(&row.status).ok_or_else(|| {
            Error::Internal(format!("unknown stored delivery status {:?}", row.status))
        })?,
        attempts: row.attempts,
        next_attempt_time: timestamp(row.next_attempt_time)?,
        last_status: row.last_status,
        last_error: row.last_error,
        delivered_time: row.delivered_time.map(timestamp).transpose()?,
        create_time: timestamp(row.create_time)?,
    })
}
