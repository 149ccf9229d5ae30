//! Customers, their email addresses and their secondary organisations.

use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Cursor, IdempotencyKey, Inserted, Scope, Store, StoreFailure, TicketScope, UniqueKey,
    ValidityCondition, WriteTx, after, change_log, comment, contains,
    entities::{customer, customer_email, customer_organisation},
    finish, fold_case, grant, idempotency, organisation, ticket, timestamp,
};
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{
        ChangeEvent, ChangeKind, Customer, CustomerFilter, CustomerOrder, Organisation,
        ResourceType, Subject, Ticket, Validity, email_domain, name_key,
    },
};

/// Deactivating an organisation deactivates its valid customers: with `validity`, each with
/// a copy of `event` naming it.
#[derive(Clone, Debug)]
pub struct CustomerCascade {
    /// The validity the customers get.
    pub validity: Validity,
    /// The event each customer gets; its `resource_id` is replaced.
    pub event: ChangeEvent,
}

const RESOURCE: &str = "customer";

/// The unique keys a customer write can violate: its own, and those of an organisation it
/// creates by domain assignment.
const UNIQUE_KEYS: [UniqueKey; 6] = [
    UniqueKey {
        resource: RESOURCE,
        index: "customer_emails",
        sqlite_column: "customer_emails.email_key",
        field: "email",
        reason: "EMAIL_TAKEN",
    },
    UniqueKey {
        resource: RESOURCE,
        index: "ux_customers_login_key",
        sqlite_column: "customers.login_key",
        field: "login",
        reason: "LOGIN_TAKEN",
    },
    UniqueKey {
        resource: RESOURCE,
        index: "ux_customers_external_id",
        sqlite_column: "customers.external_id",
        field: "external_id",
        reason: "EXTERNAL_ID_TAKEN",
    },
    organisation::UNIQUE_KEYS[0],
    organisation::UNIQUE_KEYS[1],
    organisation::UNIQUE_KEYS[2],
];

/// The column a customer order sorts by.
trait KeyColumn {
    fn key_column(self) -> customer::Column;
}

impl KeyColumn for CustomerOrder {
    fn key_column(self) -> customer::Column {
        match self {
            Self::Name => customer::Column::NameKey,
            Self::Email => customer::Column::EmailKey,
        }
    }
}

impl Store {
    /// Inserts `customer` with `events`; first `new_organisation` (made by domain
    /// assignment) if given, and with `key`, first of all the idempotency key.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %customer.id))]
    pub async fn insert_customer(
        &self,
        customer: &Customer,
        new_organisation: Option<&Organisation>,
        events: &[ChangeEvent],
        key: Option<&IdempotencyKey>,
    ) -> Result<Inserted<Customer>> {
        let checks = async {
            if let Some(org) = new_organisation {
                organisation::check_unique(self.reader(), org).await?;
            }
            check_unique(self.reader(), customer).await
        };
        if let Some(replay) = self.before_create(key, checks).await? {
            return Ok(replay);
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                idempotency::claim(&tx, key, customer.id, customer.create_time).await?
            {
                return Ok(replay);
            }
            if let Some(org) = new_organisation {
                organisation::insert_organisation(&tx, org).await?;
            }
            joinable_organisations(&tx, customer, new_organisation.map(|org| org.id)).await?;
            insert_customer(&tx, customer).await?;
            for event in events {
                change_log::append(&tx, event).await?;
            }
            Ok(Inserted::New(customer.clone()))
        }
        .await;
        self.finish_create(tx, outcome, key, &UNIQUE_KEYS).await
    }

