//! Organisations and their email domains.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QueryResult, QuerySelect,
};
use uuid::Uuid;

use super::{
    Cursor, CustomerCascade, IdempotencyKey, Inserted, Scope, Store, StoreFailure, UniqueKey,
    ValidityCondition, WriteTx, after, after_time, change_log, customer,
    entities::{organisation, organisation_domain},
    finish, fold_case, idempotency, timestamp,
};
use crate::{
    error::{Error, Result},
    model::{ChangeEvent, Organisation, OrganisationFilter, OrganisationOrder},
};

const RESOURCE: &str = "organisation";

/// The unique keys of organisations and the request fields they guard.
pub(crate) const UNIQUE_KEYS: [UniqueKey; 3] = [
    UniqueKey {
        resource: RESOURCE,
        index: "ux_organisations_customer_id_key",
        sqlite_column: "organisations.customer_id_key",
        field: "code",
        reason: "CODE_TAKEN",
    },
    UniqueKey {
        resource: RESOURCE,
        index: "ux_organisations_external_id",
        sqlite_column: "organisations.external_id",
        field: "external_id",
        reason: "EXTERNAL_ID_TAKEN",
    },
    UniqueKey {
        resource: RESOURCE,
        index: "organisation_domains",
        sqlite_column: "organisation_domains.domain",
        field: "email_domains",
        reason: "EMAIL_DOMAIN_TAKEN",
    },
];

/// The column an organisation order sorts by.
trait KeyColumn {
    fn key_column(self) -> organisation::Column;
}

impl KeyColumn for OrganisationOrder {
    fn key_column(self) -> organisation::Column {
        match self {
            Self::Name => organisation::Column::NameKey,
            Self::Code => organisation::Column::CustomerIdKey,
            Self::UpdateTime => organisation::Column::UpdateTime,
        }
    }
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
        if let Some(replay) = self
            .before_create(key, check_unique(self.reader(), org))
            .await?
        {
            return Ok(replay);
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) = idempotency::claim(&tx, key, org.id, org.create_time).await? {
                return Ok(replay);
            }
            insert_organisation(&tx, org).await?;
            change_log::append(&tx, event).await?;
            Ok(Inserted::New(org.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &UNIQUE_KEYS).await
    }

