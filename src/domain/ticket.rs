//! Tickets: create with routing and SLA, read, update through the state machine, transfer
//! between customers, and history. Every read and write goes through the caller's
//! [`TicketScope`], so a ticket the caller may not read is NOT_FOUND like a missing one.

use std::sync::Arc;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    Permissions, Slas,
    changes::{self, Audit, Etag, check_etag},
    escalation::{self, Sla},
    fields::{self, Violations},
    paging::{self, Page},
    references,
    rights::MasterDataWriter,
};
use crate::domain::access::ServiceWork;
use crate::{
    clock::Clock,
    domain::access::Principal,
    error::{Error, PreconditionViolation, Result},
    model::{
        Actor, Alerts, ChangeEvent, ChangeKind, Customer, FieldChange, Group, Level, ResourceType,
        SlaClocks, Ticket, TicketState,
    },
    store::{Inserted, Store, StoredChange, TicketChange, TicketScope},
};

/// The priority of a ticket created without one.
pub const DEFAULT_PRIORITY: u8 = 3;
/// The longest title.
pub const MAX_TITLE: usize = 255;
/// The most additional customers of one ticket.
pub const MAX_ADDITIONAL_CUSTOMERS: usize = 100;

/// The values a client sends for a ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TicketInput {
    /// Title.
    pub title: String,
    /// Group.
    pub group_id: Option<Uuid>,
    /// Main customer; a customer creating a ticket may leave it out.
    pub customer_id: Option<Uuid>,
    /// Organisation; defaults to the customer's primary one.
    pub organisation_id: Option<Uuid>,
    /// Further customers.
    pub additional_customer_ids: Vec<Uuid>,
    /// State; `None` means NEW on create.
    pub state: Option<TicketState>,
    /// 1 to 5; 0 means the default.
    pub priority: i32,
    /// Assignee; `None` on create means routing decides.
    pub assignee_id: Option<Uuid>,
    /// The ticket's own SLA policy.
    pub sla_policy_id: Option<Uuid>,
    /// End of a pending state.
    pub pending_until: Option<Timestamp>,
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketField {
    /// `title`
    Title,
    /// `group_id`
    GroupId,
    /// `state`
    State,
    /// `pending_until`
    PendingUntil,
    /// `priority`
    Priority,
    /// `assignee_id`
    AssigneeId,
    /// `sla_policy_id`
    SlaPolicyId,
    /// `additional_customer_ids`
    AdditionalCustomerIds,
}

impl TicketField {
    /// Every updatable field.
    pub const ALL: [Self; 8] = [
        Self::Title,
        Self::GroupId,
        Self::State,
        Self::PendingUntil,
        Self::Priority,
        Self::AssigneeId,
        Self::SlaPolicyId,
        Self::AdditionalCustomerIds,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::GroupId => "group_id",
            Self::State => "state",
            Self::PendingUntil => "pending_until",
            Self::Priority => "priority",
            Self::AssigneeId => "assignee_id",
            Self::SlaPolicyId => "sla_policy_id",
            Self::AdditionalCustomerIds => "additional_customer_ids",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "customer_id" => Some("customer_id is changed by TransferTickets".into()),
            "organisation_id" => Some("organisation_id is set when the ticket is created".into()),
            "id"
            | "number"
            | "create_time"
            | "update_time"
            | "etag"
            | "first_response_time"
            | "close_time"
            | "first_response_due"
            | "update_due"
            | "solution_due"
            | "escalation"
            | "reminder_due"
            | "applied_sla_policy_id" => Some(format!("{path} is output only")),
            _ => None,
        })
    }

    /// Whether a customer may change this field of its ticket.
    fn open_to_customers(self) -> bool {
        matches!(self, Self::Title | Self::State)
    }
}

/// Which ticket to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketKey {
    /// By id.
    Id(Uuid),
    /// By number.
    Number(i64),
}

/// The ticket rules, over the store.
#[derive(Clone, Debug)]
pub struct Tickets {
    pub(crate) store: Store,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) permissions: Permissions,
    pub(crate) slas: Slas,
    /// The rights of streaming callers, shared by their lists and watches.
    pub(crate) stream_rights: super::stream_rights::StreamRights,
}