    /// The customer with `id` within `scope`, whatever its validity.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer(&self, scope: &Scope, id: Uuid) -> Result<Option<Customer>> {
        let row = customer::Entity::find_by_id(id)
            .filter(scope.customers(customer::Column::Id))
            .one(self.reader())
            .await?;
        Ok(self.with_relations(row.into_iter().collect()).await?.pop())
    }

    /// The customer within `scope` with this primary or secondary email address
    /// (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_email(&self, scope: &Scope, email: &str) -> Result<Option<Customer>> {
        if !super::storable(email) {
            return Ok(None);
        }
        let address = customer_email::Entity::find_by_id(fold_case(email))
            .filter(scope.customers(customer_email::Column::CustomerId))
            .one(self.reader())
            .await?;
        match address {
            Some(address) => self.customer(scope, address.customer_id).await,
            None => Ok(None),
        }
    }

    /// The customer within `scope` with this login (case-insensitive).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_login(&self, scope: &Scope, login: &str) -> Result<Option<Customer>> {
        if !super::storable(login) {
            return Ok(None);
        }
        let row = customer::Entity::find()
            .filter(scope.customers(customer::Column::Id))
            .filter(customer::Column::LoginKey.eq(fold_case(login)))
            .one(self.reader())
            .await?;
        Ok(self.with_relations(row.into_iter().collect()).await?.pop())
    }

    /// The customer with this external id.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn customer_by_external_id(&self, external_id: &str) -> Result<Option<Customer>> {
        if !super::storable(external_id) {
            return Ok(None);
        }
        let row = customer::Entity::find()
            .filter(customer::Column::ExternalId.eq(external_id))
            .one(self.reader())
            .await?;
        Ok(self.with_relations(row.into_iter().collect()).await?.pop())
    }

    /// Writes each customer over its stored version (the version paired with it) and records
    /// `events`, all in one transaction: one stale version fails them all.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(count = customers.len()))]
    pub async fn update_customers(
        &self,
        customers: &[(Customer, i64)],
        events: &[ChangeEvent],
    ) -> Result<()> {
        for (customer, _) in customers {
            check_unique(self.reader(), customer)
                .await
                .map_err(|f| self.failure(f))?;
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            let leaving: Vec<Uuid> = customers
                .iter()
                .filter(|(customer, _)| !customer.validity.is_valid())
                .map(|(customer, _)| customer.id)
                .collect();
            // Only those valid until now leave validity (and lock their rows first).
            let leaving = valid_among(&tx, &leaving).await?;
            for (customer, expected_version) in customers {
                update_customer(&tx, customer, *expected_version).await?;
            }
            refuse_open_tickets(&tx, &leaving, &[]).await?;
            for event in events {
                change_log::append(&tx, event).await?;
            }
            Ok(())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// Deletes the customer `id` if it is still at `expected_version`, and records `event`.
    #[tracing::instrument(skip(self, event), level = "debug", err(level = "debug"))]
    pub async fn delete_customer(
        &self,
        id: Uuid,
        expected_version: i64,
        event: &ChangeEvent,
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let numbers = ticket::ticket_numbers_of_customer(&*tx, id, ticket::MAX_NAMED_TICKETS).await?;
            if !numbers.is_empty() {
                return Err(StoreFailure::Domain(ticket::tickets_in_the_way(
                    "HAS_TICKETS",
                    "a customer with tickets is not deleted: move them to another customer with TransferTickets first".into(),
                    &numbers,
                    "a ticket of the customer (open or closed)",
                )));
            }
            delete_customer(&tx, id, expected_version).await?;
            change_log::append(&tx, event).await?;
            let mut deleted = event.clone();
            deleted.resource_type = ResourceType::Grant;
            deleted.changes.clear();
            for grant in grant::delete_grants_of(&tx, Subject::Customer(id)).await? {
                deleted.resource_id = grant;
                change_log::append(&tx, &deleted).await?;
            }
            deleted.resource_type = ResourceType::Comment;
            for note in comment::delete_notes_on_customer(&tx, id).await? {
                deleted.resource_id = note;
                change_log::append(&tx, &deleted).await?;
            }
            Ok(())
        }
        .await;
        finish(tx, outcome, &UNIQUE_KEYS).await
    }

    /// Deletes `source` (at its stored version) and writes `target` over its stored
    /// `target_version`, with `events`, in one transaction; the source's tickets move to the
    /// target if `tickets` reaches every one of them.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(source = %source.id, target = %target.id))]
    pub async fn merge_customers(
        &self,
        tickets: &TicketScope,
        source: &Customer,
        target: &Customer,
        target_version: i64,
        events: &[ChangeEvent],
        ticket_event: &(dyn Fn(&Ticket, &Ticket) -> ChangeEvent + Send + Sync),
    ) -> Result<Customer> {
        let (source, source_version) = (source.id, source.version);
        // No checks ahead: the target takes over the source's unique values, which are the
        // source's until the transaction deletes it. The unique indexes still guard them.
        let tx = self.begin_write().await?;
        let outcome = async {
            // The grants move first, then the source goes: its addresses become the target's.
            let mut moved = events
                .first()
                .cloned()
                .ok_or_else(|| Error::Internal("a merge without events".into()))?;
            moved.resource_type = ResourceType::Grant;
            moved.kind = ChangeKind::Updated;
            moved.changes = vec![crate::model::FieldChange {
                field: "subject".into(),
                old: serde_json::json!(Subject::Customer(source)),
                new: serde_json::json!(Subject::Customer(target.id)),
            }];
            let grant_events = grant::move_grants(
                &tx,
                Subject::Customer(source),
                Subject::Customer(target.id),
                &moved,
            )
            .await?;
            let now = target.update_time;
            let (_, ticket_events) =
                ticket::transfer_in(&tx, tickets, source, target.id, false, now, ticket_event)
                    .await?;
            // Its comments, the notes on it and its place among recipients move too, each
            // comment with an event.
            let comments = comment::comments_of_customer(&*tx, source).await?;
            comment::move_comments(&tx, source, target.id, &comments, now).await?;
            let mut comment_events = Vec::with_capacity(comments.len());
            for id in comments {
                let mut moved = events
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::Internal("a merge without events".into()))?;
                moved.resource_type = ResourceType::Comment;
                moved.resource_id = id;
                moved.kind = ChangeKind::Updated;
                moved.changes = vec![crate::model::FieldChange {
                    field: "customer".into(),
                    old: serde_json::json!(source),
                    new: serde_json::json!(target.id),
                }];
                comment_events.push(moved);
            }
            delete_customer(&tx, source, source_version).await?;
            update_customer(&tx, target, target_version).await?;
            for event in events.iter().chain(&grant_events).chain(&comment_events) {
                change_log::append(&tx, event).await?;
            }
            let seqs = self.append_ticket_events(&tx, &ticket_events).await?;
            Ok((target.clone(), seqs))
        }
        .await;
        let (merged, seqs) = finish(tx, outcome, &UNIQUE_KEYS).await?;
        self.published(seqs);
        Ok(merged)
    }

    /// Up to `limit` customers within `scope` matching `filter` in `order`, after `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_customers(
        &self,
        scope: &Scope,
        filter: &CustomerFilter,
        order: CustomerOrder,
        cursor: Option<&Cursor>,
        limit: u64,
    ) -> Result<Vec<Customer>> {
        let key = order.key_column();
        let mut condition = filter
            .validity
            .condition(customer::Column::Validity)
            .add(scope.customers(customer::Column::Id));
        if let Some(organisation_id) = filter.organisation_id {
            condition = condition.add(
                Condition::any()
                    .add(customer::Column::OrganisationId.eq(organisation_id))
                    .add(
                        customer::Column::Id.in_subquery(
                            Query::select()
                                .column(customer_organisation::Column::CustomerId)
                                .from(customer_organisation::Entity)
                                .and_where(
                                    customer_organisation::Column::OrganisationId
                                        .eq(organisation_id),
                                )
                                .to_owned(),
                        ),
                    ),
            );
        }
        if let Some(text) = &filter.text {
            condition = condition.add(customer::Column::Search.like(contains(text)));
        }
        if let Some(customer_type) = &filter.customer_type {
            condition = condition.add(customer::Column::CustomerType.eq(customer_type.as_str()));
        }
        if let Some(cursor) = cursor {
            condition = condition.add(after(key, customer::Column::Id, cursor));
        }
        let rows = customer::Entity::find()
            .filter(condition)
            .order_by_asc(key)
            .order_by_asc(customer::Column::Id)
            .limit(limit)
            .all(self.reader())
            .await?;
        self.with_relations(rows).await
    }

    /// Valid customers without organisation whose primary email domain is one of `domains`
    /// or lies under one.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn unassigned_customers_in(&self, domains: &[String]) -> Result<Vec<Customer>> {
        if domains.is_empty() {
            return Ok(Vec::new());
        }
        let mut in_domains =
            Condition::any().add(customer::Column::EmailDomain.is_in(domains.iter().cloned()));
        for domain in domains {
            // Domains are letters, digits, hyphens and dots: nothing to escape.
            in_domains = in_domains
                .add(customer::Column::EmailDomain.like(LikeExpr::new(format!("%.{domain}"))));
        }
        let rows = customer::Entity::find()
            .filter(customer::Column::OrganisationId.is_null())
            .filter(customer::Column::Validity.eq(Validity::Valid.as_str()))
            .filter(in_domains)
            .order_by_asc(customer::Column::Id)
            .all(self.reader())
            .await?;
        self.with_relations(rows).await
    }

    /// Turns rows into customers, loading addresses and memberships in two queries.
    async fn with_relations(&self, rows: Vec<customer::Model>) -> Result<Vec<Customer>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
        let mut emails: HashMap<Uuid, Vec<String>> = HashMap::new();
        for address in customer_email::Entity::find()
            .filter(customer_email::Column::CustomerId.is_in(ids.clone()))
            .filter(customer_email::Column::IsPrimary.eq(false))
            .order_by_asc(customer_email::Column::EmailKey)
            .all(self.reader())
            .await?
        {
            emails
                .entry(address.customer_id)
                .or_default()
                .push(address.email);
        }
        let mut secondary: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for membership in customer_organisation::Entity::find()
            .filter(customer_organisation::Column::CustomerId.is_in(ids))
            .order_by_asc(customer_organisation::Column::OrganisationId)
            .all(self.reader())
            .await?
        {
            secondary
                .entry(membership.customer_id)
                .or_default()
                .push(membership.organisation_id);
        }
        rows.into_iter()
            .map(|row| {
                let secondary_emails = emails.remove(&row.id).unwrap_or_default();
                let secondary_organisation_ids = secondary.remove(&row.id).unwrap_or_default();
                from_row(row, secondary_emails, secondary_organisation_ids)
            })
            .collect()
    }
}

