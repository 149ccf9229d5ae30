//! Reading many tickets: the streamed ticket list with its resume cursors, and the overviews
//! of an organisation and of a customer (the customer detail view of a helpdesk).

use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use super::{
    Tickets,
    customer::CustomerKey,
    fields::{self, Violations},
    organisation::OrganisationKey,
    paging,
    stream_rights::RightsCheck,
};
use crate::{
    domain::access::Principal,
    error::{Error, Result},
    model::{Alert, Customer, Level, Organisation, Ticket, TicketState},
    store::{
        CustomerFilter, CustomerOrder, Scope, TicketCounts, TicketCursor, TicketFilter,
        TicketOrder, TicketRows, TicketScope, ValidityFilter,
    },
};

/// How many tickets a streamed list reads first.
const FIRST_CHUNK: u64 = 256;

/// How many tickets an overview lists per kind when the request names no limit.
pub const DEFAULT_OVERVIEW_LIMIT: u64 = 100;

/// How far ahead an overview looks for reminders coming due, unless asked otherwise.
pub const DEFAULT_REMINDER_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The farthest an overview looks ahead for reminders.
const MAX_REMINDER_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(366 * 24);
/// The most tickets an overview lists per kind.
pub const MAX_OVERVIEW_LIMIT: u64 = 1000;

/// What a ticket list shows, as a client asks for it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TicketQuery {
    /// Tickets of these organisations.
    pub organisation_ids: Vec<Uuid>,
    /// Tickets of this customer (main or additional).
    pub customer_id: Option<Uuid>,
    /// Tickets in these groups.
    pub group_ids: Vec<Uuid>,
    /// Tickets in these states.
    pub states: Vec<TicketState>,
    /// Tickets with one of these escalations.
    pub escalations: Vec<Alert>,
    /// Tickets whose reminder is (not) due.
    pub reminder_due: Option<bool>,
    /// Tickets of this assignee.
    pub assignee_id: Option<Uuid>,
    /// Created at or after.
    pub created_from: Option<Timestamp>,
    /// Created before.
    pub created_until: Option<Timestamp>,
    /// Changed at or after.
    pub updated_from: Option<Timestamp>,
    /// Changed before.
    pub updated_until: Option<Timestamp>,
    /// Substring of the title.
    pub text: String,
    /// The order.
    pub order: TicketOrder,
}

/// A ticket list being read: the caller's scope, the query, and where it stands.
#[derive(Clone, Debug)]
pub struct TicketListing {
    tickets: Tickets,
    principal: Principal,
    scope: TicketScope,
    filter: TicketFilter,
    order: TicketOrder,
    fingerprint: String,
    cursor: Option<TicketCursor>,
}

impl TicketListing {
    /// How many tickets to read next, after `read` so far: few at first, so that the first
    /// goes out soon, then as many as the database reads well at a time.
    pub fn chunk_size(&self, read: u64) -> u64 {
        if read == 0 {
            FIRST_CHUNK
        } else {
            self.tickets.store.list_chunk()
        }
    }

    /// The next `chunk` tickets of the list, empty at its end, as read: only the last is made
    /// a ticket here (for the cursor), the rest by [`TicketChunk::tickets`] where the caller
    /// likes.
    pub async fn next_chunk(&mut self, chunk: u64) -> Result<TicketChunk> {
        let rows = self
            .tickets
            .store
            .list_ticket_rows(
                &self.scope,
                &self.filter,
                self.order,
                self.cursor.as_ref(),
                chunk,
            )
            .await?;
        if let Some(last) = rows.last()? {
            self.cursor = Some(self.order.cursor_after(&last));
        }
        Ok(TicketChunk(rows))
    }

    /// The check that the caller may still read what this list streams, for its sender.
    pub fn rights_check(&self) -> RightsCheck {
        RightsCheck::new(
            self.tickets.clone(),
            self.principal.clone(),
            self.scope.clone(),
        )
    }

    /// What makes the tokens that resume this list, for whoever converts its tickets.
    pub fn resume_tokens(&self) -> ResumeTokens {
        ResumeTokens {
            fingerprint: self.fingerprint.clone(),
            order: self.order,
        }
    }
}

/// A chunk of a ticket list as read from the database.
#[derive(Debug)]
pub struct TicketChunk(TicketRows);

