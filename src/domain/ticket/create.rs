//! Creating a ticket: its fields checked, its customer, organisation and group held to the
//! rules, routed to an agent, and its SLA applied.

use jiff::Timestamp;
use uuid::Uuid;

use super::{
    TicketKey, Tickets, alert_events, audit,
    fields::{MAX_TITLE, TicketInput, additional_customers, priority},
    precondition,
};
use crate::{
    domain::{
        access::{Principal, ServiceWork},
        changes, escalation,
        fields::{self, Violations},
        references,
    },
    error::{Error, Result},
    model::{Alerts, ChangeKind, Group, Level, ResourceType, SlaClocks, Ticket, TicketState},
};

impl Tickets {
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
        fields::created(inserted, key.as_ref(), async |id| {
            self.get(principal, TicketKey::Id(id)).await
        })
        .await
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
        // Without a group, the default area.
        let group_id = match input.group_id {
            Some(id) => Some(id),
            None => self.store.settings().await?.default_group_id,
        };
        if group_id.is_none() {
            violations.add(
                "group_id",
                "is required: no default area (Settings.default_group_id) is configured",
            );
        }
        if !staff
            && (input.assignee_id.is_some()
                || input.sla_policy_id.is_some()
                || input.severity.is_some()
                || !input.additional_customer_ids.is_empty())
        {
            return Err(Error::denied(
                "STAFF_ONLY_FIELDS",
                "assignee_id, sla_policy_id, severity and additional_customer_ids are set by \
                 agents",
            ));
        }
        let additional =
            additional_customers(&mut violations, &input.additional_customer_ids, customer_id);
        violations.finish()?;
        let (Some(customer_id), Some(group_id)) = (customer_id, group_id) else {
            return Err(Error::invalid("customer_id", "is required"));
        };

        let customer = self
            .customer(&principal.scope(), customer_id, "customer_id")
            .await?;
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
                    org.code
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
            if !writable.admits(
                group.id,
                organisation_id,
                None,
                std::iter::once(customer.id),
            ) {
                return Err(Error::denied(
                    "NO_GROUP_WRITE",
                    format!("creating tickets in group {} needs RW on it", group.name),
                ));
            }
        }
        for (index, id) in additional.iter().enumerate() {
            self.customer(
                &principal.scope(),
                *id,
                &format!("additional_customer_ids[{index}]"),
            )
            .await?;
        }
        if let Some(policy) = input.sla_policy_id {
            references::sla_policy(&self.store, "sla_policy_id", policy).await?;
        }
        // The customer's contact groups: the first with an SLA contract gives it, the first
        // with a responsibility for this area gives the assignee and the reader group.
        let members: Vec<Uuid> = std::iter::once(customer.id)
            .chain(customer.organisation_ids())
            .collect();
        // (Nothing to look up while no contact group has a contract or a responsibility.)
        let contact_groups: Vec<_> = if self.store.contact_groups_route().await? {
            crate::domain::contact_group::reached(&self.store, Some(customer.id), &members, false)
                .await?
                .into_iter()
                .map(|membership| membership.contact_group)
                .collect()
        } else {
            Vec::new()
        };
        let contract = contact_groups
            .iter()
            .find(|group| group.sla.is_set())
            .cloned();
        let responsibility = contact_groups.iter().find_map(|contact_group| {
            contact_group
                .responsibilities
                .iter()
                .find(|r| r.group_id == group.id)
                .copied()
        });
        let assignee_id = match input.assignee_id {
            Some(agent) => Some(
                references::valid_agent(&self.store, "assignee_id", agent)
                    .await?
                    .id,
            ),
            None => {
                self.route(
                    responsibility.map(|r| r.agent_id),
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
            merged_into: None,
            severity: input.severity,
            sla_contact_group_id: contract.as_ref().map(|group| group.id),
            reader_group_id: responsibility.and_then(|r| r.reader_group_id),
        };
        let (policy_id, sla) = self
            .applicable_sla(
                &ticket,
                contract.as_ref().map(|group| &group.sla),
                organisation.as_ref().and_then(|o| o.sla_policy_id),
                &group,
            )
            .await?;
        ticket.applied_sla_policy_id = policy_id;
        escalation::refresh(&mut ticket, &sla, now);
        Ok(Draft { ticket })
    }

    /// The first valid agent of: the one responsible for the area in the customer's contact
    /// group, the organisation's default assignee, the group's responsible agent.
    async fn route(
        &self,
        responsible: Option<Uuid>,
        organisation_default: Option<Uuid>,
        group: &Group,
    ) -> Result<Option<Uuid>> {
        for candidate in [
            responsible,
            organisation_default,
            group.responsible_agent_id,
        ]
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
}

/// A checked ticket before it has a number.
struct Draft {
    ticket: Ticket,
}