/// Inserts `customer` with its addresses and memberships inside `tx` (after
/// [`check_unique`]).
/// The organisations a new customer joins must be valid when it is written (`made`, created
/// in the same transaction, is). Their rows are locked, so that a deactivation running at the
/// same time either sees the customer (and deactivates it too) or finishes first.
async fn joinable_organisations(
    tx: &WriteTx,
    customer: &Customer,
    made: Option<Uuid>,
) -> Result<(), StoreFailure> {
    let ids: Vec<Uuid> = customer
        .organisation_ids()
        .filter(|id| Some(*id) != made)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    use super::entities::organisation as row;
    let valid: Vec<Uuid> = row::Entity::find()
        .select_only()
        .column(row::Column::Id)
        .filter(row::Column::Id.is_in(ids.clone()))
        .filter(row::Column::Validity.eq(Validity::Valid.as_str()))
        .lock_shared()
        .into_tuple()
        .all(&**tx)
        .await?;
    let invalid: Vec<PreconditionViolation> = ids
        .iter()
        .filter(|id| !valid.contains(id))
        .map(|id| PreconditionViolation {
            kind: "ORGANISATION_INVALID".into(),
            subject: id.to_string(),
            description: "the organisation is invalid: it takes no new customers".into(),
        })
        .collect();
    if invalid.is_empty() {
        return Ok(());
    }
    Err(StoreFailure::Domain(Error::FailedPrecondition {
        reason: "ORGANISATION_INVALID",
        message: "an invalid organisation takes no new customers".into(),
        violations: invalid,
    }))
}

