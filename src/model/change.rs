use jiff::Timestamp;
use uuid::Uuid;

use super::Actor;

/// The kinds of resources the change log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceType {
    /// An organisation.
    Organisation,
    /// A customer.
    Customer,
    /// The settings record (its id is the nil UUID).
    Settings,
    /// An agent.
    Agent,
    /// A group.
    Group,
    /// A grant.
    Grant,
    /// An API token.
    Token,
    /// An SLA calendar.
    Calendar,
    /// An SLA policy.
    SlaPolicy,
    /// A ticket.
    Ticket,
    /// A comment.
    Comment,
}

impl ResourceType {
    /// Whether a change of such a resource may change what someone may do: grants, the
    /// settings, and the validity, flags and memberships of groups, agents, customers and
    /// organisations.
    pub fn shapes_rights(self) -> bool {
        matches!(
            self,
            Self::Grant
                | Self::Settings
                | Self::Group
                | Self::Agent
                | Self::Customer
                | Self::Organisation
        )
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Organisation => "organisation",
            Self::Customer => "customer",
            Self::Settings => "settings",
            Self::Agent => "agent",
            Self::Group => "group",
            Self::Grant => "grant",
            Self::Token => "token",
            Self::Calendar => "calendar",
            Self::SlaPolicy => "sla_policy",
            Self::Ticket => "ticket",
            Self::Comment => "comment",
        }
    }
}

/// What happened to a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// It was created.
    Created,
    /// Some of its fields changed.
    Updated,
    /// It was taken out of use.
    Deactivated,
    /// It was put back into use.
    Reactivated,
    /// It was deleted for good.
    Deleted,
    /// It took over a duplicate (the changes name the duplicate in `merged_from`).
    Merged,
    /// It was merged into another record and is gone (`merged_into` names the survivor).
    MergedAway,
    /// A deadline's warning share was reached (the changes name the deadline).
    Warning,
    /// A deadline passed (the changes name the deadline).
    Escalated,
    /// A pending reminder became due.
    ReminderDue,
    /// A ticket no longer calls for attention.
    Cleared,
    /// Its customers were replaced by another (TransferTickets).
    Transferred,
    /// It was restored after a delete.
    Undeleted,
    /// A file was attached to it.
    AttachmentAdded,
}

impl ChangeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deactivated => "deactivated",
            Self::Reactivated => "reactivated",
            Self::Deleted => "deleted",
            Self::Merged => "merged",
            Self::MergedAway => "merged_away",
            Self::Warning => "warning",
            Self::Escalated => "escalated",
            Self::ReminderDue => "reminder_due",
            Self::Cleared => "cleared",
            Self::Transferred => "transferred",
            Self::Undeleted => "undeleted",
            Self::AttachmentAdded => "attachment_added",
        }
    }
}

/// One field's old and new value, as JSON so that lists and maps fit too.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    /// The field's name in the API.
    pub field: String,
    /// The value before; null on creation.
    pub old: serde_json::Value,
    /// The value after.
    pub new: serde_json::Value,
}

/// One entry of the change log, written in the same transaction as the change it records.
#[derive(Clone, Debug, PartialEq)]
pub struct ChangeEvent {
    /// When it happened.
    pub time: Timestamp,
    /// Who did it.
    pub actor: Actor,
    /// The kind of resource changed.
    pub resource_type: ResourceType,
    /// The resource changed.
    pub resource_id: Uuid,
    /// What happened.
    pub kind: ChangeKind,
    /// The fields that changed.
    pub changes: Vec<FieldChange>,
}
