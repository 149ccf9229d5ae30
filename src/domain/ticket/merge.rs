//! Merging a duplicate ticket into another (OTRS, Znuny, Zammad and Zendesk all have it): the
//! conversation and the customers move, the duplicate closes for good and points to the
//! ticket that remains.

use serde_json::json;
use uuid::Uuid;

use super::{MAX_ADDITIONAL_CUSTOMERS, Tickets, alert_events, audit, precondition};
use crate::{
    domain::{
        access::Principal,
        changes::{self, check_etag_of},
        escalation,
    },
    error::{Error, Result},
    model::{ChangeKind, FieldChange, ResourceType, Ticket, TicketState},
};

/// A merge as it stands: the ticket that remains, the merged one, and how many comments moved.
#[derive(Clone, Debug)]
pub struct TicketMerge {
    /// The target, with the source's customers and conversation.
    pub target: Ticket,
    /// The source: closed, pointing to the target.
    pub source: Ticket,
    /// How many comments moved (0 when an earlier merge is answered again).
    pub comments_moved: u64,
}

impl Tickets {
    /// Merges ticket `source_id` into `target_id`, both at the etags sent, in one
    /// transaction. The caller must be able to work on both.
    #[tracing::instrument(skip(self, principal), level = "debug", err(level = "debug"))]
    pub async fn merge(
        &self,
        principal: &Principal,
        source_id: Uuid,
        target_id: Uuid,
        source_etag: &str,
        target_etag: &str,
    ) -> Result<TicketMerge> {
        if source_id == target_id {
            return Err(Error::invalid(
                "target_id",
                "must differ from source_id: a ticket cannot be merged into itself",
            ));
        }
        let source = self.writable(principal, source_id).await?;
        let target = self.writable(principal, target_id).await?;
        if source.merged_into == Some(target.id) {
            // A retry of a merge whose answer was lost.
            return Ok(TicketMerge {
                target,
                source,
                comments_moved: 0,
            });
        }
        check_etag_of("source_etag", "ticket", &source.etag(), source_etag)?;
        check_etag_of("target_etag", "ticket", &target.etag(), target_etag)?;
        refuse_merged(&source)?;
        refuse_merged(&target)?;

        let now = self.clock.now();
        let mut closed = source.clone();
        closed.merged_into = Some(target.id);
        if source.state != TicketState::Closed {
            if !source.state.is_pending() {
                escalation::pause(&mut closed, now);
            }
            closed.state = TicketState::Closed;
            closed.pending_until = None;
            closed.close_time = Some(now);
        }
        self.apply_sla(&mut closed, now).await?;
        closed.version = source.version + 1;
        closed.update_time = now;

        let mut next = target.clone();
        next.additional_customer_ids = self.joined_customers(&source, &target).await?;
        if source.last_customer_contact > target.last_customer_contact {
            next.customer_contact(source.last_customer_contact);
        }
        next.last_agent_response = target.last_agent_response.max(source.last_agent_response);
        self.apply_sla(&mut next, now).await?;
        next.version = target.version + 1;
        next.update_time = now;

        let actor = principal.actor();
        let mut target_changes = changes::diff(Some(&audit(&target)), &audit(&next));
        target_changes.push(FieldChange {
            field: "merged_from".into(),
            old: serde_json::Value::Null,
            new: json!(source.id),
        });
        let mut events = vec![
            changes::event(
                &actor,
                now,
                ResourceType::Ticket,
                source.id,
                ChangeKind::MergedAway,
                changes::diff(Some(&audit(&source)), &audit(&closed)),
            ),
            changes::event(
                &actor,
                now,
                ResourceType::Ticket,
                target.id,
                ChangeKind::Merged,
                target_changes,
            ),
        ];
        events.extend(alert_events(&actor, now, &source.alerts, &closed));
        events.extend(alert_events(&actor, now, &target.alerts, &next));
        let additional_changed = next.additional_customer_ids != target.additional_customer_ids;
        let comments_moved = self
            .store
            .merge_tickets(
                (&closed, source.version),
                (&next, target.version),
                additional_changed,
                &events,
            )
            .await?;
        Ok(TicketMerge {
            target: next,
            source: closed,
            comments_moved,
        })
    }

    /// The target's additional customers after the merge: its own, and the source's main and
    /// additional customers that are still valid (an invalid one takes no part in new work
    /// and stays with the source only), sorted; at most [`MAX_ADDITIONAL_CUSTOMERS`].
    async fn joined_customers(&self, source: &Ticket, target: &Ticket) -> Result<Vec<Uuid>> {
        let mut joined = target.additional_customer_ids.clone();
        for id in std::iter::once(source.customer_id).chain(source.additional_customer_ids.clone())
        {
            if id == target.customer_id || joined.contains(&id) {
                continue;
            }
            let customer = self
                .customer_exists(
                    &crate::domain::access::ServiceWork::RULE_CHECKS.master_data(),
                    id,
                    "source_id",
                )
                .await?;
            if customer.validity.is_valid() {
                joined.push(id);
            }
        }
        joined.sort();
        if joined.len() > MAX_ADDITIONAL_CUSTOMERS {
            return Err(precondition(
                "TOO_MANY_CUSTOMERS",
                format!(
                    "the merged ticket would have {} additional customers, more than \
                     {MAX_ADDITIONAL_CUSTOMERS}: remove some from either ticket first",
                    joined.len()
                ),
                target.id,
            ));
        }
        Ok(joined)
    }
}

/// A merged ticket is closed for good: FAILED_PRECONDITION (TICKET_MERGED) naming the ticket
/// it went into, for every change and comment.
pub(crate) fn refuse_merged(ticket: &Ticket) -> Result<()> {
    match ticket.merged_into {
        Some(into) => Err(precondition(
            "TICKET_MERGED",
            format!(
                "ticket {} was merged into ticket {into}; work on that one",
                ticket.number
            ),
            ticket.id,
        )),
        None => Ok(()),
    }
}