    /// The organisation with `id` within `scope`, whatever its validity. The hottest read of
    /// the service: a statement prepared once, and on SQLite a cache.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation(&self, scope: &Scope, id: Uuid) -> Result<Option<Organisation>> {
        if !scope.admits_organisation(id) {
            return Ok(None);
        }
        Ok(self
            .organisation_by_id(id)
            .await?
            .filter(|org| scope.admits_filed(org.directory_id)))
    }

    /// The organisation with `id`, through the cache.
    async fn organisation_by_id(&self, id: Uuid) -> Result<Option<Organisation>> {
        if let Some(org) = self.organisation_cache.get(id) {
            return Ok(Some(org));
        }
        let generation = self.organisation_cache.generation();
        let row = self
            .fetch_one(by_id_sql(self.backend()), super::RowKey::Id(id))
            .await?
            .map(|row| Positional::from_query_result(&row, "").map(|row| row.0))
            .transpose()?;
        let org = row.map(from_row).transpose()?;
        if let Some(org) = &org {
            self.organisation_cache.put(generation, org);
        }
        Ok(org)
    }

    /// Of organisations `ids`, those within `scope` (that exist).
    #[tracing::instrument(skip(self, ids), level = "debug", err(level = "debug"))]
    pub(super) async fn readable_organisations(
        &self,
        scope: &Scope,
        ids: &[Uuid],
    ) -> Result<Vec<Uuid>> {
        Ok(organisation::Entity::find()
            .select_only()
            .column(organisation::Column::Id)
            .filter(organisation::Column::Id.is_in(ids.iter().copied()))
            .filter(scope.organisations(organisation::Column::Id))
            .filter(scope.filed(organisation::Column::DirectoryId))
            .into_tuple::<Uuid>()
            .all(self.reader())
            .await?)
    }

    /// The organisation within `scope` whose code matches `code`
    /// case-insensitively.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation_by_code(
        &self,
        scope: &Scope,
        code: &str,
    ) -> Result<Option<Organisation>> {
        if !super::storable(code) {
            return Ok(None);
        }
        let row = organisation::Entity::find()
            .filter(scope.organisations(organisation::Column::Id))
            .filter(scope.filed(organisation::Column::DirectoryId))
            .filter(organisation::Column::CustomerIdKey.eq(fold_case(code)))
            .one(self.reader())
            .await?;
        Ok(organisations_of(row.into_iter().collect())?.pop())
    }

    /// The organisation with this external id.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<Organisation>> {
        if !super::storable(external_id) {
            return Ok(None);
        }
        let row = organisation::Entity::find()
            .filter(organisation::Column::ExternalId.eq(external_id))
            .one(self.reader())
            .await?;
        Ok(organisations_of(row.into_iter().collect())?.pop())
    }

    /// The id of the organisation that lists `domain` among its email domains, whatever its
    /// settings.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation_claiming(&self, domain: &str) -> Result<Option<Uuid>> {
        Ok(organisation_domain::Entity::find_by_id(domain.to_owned())
            .one(self.reader())
            .await?
            .map(|claim| claim.organisation_id))
    }

    /// Replaces the stored organisation with `org` if it is still at `expected_version`, and
    /// records `event`. With `cascade`, its valid customers are deactivated with it, each with
    /// an event. A newer stored version is [`Error::StaleEtag`].
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %org.id))]
    pub async fn update_organisation(
        &self,
        org: &Organisation,
        expected_version: i64,
        event: &ChangeEvent,
        cascade: Option<&CustomerCascade>,
    ) -> Result<Organisation> {
        check_unique(self.reader(), org)
            .await
            .map_err(|f| self.failure(f))?;
        let tx = self.begin_write().await?;
        let outcome = async {
            update_organisation(&tx, org, expected_version).await?;
            change_log::append(&tx, event).await?;
            if let Some(cascade) = cascade {
                customer::deactivate_customers_of(&tx, org.id, cascade).await?;
            }
            Ok(org.clone())
        }
        .await;
        let written = finish(tx, outcome, &UNIQUE_KEYS).await;
        // After the commit (or the rollback): readers from now on read the row again.
        self.organisation_cache.forget(org.id);
        written
    }

    /// Up to `limit` organisations within `scope` matching `filter` in `order`, after
    /// `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_organisations(
        &self,
        scope: &Scope,
        filter: &OrganisationFilter,
        order: OrganisationOrder,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Organisation>> {
        let statement = list_query(self.backend(), scope, filter, order, cursor, limit)?;
        let rows = Positional::find_by_statement(statement)
            .all(self.reader())
            .await?;
        organisations_of(rows.into_iter().map(|row| row.0).collect())
    }

    /// The valid organisation with domain assignment on whose email domain is the most
    /// specific of `candidates` (a domain and its parents, most specific first).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn organisation_assigned_to(
        &self,
        candidates: &[&str],
    ) -> Result<Option<Organisation>> {
        let claims = organisation_domain::Entity::find()
            .filter(organisation_domain::Column::Domain.is_in(candidates.iter().copied()))
            .all(self.reader())
            .await?;
        for candidate in candidates {
            let Some(claim) = claims.iter().find(|c| c.domain == *candidate) else {
                continue;
            };
            if let Some(org) = self
                .organisation(&Scope::everything(), claim.organisation_id)
                .await?
                && org.domain_assignment
                && org.validity.is_valid()
            {
                return Ok(Some(org));
            }
        }
        Ok(None)
    }
}

/// A row of `organisations` read by column position, as the ticket store reads its rows:
/// sea-orm's own models look every column up by a name formatted anew for each column of each
/// row, which was a tenth of the server's work on a GetOrganisation (callgrind, BENCHMARKS.md).
/// `Entity::find()` selects the columns in the order of [`organisation::Column`], so a
/// column's position is its discriminant.
struct Positional(organisation::Model);

impl FromQueryResult for Positional {
    fn from_query_result(row: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        use organisation::Column as C;
        let at = |column: C| column as usize;
        Ok(Self(organisation::Model {
            id: row.try_get_by_index(at(C::Id))?,
            customer_id: row.try_get_by_index(at(C::CustomerId))?,
            customer_id_key: row.try_get_by_index(at(C::CustomerIdKey))?,
            name: row.try_get_by_index(at(C::Name))?,
            name_key: row.try_get_by_index(at(C::NameKey))?,
            street: row.try_get_by_index(at(C::Street))?,
            zip: row.try_get_by_index(at(C::Zip))?,
            city: row.try_get_by_index(at(C::City))?,
            country: row.try_get_by_index(at(C::Country))?,
            url: row.try_get_by_index(at(C::Url))?,
            comment: row.try_get_by_index(at(C::Comment))?,
            validity: row.try_get_by_index(at(C::Validity))?,
            domain_assignment: row.try_get_by_index(at(C::DomainAssignment))?,
            external_id: row.try_get_by_index(at(C::ExternalId))?,
            custom_fields: row.try_get_by_index(at(C::CustomFields))?,
            search: row.try_get_by_index(at(C::Search))?,
            sla_policy_id: row.try_get_by_index(at(C::SlaPolicyId))?,
            email_domains: row.try_get_by_index(at(C::EmailDomains))?,
            default_assignee_id: row.try_get_by_index(at(C::DefaultAssigneeId))?,
            create_time: row.try_get_by_index(at(C::CreateTime))?,
            update_time: row.try_get_by_index(at(C::UpdateTime))?,
            version: row.try_get_by_index(at(C::Version))?,
            directory_id: row.try_get_by_index(at(C::DirectoryId))?,
        }))
    }
}

