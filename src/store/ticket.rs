//! Tickets, their additional customers and their numbers. Every read takes a [`TicketScope`];
//! every write commits with its change-log events and names them to the ticket feed.

use std::{collections::HashMap, sync::OnceLock};

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    IdempotencyKey, Inserted, RowKey, Store, StoreFailure, TicketScope, WriteTx, change_log,
    contains,
    entities::{customer, organisation, ticket, ticket_customer},
    feed, finish, timestamp,
};
use crate::{
    error::{Error, PreconditionViolation, Result},
    model::{
        Alerts, ChangeEvent, SlaClocks, Ticket, TicketCursor, TicketFilter, TicketOrder,
        TicketOrderKey, TicketState, Validity,
    },
};

const RESOURCE: &str = "ticket";

/// The column a ticket order sorts by.
trait OrderColumn {
    fn column(self) -> ticket::Column;
}

impl OrderColumn for TicketOrder {
    fn column(self) -> ticket::Column {
        match self.key {
            TicketOrderKey::Number => ticket::Column::Number,
            TicketOrderKey::CreateTime => ticket::Column::CreateTime,
            TicketOrderKey::UpdateTime => ticket::Column::UpdateTime,
            TicketOrderKey::Priority => ticket::Column::Priority,
        }
    }
}

/// Ticket counts of a customer or organisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TicketCounts {
    /// Tickets not closed.
    pub open: u64,
    /// Closed tickets.
    pub closed: u64,
}

