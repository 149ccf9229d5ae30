//! Writing tickets: a new ticket and its number, changes at an expected version, transfers
//! between customers; each in one transaction with its change-log events.

use std::collections::HashMap;

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{RESOURCE, TicketChange, active_model, all_rows, of_customer, with_additional};
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{ChangeEvent, CommentParent, Ticket, TicketState, Validity},
    store::{
        IdempotencyKey, Inserted, NextEvent, Store, StoreFailure, TicketScope, WriteTx, change_log,
        entities::{comment, customer, organisation, ticket, ticket_customer},
        feed, finish,
    },
};

impl Store {
    /// Inserts the ticket `build` makes from the next ticket number, with its events; with
    /// `key`, first claims the idempotency key. The customers and organisation it names
    /// are locked and must still be valid when it is written.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"))]
    pub async fn insert_ticket(
        &self,
        ticket_id: Uuid,
        create_time: Timestamp,
        key: Option<&IdempotencyKey>,
        build: impl FnOnce(i64) -> (Ticket, Vec<ChangeEvent>) + Send,
    ) -> Result<Inserted<Ticket>> {
        if let Some(replay) = self.before_create(key, async { Ok(()) }).await? {
            return Ok(replay);
        }
        let taken = self.number_apart(create_time).await?;
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                crate::store::idempotency::claim(&tx, key, ticket_id, create_time).await?
            {
                return Ok((replay, Vec::new()));
            }
            let number = match taken {
                Some(number) => number,
                None => next_number(&tx, create_time).await?,
            };
            let (ticket, events) = build(number);
            check_parties(&tx, &ticket).await?;
            ticket::Entity::insert(active_model(&ticket))
                .exec_without_returning(&*tx)
                .await?;
            insert_additional(&tx, &ticket).await?;
            let seqs = self.append_ticket_events(&tx, &events).await?;
            Ok((Inserted::New(ticket), seqs))
        }
        .await;
        let (outcome, seqs) = match outcome {
            Ok((inserted, seqs)) => (Ok(inserted), seqs),
            Err(failure) => (Err(failure), Vec::new()),
        };
        let inserted = self.finish_create(tx, outcome, key, &[]).await?;
        if let Inserted::New(ticket) = &inserted {
            self.feed.publish(seqs, NextEvent::of([ticket]));
        }
        Ok(inserted)
    }

    /// Writes `ticket` over its stored `expected_version` with `events` (its additional
    /// customers too when `additional_changed`); a newer stored version is
    /// [`Error::StaleEtag`].
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %ticket.id))]
    pub async fn update_ticket(
        &self,
        ticket: &Ticket,
        expected_version: i64,
        additional_changed: bool,
        events: &[ChangeEvent],
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if !write_ticket(&tx, ticket, expected_version, additional_changed).await? {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: RESOURCE,
                }));
            }
            self.append_ticket_events(&tx, events).await
        }
        .await;
        let seqs = finish(tx, outcome, &[]).await?;
        self.feed.publish(seqs, NextEvent::of([ticket]));
        Ok(())
    }

    /// Writes each change whose ticket is still at its expected version, with its events, in
    /// one transaction; returns the ids of the tickets written. A ticket changed meanwhile
    /// (by a client, or by another replica's scheduler) is left out.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(count = changes.len()))]
    pub async fn apply_ticket_changes(&self, changes: &[TicketChange]) -> Result<Vec<Uuid>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let tx = self.begin_write().await?;
        let outcome = async {
            let mut written = Vec::new();
            let mut events = Vec::new();
            for change in changes {
                // The scheduler changes alerts and states, never the customers.
                if write_ticket(&tx, &change.ticket, change.expected_version, false).await? {
                    written.push(change.ticket.id);
                    events.extend(change.events.iter().cloned());
                }
            }
            let seqs = self.append_ticket_events(&tx, &events).await?;
            Ok((written, seqs))
        }
        .await;
        let (written, seqs) = finish(tx, outcome, &[]).await?;
        self.feed.publish(
            seqs,
            NextEvent::of(
                changes
                    .iter()
                    .filter(|change| written.contains(&change.ticket.id))
                    .map(|change| &change.ticket),
            ),
        );
        Ok(written)
    }

    /// Replaces `from` by `to` as main and additional customer on the tickets of `from` that
    /// `scope` reaches (open ones only with `open_only`), each with the event `event_of`
    /// makes, in one transaction. Returns the tickets as they are now.
    #[tracing::instrument(skip(self, event_of), level = "debug", err(level = "debug"))]
    pub async fn transfer_tickets(
        &self,
        scope: &TicketScope,
        from: Uuid,
        to: Uuid,
        open_only: bool,
        now: Timestamp,
        event_of: impl Fn(&Ticket, &Ticket) -> ChangeEvent + Send + Sync,
    ) -> Result<Vec<Ticket>> {
        let tx = self.begin_write().await?;
        let outcome = async {
            // Both customers first, in the lock order of writes: a deletion of either waits
            // for this transfer or is done before it looks.
            crate::store::customer::lock_customers(&tx, &[from, to]).await?;
            check_valid_customer(&tx, to).await?;
            let (moved, events) =
                transfer_in(&tx, scope, from, to, open_only, now, &event_of).await?;
            let seqs = self.append_ticket_events(&tx, &events).await?;
            Ok((moved, seqs))
        }
        .await;
        let (moved, seqs) = finish(tx, outcome, &[]).await?;
        self.feed.publish(seqs, NextEvent::of(&moved));
        Ok(moved)
    }

    /// Writes a merge in one transaction: the closed `source` and the `target`, each over its
    /// expected version (a newer stored version is [`Error::StaleEtag`]), the source's
    /// comments moved to the target, and `events`. Both rows are locked first, in the order of
    /// their ids, so that two merges of the same pair in opposite directions wait for each
    /// other instead of deadlocking. Returns how many comments moved.
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"))]
    pub async fn merge_tickets(
        &self,
        (source, source_version): (&Ticket, i64),
        (target, target_version): (&Ticket, i64),
        additional_changed: bool,
        events: &[ChangeEvent],
    ) -> Result<u64> {
        let tx = self.begin_write().await?;
        let outcome = async {
            let _locked: Vec<Uuid> = ticket::Entity::find()
                .select_only()
                .column(ticket::Column::Id)
                .filter(ticket::Column::Id.is_in([source.id, target.id]))
                .order_by_asc(ticket::Column::Id)
                .lock_exclusive()
                .into_tuple()
                .all(&*tx)
                .await?;
            let stale = || StoreFailure::Domain(Error::StaleEtag { resource: RESOURCE });
            if !write_ticket(&tx, source, source_version, false).await? {
                return Err(stale());
            }
            if !write_ticket(&tx, target, target_version, additional_changed).await? {
                return Err(stale());
            }
            let moved = comment::Entity::update_many()
                .col_expr(comment::Column::ParentId, Expr::value(target.id))
                .filter(comment::Column::ParentType.eq(CommentParent::Ticket(source.id).kind()))
                .filter(comment::Column::ParentId.eq(source.id))
                .exec(&*tx)
                .await?
                .rows_affected;
            let seqs = self.append_ticket_events(&tx, events).await?;
            Ok((moved, seqs))
        }
        .await;
        let (moved, seqs) = finish(tx, outcome, &[]).await?;
        self.feed.publish(seqs, NextEvent::of([source, target]));
        Ok(moved)
    }

    /// Appends `events` and sends the feed's `NOTIFY` for them (PostgreSQL); their sequence
    /// numbers are published after the commit.
    pub(crate) async fn append_ticket_events(
        &self,
        tx: &WriteTx,
        events: &[ChangeEvent],
    ) -> Result<Vec<i64>, StoreFailure> {
        let mut seqs = Vec::with_capacity(events.len());
        for event in events {
            seqs.push(change_log::append(tx, event).await?);
        }
        feed::notify(&**tx, &self.feed, &seqs).await?;
        Ok(seqs)
    }

    /// Publishes ticket events committed by a transaction of another store module.
    pub(crate) fn published(&self, seqs: Vec<i64>, next_event: NextEvent) {
        self.feed.publish(seqs, next_event);
    }
}