pub(crate) async fn insert_customer(tx: &WriteTx, customer: &Customer) -> Result<(), StoreFailure> {
    customer::Entity::insert(active_model(customer))
        .exec_without_returning(&**tx)
        .await?;
    insert_relations(tx, customer).await
}

/// Writes `customer` over its stored version `expected_version` inside `tx` (after
/// [`check_unique`]).
pub(crate) async fn update_customer(
    tx: &WriteTx,
    customer: &Customer,
    expected_version: i64,
) -> Result<(), StoreFailure> {
    let updated = customer::Entity::update_many()
        .set(active_model(customer))
        .filter(customer::Column::Id.eq(customer.id))
        .filter(customer::Column::Version.eq(expected_version))
        .exec(&**tx)
        .await?;
    if updated.rows_affected == 0 {
        return Err(StoreFailure::Domain(Error::StaleEtag {
            resource: RESOURCE,
        }));
    }
    delete_relations(tx, customer.id).await?;
    insert_relations(tx, customer).await
}

/// Deletes customer `id` at `expected_version` with its addresses and memberships.
async fn delete_customer(
    tx: &WriteTx,
    id: Uuid,
    expected_version: i64,
) -> Result<(), StoreFailure> {
    delete_relations(tx, id).await?;
    let deleted = customer::Entity::delete_many()
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::Version.eq(expected_version))
        .exec(&**tx)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(StoreFailure::Domain(Error::StaleEtag {
            resource: RESOURCE,
        }));
    }
    Ok(())
}