/// A change of a ticket the escalation scheduler (or a transfer) derived, to be written if
/// the ticket is still at `expected_version`.
#[derive(Clone, Debug)]
pub struct TicketChange {
    /// The ticket as it is to be.
    pub ticket: Ticket,
    /// The version it was derived from.
    pub expected_version: i64,
    /// Its events.
    pub events: Vec<ChangeEvent>,
}

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
        let tx = self.begin_write().await?;
        let outcome = async {
            if let Some(replay) =
                super::idempotency::claim(&tx, key, ticket_id, create_time).await?
            {
                return Ok((replay, Vec::new()));
            }
            let number = next_number(&tx, create_time).await?;
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
        if matches!(inserted, Inserted::New(_)) {
            self.feed.publish(seqs);
        }
        Ok(inserted)
    }

    /// The ticket `id`, if `scope` reaches it.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn ticket(&self, scope: &TicketScope, id: Uuid) -> Result<Option<Ticket>> {
        self.ticket_by_key(scope, RowKey::Id(id)).await
    }

    /// The ticket numbered `number`, if `scope` reaches it.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn ticket_by_number(
        &self,
        scope: &TicketScope,
        number: i64,
    ) -> Result<Option<Ticket>> {
        self.ticket_by_key(scope, RowKey::Number(number)).await
    }

    /// The ticket `key` finds, if `scope` reaches it: one statement, built once, reads the
    /// row with its additional customers; the one row is then held to the scope by
    /// [`TicketScope::admits`], the test its SQL condition makes in every list (the property
    /// test of `domain/access/rights.rs` holds the two to each other). A ticket out of reach
    /// goes no further than this function.
    async fn ticket_by_key(&self, scope: &TicketScope, key: RowKey) -> Result<Option<Ticket>> {
        let Some(row) = self.fetch_one(by_key_sql(self.backend(), key), key).await? else {
            return Ok(None);
        };
        let model = Positional::from_query_result(&row, "")?.0;
        let listed: Option<String> = row.try_get("", ADDITIONAL_CUSTOMERS)?;
        let mut additional = listed
            .iter()
            .flat_map(|listed| listed.split(','))
            .map(|id| {
                Uuid::parse_str(id).map_err(|e| {
                    Error::Internal(format!("stored additional customer unreadable: {e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        additional.sort();
        let ticket = from_row(model, additional)?;
        Ok(scope
            .admits(
                ticket.group_id,
                ticket.organisation_id,
                ticket.customer_ids(),
            )
            .then_some(ticket))
    }

    /// The tickets with these ids that `scope` reaches.
    #[tracing::instrument(skip(self, ids), level = "debug", err(level = "debug"))]
    pub async fn tickets(&self, scope: &TicketScope, ids: &[Uuid]) -> Result<Vec<Ticket>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = all_rows(
            ticket::Entity::find()
                .filter(ticket::Column::Id.is_in(ids.iter().copied()))
                .filter(scope.condition()),
            self.reader(),
        )
        .await?;
        with_additional(self.reader(), rows).await
    }

    /// Writes `ticket` over its stored `expected_version` with `events`; a newer stored
    /// version is [`Error::StaleEtag`].
    #[tracing::instrument(skip_all, level = "debug", err(level = "debug"), fields(id = %ticket.id))]
    pub async fn update_ticket(
        &self,
        ticket: &Ticket,
        expected_version: i64,
        events: &[ChangeEvent],
    ) -> Result<()> {
        let tx = self.begin_write().await?;
        let outcome = async {
            if !write_ticket(&tx, ticket, expected_version).await? {
                return Err(StoreFailure::Domain(Error::StaleEtag {
                    resource: RESOURCE,
                }));
            }
            self.append_ticket_events(&tx, events).await
        }
        .await;
        let seqs = finish(tx, outcome, &[]).await?;
        self.feed.publish(seqs);
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
                if write_ticket(&tx, &change.ticket, change.expected_version).await? {
                    written.push(change.ticket.id);
                    events.extend(change.events.iter().cloned());
                }
            }
            let seqs = self.append_ticket_events(&tx, &events).await?;
            Ok((written, seqs))
        }
        .await;
        let (written, seqs) = finish(tx, outcome, &[]).await?;
        self.feed.publish(seqs);
        Ok(written)
    }

    /// Up to `limit` tickets `scope` reaches that match `filter`, in `order`, after `cursor`.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_tickets(
        &self,
        scope: &TicketScope,
        filter: &TicketFilter,
        order: TicketOrder,
        cursor: Option<&TicketCursor>,
        limit: u64,
    ) -> Result<Vec<Ticket>> {
        let column = order.column();
        let mut condition = filter_condition(filter).add(scope.condition());
        if let Some(cursor) = cursor {
            condition = condition.add(after(order, cursor));
        }
        let direction = if order.descending {
            sea_orm::Order::Desc
        } else {
            sea_orm::Order::Asc
        };
        let mut query = ticket::Entity::find()
            .filter(condition)
            .order_by(column, direction.clone());
        // Numbers are unique: a tie-breaker would only cost the index on (group, number)
        // a sort, and the planner a chance to pick a full scan instead.
        if !order.unique() {
            query = query.order_by(ticket::Column::Id, direction);
        }
        let rows = all_rows(query.limit(limit), self.reader()).await?;
        with_additional(self.reader(), rows).await
    }

    /// How many open and closed tickets `scope` reaches that match `filter` (states aside).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn count_tickets(
        &self,
        scope: &TicketScope,
        filter: &TicketFilter,
    ) -> Result<TicketCounts> {
        let rows: Vec<(String, i64)> = ticket::Entity::find()
            .select_only()
            .column(ticket::Column::State)
            .column_as(ticket::Column::Id.count(), "n")
            .filter(filter_condition(filter).add(scope.condition()))
            .group_by(ticket::Column::State)
            .into_tuple()
            .all(self.reader())
            .await?;
        let mut counts = TicketCounts::default();
        for (state, n) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            if state == TicketState::Closed.as_str() {
                counts.closed += n;
            } else {
                counts.open += n;
            }
        }
        Ok(counts)
    }

    /// The earliest instant at which any ticket changes by itself.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn next_ticket_event(&self) -> Result<Option<Timestamp>> {
        let next: Option<Option<i64>> = ticket::Entity::find()
            .select_only()
            .column_as(ticket::Column::NextEventTime.min(), "next")
            .into_tuple()
            .one(self.reader())
            .await?;
        next.flatten().map(timestamp).transpose()
    }

    /// Up to `limit` tickets of `scope` whose next event is due at `now`, earliest first.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn due_tickets(
        &self,
        scope: &TicketScope,
        now: Timestamp,
        limit: u64,
    ) -> Result<Vec<Ticket>> {
        let rows = all_rows(
            ticket::Entity::find()
                .filter(scope.condition())
                .filter(ticket::Column::NextEventTime.lte(now.as_microsecond()))
                .order_by_asc(ticket::Column::NextEventTime)
                .order_by_asc(ticket::Column::Id)
                .limit(limit),
            self.reader(),
        )
        .await?;
        with_additional(self.reader(), rows).await
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
            check_valid_customer(&tx, to).await?;
            let (moved, events) =
                transfer_in(&tx, scope, from, to, open_only, now, &event_of).await?;
            let seqs = self.append_ticket_events(&tx, &events).await?;
            Ok((moved, seqs))
        }
        .await;
        let (moved, seqs) = finish(tx, outcome, &[]).await?;
        self.feed.publish(seqs);
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
    pub(crate) fn published(&self, seqs: Vec<i64>) {
        self.feed.publish(seqs);
    }
}