/// FAILED_PRECONDITION (TICKET_MERGED) if ticket `id` was merged; its row is locked for
/// share, so that a merge running at the same time either sees what this transaction writes
/// or finishes first.
pub(crate) async fn refuse_merged_ticket(tx: &WriteTx, id: Uuid) -> Result<(), StoreFailure> {
    let merged_into: Option<Option<Uuid>> = ticket::Entity::find_by_id(id)
        .select_only()
        .column(ticket::Column::MergedInto)
        .lock_shared()
        .into_tuple()
        .one(&**tx)
        .await?;
    match merged_into.flatten() {
        Some(into) => Err(StoreFailure::Domain(Error::FailedPrecondition {
            reason: "TICKET_MERGED",
            message: format!("the ticket was merged into ticket {into}; work on that one"),
            violations: vec![PreconditionViolation {
                kind: "TICKET_MERGED".into(),
                subject: id.to_string(),
                description: format!("merged into {into}"),
            }],
        })),
        None => Ok(()),
    }
}

/// How many tickets an error counts at most; it names as many of them as its size allows
/// (`crate::error`) and counts the rest.
pub(crate) const MAX_COUNTED_TICKETS: u64 = 10_000;

/// Moves the tickets of `from` to `to` inside `tx` (a transfer, or a merge of customers);
/// returns them as they are now, and their events. The caller must be able to work on every
/// one of them (`scope`, built at RW): otherwise nothing moves and FAILED_PRECONDITION names
/// the tickets out of its reach, so that a transfer and a merge never move a ticket of a group
/// the caller cannot work on, and never leave part of a customer's tickets behind unnoticed.
pub(crate) async fn transfer_in(
    tx: &WriteTx,
    scope: &TicketScope,
    from: Uuid,
    to: Uuid,
    open_only: bool,
    now: Timestamp,
    event_of: &(dyn Fn(&Ticket, &Ticket) -> ChangeEvent + Send + Sync),
) -> Result<(Vec<Ticket>, Vec<ChangeEvent>), StoreFailure> {
    let mut condition = Condition::all().add(of_customer(from));
    if open_only {
        condition = condition.add(ticket::Column::State.ne(TicketState::Closed.as_str()));
    }
    if !scope.is_everything() {
        // Out of reach: not among the rows the scope admits (NULL-safe, unlike a negated
        // scope condition).
        let reachable = Query::select()
            .column(ticket::Column::Id)
            .from(ticket::Entity)
            .cond_where(scope.condition())
            .to_owned();
        let out_of_reach: Vec<i64> = ticket::Entity::find()
            .select_only()
            .column(ticket::Column::Number)
            .filter(condition.clone())
            .filter(ticket::Column::Id.not_in_subquery(reachable))
            .order_by_asc(ticket::Column::Number)
            .limit(MAX_COUNTED_TICKETS)
            .into_tuple()
            .all(&**tx)
            .await?;
        if !out_of_reach.is_empty() {
            return Err(StoreFailure::Domain(tickets_in_the_way(
                "TICKETS_OUT_OF_REACH",
                "some of the customer's tickets are in groups the caller may not work on".into(),
                &out_of_reach,
                "the caller needs RW on this ticket's group to move it",
            )));
        }
    }
    let rows = all_rows(
        ticket::Entity::find()
            .filter(condition)
            .order_by_asc(ticket::Column::Number)
            .lock_exclusive(),
        &**tx,
    )
    .await?;
    let tickets = with_additional(&**tx, rows)
        .await
        .map_err(StoreFailure::Domain)?;
    let mut moved = Vec::with_capacity(tickets.len());
    let mut events = Vec::with_capacity(tickets.len());
    for before in tickets {
        let mut after = before.clone();
        if after.customer_id == from {
            after.customer_id = to;
        }
        let mut additional: Vec<Uuid> = after
            .additional_customer_ids
            .iter()
            .map(|id| if *id == from { to } else { *id })
            .filter(|id| *id != after.customer_id)
            .collect();
        additional.sort();
        additional.dedup();
        after.additional_customer_ids = additional;
        after.version = before.version + 1;
        after.update_time = now;
        let additional_changed = after.additional_customer_ids != before.additional_customer_ids;
        if !write_ticket(tx, &after, before.version, additional_changed).await? {
            return Err(StoreFailure::Domain(Error::StaleEtag {
                resource: RESOURCE,
            }));
        }
        events.push(event_of(&before, &after));
        moved.push(after);
    }
    Ok((moved, events))
}