impl Tickets {
    /// The rules over `store`, reading time from `clock`, rights from `permissions` and
    /// policies from `slas`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, permissions: Permissions, slas: Slas) -> Self {
        Self {
            store,
            clock,
            permissions,
            slas,
            stream_rights: Default::default(),
        }
    }

    /// The tickets `principal` may read (`Level::Ro`) or work on (`Level::Rw`).
    pub async fn scope(&self, principal: &Principal, level: Level) -> Result<TicketScope> {
        self.permissions.ticket_scope(principal, level).await
    }

    /// Creates a ticket; with `request_id`, a retry returns the first result.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn create(
        &self,
        principal: &Principal,
        input: TicketInput,
        request_id: Option<String>,
    ) -> Result<Ticket> {
        let key = fields::idempotency_key("CreateTicket", &principal.actor(), request_id, &input);
        let now = self.clock.now();
        let draft = self.draft(principal, &input, now).await?;
        let actor = principal.actor();
        let id = draft.ticket.id;
        let inserted = self
            .store
            .insert_ticket(id, now, key.as_ref(), move |number| {
                let mut ticket = draft.ticket;
                ticket.number = number;
                let mut events = vec![changes::event(
                    &actor,
                    now,
                    ResourceType::Ticket,
                    ticket.id,
                    ChangeKind::Created,
                    changes::diff(None, &audit(&ticket)),
                )];
                events.extend(alert_events(&actor, now, &Alerts::default(), &ticket));
                (ticket, events)
            })
            .await?;
        match inserted {
            Inserted::New(ticket) => Ok(ticket),
            Inserted::Replay {
                resource_id,
                request_hash,
            } => {
                if key.is_none_or(|key| key.request_hash != request_hash) {
                    return Err(Error::RequestIdReused);
                }
                self.get(principal, TicketKey::Id(resource_id)).await
            }
        }
    }

    /// The checked new ticket of a create request.
    async fn draft(
        &self,
        principal: &Principal,
        input: &TicketInput,
        now: Timestamp,
    ) -> Result<Draft> {
        let staff = !matches!(principal, Principal::Customer { .. });
        let mut violations = Violations::default();
        let title = fields::single_line(&mut violations, "title", &input.title, MAX_TITLE, true);
        let priority = priority(&mut violations, input.priority);
        let state = match input.state {
            None | Some(TicketState::New) => TicketState::New,
            Some(TicketState::Open) => TicketState::Open,
            Some(_) => {
                violations.add("state", "a new ticket is NEW or OPEN");
                TicketState::New
            }
        };
        if input.pending_until.is_some() {
            violations.add("pending_until", "a new ticket is not pending");
        }
        let customer_id = match (principal, input.customer_id) {
            (Principal::Customer { customer_id, .. }, None) => Some(*customer_id),
            (Principal::Customer { customer_id, .. }, Some(id)) if id != *customer_id => {
                return Err(Error::denied(
                    "NOT_OWN_TICKET",
                    "a customer creates tickets for itself only",
                ));
            }
            (_, id) => id,
        };
        if customer_id.is_none() {
            violations.add("customer_id", "is required");
        }
        if input.group_id.is_none() {
            violations.add("group_id", "is required");
        }
        if !staff
            && (input.assignee_id.is_some()
                || input.sla_policy_id.is_some()
                || !input.additional_customer_ids.is_empty())
        {
            return Err(Error::denied(
                "STAFF_ONLY_FIELDS",
                "assignee_id, sla_policy_id and additional_customer_ids are set by agents",
            ));
        }
        let additional =
            additional_customers(&mut violations, &input.additional_customer_ids, customer_id);
        violations.finish()?;
        let (Some(customer_id), Some(group_id)) = (customer_id, input.group_id) else {
            return Err(Error::invalid("customer_id", "is required"));
        };

        let customer = self.customer(customer_id, "customer_id").await?;
        let organisation_id = match input.organisation_id {
            Some(org) if customer.organisation_ids().any(|o| o == org) => Some(org),
            Some(org) => {
                return Err(Error::invalid(
                    "organisation_id",
                    format!("organisation {org} is not one of the customer's organisations"),
                ));
            }
            None => customer.organisation_id,
        };
        let organisation = match organisation_id {
            Some(id) => Some(
                self.store
                    .organisation(&ServiceWork::RULE_CHECKS.master_data(), id)
                    .await?
                    .ok_or_else(|| Error::invalid("organisation_id", "no such organisation"))?,
            ),
            None => None,
        };
        if let Some(org) = organisation.as_ref().filter(|o| !o.validity.is_valid()) {
            return Err(precondition(
                "ORGANISATION_INVALID",
                format!(
                    "organisation {} is invalid and gets no new tickets",
                    org.customer_id
                ),
                org.id,
            ));
        }
        let group = self.usable_group(group_id, "group_id").await?;
        if !self
            .permissions
            .customer_may_use(&customer, group.id, Level::Rw)
            .await?
        {
            return Err(precondition(
                "GROUP_NOT_USABLE",
                format!(
                    "customer {} may not use group {}: it needs a grant of its own, of its organisations or an always-group",
                    customer.email, group.name
                ),
                group.id,
            ));
        }
        if staff {
            let writable = self.scope(principal, Level::Rw).await?;
            if !writable.admits(group.id, organisation_id, std::iter::once(customer.id)) {
                return Err(Error::denied(
                    "NO_GROUP_WRITE",
                    format!("creating tickets in group {} needs RW on it", group.name),
                ));
            }
        }
        for (index, id) in additional.iter().enumerate() {
            self.customer(*id, &format!("additional_customer_ids[{index}]"))
                .await?;
        }
        if let Some(policy) = input.sla_policy_id {
            references::sla_policy(&self.store, "sla_policy_id", policy).await?;
        }
        let assignee_id = match input.assignee_id {
            Some(agent) => Some(
                references::valid_agent(&self.store, "assignee_id", agent)
                    .await?
                    .id,
            ),
            None => {
                self.route(
                    organisation.as_ref().and_then(|o| o.default_assignee_id),
                    &group,
                )
                .await?
            }
        };

        let mut ticket = Ticket {
            id: Uuid::now_v7(),
            number: 0,
            title,
            group_id: group.id,
            customer_id: customer.id,
            organisation_id,
            additional_customer_ids: additional,
            state,
            priority,
            assignee_id,
            sla_policy_id: input.sla_policy_id,
            applied_sla_policy_id: None,
            pending_until: None,
            first_response_time: None,
            close_time: None,
            last_customer_contact: now,
            last_agent_response: None,
            pending_since: None,
            clocks: SlaClocks::default(),
            first_response_due: None,
            update_due: None,
            solution_due: None,
            alerts: Alerts::default(),
            next_event_time: None,
            create_time: now,
            update_time: now,
            version: 1,
        };
        let (policy_id, sla) = self
            .applicable_sla(
                &ticket,
                organisation.as_ref().and_then(|o| o.sla_policy_id),
                &group,
            )
            .await?;
        ticket.applied_sla_policy_id = policy_id;
        escalation::refresh(&mut ticket, &sla, now);
        Ok(Draft { ticket })
    }

    /// Reads one ticket the caller may read.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn get(&self, principal: &Principal, key: TicketKey) -> Result<Ticket> {
        let scope = self.scope(principal, Level::Ro).await?;
        self.find(&scope, key).await
    }

    /// The ticket `key` within `scope`.
    pub(crate) async fn find(&self, scope: &TicketScope, key: TicketKey) -> Result<Ticket> {
        let found = match key {
            TicketKey::Id(id) => self.store.ticket(scope, id).await?,
            TicketKey::Number(number) => self.store.ticket_by_number(scope, number).await?,
        };
        found.ok_or(Error::NotFound { resource: "ticket" })
    }

    /// The ticket `id` if the caller may work on it: NOT_FOUND if it may not even read it,
    /// PERMISSION_DENIED if it may only read it.
    pub(crate) async fn writable(&self, principal: &Principal, id: Uuid) -> Result<Ticket> {
        let writable = self.scope(principal, Level::Rw).await?;
        if let Some(ticket) = self.store.ticket(&writable, id).await? {
            return Ok(ticket);
        }
        let readable = self.scope(principal, Level::Ro).await?;
        match self.store.ticket(&readable, id).await? {
            Some(_) => Err(Error::denied(
                "READ_ONLY",
                "the caller may read this ticket but not work on it (RW needed)",
            )),
            None => Err(Error::NotFound { resource: "ticket" }),
        }
    }

    /// Changes `fields` of ticket `id` to the values in `input`, if `etag` is current.
    #[tracing::instrument(skip(self, principal, input), level = "debug", err(level = "debug"))]
    pub async fn update(
        &self,
        principal: &Principal,
        id: Uuid,
        etag: &str,
        fields: &[TicketField],
        input: &TicketInput,
    ) -> Result<Ticket> {
        let current = self.writable(principal, id).await?;
        check_etag("ticket", &current.etag(), Etag::Required(etag))?;
        let customer = matches!(principal, Principal::Customer { .. });
        if customer && let Some(field) = fields.iter().find(|f| !f.open_to_customers()) {
            return Err(Error::denied(
                "STAFF_ONLY_FIELDS",
                format!(
                    "customers may change title and state only, not {}",
                    field.name()
                ),
            ));
        }
        let now = self.clock.now();
        let mut next = current.clone();
        let mut violations = Violations::default();
        let mut new_group = None;
        for field in fields {
            match field {
                TicketField::Title => {
                    next.title = fields::single_line(
                        &mut violations,
                        "title",
                        &input.title,
                        MAX_TITLE,
                        true,
                    );
                }
                TicketField::Priority => next.priority = priority(&mut violations, input.priority),
                TicketField::GroupId => match input.group_id {
                    Some(group) => new_group = Some(group),
                    None => violations.add("group_id", "is required"),
                },
                TicketField::AssigneeId => next.assignee_id = input.assignee_id,
                TicketField::SlaPolicyId => next.sla_policy_id = input.sla_policy_id,
                TicketField::AdditionalCustomerIds => {
                    next.additional_customer_ids = additional_customers(
                        &mut violations,
                        &input.additional_customer_ids,
                        Some(current.customer_id),
                    );
                }
                TicketField::State | TicketField::PendingUntil => {}
            }
        }
        let state = fields
            .contains(&TicketField::State)
            .then_some(input.state)
            .flatten();
        if fields.contains(&TicketField::State) && state.is_none() {
            violations.add("state", "is required");
        }
        let pending_until = fields
            .contains(&TicketField::PendingUntil)
            .then_some(input.pending_until);
        transition(
            &mut violations,
            &mut next,
            state,
            pending_until,
            now,
            customer,
        );
        violations.finish()?;

        if let Some(group) = new_group.filter(|g| *g != current.group_id) {
            let group = self.usable_group(group, "group_id").await?;
            let writable = self.scope(principal, Level::Rw).await?;
            if !writable.admits(group.id, next.organisation_id, std::iter::empty()) {
                return Err(Error::denied(
                    "NO_GROUP_WRITE",
                    format!("moving tickets into group {} needs RW on it", group.name),
                ));
            }
            next.group_id = group.id;
        }
        references::check_changed(
            &self.store,
            ("assignee_id", current.assignee_id, next.assignee_id),
            ("sla_policy_id", current.sla_policy_id, next.sla_policy_id),
        )
        .await?;
        for (index, id) in next.additional_customer_ids.iter().enumerate() {
            if !current.additional_customer_ids.contains(id) {
                self.customer(*id, &format!("additional_customer_ids[{index}]"))
                    .await?;
            }
        }

        // The clocks stood still under the SLA that applied while they did.
        let before_sla = self.slas.sla(current.applied_sla_policy_id).await?;
        let paused = |t: &Ticket| t.state.is_pending() || t.state == TicketState::Closed;
        match (paused(&current), paused(&next)) {
            (false, true) => escalation::pause(&mut next, now),
            (true, false) => escalation::resume(&mut next, now, &before_sla),
            _ => {}
        }
        let group = self
            .store
            .group(next.group_id)
            .await?
            .ok_or(Error::NotFound { resource: "group" })?;
        let organisation_policy = match next.organisation_id {
            Some(id) => self
                .store
                .organisation(&ServiceWork::RULE_CHECKS.master_data(), id)
                .await?
                .and_then(|o| o.sla_policy_id),
            None => None,
        };
        let (policy_id, sla) = self
            .applicable_sla(&next, organisation_policy, &group)
            .await?;
        next.applied_sla_policy_id = policy_id;
        escalation::refresh(&mut next, &sla, now);

        let changes = changes::diff(Some(&audit(&current)), &audit(&next));
        if changes.is_empty() {
            return Ok(current);
        }
        next.version = current.version + 1;
        next.update_time = now;
        let actor = principal.actor();
        let mut events = vec![changes::event(
            &actor,
            now,
            ResourceType::Ticket,
            id,
            ChangeKind::Updated,
            changes,
        )];
        events.extend(alert_events(&actor, now, &current.alerts, &next));
        self.store
            .update_ticket(&next, current.version, &events)
            .await?;
        Ok(next)
    }

    /// Gives the tickets of customer `from` (open ones only with `open_only`) to customer
    /// `to`, as main and additional customer, in one transaction: every ticket of `from` that
    /// the caller may work on. Returns the tickets moved.
    #[tracing::instrument(skip(self, principal, writer), level = "debug", err(level = "debug"))]
    pub async fn transfer(
        &self,
        principal: &Principal,
        writer: &MasterDataWriter,
        from: Uuid,
        to: Uuid,
        open_only: bool,
    ) -> Result<Vec<Ticket>> {
        if from == to {
            return Err(Error::invalid(
                "to_customer_id",
                "must differ from from_customer_id",
            ));
        }
        self.customer_exists(from, "from_customer_id").await?;
        let target = self.customer_exists(to, "to_customer_id").await?;
        if !target.validity.is_valid() {
            return Err(precondition(
                "CUSTOMER_INVALID",
                format!("customer {} is invalid and takes no tickets", target.email),
                target.id,
            ));
        }
        let scope = self.scope(principal, Level::Rw).await?;
        let actor = writer.actor().clone();
        let now = self.clock.now();
        self.store
            .transfer_tickets(&scope, from, to, open_only, now, move |before, after| {
                transfer_event(&actor, now, before, after)
            })
            .await
    }

    /// One page of the history of a ticket the caller may read, oldest first.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn history(
        &self,
        principal: &Principal,
        id: Uuid,
        page_size: i32,
        page_token: &str,
    ) -> Result<Page<StoredChange>> {
        let ticket = self.get(principal, TicketKey::Id(id)).await?;
        let limit = paging::page_size(page_size)?;
        let fingerprint = paging::fingerprint(&("ticket_history", ticket.id));
        let after: Option<i64> = paging::decode_token(page_token, &fingerprint)?;
        let items = self
            .store
            .changes_after(
                ResourceType::Ticket,
                ticket.id,
                after.unwrap_or(0),
                limit + 1,
            )
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |change| {
            change.seq
        }))
    }

    /// What a new comment by `author` does to `ticket` at `now`: an agent's first public
    /// comment is the first response and any public one answers the customer; a customer's
    /// comment is a contact (the update clock starts again) and reopens a pending ticket.
    /// `None` when the ticket does not change.
    pub(crate) async fn after_comment(
        &self,
        ticket: &Ticket,
        actor: &Actor,
        from_customer: bool,
        public: bool,
        now: Timestamp,
    ) -> Result<Option<TicketChange>> {
        let mut next = ticket.clone();
        if from_customer {
            next.customer_contact(now);
            if ticket.state.is_pending() {
                next.state = TicketState::Open;
                next.pending_until = None;
            }
        } else if public {
            next.first_response_time.get_or_insert(now);
            next.last_agent_response = Some(now);
        } else {
            return Ok(None);
        }
        if ticket.state.is_pending() && !next.state.is_pending() {
            let before = self.slas.sla(ticket.applied_sla_policy_id).await?;
            escalation::resume(&mut next, now, &before);
        }
        let group = self
            .store
            .group(next.group_id)
            .await?
            .ok_or(Error::NotFound { resource: "group" })?;
        let organisation_policy = match next.organisation_id {
            Some(id) => self
                .store
                .organisation(&ServiceWork::RULE_CHECKS.master_data(), id)
                .await?
                .and_then(|o| o.sla_policy_id),
            None => None,
        };
        let (policy_id, sla) = self
            .applicable_sla(&next, organisation_policy, &group)
            .await?;
        next.applied_sla_policy_id = policy_id;
        escalation::refresh(&mut next, &sla, now);
        next.version = ticket.version + 1;
        next.update_time = now;
        let mut events = Vec::new();
        let changes = changes::diff(Some(&audit(ticket)), &audit(&next));
        if !changes.is_empty() {
            events.push(changes::event(
                actor,
                now,
                ResourceType::Ticket,
                ticket.id,
                ChangeKind::Updated,
                changes,
            ));
        }
        events.extend(alert_events(actor, now, &ticket.alerts, &next));
        Ok(Some(TicketChange {
            ticket: next,
            expected_version: ticket.version,
            events,
        }))
    }

    /// The SLA that applies to `ticket`: its own policy, else its organisation's, else its
    /// group's default, else none.
    pub(crate) async fn applicable_sla(
        &self,
        ticket: &Ticket,
        organisation_policy: Option<Uuid>,
        group: &Group,
    ) -> Result<(Option<Uuid>, Sla)> {
        let policy = ticket
            .sla_policy_id
            .or(organisation_policy)
            .or(group.default_sla_policy_id);
        Ok((policy, self.slas.sla(policy).await?))
    }

    /// The organisation's default assignee, else the group's responsible agent, if valid.
    async fn route(
        &self,
        organisation_default: Option<Uuid>,
        group: &Group,
    ) -> Result<Option<Uuid>> {
        for candidate in [organisation_default, group.responsible_agent_id]
            .into_iter()
            .flatten()
        {
            if self
                .store
                .agent(candidate)
                .await?
                .is_some_and(|agent| agent.validity.is_valid())
            {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// The group `id`, which must exist and be valid.
    async fn usable_group(&self, id: Uuid, field: &str) -> Result<Group> {
        let group = self
            .store
            .group(id)
            .await?
            .ok_or_else(|| Error::invalid(field, format!("no group has the id {id}")))?;
        if !group.validity.is_valid() {
            return Err(precondition(
                "GROUP_INVALID",
                format!("group {} is invalid and takes no tickets", group.name),
                group.id,
            ));
        }
        Ok(group)
    }

    /// The customer `id`, which must exist (`field` names it) and be valid.
    async fn customer(&self, id: Uuid, field: &str) -> Result<Customer> {
        let customer = self.customer_exists(id, field).await?;
        if !customer.validity.is_valid() {
            return Err(precondition(
                "CUSTOMER_INVALID",
                format!(
                    "customer {} is invalid and gets no new tickets",
                    customer.email
                ),
                customer.id,
            ));
        }
        Ok(customer)
    }

    async fn customer_exists(&self, id: Uuid, field: &str) -> Result<Customer> {
        self.store
            .customer(&ServiceWork::RULE_CHECKS.master_data(), id)
            .await?
            .ok_or_else(|| Error::invalid(field, format!("no customer has the id {id}")))
    }
}

/// A checked ticket before it has a number.
struct Draft {
    ticket: Ticket,
}

/// Applies a requested state (and pending time) to `ticket`: the state machine of DESIGN §2.
fn transition(
    violations: &mut Violations,
    ticket: &mut Ticket,
    state: Option<TicketState>,
    pending_until: Option<Option<Timestamp>>,
    now: Timestamp,
    by_customer: bool,
) {
    let from = ticket.state;
    let to = state.unwrap_or(from);
    if by_customer && state.is_some() && !matches!(to, TicketState::Closed | TicketState::Open) {
        violations.add("state", "customers may close or reopen a ticket only");
        return;
    }
    if to == TicketState::New && from != TicketState::New {
        violations.add("state", "a ticket cannot return to NEW");
        return;
    }
    if to.is_pending() {
        // A pending time given now, else the one of a ticket that stays in its pending state.
        let until = match pending_until {
            Some(given) => given,
            None if from == to => ticket.pending_until,
            None => None,
        };
        let newly_set = pending_until.is_some() || from != to;
        match until {
            None => violations.add(
                "pending_until",
                "is required for a pending state: when the reminder is due or the ticket closes",
            ),
            Some(until) if newly_set && until <= now => {
                violations.add("pending_until", "must be in the future")
            }
            Some(until) => ticket.pending_until = Some(until),
        }
    } else if pending_until.flatten().is_some() {
        violations.add(
            "pending_until",
            "only a pending state (PENDING_REMINDER, PENDING_CLOSE) has one",
        );
    } else {
        ticket.pending_until = None;
    }
    if to == TicketState::Closed && from != TicketState::Closed {
        ticket.close_time = Some(now);
    }
    if from == TicketState::Closed && to != TicketState::Closed {
        ticket.close_time = None;
    }
    if by_customer && to == TicketState::Open && from != TicketState::Open {
        // A customer reopening its ticket is a contact: the update clock starts again.
        ticket.customer_contact(now);
    }
    ticket.state = to;
}

/// The priority a client asked for: 0 is the default.
fn priority(violations: &mut Violations, raw: i32) -> u8 {
    match raw {
        0 => DEFAULT_PRIORITY,
        1..=5 => u8::try_from(raw).unwrap_or(DEFAULT_PRIORITY),
        _ => {
            violations.add("priority", "must be from 1 (low) to 5 (critical)");
            DEFAULT_PRIORITY
        }
    }
}

/// Additional customers: each once, not the main customer; stored sorted.
fn additional_customers(
    violations: &mut Violations,
    raw: &[Uuid],
    main: Option<Uuid>,
) -> Vec<Uuid> {
    if raw.len() > MAX_ADDITIONAL_CUSTOMERS {
        violations.add(
            "additional_customer_ids",
            format!("must list at most {MAX_ADDITIONAL_CUSTOMERS} customers"),
        );
        return Vec::new();
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(raw.len());
    for (index, id) in raw.iter().enumerate() {
        if Some(*id) == main {
            violations.add(
                format!("additional_customer_ids[{index}]"),
                "is the main customer",
            );
        } else if ids.contains(id) {
            violations.add(
                format!("additional_customer_ids[{index}]"),
                "is listed twice",
            );
        } else {
            ids.push(*id);
        }
    }
    ids.sort();
    ids
}

fn precondition(reason: &'static str, message: String, subject: Uuid) -> Error {
    Error::FailedPrecondition {
        reason,
        message: message.clone(),
        violations: vec![PreconditionViolation {
            kind: reason.into(),
            subject: subject.to_string(),
            description: message,
        }],
    }
}

/// The change-log events of the alert changes between `before` and `ticket.alerts`.
pub(crate) fn alert_events(
    actor: &Actor,
    now: Timestamp,
    before: &Alerts,
    ticket: &Ticket,
) -> Vec<ChangeEvent> {
    escalation::alert_changes(before, ticket)
        .into_iter()
        .map(|change| {
            changes::event(
                actor,
                now,
                ResourceType::Ticket,
                ticket.id,
                change.kind(),
                change.fields(),
            )
        })
        .collect()
}

/// The history entry of a ticket whose customers were replaced.
pub(crate) fn transfer_event(
    actor: &Actor,
    now: Timestamp,
    before: &Ticket,
    after: &Ticket,
) -> ChangeEvent {
    let mut changes = changes::diff(Some(&audit(before)), &audit(after));
    if changes.is_empty() {
        changes.push(FieldChange {
            field: "customer_id".into(),
            old: json!(before.customer_id),
            new: json!(after.customer_id),
        });
    }
    changes::event(
        actor,
        now,
        ResourceType::Ticket,
        after.id,
        ChangeKind::Transferred,
        changes,
    )
}

/// The ticket's audited fields: what its history shows.
pub(crate) fn audit(ticket: &Ticket) -> Audit {
    let time = |t: Option<Timestamp>| json!(t.map(|t| t.to_string()));
    vec![
        ("number", json!(ticket.number)),
        ("title", json!(ticket.title)),
        ("group_id", json!(ticket.group_id)),
        ("customer_id", json!(ticket.customer_id)),
        ("organisation_id", json!(ticket.organisation_id)),
        (
            "additional_customer_ids",
            json!(ticket.additional_customer_ids),
        ),
        ("state", json!(ticket.state)),
        ("priority", json!(ticket.priority)),
        ("assignee_id", json!(ticket.assignee_id)),
        ("sla_policy_id", json!(ticket.sla_policy_id)),
        ("applied_sla_policy_id", json!(ticket.applied_sla_policy_id)),
        ("pending_until", time(ticket.pending_until)),
        ("first_response_time", time(ticket.first_response_time)),
        ("close_time", time(ticket.close_time)),
        ("first_response_due", time(ticket.first_response_due)),
        ("update_due", time(ticket.update_due)),
        ("solution_due", time(ticket.solution_due)),
    ]
}
