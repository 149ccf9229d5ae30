//! Tickets: create with routing and SLA, read, update through the state machine, transfer
//! between customers, and history. Every read and write goes through the caller's
//! [`TicketScope`], so a ticket the caller may not read is NOT_FOUND like a missing one.

mod create;
mod events;
mod fields;
mod merge;
mod update;

use std::sync::Arc;

use jiff::Timestamp;
use uuid::Uuid;

pub(crate) use events::{alert_events, audit, transfer_event};
pub use fields::{DEFAULT_PRIORITY, MAX_ADDITIONAL_CUSTOMERS, MAX_TITLE, TicketField, TicketInput};
pub use merge::TicketMerge;
pub(crate) use merge::refuse_merged;

use super::{
    Permissions, Slas,
    escalation::{self, Sla},
    paging::{self, Page},
};
use crate::{
    clock::Clock,
    domain::access::{Authenticator, Principal, ServiceWork},
    error::{Error, PreconditionViolation, Result},
    model::{Customer, Group, Level, ResourceType, SlaContract, Ticket},
    store::{Store, StoredChange, TicketScope},
};

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
    /// Asked again by running streams whether their caller's token still works.
    pub(crate) authenticator: Arc<Authenticator>,
    /// The links of the overviews.
    pub(crate) links: Arc<Vec<crate::domain::links::LinkTemplate>>,
}

impl Tickets {
    /// The rules over `store`, reading time from `clock`, rights from `permissions`,
    /// policies from `slas`, and whether a streaming caller's token still works from
    /// `authenticator`.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        permissions: Permissions,
        slas: Slas,
        authenticator: Arc<Authenticator>,
    ) -> Self {
        Self {
            store,
            clock,
            permissions,
            slas,
            authenticator,
            links: Arc::new(crate::domain::links::LinkTemplate::defaults()),
        }
    }

    /// The same rules, with `templates` for the overviews' links.
    pub fn with_link_templates(
        mut self,
        templates: Vec<crate::domain::links::LinkTemplate>,
    ) -> Self {
        self.links = Arc::new(templates);
        self
    }

    /// The tickets `principal` may read (`Level::Ro`) or work on (`Level::Rw`).
    pub async fn scope(&self, principal: &Principal, level: Level) -> Result<TicketScope> {
        self.permissions.ticket_scope(principal, level).await
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
        // A merged ticket's history goes on in the ticket it went into.
        let mut ids = vec![ticket.id];
        ids.extend(self.store.tickets_merged_into(ticket.id).await?);
        let items = self
            .store
            .changes_after(ResourceType::Ticket, &ids, after.unwrap_or(0), limit + 1)
            .await?;
        Ok(paging::page(items, limit, &fingerprint, |change| {
            change.seq
        }))
    }
    /// The SLA that applies to `ticket`, the first of: its own policy; its contact group's
    /// `contract` (the level of its assessed severity, else the default level); its
    /// organisation's policy; its group's default; none.
    pub(crate) async fn applicable_sla(
        &self,
        ticket: &Ticket,
        contract: Option<&SlaContract>,
        organisation_policy: Option<Uuid>,
        group: &Group,
    ) -> Result<(Option<Uuid>, Sla)> {
        let policy = ticket
            .sla_policy_id
            .or(contract.and_then(|contract| contract.policy_for(ticket.severity)))
            .or(organisation_policy)
            .or(group.default_sla_policy_id);
        Ok((policy, self.slas.sla(policy).await?))
    }

    /// Applies to `ticket` the SLA that applies to it now (see [`Self::applicable_sla`]; the
    /// contract of its contact group while that group is valid) and moves its deadlines and
    /// alerts on to `now`.
    async fn apply_sla(&self, ticket: &mut Ticket, now: Timestamp) -> Result<()> {
        let group = self
            .store
            .group(ticket.group_id)
            .await?
            .ok_or(Error::NotFound { resource: "group" })?;
        let organisation_policy = match ticket.organisation_id {
            Some(id) => self
                .store
                .organisation(&ServiceWork::RULE_CHECKS.master_data(), id)
                .await?
                .and_then(|o| o.sla_policy_id),
            None => None,
        };
        let contract = match ticket.sla_contact_group_id {
            Some(id) => self
                .store
                .contact_group(id)
                .await?
                .filter(|group| group.validity.is_valid())
                .map(|group| group.sla),
            None => None,
        };
        let (policy_id, sla) = self
            .applicable_sla(ticket, contract.as_ref(), organisation_policy, &group)
            .await?;
        ticket.applied_sla_policy_id = policy_id;
        escalation::refresh(ticket, &sla, now);
        Ok(())
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

    /// The customer `id`, which must exist within `scope` (`field` names it) and be valid.
    async fn customer(
        &self,
        scope: &crate::store::Scope,
        id: Uuid,
        field: &str,
    ) -> Result<Customer> {
        let customer = self.customer_exists(scope, id, field).await?;
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

    /// The customer `id`, which must exist within `scope` (`field` names it).
    async fn customer_exists(
        &self,
        scope: &crate::store::Scope,
        id: Uuid,
        field: &str,
    ) -> Result<Customer> {
        self.store
            .customer(scope, id)
            .await?
            .ok_or_else(|| Error::invalid(field, format!("no customer has the id {id}")))
    }
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
