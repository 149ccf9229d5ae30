//! What the change log records of a ticket: its audited fields, its alert changes and its
//! transfers.

use jiff::Timestamp;
use serde_json::json;

use crate::{
    domain::{
        changes::{self, Audit},
        escalation,
    },
    model::{Actor, Alerts, ChangeEvent, ChangeKind, FieldChange, ResourceType, Ticket},
};

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
        ("merged_into", json!(ticket.merged_into)),
        ("severity", json!(ticket.severity)),
        ("sla_contact_group_id", json!(ticket.sla_contact_group_id)),
    ]
}