/// The query of one page of organisations (see [`Store::list_organisations`]).
pub(super) fn list_query(
    backend: DbBackend,
    scope: &Scope,
    filter: &OrganisationFilter,
    order: OrganisationOrder,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<sea_orm::Statement> {
    let key = order.key_column();
    let mut condition =
        super::search::validity(backend, filter.validity, &filter.text, "organisations")
            .unwrap_or_else(|| filter.validity.condition(organisation::Column::Validity))
            .add(scope.organisations(organisation::Column::Id))
            .add(scope.filed(organisation::Column::DirectoryId));
    if let Some(country) = &filter.country {
        condition = condition.add(organisation::Column::Country.eq(country.as_str()));
    }
    if let Some((key, value)) = &filter.custom_field {
        condition = condition.add(super::custom_field_is(backend, "organisations", key, value));
    }
    if let Some(fragment) = &filter.text {
        condition = condition.add(super::search::organisations(backend, fragment));
    }
    if let Some(since) = filter.updated_since {
        condition = condition.add(organisation::Column::UpdateTime.gte(since));
    }
    // Found by a fragment and listed by name: the most relevant first.
    let rank = filter
        .ranked(order)
        .and_then(|fragment| super::search::rank(organisation::Column::Search, fragment));
    if let Some(cursor) = cursor {
        condition = condition.add(match (&rank, order) {
            (Some(rank), _) => {
                super::search::after_ranked(rank.clone(), key, organisation::Column::Id, cursor)?
            }
            (None, OrganisationOrder::UpdateTime) => {
                after_time(key, organisation::Column::Id, cursor)?
            }
            (None, _) => after(key, organisation::Column::Id, cursor),
        });
    }
    let mut query = organisation::Entity::find().filter(condition);
    if let Some(rank) = rank {
        query = query.order_by(rank, sea_orm::Order::Asc);
    }
    let query = query
        .order_by_asc(key)
        .order_by_asc(organisation::Column::Id);
    Ok(super::limited(&query, backend, limit))
}

/// `SELECT … FROM organisations WHERE id = ?` for `backend`, built once.
fn by_id_sql(backend: DbBackend) -> &'static str {
    static SQL: super::PerBackend = super::PerBackend::new();
    SQL.get(backend, |_| {
        organisation::Entity::find().filter(organisation::Column::Id.eq(Uuid::nil()))
    })
}

/// Organisations read lately, by id. Kept on SQLite only: one process serves a SQLite file,
/// so every change passes through it and drops its entry; entries also age out after a
/// second, the bound for anything that wrote around this process. On PostgreSQL, where
/// several replicas write, every read asks the database.
#[derive(Debug)]
pub(crate) struct OrganisationCache {
    enabled: bool,
    /// Moves on with every change, so that a read begun before a change is not cached after
    /// it.
    generation: AtomicU64,
    entries: Mutex<HashMap<Uuid, (Instant, Organisation)>>,
}

/// How long a cached organisation is trusted.
const CACHE_TTL: Duration = Duration::from_secs(1);
/// Beyond this many entries the cache starts over, bounding its memory.
const CACHE_CAPACITY: usize = 100_000;

