//! Erasure of a person (GDPR article 17): what is asked, and what was done.

use uuid::Uuid;

use super::{ChangeEvent, Customer, FieldChange};

/// The domain of the tombstone addresses: `.invalid` is reserved (RFC 2606) and reaches
/// nobody, and the domain refuses it as anyone's address.
pub const ERASED_DOMAIN: &str = "erased.invalid";

/// One erasure, as the domain decided it; the store carries it out in one transaction.
#[derive(Clone, Debug)]
pub struct Erasure {
    /// The customer.
    pub id: Uuid,
    /// The version the erasure was decided on; another write since fails it (ABORTED).
    pub expected_version: i64,
    /// Keep the comments the person wrote, with the tombstone as author.
    pub keep_conversation: bool,
    /// Erase even while the person has open tickets (they stay open with the tombstone).
    pub keep_open_tickets: bool,
    /// Refuse while the person has any ticket at all (DeleteCustomer).
    pub refuse_tickets: bool,
    /// What stays under the id when tickets or kept comments still name it.
    pub tombstone: Customer,
    /// The entry that records the erasure; the store adds what was done as its changes.
    pub event: ChangeEvent,
}

/// What an erasure did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErasureReport {
    /// Whether a tombstone remains under the id.
    pub tombstone: bool,
    /// Tickets that remain with the tombstone as main or additional customer.
    pub tickets_kept: u64,
    /// Comments the person wrote, deleted.
    pub comments_deleted: u64,
    /// Comments the person wrote, kept.
    pub comments_kept: u64,
    /// Notes about the person, deleted.
    pub notes_deleted: u64,
    /// Attachments deleted with those comments and notes.
    pub attachments_deleted: u64,
    /// Grants deleted.
    pub grants_deleted: u64,
    /// API tokens deleted.
    pub tokens_deleted: u64,
    /// Change-log entries whose values were erased.
    pub changes_erased: u64,
}

impl ErasureReport {
    /// The report as the changes of the erasure's own entry: counts and a flag, nothing
    /// personal.
    pub fn changes(&self) -> Vec<FieldChange> {
        let count = |field: &str, value: u64| FieldChange {
            field: field.to_owned(),
            old: serde_json::Value::Null,
            new: serde_json::json!(value),
        };
        vec![
            FieldChange {
                field: "tombstone".into(),
                old: serde_json::Value::Null,
                new: serde_json::json!(self.tombstone),
            },
            count("tickets_kept", self.tickets_kept),
            count("comments_deleted", self.comments_deleted),
            count("comments_kept", self.comments_kept),
            count("notes_deleted", self.notes_deleted),
            count("attachments_deleted", self.attachments_deleted),
            count("grants_deleted", self.grants_deleted),
            count("tokens_deleted", self.tokens_deleted),
            count("changes_erased", self.changes_erased),
        ]
    }
}

/// `changes` with every value erased: the field names stay.
pub fn erased_values(changes: &[FieldChange]) -> Vec<FieldChange> {
    changes
        .iter()
        .map(|change| FieldChange {
            field: change.field.clone(),
            old: serde_json::Value::Null,
            new: serde_json::Value::Null,
        })
        .collect()
}
