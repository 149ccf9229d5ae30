//! Organisations and their email domains.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::LikeExpr,
};
use uuid::Uuid;

use super::{
    Claim, IdempotencyKey, Store, UniqueKey, WriteTx, change_log,
    entities::{organisation, organisation_domain},
    fold_case, idempotency, timestamp, violated_key,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Organisation, Validity},
};

/// Which organisations a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrganisationFilter {
    /// Substring of customer_id, name or city; matched case-insensitively.
    pub text: Option<String>,
    /// ISO country code, upper-case.
    pub country: Option<String>,
    /// Which validities: `None` = valid only.
    pub validity: ValidityFilter,
}

/// Which validities a list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum ValidityFilter {
    /// Valid records only (the default of every list).
    #[default]
    ValidOnly,
    /// Every record.
    All,
    /// Records of exactly this validity.
    Exactly(Validity),
}

/// The orders organisations can be listed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum OrganisationOrder {
    /// By name (case-insensitive), then id.
    #[default]
    Name,
    /// By customer_id (case-insensitive), then id.
    CustomerId,
}

/// Where a page of organisations ended: the sort key and id of its last row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrganisationCursor {
    /// The last row's sort key.
    pub key: String,
    /// The last row's id.
    pub id: Uuid,
}

impl OrganisationOrder {
    fn key_column(self) -> organisation::Column {
        match self {
            Self::Name => organisation::Column::NameKey,
            Self::CustomerId => organisation::Column::CustomerIdKey,
        }
    }

    /// The cursor that resumes a list in this order after `org`.
    pub fn cursor_after(self, org: &Organisation) -> OrganisationCursor {
        let key = match self {
            Self::Name => fold_case(&org.name),
            Self::CustomerId => fold_case(&org.customer_id),
        };
        OrganisationCursor { key, id: org.id }
    }
}

/// The unique keys of organisations, the request fields they guard and their reasons.
const UNIQUE_KEYS: [UniqueKey; 3] = [
    UniqueKey {
        index: "ux_organisations_customer_id_key",
        sqlite_column: "organisations.customer_id_key",
    },
    UniqueKey {
        index: "ux_organisations_external_id",
        sqlite_column: "organisations.external_id",
    },
    UniqueKey {
        index: "organisation_domains",
        sqlite_column: "organisation_domains.domain",
    },
];
const UNIQUE_FIELDS: [(&str, &str); 3] = [
    ("customer_id", "CUSTOMER_ID_TAKEN"),
    ("external_id", "EXTERNAL_ID_TAKEN"),
    ("email_domains", "EMAIL_DOMAIN_TAKEN"),
];
const IDEMPOTENCY_KEY: [UniqueKey; 1] = [UniqueKey {
    index: "idempotency_keys",
    sqlite_column: "idempotency_keys.",
}];

/// The outcome of an insert that may be the retry of an earlier one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inserted<T> {
    /// Created now.
    New(T),
    /// The idempotency key was used before (see [`Claim::Replay`]).
    Replay {
        /// What the earlier request created.
        resource_id: Uuid,
        /// The hash of the earlier request.
        request_hash: String,
    },
}