/// The numbers of the open tickets that have one of `customers` as main or additional
/// customer, or one of `organisations` as organisation; at most `limit`.
pub(crate) async fn open_ticket_numbers(
    conn: &impl ConnectionTrait,
    customers: &[Uuid],
    organisations: &[Uuid],
    limit: u64,
) -> Result<Vec<i64>, sea_orm::DbErr> {
    let mut parties = Condition::any();
    if !customers.is_empty() {
        let additional = Query::select()
            .column(ticket_customer::Column::TicketId)
            .from(ticket_customer::Entity)
            .and_where(Expr::col(ticket_customer::Column::CustomerId).is_in(customers.to_vec()))
            .to_owned();
        parties = parties
            .add(ticket::Column::CustomerId.is_in(customers.to_vec()))
            .add(ticket::Column::Id.in_subquery(additional));
    }
    if !organisations.is_empty() {
        parties = parties.add(ticket::Column::OrganisationId.is_in(organisations.to_vec()));
    }
    if parties.is_empty() {
        return Ok(Vec::new());
    }
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Number)
        .filter(parties)
        .filter(ticket::Column::State.ne(TicketState::Closed.as_str()))
        .order_by_asc(ticket::Column::Number)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// The numbers of any tickets (open or closed) of customer `id`, at most `limit`.