/// Those of `ids` that are valid, their rows locked: a ticket being created for one of them
/// waits for this transaction (or this one for it), so a check for open tickets made after
/// this cannot miss one.
async fn valid_among(tx: &WriteTx, ids: &[Uuid]) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .filter(customer::Column::Id.is_in(ids.to_vec()))
        .filter(customer::Column::Validity.eq(Validity::Valid.as_str()))
        .lock_exclusive()
        .into_tuple()
        .all(&**tx)
        .await
}

/// FAILED_PRECONDITION listing the open tickets of `customers` (as main or additional
/// customer) or of `organisations`, if there are any.
pub(crate) async fn refuse_open_tickets(
    tx: &WriteTx,
    customers: &[Uuid],
    organisations: &[Uuid],
) -> Result<(), StoreFailure> {
    let numbers =
        ticket::open_ticket_numbers(&**tx, customers, organisations, ticket::MAX_NAMED_TICKETS)
            .await?;
    if numbers.is_empty() {
        return Ok(());
    }
    Err(StoreFailure::Domain(ticket::tickets_in_the_way(
        "OPEN_TICKETS",
        format!(
            "open tickets stand in the way: {} (close them or move them with TransferTickets first)",
            numbers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &numbers,
        "an open ticket with this customer or organisation as main or additional customer",
    )))
}

/// Sets the valid customers whose primary organisation is `organisation_id` to the
/// cascade's validity, with an event each.
pub(crate) async fn deactivate_customers_of(
    tx: &WriteTx,
    organisation_id: Uuid,
    cascade: &CustomerCascade,
) -> Result<(), StoreFailure> {
    let of_organisation = Condition::all()
        .add(customer::Column::OrganisationId.eq(organisation_id))
        .add(customer::Column::Validity.eq(Validity::Valid.as_str()));
    // The write transaction holds the write lock on SQLite; on PostgreSQL the rows are locked
    // so the set read is the set changed.
    let ids: Vec<Uuid> = customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .filter(of_organisation.clone())
        .lock_exclusive()
        .into_tuple()
        .all(&**tx)
        .await?;
    refuse_open_tickets(tx, &ids, &[organisation_id]).await?;
    if ids.is_empty() {
        return Ok(());
    }
    customer::Entity::update_many()
        .col_expr(
            customer::Column::Validity,
            Expr::value(cascade.validity.as_str()),
        )
        .col_expr(
            customer::Column::UpdateTime,
            Expr::value(cascade.event.time.as_microsecond()),
        )
        .col_expr(
            customer::Column::Version,
            Expr::col(customer::Column::Version).add(1),
        )
        .filter(customer::Column::Id.is_in(ids.clone()))
        .exec(&**tx)
        .await?;
    for id in ids {
        let mut event = cascade.event.clone();
        event.resource_id = id;
        change_log::append(tx, &event).await?;
    }
    Ok(())
}

/// Checks the unique keys before writing, to name the exact value that is taken. It runs
/// before the write transaction, so that writers hold the (SQLite) write lock briefly; the
/// database's unique indexes stay the guard against concurrent writers.
async fn check_unique(
    conn: &impl ConnectionTrait,
    customer: &Customer,
) -> Result<(), StoreFailure> {
    let taken = |field: String, reason: &'static str| {
        StoreFailure::Domain(Error::AlreadyExists {
            resource: RESOURCE,
            field,
            reason,
        })
    };
    let addresses = addresses(customer);
    let claimed: Vec<String> = customer_email::Entity::find()
        .filter(
            customer_email::Column::EmailKey.is_in(addresses.iter().map(|(key, _)| key.clone())),
        )
        .filter(customer_email::Column::CustomerId.ne(customer.id))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| row.email_key)
        .collect();
    if let Some((_, is_primary)) = addresses.iter().find(|(key, _)| claimed.contains(key)) {
        if *is_primary {
            return Err(taken("email".into(), "EMAIL_TAKEN"));
        }
        let index = customer
            .secondary_emails
            .iter()
            .position(|email| claimed.contains(&fold_case(email)))
            .unwrap_or_default();
        return Err(taken(format!("secondary_emails[{index}]"), "EMAIL_TAKEN"));
    }
    let others = Condition::all().add(customer::Column::Id.ne(customer.id));
    if let Some(login) = &customer.login {
        let same = customer::Entity::find()
            .filter(others.clone())
            .filter(customer::Column::LoginKey.eq(fold_case(login)))
            .one(conn)
            .await?;
        if same.is_some() {
            return Err(taken("login".into(), "LOGIN_TAKEN"));
        }
    }
    if let Some(external_id) = &customer.external_id {
        let same = customer::Entity::find()
            .filter(others)
            .filter(customer::Column::ExternalId.eq(external_id.as_str()))
            .one(conn)
            .await?;
        if same.is_some() {
            return Err(taken("external_id".into(), "EXTERNAL_ID_TAKEN"));
        }
    }
    Ok(())
}

