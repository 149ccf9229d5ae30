//! Customer writes: create, update, delete and merge, each in one transaction with its
//! events; and the steps other writes share (a deactivation cascading from an organisation,
//! the refusal of a customer with open tickets).

use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{active_model, address_rows, addresses};
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{
        ChangeEvent, ChangeKind, Customer, Organisation, ResourceType, Subject, Ticket, Validity,
    },
    store::{
        IdempotencyKey, Inserted, Store, StoreFailure, TicketScope, UniqueKey, WriteTx, change_log,
        comment,
        entities::{customer, customer_email, customer_organisation},
        finish, fold_case, grant, idempotency, organisation, ticket,
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
const UNIQUE_KEYS: [UniqueKey; 7] = [
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
    UniqueKey {
        resource: RESOURCE,
        index: "ux_customers_source_key",
        sqlite_column: "customers.source_key",
        field: "source",
        reason: "SOURCE_KEY_TAKEN",
    },
    organisation::UNIQUE_KEYS[0],
    organisation::UNIQUE_KEYS[1],
    organisation::UNIQUE_KEYS[2],
];

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
            // Both at the versions the merge was derived from, before anything moves: a merge
            // the other way round that committed meanwhile leaves this one nothing to do.
            let locked = lock_customers(&tx, &[source, target.id]).await?;
            for (id, expected) in [(source, source_version), (target.id, target_version)] {
                match locked.iter().find(|(locked, _)| *locked == id) {
                    None => {
                        return Err(StoreFailure::Domain(Error::NotFound { resource: RESOURCE }));
                    }
                    Some((_, version)) if *version != expected => {
                        return Err(StoreFailure::Domain(Error::StaleEtag {
                            resource: RESOURCE,
                        }));
                    }
                    Some(_) => {}
                }
            }
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
            let mut moved_events = Vec::with_capacity(comments.len());
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
                moved_events.push(moved);
            }
            // Its contact groups become the target's.
            let joined =
                crate::store::contact_group::move_customer_memberships(&tx, source, target.id)
                    .await?;
            for group in joined {
                let mut moved = events
                    .first()
                    .cloned()
                    .ok_or_else(|| Error::Internal("a merge without events".into()))?;
                moved.resource_type = ResourceType::ContactGroup;
                moved.resource_id = group;
                moved.kind = ChangeKind::MembersAdded;
                moved.changes = vec![crate::model::FieldChange {
                    field: "customer_ids".into(),
                    old: serde_json::Value::Null,
                    new: serde_json::json!([target.id]),
                }];
                moved_events.push(moved);
            }
            delete_customer(&tx, source, source_version).await?;
            update_customer(&tx, target, target_version).await?;
            for event in events.iter().chain(&grant_events).chain(&moved_events) {
                change_log::append(&tx, event).await?;
            }
            let seqs = self.append_ticket_events(&tx, &ticket_events).await?;
            Ok((target.clone(), seqs))
        }
        .await;
        let (merged, seqs) = finish(tx, outcome, &UNIQUE_KEYS).await?;
        // A merge moves tickets between customers; what it means for deadlines is looked up.
        self.published(seqs, crate::store::NextEvent::Unknown);
        Ok(merged)
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
    use crate::store::entities::organisation as row;
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
pub(crate) async fn delete_customer(
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

/// Locks the customers `ids` that exist, one after the other in the order of their ids, and
/// returns them with their versions. Writes that touch several rows take their locks in one
/// order — organisations, then customers by id, then tickets by number — so that two of them
/// never wait for each other (README, "Concurrent writes"); on SQLite the one writer holds
/// them all already.
pub(crate) async fn lock_customers(
    tx: &WriteTx,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, sea_orm::DbErr> {
    customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::Version)
        .filter(customer::Column::Id.is_in(ids.to_vec()))
        .order_by_asc(customer::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(&**tx)
        .await
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
        ticket::open_ticket_numbers(&**tx, customers, organisations, ticket::MAX_COUNTED_TICKETS)
            .await?;
    if numbers.is_empty() {
        return Ok(());
    }
    Err(StoreFailure::Domain(ticket::tickets_in_the_way(
        "OPEN_TICKETS",
        format!(
            "{} open tickets stand in the way: {}{} (close them or move them with \
             TransferTickets first)",
            numbers.len(),
            numbers
                .iter()
                .take(10)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if numbers.len() > 10 { ", …" } else { "" }
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