pub(crate) async fn ticket_numbers_of_customer(
    conn: &impl ConnectionTrait,
    id: Uuid,
    limit: u64,
) -> Result<Vec<i64>, sea_orm::DbErr> {
    ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Number)
        .filter(of_customer(id))
        .order_by_asc(ticket::Column::Number)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// How many tickets (open or closed) customer `id` is main or additional customer of.
pub(crate) async fn count_tickets_of_customer(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait;
    ticket::Entity::find()
        .filter(of_customer(id))
        .count(conn)
        .await
}

/// FAILED_PRECONDITION naming the tickets in the way.
pub(crate) fn tickets_in_the_way(
    reason: &'static str,
    message: String,
    numbers: &[i64],
    description: &str,
) -> Error {
    Error::FailedPrecondition {
        reason,
        message,
        violations: numbers
            .iter()
            .map(|number| PreconditionViolation {
                kind: reason.into(),
                subject: number.to_string(),
                description: description.to_owned(),
            })
            .collect(),
    }
}

/// The next ticket number: the date `time` falls on (UTC, YYYYMMDD) and a five-digit counter
/// of that day, unless the last number handed out is already that high. So numbers always
/// increase and never repeat, and a day with more than 99,999 tickets runs on into the
/// numbers of the next (which then starts after them).
pub(super) async fn next_number(tx: &WriteTx, time: Timestamp) -> Result<i64, StoreFailure> {
    let statement = tx.get_database_backend().build(&counter_upsert(time));
    let row = tx
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| StoreFailure::Domain(Error::Internal("no ticket counter row".into())))?;
    Ok(row.try_get("", "last")?)
}