/// Every address of `customer`, case-folded, with whether it is the primary one.
fn addresses(customer: &Customer) -> Vec<(String, bool)> {
    std::iter::once((fold_case(&customer.email), true))
        .chain(
            customer
                .secondary_emails
                .iter()
                .map(|email| (fold_case(email), false)),
        )
        .collect()
}

/// The rows of `customer_emails` for `customer`.
pub(crate) fn address_rows(
    customer: &Customer,
) -> impl Iterator<Item = customer_email::ActiveModel> + '_ {
    std::iter::once((&customer.email, true))
        .chain(customer.secondary_emails.iter().map(|email| (email, false)))
        .map(|(email, is_primary)| customer_email::ActiveModel {
            email_key: Set(fold_case(email)),
            email: Set(email.clone()),
            customer_id: Set(customer.id),
            is_primary: Set(is_primary),
        })
}

async fn insert_relations(tx: &WriteTx, customer: &Customer) -> Result<(), StoreFailure> {
    customer_email::Entity::insert_many(address_rows(customer))
        .exec_without_returning(&**tx)
        .await?;
    if !customer.secondary_organisation_ids.is_empty() {
        let rows = customer
            .secondary_organisation_ids
            .iter()
            .map(|organisation_id| customer_organisation::ActiveModel {
                customer_id: Set(customer.id),
                organisation_id: Set(*organisation_id),
            });
        customer_organisation::Entity::insert_many(rows)
            .exec_without_returning(&**tx)
            .await?;
    }
    Ok(())
}

async fn delete_relations(tx: &WriteTx, id: Uuid) -> Result<(), sea_orm::DbErr> {
    customer_email::Entity::delete_many()
        .filter(customer_email::Column::CustomerId.eq(id))
        .exec(&**tx)
        .await?;
    customer_organisation::Entity::delete_many()
        .filter(customer_organisation::Column::CustomerId.eq(id))
        .exec(&**tx)
        .await?;
    Ok(())
}

pub(crate) fn active_model(customer: &Customer) -> customer::ActiveModel {
    customer::ActiveModel {
        id: Set(customer.id),
        email: Set(customer.email.clone()),
        email_key: Set(fold_case(&customer.email)),
        email_domain: Set(email_domain(&customer.email).to_owned()),
        login: Set(customer.login.clone()),
        login_key: Set(customer.login.as_deref().map(fold_case)),
        first_name: Set(customer.first_name.clone()),
        last_name: Set(customer.last_name.clone()),
        name_key: Set(name_key(customer)),
        title: Set(customer.title.clone()),
        phone: Set(customer.phone.clone()),
        mobile: Set(customer.mobile.clone()),
        organisation_id: Set(customer.organisation_id),
        customer_type: Set(customer.customer_type.clone()),
        custom_fields: Set(super::encode_json(&customer.custom_fields)),
        external_id: Set(customer.external_id.clone()),
        validity: Set(customer.validity.as_str().to_owned()),
        search: Set(fold_case(&format!(
            "{} {}\n{} {}\n{}\n{}",
            customer.first_name,
            customer.last_name,
            customer.last_name,
            customer.first_name,
            customer.email,
            customer.login.as_deref().unwrap_or_default()
        ))),
        create_time: Set(customer.create_time.as_microsecond()),
        update_time: Set(customer.update_time.as_microsecond()),
        version: Set(customer.version),
    }
}

fn from_row(
    row: customer::Model,
    secondary_emails: Vec<String>,
    secondary_organisation_ids: Vec<Uuid>,
) -> Result<Customer> {
    let custom_fields: BTreeMap<String, String> =
        super::decode_json(&row.custom_fields, "customer custom_fields")?;
    Ok(Customer {
        id: row.id,
        validity: super::validity(&row.validity)?,
        email: row.email,
        secondary_emails,
        login: row.login,
        first_name: row.first_name,
        last_name: row.last_name,
        title: row.title,
        phone: row.phone,
        mobile: row.mobile,
        organisation_id: row.organisation_id,
        secondary_organisation_ids,
        customer_type: row.customer_type,
        custom_fields,
        external_id: row.external_id,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}
