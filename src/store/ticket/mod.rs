//! Tickets, their additional customers and their numbers. Every read takes a [`TicketScope`];
//! every write (`write`) commits with its change-log events and names them to the ticket feed.

mod write;

pub(crate) use write::{
    MAX_COUNTED_TICKETS, count_tickets_of_customer, open_ticket_numbers, refuse_merged_ticket,
    ticket_numbers_of_customer, tickets_in_the_way, transfer_in, write_ticket,
};

use std::{collections::HashMap, sync::OnceLock};

use jiff::Timestamp;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, QueryTrait, Select,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    RowKey, Store, TicketScope, contains,
    entities::{ticket, ticket_customer},
    timestamp,
};
use crate::{
    error::{Error, Result},
    model::{
        Alerts, ChangeEvent, Severity, SlaClocks, Ticket, TicketCursor, TicketFilter, TicketOrder,
        TicketOrderKey, TicketState,
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
        let ticket = with_listed_additional(&row)?;
        Ok(scope.admits_ticket(&ticket).then_some(ticket))
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

    /// Up to `limit` tickets `scope` reaches that match `filter`, in `order`, after `cursor`.
    pub async fn list_tickets(
        &self,
        scope: &TicketScope,
        filter: &TicketFilter,
        order: TicketOrder,
        cursor: Option<&TicketCursor>,
        limit: u64,
    ) -> Result<Vec<Ticket>> {
        self.list_ticket_rows(scope, filter, order, cursor, limit)
            .await?
            .tickets()
    }

    /// How many rows a streamed ticket list reads per statement after its first. On
    /// PostgreSQL a statement's round trip and planning are spread over 1,024 rows (a fifth
    /// more tickets a second than with 256). On SQLite, whose list met its target with 256,
    /// 1,024 raised the server's peak memory by a third (BENCHMARKS, 2026-12-08): 256 there.
    pub fn list_chunk(&self) -> u64 {
        match self.backend() {
            DbBackend::Postgres => 1024,
            _ => 256,
        }
    }

    /// [`Self::list_tickets`] as the rows read, to be made tickets where the caller likes (a
    /// stream does it on another task while the next rows are read).
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn list_ticket_rows(
        &self,
        scope: &TicketScope,
        filter: &TicketFilter,
        order: TicketOrder,
        cursor: Option<&TicketCursor>,
        limit: u64,
    ) -> Result<TicketRows> {
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
        // One statement: each row brings its additional customers along (a query per chunk
        // instead of two, and no list of ids sent back to the database).
        let query = query
            .column_as(
                Expr::cust(additional_sql(self.backend())),
                ADDITIONAL_CUSTOMERS,
            )
            .limit(limit);
        let rows = self
            .reader()
            .query_all_raw(query.build(self.backend()))
            .await?;
        Ok(TicketRows(rows))
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
    if let Some(before) = filter.pending_until_before {
        condition = condition.add(ticket::Column::PendingUntil.lt(before));
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

impl Store {
    /// The tickets merged into ticket `id`, directly or through others merged into it; at
    /// most [`MAX_MERGED`].
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn tickets_merged_into(&self, id: Uuid) -> Result<Vec<Uuid>> {
        let mut found = Vec::new();
        let mut frontier = vec![id];
        while !frontier.is_empty() && found.len() < MAX_MERGED {
            let next: Vec<Uuid> = ticket::Entity::find()
                .select_only()
                .column(ticket::Column::Id)
                .filter(ticket::Column::MergedInto.is_in(frontier))
                .order_by_asc(ticket::Column::Id)
                .limit((MAX_MERGED - found.len()) as u64)
                .into_tuple()
                .all(self.reader())
                .await?;
            found.extend(next.iter().copied());
            frontier = next;
        }
        Ok(found)
    }
}

/// How many merged tickets a ticket's history follows at most.
pub const MAX_MERGED: usize = 1000;

/// A row of `tickets` read by column position. sea-orm's own models look every column up by
/// a name it formats anew for each column of each row, which cost a streamed list a quarter
/// of its time; `Entity::find()` selects the columns in the order of [`ticket::Column`], so
/// a column's position is its discriminant.
struct Positional(ticket::Model);

/// The model of a row read by position, each column by `$get(row, column)`.
macro_rules! positional_model {
    ($get:ident, $row:expr) => {
        ticket::Model {
            id: $get($row, C::Id)?,
            number: $get($row, C::Number)?,
            title: $get($row, C::Title)?,
            search: $get($row, C::Search)?,
            group_id: $get($row, C::GroupId)?,
            customer_id: $get($row, C::CustomerId)?,
            organisation_id: $get($row, C::OrganisationId)?,
            state: $get($row, C::State)?,
            priority: $get($row, C::Priority)?,
            assignee_id: $get($row, C::AssigneeId)?,
            sla_policy_id: $get($row, C::SlaPolicyId)?,
            applied_sla_policy_id: $get($row, C::AppliedSlaPolicyId)?,
            pending_until: $get($row, C::PendingUntil)?,
            first_response_time: $get($row, C::FirstResponseTime)?,
            close_time: $get($row, C::CloseTime)?,
            last_customer_contact: $get($row, C::LastCustomerContact)?,
            last_agent_response: $get($row, C::LastAgentResponse)?,
            pending_since: $get($row, C::PendingSince)?,
            clocks: $get($row, C::Clocks)?,
            first_response_due: $get($row, C::FirstResponseDue)?,
            update_due: $get($row, C::UpdateDue)?,
            solution_due: $get($row, C::SolutionDue)?,
            alerts: $get($row, C::Alerts)?,
            escalation: $get($row, C::Escalation)?,
            reminder_due: $get($row, C::ReminderDue)?,
            attention: $get($row, C::Attention)?,
            next_event_time: $get($row, C::NextEventTime)?,
            create_time: $get($row, C::CreateTime)?,
            update_time: $get($row, C::UpdateTime)?,
            version: $get($row, C::Version)?,
            merged_into: $get($row, C::MergedInto)?,
            severity: $get($row, C::Severity)?,
            sla_contact_group_id: $get($row, C::SlaContactGroupId)?,
            reader_group_id: $get($row, C::ReaderGroupId)?,
        }
    };
}

impl FromQueryResult for Positional {
    fn from_query_result(row: &QueryResult, _pre: &str) -> Result<Self, DbErr> {
        use sea_orm::sqlx::{self, Row};
        use ticket::Column as C;
        // sqlx's own rows are read without the type check of each value that `try_get` makes
        // (a tenth of a streamed list's time): the statements select `tickets`' columns, whose
        // types the migrations fix and the tests read back on both databases; a value of
        // another type still fails to decode, as an error.
        fn pg<'r, T: sqlx::Decode<'r, sqlx::Postgres>>(
            row: &'r sqlx::postgres::PgRow,
            column: C,
        ) -> Result<T, DbErr> {
            row.try_get_unchecked(column as usize)
                .map_err(|e| DbErr::Type(e.to_string()))
        }
        fn sqlite<'r, T: sqlx::Decode<'r, sqlx::Sqlite>>(
            row: &'r sqlx::sqlite::SqliteRow,
            column: C,
        ) -> Result<T, DbErr> {
            row.try_get_unchecked(column as usize)
                .map_err(|e| DbErr::Type(e.to_string()))
        }
        fn any<T: sea_orm::TryGetable>(row: &QueryResult, column: C) -> Result<T, DbErr> {
            row.try_get_by_index(column as usize)
        }
        Ok(Self(if let Some(row) = row.try_as_pg_row() {
            positional_model!(pg, row)
        } else if let Some(row) = row.try_as_sqlite_row() {
            positional_model!(sqlite, row)
        } else {
            positional_model!(any, row)
        }))
    }
}

/// The column of [`by_key_sql`] that lists a ticket's additional customers.
const ADDITIONAL_CUSTOMERS: &str = "additional_customer_ids";
/// Its position: right after every column of `tickets` (a test checks).
const ADDITIONAL_COLUMN: usize = ticket::Column::ReaderGroupId as usize + 1;

/// The statement that reads one ticket by `key` (every column of `tickets`, in order, then
/// its additional customers as a comma-separated list), built once per database and key.
fn by_key_sql(backend: DbBackend, key: RowKey) -> &'static str {
    static SQL: OnceLock<[String; 4]> = OnceLock::new();
    let sql = SQL.get_or_init(|| {
        let build = |backend: DbBackend, by_number: bool| {
            let select = ticket::Entity::find()
                .column_as(Expr::cust(additional_sql(backend)), ADDITIONAL_CUSTOMERS);
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

/// Rows of tickets as read, each with its additional customers.
pub struct TicketRows(Vec<QueryResult>);

impl TicketRows {
    /// How many rows.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The last row's ticket.
    pub fn last(&self) -> Result<Option<Ticket>> {
        self.0.last().map(with_listed_additional).transpose()
    }

    /// The tickets, in order.
    pub fn tickets(self) -> Result<Vec<Ticket>> {
        self.0.iter().map(with_listed_additional).collect()
    }
}

impl std::fmt::Debug for TicketRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TicketRows({})", self.0.len())
    }
}

/// The expression of the column [`ADDITIONAL_CUSTOMERS`]: a ticket's additional customers as
/// a comma-separated list (NULL for none).
fn additional_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "(SELECT string_agg(c.customer_id::text, ',') FROM ticket_customers c \
             WHERE c.ticket_id = tickets.id)"
        }
        // SQLite keeps a UUID as 16 bytes; hex gives the simple form Uuid::parse_str reads.
        _ => {
            "(SELECT group_concat(hex(c.customer_id), ',') FROM ticket_customers c \
             WHERE c.ticket_id = tickets.id)"
        }
    }
}

/// The ticket of a row of every column of `tickets`, in order, then [`ADDITIONAL_CUSTOMERS`].
fn with_listed_additional(row: &QueryResult) -> Result<Ticket> {
    let model = Positional::from_query_result(row, "")?.0;
    let listed: Option<String> = row.try_get_by_index(ADDITIONAL_COLUMN)?;
    let mut additional = listed
        .iter()
        .flat_map(|listed| listed.split(','))
        .map(|id| {
            Uuid::parse_str(id)
                .map_err(|e| Error::Internal(format!("stored additional customer unreadable: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    additional.sort();
    from_row(model, additional)
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
        merged_into: Set(ticket.merged_into),
        severity: Set(ticket
            .severity
            .map(Severity::as_str)
            .unwrap_or("")
            .to_owned()),
        sla_contact_group_id: Set(ticket.sla_contact_group_id),
        reader_group_id: Set(ticket.reader_group_id),
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
        merged_into: row.merged_into,
        severity: match row.severity.as_str() {
            "" => None,
            name => Some(
                Severity::parse(name)
                    .ok_or_else(|| Error::Internal(format!("unknown stored severity {name:?}")))?,
            ),
        },
        sla_contact_group_id: row.sla_contact_group_id,
        reader_group_id: row.reader_group_id,
    })
}

#[cfg(test)]
mod tests {
    use super::{write::next_number, *};
    use crate::store::StoreOptions;

    /// [`Positional`] reads a column at its discriminant: that must be its place among the
    /// columns `Entity::find()` selects.
    #[test]
    fn a_ticket_columns_position_is_its_discriminant() {
        crate::store::assert_columns_selected_in_discriminant_order::<ticket::Entity>(|c| {
            c as usize
        });
    }

    /// The listed additional customers follow the last column of `tickets`.
    #[test]
    fn the_additional_customers_follow_every_column() {
        use sea_orm::Iterable;
        assert_eq!(ADDITIONAL_COLUMN, ticket::Column::iter().count());
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
            assert!(tx.commit().await.is_ok(), "commit");
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