impl Store {
    /// On PostgreSQL, the next ticket number taken in a transaction of its own that commits
    /// without waiting for its log flush (`synchronous_commit = off`), in one round trip
    /// before the ticket's transaction begins; `None` on SQLite, where the ticket's
    /// transaction takes it ([`next_number`]).
    ///
    /// Taken inside the ticket's transaction, the counter's row stayed locked until that
    /// transaction had committed and flushed, so every create in the service waited for the
    /// one before it: CreateTicket ran at a third of the database's write ceiling (BENCHMARKS.md,
    /// 2026-12-06). Apart, the row is locked for one statement. Numbers stay unique and
    /// increasing in the order they are taken; a create that fails after taking one leaves a
    /// gap. Nothing is lost in a crash: a ticket's commit flushes the log up to its own record,
    /// which lies after the counter's, so a number of any ticket that survived a crash
    /// survived with it.
    async fn number_apart(&self, time: Timestamp) -> Result<Option<i64>> {
        use sea_orm::{DbBackend, sea_query::PostgresQueryBuilder, sqlx::Row};
        if self.backend() != DbBackend::Postgres {
            return Ok(None);
        }
        // One message of two statements is one transaction (an implicit one, which a failure
        // rolls back without leaving the connection in it). Only numbers of ours are inlined.
        let sql = format!(
            "SET LOCAL synchronous_commit = off; {}",
            counter_upsert(time).to_string(PostgresQueryBuilder)
        );
        let pool = self.db.get_postgres_connection_pool();
        let rows = sea_orm::sqlx::raw_sql(sea_orm::sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .map_err(crate::store::sqlx_failure)?;
        let row = rows
            .first()
            .ok_or_else(|| Error::Internal("no ticket counter row".into()))?;
        let number: i64 = row
            .try_get("last")
            .map_err(|e| Error::Internal(format!("ticket counter unreadable: {e}")))?;
        Ok(Some(number))
    }
}

/// The statement that moves the ticket counter on and returns the number it gives out: the
/// first of the day is `YYYYMMDD00001`.
fn counter_upsert(time: Timestamp) -> sea_orm::sea_query::InsertStatement {
    use crate::store::entities::ticket_counter;

    let date = jiff::tz::TimeZone::UTC.to_datetime(time).date();
    let day =
        i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day());
    let first_of_day = day * DAY_WIDTH + 1;
    let last = Expr::col((ticket_counter::Entity, ticket_counter::Column::Last));
    Query::insert()
        .into_table(ticket_counter::Entity)
        .columns([ticket_counter::Column::Day, ticket_counter::Column::Last])
        .values_panic([LAST_NUMBER_ROW.into(), first_of_day.into()])
        .on_conflict(
            OnConflict::column(ticket_counter::Column::Day)
                .value(
                    ticket_counter::Column::Last,
                    Expr::case(last.clone().lt(first_of_day), first_of_day).finally(last.add(1)),
                )
                .to_owned(),
        )
        .returning_col(ticket_counter::Column::Last)
        .to_owned()
}

/// Ticket numbers of one day: `YYYYMMDD` times this plus the counter.
const DAY_WIDTH: i64 = 100_000;

/// The row of `ticket_counters` that holds the last number handed out.
const LAST_NUMBER_ROW: i64 = 0;