impl TicketChunk {
    /// How many tickets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (the list's end).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tickets, in the list's order.
    pub fn tickets(self) -> Result<Vec<Ticket>> {
        self.0.tickets()
    }
}

/// Makes the tokens that resume one ticket list.
#[derive(Clone, Debug)]
pub struct ResumeTokens {
    fingerprint: String,
    order: TicketOrder,
}

impl ResumeTokens {
    /// The token that resumes the list right after `ticket`.
    pub fn after(&self, ticket: &Ticket) -> String {
        paging::encode_token(&self.fingerprint, &self.order.cursor_after(ticket))
    }
}

/// What the customer detail view shows about an organisation or a customer.
#[derive(Clone, Debug)]
pub struct Overview {
    /// The organisation, for an organisation's overview.
    pub organisation: Option<Organisation>,
    /// The customer, for a customer's overview.
    pub customer: Option<Customer>,
    /// Ticket counts.
    pub counts: TicketCounts,
    /// Escalated open tickets.
    pub escalated: Vec<Ticket>,
    /// Open tickets in warning.
    pub warning: Vec<Ticket>,
    /// Tickets whose reminder is due.
    pub reminder_due: Vec<Ticket>,
    /// Tickets whose reminder comes due within the window asked for.
    pub reminder_upcoming: Vec<Ticket>,
    /// Open tickets.
    pub open: Vec<Ticket>,
    /// The organisation's customers the caller may read.
    pub customers: Vec<Customer>,
    /// The links the configured templates make of it (name, URL).
    pub links: Vec<(String, String)>,
}

/// Whose overview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OverviewOf {
    /// An organisation's.
    Organisation(OrganisationKey),
    /// A customer's.
    Customer(CustomerKey),
}