/// How many tickets an error names at most.
pub(crate) const MAX_NAMED_TICKETS: u64 = 100;

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
            .limit(MAX_NAMED_TICKETS)
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
        if !write_ticket(tx, &after, before.version).await? {
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

/// Main or additional customer `id`.
fn of_customer(id: Uuid) -> Condition {
    let additional = Query::select()
        .column(ticket_customer::Column::TicketId)
        .from(ticket_customer::Entity)
        .and_where(Expr::col(ticket_customer::Column::CustomerId).eq(id))
        .to_owned();
    Condition::any()
        .add(ticket::Column::CustomerId.eq(id))
        .add(ticket::Column::Id.in_subquery(additional))
}

fn filter_condition(filter: &TicketFilter) -> Condition {
    let mut condition = Condition::all();
    if !filter.organisation_ids.is_empty() {
        condition = condition
            .add(ticket::Column::OrganisationId.is_in(filter.organisation_ids.iter().copied()));
    }
    if let Some(customer) = filter.customer_id {
        condition = condition.add(of_customer(customer));
    }
    if !filter.group_ids.is_empty() {
        condition = condition.add(ticket::Column::GroupId.is_in(filter.group_ids.iter().copied()));
    }
    if !filter.states.is_empty() {
        condition =
            condition.add(ticket::Column::State.is_in(filter.states.iter().map(|s| s.as_str())));
    }
    if !filter.escalations.is_empty() {
        condition = condition
            .add(ticket::Column::Escalation.is_in(filter.escalations.iter().map(|a| a.as_str())));
    }
    if let Some(due) = filter.reminder_due {
        condition = condition.add(ticket::Column::ReminderDue.eq(due));
    }
    if let Some(assignee) = filter.assignee_id {
        condition = condition.add(ticket::Column::AssigneeId.eq(assignee));
    }
    if let Some(from) = filter.created_from {
        condition = condition.add(ticket::Column::CreateTime.gte(from));
    }
    if let Some(until) = filter.created_until {
        condition = condition.add(ticket::Column::CreateTime.lt(until));
    }
    if let Some(from) = filter.updated_from {
        condition = condition.add(ticket::Column::UpdateTime.gte(from));
    }
    if let Some(until) = filter.updated_until {
        condition = condition.add(ticket::Column::UpdateTime.lt(until));
    }
    if let Some(text) = &filter.text {
        condition = condition.add(ticket::Column::Search.like(contains(text)));
    }
    if filter.attention {
        condition = condition.add(ticket::Column::Attention.eq(true));
    }
    condition
}

/// The rows after `cursor` in `order`: past its key when the key is unique, else in the
/// order (key, id). The latter is written as a range on the key narrowed by the tie-break,
/// not as `key > k OR (key = k AND id > i)`: databases turn that into a sort of every
/// remaining row, page after page.
fn after(order: TicketOrder, cursor: &TicketCursor) -> Condition {
    let column = order.column();
    if order.unique() {
        return Condition::all().add(if order.descending {
            column.lt(cursor.key)
        } else {
            column.gt(cursor.key)
        });
    }
    let (from, beyond, id_beyond) = if order.descending {
        (
            column.lte(cursor.key),
            column.lt(cursor.key),
            ticket::Column::Id.lt(cursor.id),
        )
    } else {
        (
            column.gte(cursor.key),
            column.gt(cursor.key),
            ticket::Column::Id.gt(cursor.id),
        )
    };
    Condition::all()
        .add(from)
        .add(Condition::any().add(beyond).add(id_beyond))
}

/// The next ticket number: the date `time` falls on (UTC, YYYYMMDD) and a five-digit counter
/// of that day, unless the last number handed out is already that high. So numbers always
/// increase and never repeat, and a day with more than 99,999 tickets runs on into the
/// numbers of the next (which then starts after them).
async fn next_number(tx: &WriteTx, time: Timestamp) -> Result<i64, StoreFailure> {
    use super::entities::ticket_counter;

    let date = jiff::tz::TimeZone::UTC.to_datetime(time).date();
    let day =
        i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day());
    let first_of_day = day * DAY_WIDTH + 1;
    let last = Expr::col((ticket_counter::Entity, ticket_counter::Column::Last));
    let upsert = Query::insert()
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
        .to_owned();
    let statement = tx.get_database_backend().build(&upsert);
    let row = tx
        .query_one_raw(statement)
        .await?
        .ok_or_else(|| StoreFailure::Domain(Error::Internal("no ticket counter row".into())))?;
    Ok(row.try_get("", "last")?)
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

/// Writes `ticket` if the stored one is at `expected_version`; false if it is not.
pub(crate) async fn write_ticket(
    tx: &WriteTx,
    ticket: &Ticket,
    expected_version: i64,
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

/// A row of `tickets` read by column position. sea-orm's own models look every column up by
/// a name it formats anew for each column of each row, which cost a streamed list a quarter
/// of its time; `Entity::find()` selects the columns in the order of [`ticket::Column`], so
/// a column's position is its discriminant.
struct Positional(ticket::Model);

impl FromQueryResult for Positional {
    fn from_query_result(row: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        use ticket::Column as C;
        let at = |column: C| column as usize;
        Ok(Self(ticket::Model {
            id: row.try_get_by_index(at(C::Id))?,
            number: row.try_get_by_index(at(C::Number))?,
            title: row.try_get_by_index(at(C::Title))?,
            search: row.try_get_by_index(at(C::Search))?,
            group_id: row.try_get_by_index(at(C::GroupId))?,
            customer_id: row.try_get_by_index(at(C::CustomerId))?,
            organisation_id: row.try_get_by_index(at(C::OrganisationId))?,
            state: row.try_get_by_index(at(C::State))?,
            priority: row.try_get_by_index(at(C::Priority))?,
            assignee_id: row.try_get_by_index(at(C::AssigneeId))?,
            sla_policy_id: row.try_get_by_index(at(C::SlaPolicyId))?,
            applied_sla_policy_id: row.try_get_by_index(at(C::AppliedSlaPolicyId))?,
            pending_until: row.try_get_by_index(at(C::PendingUntil))?,
            first_response_time: row.try_get_by_index(at(C::FirstResponseTime))?,
            close_time: row.try_get_by_index(at(C::CloseTime))?,
            last_customer_contact: row.try_get_by_index(at(C::LastCustomerContact))?,
            last_agent_response: row.try_get_by_index(at(C::LastAgentResponse))?,
            pending_since: row.try_get_by_index(at(C::PendingSince))?,
            clocks: row.try_get_by_index(at(C::Clocks))?,
            first_response_due: row.try_get_by_index(at(C::FirstResponseDue))?,
            update_due: row.try_get_by_index(at(C::UpdateDue))?,
            solution_due: row.try_get_by_index(at(C::SolutionDue))?,
            alerts: row.try_get_by_index(at(C::Alerts))?,
            escalation: row.try_get_by_index(at(C::Escalation))?,
            reminder_due: row.try_get_by_index(at(C::ReminderDue))?,
            attention: row.try_get_by_index(at(C::Attention))?,
            next_event_time: row.try_get_by_index(at(C::NextEventTime))?,
            create_time: row.try_get_by_index(at(C::CreateTime))?,
            update_time: row.try_get_by_index(at(C::UpdateTime))?,
            version: row.try_get_by_index(at(C::Version))?,
        }))
    }
}

/// The column of [`by_key_sql`] that lists a ticket's additional customers.
const ADDITIONAL_CUSTOMERS: &str = "additional_customer_ids";

/// The statement that reads one ticket by `key` (every column of `tickets`, in order, then
/// its additional customers as a comma-separated list), built once per database and key.
fn by_key_sql(backend: DbBackend, key: RowKey) -> &'static str {
    static SQL: OnceLock<[String; 4]> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let build = |backend: DbBackend, by_number: bool| {
            // SQLite keeps a UUID as 16 bytes; hex gives the simple form Uuid::parse_str reads.
            let additional = match backend {
                DbBackend::Postgres => {
                    "(SELECT string_agg(c.customer_id::text, ',') FROM ticket_customers c \
                     WHERE c.ticket_id = tickets.id)"
                }
                _ => {
                    "(SELECT group_concat(hex(c.customer_id), ',') FROM ticket_customers c \
                     WHERE c.ticket_id = tickets.id)"
                }
            };
            let select =
                ticket::Entity::find().column_as(Expr::cust(additional), ADDITIONAL_CUSTOMERS);
            let select = if by_number {
                select.filter(ticket::Column::Number.eq(0_i64))
            } else {
                select.filter(ticket::Column::Id.eq(Uuid::nil()))
            };
            backend.build(select.as_query()).sql
        };
        [
            build(DbBackend::Sqlite, false),
            build(DbBackend::Sqlite, true),
            build(DbBackend::Postgres, false),
            build(DbBackend::Postgres, true),
        ]
    });
    let at = match (backend, key) {
        (DbBackend::Postgres, RowKey::Id(_)) => 2,
        (DbBackend::Postgres, RowKey::Number(_)) => 3,
        (_, RowKey::Id(_)) => 0,
        (_, RowKey::Number(_)) => 1,
    };
    &sql[at]
}