/// The main, the additional customers and the organisation of a ticket must be valid when it
/// is written. Their rows are locked, so that a deactivation running at the same time either
/// sees this ticket or finishes first.
async fn check_parties(tx: &WriteTx, ticket: &Ticket) -> Result<(), StoreFailure> {
    let ids: Vec<Uuid> = std::iter::once(ticket.customer_id)
        .chain(ticket.additional_customer_ids.iter().copied())
        .collect();
    let customers: Vec<(Uuid, String)> = customer::Entity::find()
        .select_only()
        .column(customer::Column::Id)
        .column(customer::Column::Validity)
        .filter(customer::Column::Id.is_in(ids.clone()))
        .lock_shared()
        .into_tuple()
        .all(&**tx)
        .await?;
    let validity: HashMap<Uuid, String> = customers.into_iter().collect();
    let invalid: Vec<Uuid> = ids
        .iter()
        .copied()
        .filter(|id| {
            validity
                .get(id)
                .is_none_or(|v| v != Validity::Valid.as_str())
        })
        .collect();
    if !invalid.is_empty() {
        return Err(StoreFailure::Domain(Error::FailedPrecondition {
            reason: "CUSTOMER_INVALID",
            message: "an invalid customer gets no new tickets".into(),
            violations: invalid
                .iter()
                .map(|id| PreconditionViolation {
                    kind: "CUSTOMER_INVALID".into(),
                    subject: id.to_string(),
                    description: "the customer is invalid or gone".into(),
                })
                .collect(),
        }));
    }
    if let Some(org) = ticket.organisation_id {
        let found: Option<String> = organisation::Entity::find_by_id(org)
            .select_only()
            .column(organisation::Column::Validity)
            .lock_shared()
            .into_tuple()
            .one(&**tx)
            .await?;
        if found.as_deref() != Some(Validity::Valid.as_str()) {
            return Err(StoreFailure::Domain(Error::FailedPrecondition {
                reason: "ORGANISATION_INVALID",
                message: "an invalid organisation gets no new tickets".into(),
                violations: vec![PreconditionViolation {
                    kind: "ORGANISATION_INVALID".into(),
                    subject: org.to_string(),
                    description: "the organisation is invalid".into(),
                }],
            }));
        }
    }
    Ok(())
}

async fn check_valid_customer(tx: &WriteTx, id: Uuid) -> Result<(), StoreFailure> {
    let found: Option<String> = customer::Entity::find_by_id(id)
        .select_only()
        .column(customer::Column::Validity)
        .lock_shared()
        .into_tuple()
        .one(&**tx)
        .await?;
    match found {
        Some(validity) if validity == Validity::Valid.as_str() => Ok(()),
        Some(_) => Err(StoreFailure::Domain(Error::FailedPrecondition {
            reason: "CUSTOMER_INVALID",
            message: "tickets cannot be given to an invalid customer".into(),
            violations: vec![PreconditionViolation {
                kind: "CUSTOMER_INVALID".into(),
                subject: id.to_string(),
                description: "reactivate the customer first".into(),
            }],
        })),
        None => Err(StoreFailure::Domain(Error::invalid(
            "to_customer_id",
            format!("no customer has the id {id}"),
        ))),
    }
}

/// Writes `ticket` if the stored one is at `expected_version`; false if it is not. Its
/// additional customers are written again only when `additional_changed`: a statement saved
/// on most writes of a ticket.
pub(crate) async fn write_ticket(
    tx: &WriteTx,
    ticket: &Ticket,
    expected_version: i64,
    additional_changed: bool,
) -> Result<bool, StoreFailure> {
    let updated = ticket::Entity::update_many()
        .set(active_model(ticket))
        .filter(ticket::Column::Id.eq(ticket.id))
        .filter(ticket::Column::Version.eq(expected_version))
        .exec(&**tx)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    if !additional_changed {
        return Ok(true);
    }
    ticket_customer::Entity::delete_many()
        .filter(ticket_customer::Column::TicketId.eq(ticket.id))
        .exec(&**tx)
        .await?;
    insert_additional(tx, ticket).await?;
    Ok(true)
}

async fn insert_additional(tx: &WriteTx, ticket: &Ticket) -> Result<(), sea_orm::DbErr> {
    if ticket.additional_customer_ids.is_empty() {
        return Ok(());
    }
    let rows =
        ticket
            .additional_customer_ids
            .iter()
            .map(|customer_id| ticket_customer::ActiveModel {
                ticket_id: Set(ticket.id),
                customer_id: Set(*customer_id),
            });
    ticket_customer::Entity::insert_many(rows)
        .exec_without_returning(&**tx)
        .await?;
    Ok(())
}
