//! Changing a ticket: its fields through the state machine, its customers by transfer, and
//! what a new comment does to it.

use jiff::Timestamp;
use uuid::Uuid;

use super::{
    Tickets, alert_events, audit,
    fields::{MAX_TITLE, TicketField, TicketInput, additional_customers, priority},
    precondition, refuse_merged, transfer_event,
};
use crate::{
    domain::{
        access::Principal,
        changes::{self, check_etag},
        escalation,
        fields::{self, Violations},
        references,
        rights::MasterDataWriter,
    },
    error::{Error, Result},
    model::{Actor, ChangeKind, Level, ResourceType, Ticket, TicketState},
    store::TicketChange,
};

impl Tickets {
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
        check_etag("ticket", &current.etag(), etag)?;
        refuse_merged(&current)?;
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
                TicketField::Severity => next.severity = input.severity,
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
            if !writable.admits(group.id, next.organisation_id, None, std::iter::empty()) {
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
                self.customer(
                    &principal.scope(),
                    *id,
                    &format!("additional_customer_ids[{index}]"),
                )
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
        self.apply_sla(&mut next, now).await?;

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
        let additional_changed = next.additional_customer_ids != current.additional_customer_ids;
        self.store
            .update_ticket(&next, current.version, additional_changed, &events)
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
        self.customer_exists(writer.contacts(), from, "from_customer_id")
            .await?;
        let target = self
            .customer_exists(writer.contacts(), to, "to_customer_id")
            .await?;
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
        self.apply_sla(&mut next, now).await?;
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