/// The rows `select` (of every column, in their order) finds, read by position.
async fn all_rows(
    select: Select<ticket::Entity>,
    conn: &impl ConnectionTrait,
) -> Result<Vec<ticket::Model>, DbErr> {
    Ok(select
        .into_model::<Positional>()
        .all(conn)
        .await?
        .into_iter()
        .map(|row| row.0)
        .collect())
}

/// The tickets of `rows` with their additional customers.
async fn with_additional(
    conn: &impl ConnectionTrait,
    rows: Vec<ticket::Model>,
) -> Result<Vec<Ticket>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut additional: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    // Chunks keep the parameter count of one statement within SQLite's and PostgreSQL's limits.
    for chunk in rows.chunks(1000) {
        let links = ticket_customer::Entity::find()
            .filter(ticket_customer::Column::TicketId.is_in(chunk.iter().map(|r| r.id)))
            .all(conn)
            .await?;
        for link in links {
            additional
                .entry(link.ticket_id)
                .or_default()
                .push(link.customer_id);
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut others = additional.remove(&row.id).unwrap_or_default();
            others.sort();
            from_row(row, others)
        })
        .collect()
}

fn micros(time: Option<Timestamp>) -> Option<i64> {
    time.map(Timestamp::as_microsecond)
}

pub(crate) fn active_model(ticket: &Ticket) -> ticket::ActiveModel {
    ticket::ActiveModel {
        id: Set(ticket.id),
        number: Set(ticket.number),
        title: Set(ticket.title.clone()),
        search: Set(super::fold_case(&ticket.title)),
        group_id: Set(ticket.group_id),
        customer_id: Set(ticket.customer_id),
        organisation_id: Set(ticket.organisation_id),
        state: Set(ticket.state.as_str().to_owned()),
        priority: Set(i32::from(ticket.priority)),
        assignee_id: Set(ticket.assignee_id),
        sla_policy_id: Set(ticket.sla_policy_id),
        applied_sla_policy_id: Set(ticket.applied_sla_policy_id),
        pending_until: Set(micros(ticket.pending_until)),
        first_response_time: Set(micros(ticket.first_response_time)),
        close_time: Set(micros(ticket.close_time)),
        last_customer_contact: Set(ticket.last_customer_contact.as_microsecond()),
        last_agent_response: Set(micros(ticket.last_agent_response)),
        pending_since: Set(micros(ticket.pending_since)),
        clocks: Set(super::encode_json(&ticket.clocks)),
        first_response_due: Set(micros(ticket.first_response_due)),
        update_due: Set(micros(ticket.update_due)),
        solution_due: Set(micros(ticket.solution_due)),
        alerts: Set(super::encode_json(&ticket.alerts)),
        escalation: Set(ticket.alerts.escalation().as_str().to_owned()),
        reminder_due: Set(ticket.alerts.reminder_due),
        attention: Set(!ticket.alerts.is_quiet()),
        next_event_time: Set(micros(ticket.next_event_time)),
        create_time: Set(ticket.create_time.as_microsecond()),
        update_time: Set(ticket.update_time.as_microsecond()),
        version: Set(ticket.version),
    }
}

