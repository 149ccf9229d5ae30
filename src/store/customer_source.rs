//! Customer sources: the customers read from an LDAP directory (by the entry's key), the
//! marks of the entries each sync saw, and each source's last sync with the lease that lets
//! one replica at a time run it.

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::{
    Store, decode_json, encode_json,
    entities::{customer, customer_source_sync as sync},
    finish, timestamp,
};
use crate::{
    error::Result,
    model::{Customer, SourceSync, SyncKind, Validity},
};

impl Store {
    /// Takes the lease of source `name`'s sync for `holder` until `until`, unless another
    /// holder's lease runs past `now`; then the source's record with the number of the new
    /// run. `None` while another replica syncs it.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn begin_source_sync(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Option<SourceSync>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            sync::Entity::insert(sync::ActiveModel {
                name: Set(name.to_owned()),
                run: Set(0),
                lease_until: Set(None),
                lease_holder: Set(String::new()),
                last_start_time: Set(None),
                last_end_time: Set(None),
                last_success_time: Set(None),
                last_full_sync_time: Set(None),
                kind: Set(String::new()),
                entries_read: Set(0),
                entries_changed: Set(0),
                entries_refused: Set(0),
                entries_invalidated: Set(0),
                error: Set(String::new()),
                refusals: Set("[]".to_owned()),
                watermark: Set(String::new()),
            })
            .on_conflict(
                OnConflict::column(sync::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&*tx)
            .await?;
            let taken = sync::Entity::update_many()
                .col_expr(sync::Column::Run, Expr::col(sync::Column::Run).add(1))
                .col_expr(
                    sync::Column::LeaseUntil,
                    Expr::value(until.as_microsecond()),
                )
                .col_expr(sync::Column::LeaseHolder, Expr::value(holder))
                .col_expr(
                    sync::Column::LastStartTime,
                    Expr::value(now.as_microsecond()),
                )
                .filter(sync::Column::Name.eq(name))
                .filter(
                    Condition::any()
                        .add(sync::Column::LeaseUntil.is_null())
                        .add(sync::Column::LeaseUntil.lt(now.as_microsecond()))
                        .add(sync::Column::LeaseHolder.eq(holder)),
                )
                .exec(&*tx)
                .await?;
            if taken.rows_affected == 0 {
                return Ok(None);
            }
            Ok(sync::Entity::find_by_id(name.to_owned()).one(&*tx).await?)
        }
        .await;
        finish(tx, outcome, &[]).await?.map(from_row).transpose()
    }

    /// Keeps `holder`'s lease of source `name`'s sync until `until`; `false` when another
    /// holder has taken it over.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn renew_source_lease(
        &self,
        name: &str,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let renewed = sync::Entity::update_many()
                .col_expr(
                    sync::Column::LeaseUntil,
                    Expr::value(until.as_microsecond()),
                )
                .filter(sync::Column::Name.eq(name))
                .filter(sync::Column::LeaseHolder.eq(holder))
                .exec(&*tx)
                .await?;
            Ok(renewed.rows_affected > 0)
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Records how the sync of `status.name` by `holder` ended and gives its lease back;
    /// `false` (nothing recorded) when another holder had taken the lease over.
    #[tracing::instrument(skip(self, status), level = "debug", err(level = "debug"))]
    pub async fn end_source_sync(&self, status: &SourceSync, holder: &str) -> Result<bool> {
        let micros = |time: Option<Timestamp>| time.map(|t| t.as_microsecond());
        let tx = self.begin_write().await?;
        let outcome = async {
            let ended = sync::Entity::update_many()
                .col_expr(sync::Column::LeaseUntil, Expr::value(None::<i64>))
                .col_expr(sync::Column::LeaseHolder, Expr::value(""))
                .col_expr(
                    sync::Column::LastEndTime,
                    Expr::value(micros(status.last_end_time)),
                )
                .col_expr(
                    sync::Column::LastSuccessTime,
                    Expr::value(micros(status.last_success_time)),
                )
                .col_expr(
                    sync::Column::LastFullSyncTime,
                    Expr::value(micros(status.last_full_sync_time)),
                )
                .col_expr(
                    sync::Column::Kind,
                    Expr::value(status.kind.map_or("", SyncKind::as_str)),
                )
                .col_expr(sync::Column::EntriesRead, Expr::value(status.entries_read))
                .col_expr(
                    sync::Column::EntriesChanged,
                    Expr::value(status.entries_changed),
                )
                .col_expr(
                    sync::Column::EntriesRefused,
                    Expr::value(status.entries_refused),
                )
                .col_expr(
                    sync::Column::EntriesInvalidated,
                    Expr::value(status.entries_invalidated),
                )
                .col_expr(sync::Column::Error, Expr::value(status.error.clone()))
                .col_expr(
                    sync::Column::Refusals,
                    Expr::value(encode_json(&status.refusals)),
                )
                .col_expr(
                    sync::Column::Watermark,
                    Expr::value(status.watermark.clone()),
                )
                .filter(sync::Column::Name.eq(&status.name))
                .filter(sync::Column::LeaseHolder.eq(holder))
                .exec(&*tx)
                .await?;
            Ok(ended.rows_affected > 0)
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Every source's last sync that was ever recorded.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn source_syncs(&self) -> Result<Vec<SourceSync>> {
        sync::Entity::find()
            .all(self.reader())
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// The customer read from the entry with `key` of source `name`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_source_key(&self, name: &str, key: &str) -> Result<Option<Customer>> {
        if !super::storable(key) {
            return Ok(None);
        }
        let select = customer::Entity::find()
            .filter(customer::Column::Source.eq(name))
            .filter(customer::Column::SourceKey.eq(key));
        Ok(self.read_customers(select.limit(1)).await?.pop())
    }

    /// Marks the customers of source `name` whose entries have these `keys` as seen by sync
    /// run `run`; a mark of a later run stays (a run that lost its lease writes on for a
    /// moment).
    #[tracing::instrument(skip(self, keys), level = "debug", err(level = "debug"))]
    pub async fn mark_source_seen(&self, name: &str, keys: &[String], run: i64) -> Result<()> {
        let keys: Vec<&String> = keys.iter().filter(|key| super::storable(key)).collect();
        if keys.is_empty() {
            return Ok(());
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            customer::Entity::update_many()
                .col_expr(customer::Column::SourceSeen, Expr::value(run))
                .filter(customer::Column::Source.eq(name))
                .filter(customer::Column::SourceKey.is_in(keys))
                .filter(
                    Condition::any()
                        .add(customer::Column::SourceSeen.is_null())
                        .add(customer::Column::SourceSeen.lt(run)),
                )
                .exec(&*tx)
                .await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &[]).await
    }

    /// Up to `limit` valid customers of source `name` that sync run `run` did not see, by id
    /// after `after`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn unseen_source_customers(
        &self,
        name: &str,
        run: i64,
        after: Option<uuid::Uuid>,
        limit: u64,
    ) -> Result<Vec<Customer>> {
        let mut query = customer::Entity::find();
        if let Some(after) = after {
            query = query.filter(customer::Column::Id.gt(after));
        }
        let select = query
            .filter(customer::Column::Source.eq(name))
            .filter(customer::Column::Validity.eq(Validity::Valid.as_str()))
            .filter(
                Condition::any()
                    .add(customer::Column::SourceSeen.is_null())
                    .add(customer::Column::SourceSeen.lt(run)),
            )
            .order_by_asc(customer::Column::Id)
            .limit(limit);
        self.read_customers(select).await
    }
}

fn from_row(row: sync::Model) -> Result<SourceSync> {
    let time = |micros: Option<i64>| micros.map(timestamp).transpose();
    Ok(SourceSync {
        run: row.run,
        last_start_time: time(row.last_start_time)?,
        last_end_time: time(row.last_end_time)?,
        last_success_time: time(row.last_success_time)?,
        last_full_sync_time: time(row.last_full_sync_time)?,
        kind: SyncKind::parse(&row.kind),
        entries_read: row.entries_read,
        entries_changed: row.entries_changed,
        entries_refused: row.entries_refused,
        entries_invalidated: row.entries_invalidated,
        error: row.error,
        refusals: decode_json(&row.refusals, "customer source refusals")?,
        watermark: row.watermark,
        name: row.name,
    })
}