impl Store {
    /// Inserts `org` with its creation event; with `key`, first claims the idempotency key.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %org.id))]
    pub async fn insert_organisation(
        &self,
        org: &Organisation,
        event: &ChangeEvent,
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<Organisation>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(key) = key
                && let Claim::Replay {
                    resource_id,
                    request_hash,
                } = idempotency::claim(&tx, key, org.id, org.create_time).await?
            {
                return Ok(Inserted::Replay {
                    resource_id,
                    request_hash,
                });
            }
            check_unique(&tx, org).await?;
            organisation::Entity::insert(active_model(org))
                .exec_without_returning(&*tx)
                .await?;
            insert_domains(&tx, org).await?;
            change_log::append(&*tx, event).await?;
            Ok(Inserted::New(org.clone()))
        }
        .await;
        match outcome {
            Ok(Inserted::New(org)) => {
                tx.commit().await.map_err(|e| self.unique_error(e))?;
                Ok(Inserted::New(org))
            }
            Ok(replay) => Ok(replay),
            Err(StoreFailure::Db(e))
                if key.is_some() && violated_key(&e, &IDEMPOTENCY_KEY).is_some() =>
            {
                drop(tx);
                // A concurrent duplicate claimed the key first and has committed by now.
                let key = key.ok_or_else(|| Error::Internal("key vanished".into()))?;
                match self.idempotency_claim(key).await? {
                    Claim::Replay {
                        resource_id,
                        request_hash,
                    } => Ok(Inserted::Replay {
                        resource_id,
                        request_hash,
                    }),
                    Claim::Fresh => Err(Error::Unavailable(
                        "a concurrent request with the same request_id failed; retry".into(),
                    )),
                }
            }
            Err(failure) => Err(self.failure(failure)),
        }
    }

    /// The organisation with `id`, whatever its validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation(&self, id: Uuid) -> Result<Option<Organisation>> {
        let row = organisation::Entity::find_by_id(id)
            .one(self.reader())
            .await?;
        self.with_domains(row.into_iter().collect())
            .await
            .map(|mut orgs| orgs.pop())
    }

    /// The organisation whose customer_id matches `customer_id` case-insensitively.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation_by_customer_id(
        &self,
        customer_id: &str,
    ) -> Result<Option<Organisation>> {
        let row = organisation::Entity::find()
            .filter(organisation::Column::CustomerIdKey.eq(fold_case(customer_id)))
            .one(self.reader())
            .await?;
        self.with_domains(row.into_iter().collect())
            .await
            .map(|mut orgs| orgs.pop())
    }

    /// Replaces the stored organisation with `org` if it is still at `expected_version`, and
    /// records `event`. A newer stored version is [`Error::StaleEtag`].
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %org.id))]
    pub async fn update_organisation(
        &self,
        org: &Organisation,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<Organisation> {
        let tx = self.begin_write().await?;
        let outcome = async {
            check_unique(&tx, org).await?;
            let updated = organisation::Entity::update_many()
                .set(active_model(org))
                .filter(organisation::Column::Id.eq(org.id))
                .filter(organisation::Column::Version.eq(expected_version))
                .exec(&*tx)
                .await?;
            if updated.rows_affected == 0 {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: "organisation",
                }));
            }
            organisation_domain::Entity::delete_many()
                .filter(organisation_domain::Column::OrganisationId.eq(org.id))
                .exec(&*tx)
                .await?;
            insert_domains(&tx, org).await?;
            change_log::append(&*tx, event).await?;
            Ok(())
        }
        .await;
        match outcome {
            Ok(()) => {
                tx.commit().await.map_err(|e| self.unique_error(e))?;
                Ok(org.clone())
            }
            Err(failure) => Err(self.failure(failure)),
        }
    }

    /// Up to `limit` organisations matching `filter` in `order`, after `after`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_organisations(
        &self,
        filter: &OrganisationFilter,
        order: OrganisationOrder,
        after: Option<&OrganisationCursor>,
        limit: u64,
    ) -> Result<Vec<Organisation>> {
        let key = order.key_column();
        let mut condition = Condition::all();
        condition = match filter.validity {
            ValidityFilter::ValidOnly => {
                condition.add(organisation::Column::Validity.eq(Validity::Valid.as_str()))
            }
            ValidityFilter::All => condition,
            ValidityFilter::Exactly(validity) => {
                condition.add(organisation::Column::Validity.eq(validity.as_str()))
            }
        };
        if let Some(country) = &filter.country {
            condition = condition.add(organisation::Column::Country.eq(country.as_str()));
        }
        if let Some(text) = &filter.text {
            let pattern = format!("%{}%", escape_like(&fold_case(text)));
            condition = condition
                .add(organisation::Column::Search.like(LikeExpr::new(pattern).escape('\\')));
        }
        if let Some(after) = after {
            condition = condition.add(
                Condition::any().add(key.gt(after.key.as_str())).add(
                    Condition::all()
                        .add(key.eq(after.key.as_str()))
                        .add(organisation::Column::Id.gt(after.id)),
                ),
            );
        }
        let rows = organisation::Entity::find()
            .filter(condition)
            .order_by_asc(key)
            .order_by_asc(organisation::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?;
        self.with_domains(rows).await
    }

    /// Turns rows into organisations, loading the email domains of all of them in one query.
    async fn with_domains(&self, rows: Vec<organisation::Model>) -> Result<Vec<Organisation>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut domains: HashMap<Uuid, Vec<String>> = HashMap::new();
        for row in organisation_domain::Entity::find()
            .filter(organisation_domain::Column::OrganisationId.is_in(ids))
            .order_by_asc(organisation_domain::Column::Domain)
            .all(self.reader())
            .await?
        {
            domains
                .entry(row.organisation_id)
                .or_default()
                .push(row.domain);
        }
        rows.into_iter()
            .map(|row| {
                let email_domains = domains.remove(&row.id).unwrap_or_default();
                from_row(row, email_domains)
            })
            .collect()
    }

    /// Maps a failed write to the error the client should see.
    fn failure(&self, failure: StoreFailure) -> Error {
        match failure {
            StoreFailure::Domain(error) => error,
            StoreFailure::Db(error) => self.unique_error(error),
        }
    }

    /// A violated unique key becomes `AlreadyExists` naming its field.
    fn unique_error(&self, error: sea_orm::DbErr) -> Error {
        match violated_key(&error, &UNIQUE_KEYS) {
            Some(index) => {
                let (field, reason) = UNIQUE_FIELDS[index];
                Error::AlreadyExists {
                    resource: "organisation",
                    field: field.to_owned(),
                    reason,
                }
            }
            None => Error::from(error),
        }
    }
}