fn from_row(row: ticket::Model, additional_customer_ids: Vec<Uuid>) -> Result<Ticket> {
    let time = |micros: Option<i64>| micros.map(timestamp).transpose();
    let clocks: SlaClocks = super::decode_json(&row.clocks, "ticket clocks")?;
    let alerts: Alerts = super::decode_json(&row.alerts, "ticket alerts")?;
    Ok(Ticket {
        id: row.id,
        number: row.number,
        title: row.title,
        group_id: row.group_id,
        customer_id: row.customer_id,
        organisation_id: row.organisation_id,
        additional_customer_ids,
        state: TicketState::parse(&row.state)
            .ok_or_else(|| Error::Internal(format!("unknown stored state {:?}", row.state)))?,
        priority: u8::try_from(row.priority)
            .map_err(|_| Error::Internal(format!("stored priority {} unreadable", row.priority)))?,
        assignee_id: row.assignee_id,
        sla_policy_id: row.sla_policy_id,
        applied_sla_policy_id: row.applied_sla_policy_id,
        pending_until: time(row.pending_until)?,
        first_response_time: time(row.first_response_time)?,
        close_time: time(row.close_time)?,
        last_customer_contact: timestamp(row.last_customer_contact)?,
        last_agent_response: time(row.last_agent_response)?,
        pending_since: time(row.pending_since)?,
        clocks,
        first_response_due: time(row.first_response_due)?,
        update_due: time(row.update_due)?,
        solution_due: time(row.solution_due)?,
        alerts,
        next_event_time: time(row.next_event_time)?,
        create_time: timestamp(row.create_time)?,
        update_time: timestamp(row.update_time)?,
        version: row.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    /// [`Positional`] reads a column at its discriminant: that must be its place among the
    /// columns `Entity::find()` selects.
    #[test]
    fn a_ticket_columns_position_is_its_discriminant() {
        use sea_orm::{Iterable, QueryTrait};
        for (index, column) in ticket::Column::iter().enumerate() {
            assert_eq!(column as usize, index, "{column:?}");
        }
        let sql = ticket::Entity::find()
            .build(sea_orm::DbBackend::Sqlite)
            .to_string();
        let mut from = 0;
        for column in ticket::Column::iter() {
            let name = format!("\"{}\"", sea_orm::IdenStatic::as_str(&column));
            let found = sql[from..]
                .find(&name)
                .unwrap_or_else(|| panic!("{name} not in order in {sql}"));
            from += found + name.len();
        }
    }

    #[tokio::test]
    async fn ticket_numbers_increase_even_past_99999_a_day() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("numbers.db").display()
        );
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("database");
        store.migrate().await.expect("schema");
        let number = async |time: &str| {
            let tx = store.begin_write().await.expect("transaction");
            let Ok(number) = next_number(&tx, time.parse().expect("time")).await else {
                panic!("no number for {time}");
            };
            tx.commit().await.expect("commit");
            number
        };
        assert_eq!(number("2026-11-23T08:00:00Z").await, 2026112300001);
        assert_eq!(number("2026-11-23T09:00:00Z").await, 2026112300002);
        // The 99,999th ticket of the day, and three more.
        store
            .db
            .execute_unprepared("UPDATE ticket_counters SET last = 2026112399998")
            .await
            .expect("counter");
        assert_eq!(number("2026-11-23T22:00:00Z").await, 2026112399999);
        assert_eq!(number("2026-11-23T23:00:00Z").await, 2026112400000);
        assert_eq!(number("2026-11-23T23:30:00Z").await, 2026112400001);
        // The next day starts after them, and a day later the numbers are the date again.
        assert_eq!(number("2026-11-24T08:00:00Z").await, 2026112400002);
        assert_eq!(number("2026-11-25T08:00:00Z").await, 2026112500001);
    }
}