impl Tickets {
    /// Starts the list of the tickets matching `query` that `principal` may read, at the
    /// beginning or after the ticket `resume_token` names.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn listing(
        &self,
        principal: &Principal,
        query: &TicketQuery,
        resume_token: &str,
    ) -> Result<TicketListing> {
        let mut violations = Violations::default();
        let text = fields::single_line(&mut violations, "text", &query.text, 200, false);
        for (field, from, until) in [
            ("created_until", query.created_from, query.created_until),
            ("updated_until", query.updated_from, query.updated_until),
        ] {
            if let (Some(from), Some(until)) = (from, until)
                && until <= from
            {
                violations.add(field, "must be after the start of the range");
            }
        }
        violations.finish()?;
        let micros = |t: Option<Timestamp>| t.map(Timestamp::as_microsecond);
        let filter = TicketFilter {
            organisation_ids: sorted(&query.organisation_ids),
            customer_id: query.customer_id,
            group_ids: sorted(&query.group_ids),
            states: query.states.clone(),
            escalations: query.escalations.clone(),
            reminder_due: query.reminder_due,
            assignee_id: query.assignee_id,
            created_from: micros(query.created_from),
            created_until: micros(query.created_until),
            updated_from: micros(query.updated_from),
            updated_until: micros(query.updated_until),
            text: (!text.is_empty()).then_some(text),
            pending_until_before: None,
            attention: false,
        };
        let fingerprint = paging::fingerprint(&(&filter, query.order));
        let cursor: Option<TicketCursor> = paging::decode_token(resume_token, &fingerprint)
            .map_err(|_| {
                Error::invalid(
                    "resume_token",
                    "is not a resume token of a list with these filters and this order",
                )
            })?;
        Ok(TicketListing {
            tickets: self.clone(),
            principal: principal.clone(),
            scope: self.scope(principal, Level::Ro).await?,
            filter,
            order: query.order,
            fingerprint,
            cursor,
        })
    }

    /// The overview of an organisation or a customer, with at most `limit` tickets of each
    /// kind (0: the default), and the reminders coming due within `reminder_window` (none:
    /// a day).
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn overview(
        &self,
        principal: &Principal,
        of: &OverviewOf,
        limit: i32,
        reminder_window: Option<jiff::SignedDuration>,
    ) -> Result<Overview> {
        let reminder_window = reminder_window.unwrap_or(DEFAULT_REMINDER_WINDOW);
        if reminder_window.is_negative() || reminder_window > MAX_REMINDER_WINDOW {
            return Err(Error::invalid(
                "reminder_window",
                "must be between 0 and 366 days",
            ));
        }
        let limit = match limit {
            ..0 => return Err(Error::invalid("limit", "must not be negative")),
            0 => DEFAULT_OVERVIEW_LIMIT,
            n => u64::try_from(n)
                .unwrap_or(MAX_OVERVIEW_LIMIT)
                .min(MAX_OVERVIEW_LIMIT),
        };
        let master = principal.scope();
        let (organisation, customer, base) = match of {
            OverviewOf::Organisation(key) => {
                let org = self.organisation(&master, key).await?;
                let base = TicketFilter {
                    organisation_ids: vec![org.id],
                    ..TicketFilter::default()
                };
                (Some(org), None, base)
            }
            OverviewOf::Customer(key) => {
                let customer = self.customer_by_key(&master, key).await?;
                let base = TicketFilter {
                    customer_id: Some(customer.id),
                    ..TicketFilter::default()
                };
                (None, Some(customer), base)
            }
        };
        let scope = self.scope(principal, Level::Ro).await?;
        let open_states = vec![
            TicketState::New,
            TicketState::Open,
            TicketState::PendingReminder,
            TicketState::PendingClose,
        ];
        let list = |filter: TicketFilter| {
            let scope = scope.clone();
            async move {
                self.store
                    .list_tickets(&scope, &filter, TicketOrder::default(), None, limit)
                    .await
            }
        };
        let counts = self.store.count_tickets(&scope, &base).await?;
        let escalated = list(TicketFilter {
            escalations: vec![Alert::Escalated],
            states: open_states.clone(),
            ..base.clone()
        })
        .await?;
        let warning = list(TicketFilter {
            escalations: vec![Alert::Warning],
            states: open_states.clone(),
            ..base.clone()
        })
        .await?;
        let reminder_due = list(TicketFilter {
            reminder_due: Some(true),
            ..base.clone()
        })
        .await?;
        let reminder_upcoming = list(TicketFilter {
            states: vec![TicketState::PendingReminder],
            reminder_due: Some(false),
            pending_until_before: Some((self.clock.now() + reminder_window).as_microsecond()),
            ..base.clone()
        })
        .await?;
        let open = list(TicketFilter {
            states: open_states,
            ..base.clone()
        })
        .await?;
        let customers = match &organisation {
            Some(org) => {
                let filter = CustomerFilter {
                    organisation_id: Some(org.id),
                    validity: ValidityFilter::All,
                    ..CustomerFilter::default()
                };
                self.store
                    .list_customers(&master, &filter, CustomerOrder::default(), None, limit)
                    .await?
            }
            None => Vec::new(),
        };
        let links = {
            let primary = match (&organisation, &customer) {
                (None, Some(customer)) => match customer.organisation_id {
                    Some(id) => self.store.organisation(&master, id).await?,
                    None => None,
                },
                _ => None,
            };
            let fields = super::links::fields(
                organisation.as_ref().or(primary.as_ref()),
                customer.as_ref(),
            );
            super::links::render(&self.links, &fields)
        };
        Ok(Overview {
            links,
            organisation,
            customer,
            counts,
            escalated,
            warning,
            reminder_due,
            reminder_upcoming,
            open,
            customers,
        })
    }

    async fn organisation(&self, scope: &Scope, key: &OrganisationKey) -> Result<Organisation> {
        let found = match key {
            OrganisationKey::Id(id) => self.store.organisation(scope, *id).await?,
            OrganisationKey::Code(code) => self.store.organisation_by_code(scope, code).await?,
        };
        found.ok_or(Error::NotFound {
            resource: "organisation",
        })
    }

    async fn customer_by_key(&self, scope: &Scope, key: &CustomerKey) -> Result<Customer> {
        let found = match key {
            CustomerKey::Id(id) => self.store.customer(scope, *id).await?,
            CustomerKey::Email(email) => {
                self.store
                    .customer_by_email(scope, &super::email::lookup_form(email))
                    .await?
            }
            CustomerKey::Login(login) => self.store.customer_by_login(scope, login).await?,
        };
        found.ok_or(Error::NotFound {
            resource: "customer",
        })
    }
}

fn sorted(ids: &[Uuid]) -> Vec<Uuid> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    ids
}