/// Why a write transaction stopped: a rule of the domain, or the database.
enum StoreFailure {
    Domain(Error),
    Db(sea_orm::DbErr),
}

impl From<sea_orm::DbErr> for StoreFailure {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Db(error)
    }
}

impl From<Error> for StoreFailure {
    fn from(error: Error) -> Self {
        Self::Domain(error)
    }
}

/// Checks the unique keys before writing, to name the exact value that is taken; the
/// database's unique indexes stay the guard against concurrent writers.
async fn check_unique(tx: &WriteTx, org: &Organisation) -> Result<(), StoreFailure> {
    let taken = |field: &str, reason: &'static str| {
        StoreFailure::Domain(Error::AlreadyExists {
            resource: "organisation",
            field: field.to_owned(),
            reason,
        })
    };
    let same_key = organisation::Entity::find()
        .filter(organisation::Column::CustomerIdKey.eq(fold_case(&org.customer_id)))
        .filter(organisation::Column::Id.ne(org.id))
        .one(&**tx)
        .await?;
    if same_key.is_some() {
        return Err(taken("customer_id", "CUSTOMER_ID_TAKEN"));
    }
    if let Some(external_id) = &org.external_id {
        let same_external = organisation::Entity::find()
            .filter(organisation::Column::ExternalId.eq(external_id.as_str()))
            .filter(organisation::Column::Id.ne(org.id))
            .one(&**tx)
            .await?;
        if same_external.is_some() {
            return Err(taken("external_id", "EXTERNAL_ID_TAKEN"));
        }
    }
    if !org.email_domains.is_empty() {
        let claimed: Vec<String> = organisation_domain::Entity::find()
            .filter(organisation_domain::Column::Domain.is_in(org.email_domains.clone()))
            .filter(organisation_domain::Column::OrganisationId.ne(org.id))
            .all(&**tx)
            .await?
            .into_iter()
            .map(|row| row.domain)
            .collect();
        if let Some(index) = org.email_domains.iter().position(|d| claimed.contains(d)) {
            return Err(taken(
                &format!("email_domains[{index}]"),
                "EMAIL_DOMAIN_TAKEN",
            ));
        }
    }
    Ok(())
}

async fn insert_domains(tx: &WriteTx, org: &Organisation) -> Result<(), sea_orm::DbErr> {
    if org.email_domains.is_empty() {
        return Ok(());
    }
    let rows = org
        .email_domains
        .iter()
        .map(|domain| organisation_domain::ActiveModel {
            domain: Set(domain.clone()),
            organisation_id: Set(org.id),
        });
    organisation_domain::Entity::insert_many(rows)
        .exec_without_returning(&**tx)
        .await?;
    Ok(())
}

fn active_model(org: &Organisation) -> organisation::ActiveModel {
    organisation::ActiveModel {
        id: Set(org.id),
        customer_id: Set(org.customer_id.clone()),
        customer_id_key: Set(fold_case(&org.customer_id)),
        name: Set(org.name.clone()),
        name_key: Set(fold_case(&org.name)),
        street: Set(org.street.clone()),
        zip: Set(org.zip.clone()),
        city: Set(org.city.clone()),
        country: Set(org.country.clone()),
        url: Set(org.url.clone()),
        comment: Set(org.comment.clone()),
        validity: Set(org.validity.as_str().to_owned()),
        domain_assignment: Set(org.domain_assignment),
        external_id: Set(org.external_id.clone()),
        custom_fields: Set(serde_json::to_string(&org.custom_fields).unwrap_or_default()),
        search: Set(fold_case(&format!(
            "{}\n{}\n{}",
            org.customer_id, org.name, org.city
        ))),
        create_time: Set(org.create_time.as_microsecond()),
        update_time: Set(org.update_time.as_microsecond()),
        version: Set(org.version),
    }
}

fn from_row(row: organisation::Model, email_domains: Vec<String>) -> Result<Organisation> {
    let custom_fields: BTreeMap<String, String> = serde_json::from_str(&row.custom_fields)
        .map_err(|e| Error::Internal(format!("organisation {} custom_fields: {e}", row.id)))?;
    Ok(Organisation {
        id: row.id,
        validity: Validity::parse(&row.validity).ok_or_else(|| {
            Error::Internal(format!(
                "organisation {} has validity {:?}",
                row.id, row.validity
            ))
        })?,
        customer_id: row.customer_id,
        name: row.name,
        street: row.street,
        zip: row.zip,
        city: row.city,
        country: row.country,
        url: row.url,
        comment: row.comment,
        email_domains,
        domain_assignment: row.domain_assignment,
        external_id: row.external_id,
        custom_fields,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
