//! SLA calendars and policies.

use jiff::{SignedDuration, civil::Date};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Store, StoreFailure, UniqueKey, after, change_log,
    entities::{sla_calendar, sla_policy},
    finish, fold_case, idempotency, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{Calendar, ChangeEvent, Minute, SlaPolicy},
};

const CALENDAR_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "calendar",
    index: "sla_calendars_name_key",
    sqlite_column: "sla_calendars.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

const POLICY_KEYS: [UniqueKey; 1] = [UniqueKey {
    resource: "SLA policy",
    index: "sla_policies_name_key",
    sqlite_column: "sla_policies.name_key",
    field: "name",
    reason: "NAME_TAKEN",
}];

/// The cursor that resumes a list ordered by name after the item `name`, `id`.
pub fn name_cursor(name: &str, id: Uuid) -> Cursor {
    Cursor {
        key: fold_case(name),
        id,
    }
}

impl Store {
    /// Inserts `calendar` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %calendar.id))]
    pub async fn insert_calendar(
        &self,
        calendar: &Calendar,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<Calendar>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                idempotency::claim(&tx, key, calendar.id, calendar.create_time).await?
            {
                return Ok(replay);
            }
            sla_calendar::Entity::insert(calendar_model(calendar))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(calendar.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &CALENDAR_KEYS).await
    }

    /// The calendar with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn calendar(&self, id: Uuid) -> Result<Option<Calendar>> {
        sla_calendar::Entity::find_by_id(id)
            .one(self.reader())
            .await?
            .map(calendar_from_row)
            .transpose()
    }

    /// Writes `calendar` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %calendar.id))]
    pub async fn update_calendar(
        &self,
        calendar: &Calendar,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = sla_calendar::Entity::update_many()
                .set(calendar_model(calendar))
                .filter(sla_calendar::Column::Id.eq(calendar.id))
                .filter(sla_calendar::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "calendar",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &CALENDAR_KEYS).await
    }

    /// Up to `limit` calendars by name after `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_calendars(
        &self,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Calendar>> {
        let mut query = sla_calendar::Entity::find();
        if let Some(cursor) = cursor {
            query = query.filter(after(
                sla_calendar::Column::NameKey,
                sla_calendar::Column::Id,
                cursor,
            ));
        }
        query
            .order_by_asc(sla_calendar::Column::NameKey)
            .order_by_asc(sla_calendar::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(calendar_from_row)
            .collect()
    }

    /// Inserts `policy` with its creation event.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %policy.id))]
    pub async fn insert_sla_policy(
        &self,
        policy: &SlaPolicy,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<SlaPolicy>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                idempotency::claim(&tx, key, policy.id, policy.create_time).await?
            {
                return Ok(replay);
            }
            sla_policy::Entity::insert(policy_model(policy))
                .exec_without_returning(&*tx)
                .await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(policy.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &POLICY_KEYS).await
    }

    /// The SLA policy with `id`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn sla_policy(&self, id: Uuid) -> Result<Option<SlaPolicy>> {
        sla_policy_on(self.reader(), id).await
    }

    /// Writes `policy` over its stored version `expected_version` and records `event`.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %policy.id))]
    pub async fn update_sla_policy(
        &self,
        policy: &SlaPolicy,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let updated = sla_policy::Entity::update_many()
                .set(policy_model(policy))
                .filter(sla_policy::Column::Id.eq(policy.id))
                .filter(sla_policy::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "SLA policy",
                }));
            }
            change_log::append(&tx, event).await?;
            Ok(())
        }
        .await;
        finish(tx, outcome, &POLICY_KEYS).await
    }

    /// Up to `limit` SLA policies by name after `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_sla_policies(
        &self,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<SlaPolicy>> {
        let mut query = sla_policy::Entity::find();
        if let Some(cursor) = cursor {
            query = query.filter(after(
                sla_policy::Column::NameKey,
                sla_policy::Column::Id,
                cursor,
            ));
        }
        query
            .order_by_asc(sla_policy::Column::NameKey)
            .order_by_asc(sla_policy::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?
            .into_iter()
            .map(policy_from_row)
            .collect()
    }
}

/// The SLA policy with `id`, read on `conn`.
pub(crate) async fn sla_policy_on(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<SlaPolicy>> {
    sla_policy::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(policy_from_row)
        .transpose()
}

fn calendar_model(calendar: &Calendar) -> sla_calendar::ActiveModel {
    let holidays: Vec<String> = calendar.holidays.iter().map(ToString::to_string).collect();
    sla_calendar::ActiveModel {
        id: Set(calendar.id),
        name: Set(calendar.name.clone()),
        name_key: Set(fold_case(&calendar.name)),
        time_zone: Set(calendar.time_zone.clone()),
        business_hours: Set(super::encode_json(&calendar.week)),
        holidays: Set(super::encode_json(&holidays)),
        create_time: Set(calendar.create_time.as_microsecond()),
        update_time: Set(calendar.update_time.as_microsecond()),
        version: Set(calendar.version),
    }
}

fn calendar_from_row(row: sla_calendar::Model) -> Result<Calendar> {
    let week: [Vec<(Minute, Minute)>; 7] =
        super::decode_json(&row.business_hours, "calendar business hours")?;
    let holidays: Vec<String> = super::decode_json(&row.holidays, "calendar holidays")?;
    let holidays = holidays
        .iter()
        .map(|day| {
            day.parse::<Date>()
                .map_err(|e| Error::Internal(format!("stored holiday {day:?} unreadable: {e}")))
        })
        .collect::<Result<Vec<Date>>>()?;
    Ok(Calendar {
        id: row.id,
        name: row.name,
        time_zone: row.time_zone,
        week,
        holidays,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

fn policy_model(policy: &SlaPolicy) -> sla_policy::ActiveModel {
    let seconds = |budget: Option<SignedDuration>| budget.map(|d| d.as_secs());
    sla_policy::ActiveModel {
        id: Set(policy.id),
        name: Set(policy.name.clone()),
        name_key: Set(fold_case(&policy.name)),
        first_response_seconds: Set(seconds(policy.first_response)),
        update_seconds: Set(seconds(policy.update)),
        solution_seconds: Set(seconds(policy.solution)),
        warning_percent: Set(i32::from(policy.warning_percent)),
        calendar_id: Set(policy.calendar_id),
        create_time: Set(policy.create_time.as_microsecond()),
        update_time: Set(policy.update_time.as_microsecond()),
        version: Set(policy.version),
    }
}

fn policy_from_row(row: sla_policy::Model) -> Result<SlaPolicy> {
    let budget = |seconds: Option<i64>| seconds.map(SignedDuration::from_secs);
    Ok(SlaPolicy {
        id: row.id,
        name: row.name,
        first_response: budget(row.first_response_seconds),
        update: budget(row.update_seconds),
        solution: budget(row.solution_seconds),
        warning_percent: u8::try_from(row.warning_percent).map_err(|_| {
            Error::Internal(format!(
                "stored warning_percent {} unreadable",
                row.warning_percent
            ))
        })?,
        calendar_id: row.calendar_id,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