impl OrganisationCache {
    /// A cache that keeps entries only if `enabled`.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, id: Uuid) -> Option<Organisation> {
        if !self.enabled {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(&id)
            .filter(|(since, _)| since.elapsed() < CACHE_TTL)
            .map(|(_, org)| org.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `org`, read when the generation was `generation`, unless something changed
    /// since.
    fn put(&self, generation: u64, org: &Organisation) {
        if !self.enabled {
            return;
        }
        if let Ok(mut entries) = self.entries.lock()
            && self.generation.load(Ordering::Acquire) == generation
        {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(org.id, (Instant::now(), org.clone()));
        }
    }

    fn forget(&self, id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.remove(&id);
        }
    }
}

/// The organisations of `rows` (their domains are in the row).
fn organisations_of(rows: Vec<organisation::Model>) -> Result<Vec<Organisation>> {
    rows.into_iter().map(from_row).collect()
}

/// Inserts `org` and its domains inside `tx` (after [`check_unique`]).
pub(crate) async fn insert_organisation(
    tx: &WriteTx,
    org: &Organisation,
) -> Result<(), StoreFailure> {
    organisation::Entity::insert(active_model(org))
        .exec_without_returning(&**tx)
        .await?;
    insert_domains(tx, org).await?;
    Ok(())
}

/// Writes `org` over its stored version `expected_version` inside `tx` (after
/// [`check_unique`]).
pub(crate) async fn update_organisation(
    tx: &WriteTx,
    org: &Organisation,
    expected_version: i64,
) -> Result<(), StoreFailure> {
    let updated = organisation::Entity::update_many()
        .set(active_model(org))
        .filter(organisation::Column::Id.eq(org.id))
        .filter(organisation::Column::Version.eq(expected_version))
        .exec(&**tx)
        .await?;
    if updated.rows_affected == 0 {
        return Err(StoreFailure::Domain(Error::StaleEtag {
            resource: RESOURCE,
        }));
    }
    organisation_domain::Entity::delete_many()
        .filter(organisation_domain::Column::OrganisationId.eq(org.id))
        .exec(&**tx)
        .await?;
    insert_domains(tx, org).await?;
    Ok(())
}

/// Checks the unique keys before writing, to name the exact value that is taken. It runs
/// before the write transaction, so that writers hold the (SQLite) write lock briefly; the
/// database's unique indexes stay the guard against concurrent writers.
pub(crate) async fn check_unique(
    conn: &impl ConnectionTrait,
    org: &Organisation,
) -> Result<(), StoreFailure> {
    let taken = |field: String, reason: &'static str| {
        StoreFailure::Domain(Error::AlreadyExists {
            resource: RESOURCE,
            field,
            reason,
        })
    };
    let others = Condition::all().add(organisation::Column::Id.ne(org.id));
    let same_key = organisation::Entity::find()
        .filter(others.clone())
        .filter(organisation::Column::CustomerIdKey.eq(fold_case(&org.code)))
        .one(conn)
        .await?;
    if same_key.is_some() {
        return Err(taken("code".into(), "CODE_TAKEN"));
    }
    if let Some(external_id) = &org.external_id {
        let same_external = organisation::Entity::find()
            .filter(others)
            .filter(organisation::Column::ExternalId.eq(external_id.as_str()))
            .one(conn)
            .await?;
        if same_external.is_some() {
            return Err(taken("external_id".into(), "EXTERNAL_ID_TAKEN"));
        }
    }
    if !org.email_domains.is_empty() {
        let claimed: Vec<String> = organisation_domain::Entity::find()
            .filter(organisation_domain::Column::Domain.is_in(org.email_domains.clone()))
            .filter(organisation_domain::Column::OrganisationId.ne(org.id))
            .all(conn)
            .await?
            .into_iter()
            .map(|row| row.domain)
            .collect();
        if let Some(index) = org.email_domains.iter().position(|d| claimed.contains(d)) {
            return Err(taken(
                format!("email_domains[{index}]"),
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

pub(crate) fn active_model(org: &Organisation) -> organisation::ActiveModel {
    organisation::ActiveModel {
        id: Set(org.id),
        customer_id: Set(org.code.clone()),
        customer_id_key: Set(fold_case(&org.code)),
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
        custom_fields: Set(super::encode_json(&org.custom_fields)),
        sla_policy_id: Set(org.sla_policy_id),
        email_domains: Set(super::encode_json(&org.email_domains)),
        default_assignee_id: Set(org.default_assignee_id),
        search: Set(crate::model::organisation_document(org)),
        create_time: Set(org.create_time.as_microsecond()),
        update_time: Set(org.update_time.as_microsecond()),
        version: Set(org.version),
        directory_id: Set(org.directory_id),
    }
}

fn from_row(row: organisation::Model) -> Result<Organisation> {
    let custom_fields: BTreeMap<String, String> =
        super::decode_json(&row.custom_fields, "organisation custom_fields")?;
    let email_domains: Vec<String> =
        super::decode_json(&row.email_domains, "organisation email_domains")?;
    Ok(Organisation {
        id: row.id,
        validity: super::validity(&row.validity)?,
        code: row.customer_id,
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
        sla_policy_id: row.sla_policy_id,
        default_assignee_id: row.default_assignee_id,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
        directory_id: row.directory_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Positional`] reads a column at its discriminant: that must be its place among the
    /// columns `Entity::find()` selects.
    #[test]
    fn an_organisation_columns_position_is_its_discriminant() {
        crate::store::assert_columns_selected_in_discriminant_order::<organisation::Entity>(|c| {
            c as usize
        });
    }
}
