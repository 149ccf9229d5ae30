//! Merging a duplicate customer into the one that remains.

use serde_json::json;
use uuid::Uuid;

use super::{
    changes,
    customer::Customers,
    customer_fields::{MAX_SECONDARY_EMAILS, MAX_SECONDARY_ORGANISATIONS, audit},
    rights::MasterDataWriter,
    ticket::transfer_event,
};
use crate::domain::access::ServiceWork;
use crate::{
    domain::access::Principal,
    error::{Error, PreconditionViolation, Result},
    model::{ChangeKind, Customer, FieldChange, Level, ResourceType},
};

impl Customers {
    /// Merges `source_id` into `target_id`: what the source owns moves to the target, its
    /// addresses become the target's secondary addresses, and the source is gone.
    ///
    /// A customer owns organisation memberships, custom data, grants and tickets (as main or
    /// additional customer); all of them move, in one transaction. The caller must be able to
    /// work on every one of the source's tickets, as for `TransferTickets`: otherwise
    /// FAILED_PRECONDITION names those out of its reach and nothing changes.
    #[tracing::instrument(skip(self), level = "debug", err(level = "debug"))]
    pub async fn merge(
        &self,
        principal: &Principal,
        writer: &MasterDataWriter,
        source_id: Uuid,
        target_id: Uuid,
        source_etag: &str,
        target_etag: &str,
    ) -> Result<Customer> {
        let actor = writer.actor();
        if source_id == target_id {
            return Err(Error::invalid(
                "target_id",
                "must differ from source_id: a customer cannot be merged into itself",
            ));
        }
        let source = self
            .current(writer, source_id, "source_etag", source_etag)
            .await?;
        let target = self
            .current(writer, target_id, "target_etag", target_etag)
            .await?;
        self.sources
            .check_removal(&source, "merged into another customer")?;
        if !target.validity.is_valid() {
            return Err(Error::FailedPrecondition {
                reason: "TARGET_INVALID",
                message: "the target of a merge must be a valid customer".into(),
                violations: vec![PreconditionViolation {
                    kind: "TARGET_INVALID".into(),
                    subject: target.id.to_string(),
                    description: "reactivate the target or merge the other way round".into(),
                }],
            });
        }
        // Invalid organisations take no new customers: the source's memberships of those
        // end with it.
        let mut joinable = Vec::new();
        for id in source.organisation_ids() {
            if let Some(org) = self
                .store
                .organisation(&ServiceWork::RULE_CHECKS.master_data(), id)
                .await?
                && org.validity.is_valid()
            {
                joinable.push(id);
            }
        }
        let now = self.clock.now();
        let mut next = merged(&source, &target, &joinable);
        self.sources.keep_owned(&target, &mut next);
        too_much_for_one(&next)?;
        next.version = target.version + 1;
        next.update_time = now;
        let mut target_changes = changes::diff(Some(&audit(&target)), &audit(&next));
        target_changes.push(FieldChange {
            field: "merged_from".into(),
            old: serde_json::Value::Null,
            new: json!(source.id),
        });
        let events = [
            changes::event(
                actor,
                now,
                ResourceType::Customer,
                target.id,
                ChangeKind::Merged,
                target_changes,
            ),
            changes::event(
                actor,
                now,
                ResourceType::Customer,
                source.id,
                ChangeKind::MergedAway,
                vec![FieldChange {
                    field: "merged_into".into(),
                    old: serde_json::Value::Null,
                    new: json!(target.id),
                }],
            ),
        ];
        let ticket_actor = actor.clone();
        let tickets = self.permissions.ticket_scope(principal, Level::Rw).await?;
        let merged = self
            .store
            .merge_customers(
                &tickets,
                &source,
                &next,
                target.version,
                &events,
                &move |before, after| transfer_event(&ticket_actor, now, before, after),
            )
            .await?;
        Ok(merged)
    }
}

/// A merged customer with more addresses or organisations than one customer may have is
/// refused: the duplicates must be thinned out by hand first.
fn too_much_for_one(merged: &Customer) -> Result<()> {
    let mut violations = Vec::new();
    if merged.secondary_emails.len() > MAX_SECONDARY_EMAILS {
        violations.push(PreconditionViolation {
            kind: "TOO_MANY_EMAILS".into(),
            subject: merged.id.to_string(),
            description: format!(
                "together the two have {} secondary addresses, at most {MAX_SECONDARY_EMAILS} are allowed",
                merged.secondary_emails.len()
            ),
        });
    }
    if merged.secondary_organisation_ids.len() > MAX_SECONDARY_ORGANISATIONS {
        violations.push(PreconditionViolation {
            kind: "TOO_MANY_ORGANISATIONS".into(),
            subject: merged.id.to_string(),
            description: format!(
                "together the two belong to {} secondary organisations, at most {MAX_SECONDARY_ORGANISATIONS} are allowed",
                merged.secondary_organisation_ids.len()
            ),
        });
    }
    if violations.is_empty() {
        return Ok(());
    }
    Err(Error::FailedPrecondition {
        reason: "MERGE_TOO_LARGE",
        message: "the merged customer would have more than one customer may: remove addresses or organisations first".into(),
        violations,
    })
}

/// The target with everything of the source it lacks; of the source's organisations only
/// those in `joinable` (the valid ones).
fn merged(source: &Customer, target: &Customer, joinable: &[Uuid]) -> Customer {
    let mut next = target.clone();
    let fill = |mine: &mut String, theirs: &str| {
        if mine.is_empty() {
            *mine = theirs.to_owned();
        }
    };
    fill(&mut next.first_name, &source.first_name);
    fill(&mut next.last_name, &source.last_name);
    fill(&mut next.title, &source.title);
    fill(&mut next.phone, &source.phone);
    fill(&mut next.mobile, &source.mobile);
    fill(&mut next.customer_type, &source.customer_type);
    if next.login.is_none() {
        next.login = source.login.clone();
    }
    if next.external_id.is_none() {
        next.external_id = source.external_id.clone();
    }
    for (key, value) in &source.custom_fields {
        next.custom_fields
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }

    if next.organisation_id.is_none() {
        // The source's primary, or its first valid organisation when that one is invalid.
        next.organisation_id = source.organisation_ids().find(|id| joinable.contains(id));
    }
    let mut secondary: Vec<Uuid> = next
        .secondary_organisation_ids
        .iter()
        .copied()
        .chain(source.organisation_ids().filter(|id| joinable.contains(id)))
        .filter(|id| Some(*id) != next.organisation_id)
        .collect();
    secondary.sort();
    secondary.dedup();
    next.secondary_organisation_ids = secondary;

    let primary = next.email.to_lowercase();
    let mut emails: Vec<String> = Vec::new();
    for email in next
        .secondary_emails
        .iter()
        .chain(std::iter::once(&source.email))
        .chain(source.secondary_emails.iter())
    {
        let key = email.to_lowercase();
        if key != primary && !emails.iter().any(|known| known.to_lowercase() == key) {
            emails.push(email.clone());
        }
    }
    emails.sort_by_key(|email| email.to_lowercase());
    next.secondary_emails = emails;
    next
}
