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
    /// A webhook subscription.
    Webhook,
    /// A customer activity.
    Activity,
    /// An entry of the catalogue of contact group kinds.
    ContactGroupKind,
    /// A contact group.
    ContactGroup,
    /// A price list.
    PriceList,
    /// A customer type of the field catalogue.
    CustomerType,
    /// A custom-field definition of the field catalogue.
    FieldDefinition,
    /// A directory (address book) of contacts.
    Directory,
}

impl ResourceType {
    /// Every kind.
    pub const ALL: [Self; 19] = [
        Self::Organisation,
        Self::Customer,
        Self::Settings,
        Self::Agent,
        Self::Group,
        Self::Grant,
        Self::Token,
        Self::Calendar,
        Self::SlaPolicy,
        Self::Ticket,
        Self::Comment,
        Self::Webhook,
        Self::Activity,
        Self::ContactGroupKind,
        Self::ContactGroup,
        Self::PriceList,
        Self::CustomerType,
        Self::FieldDefinition,
        Self::Directory,
    ];

    /// The kind stored under `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
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
            Self::Webhook => "webhook",
            Self::Activity => "activity",
            Self::ContactGroupKind => "contact_group_kind",
            Self::ContactGroup => "contact_group",
            Self::PriceList => "price_list",
            Self::CustomerType => "customer_type",
            Self::FieldDefinition => "field_definition",
            Self::Directory => "directory",
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
    /// A customer activity was run on it (the changes name the activity and its webhook).
    ActivityRun,
    /// The person was erased: their data is gone, and the changes say what was done, without
    /// personal data. Followers erase what they keep about the resource.
    Erased,
    /// One of its files was deleted (softly: it can be restored).
    AttachmentDeleted,
    /// One of its deleted files was restored.
    AttachmentRestored,
    /// Contacts joined it (a contact group; the changes name them).
    MembersAdded,
    /// Contacts left it (a contact group; the changes name them).
    MembersRemoved,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [Self; 20] = [
        Self::Created,
        Self::Updated,
        Self::Deactivated,
        Self::Reactivated,
        Self::Deleted,
        Self::Merged,
        Self::MergedAway,
        Self::Warning,
        Self::Escalated,
        Self::ReminderDue,
        Self::Cleared,
        Self::Transferred,
        Self::Undeleted,
        Self::AttachmentAdded,
        Self::ActivityRun,
        Self::Erased,
        Self::AttachmentDeleted,
        Self::AttachmentRestored,
        Self::MembersAdded,
        Self::MembersRemoved,
    ];

    /// The kind stored under `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

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
            Self::ActivityRun => "activity_run",
            Self::Erased => "erased",
            Self::AttachmentDeleted => "attachment_deleted",
            Self::AttachmentRestored => "attachment_restored",
            Self::MembersAdded => "members_added",
            Self::MembersRemoved => "members_removed",
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

impl ChangeEvent {
    /// Whether this change may change what someone may do: any change to a grant or the
    /// settings; a new group (with customer_group_support off every customer may use it); the
    /// validity of a group, agent, customer or organisation, an agent's manage_customers flag,
    /// a customer's organisations; a token revoked or deleted; and a delete or merge of any of
    /// them. A new agent, customer
    /// or organisation holds no grant and no token yet, and an edit of a name or an address
    /// changes nobody's rights: those leave the rights that were read in place.
    pub fn shapes_rights(&self) -> bool {
        let touches = |fields: &[&str]| {
            self.changes
                .iter()
                .any(|change| fields.contains(&change.field.as_str()))
        };
        match (self.resource_type, self.kind) {
            (ResourceType::Grant | ResourceType::Settings, _)
            | (ResourceType::Group, ChangeKind::Created)
            | (ResourceType::Token, ChangeKind::Updated | ChangeKind::Deleted) => true,
            (
                ResourceType::Agent | ResourceType::Customer | ResourceType::Organisation,
                ChangeKind::Created,
            ) => false,
            (ResourceType::Group | ResourceType::Organisation, ChangeKind::Updated) => {
                touches(&["validity"])
            }
            (ResourceType::Agent, ChangeKind::Updated) => {
                touches(&["validity", "manage_customers", "details_access"])
            }
            (ResourceType::Customer, ChangeKind::Updated) => {
                touches(&["validity", "organisation_id", "secondary_organisation_ids"])
            }
            (
                ResourceType::Group
                | ResourceType::Agent
                | ResourceType::Customer
                | ResourceType::Organisation,
                _,
            ) => true,
            // What writes are checked against and how tickets are routed: kept by every
            // replica like rights, and dropped with them.
            (ResourceType::CustomerType | ResourceType::FieldDefinition, _)
            // Who reads which directory's contacts.
            | (ResourceType::Directory, _)
            | (ResourceType::ContactGroup, ChangeKind::Created | ChangeKind::Updated) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(resource_type: ResourceType, kind: ChangeKind, fields: &[&str]) -> ChangeEvent {
        ChangeEvent {
            time: Timestamp::UNIX_EPOCH,
            actor: crate::model::Actor::system(),
            resource_type,
            resource_id: Uuid::nil(),
            kind,
            changes: fields
                .iter()
                .map(|field| FieldChange {
                    field: (*field).into(),
                    old: serde_json::Value::Null,
                    new: serde_json::Value::Null,
                })
                .collect(),
        }
    }

    #[test]
    fn only_changes_that_can_change_someones_rights_shape_them() {
        use ChangeKind as K;
        use ResourceType as R;
        let cases = [
            (event(R::Grant, K::Created, &["level"]), true),
            (event(R::Grant, K::Deleted, &["level"]), true),
            (event(R::Settings, K::Updated, &["always_groups"]), true),
            (event(R::Group, K::Created, &["name"]), true),
            (event(R::Group, K::Updated, &["name"]), false),
            (event(R::Group, K::Updated, &["validity"]), true),
            (event(R::Agent, K::Created, &["login"]), false),
            (event(R::Agent, K::Updated, &["email"]), false),
            (event(R::Agent, K::Updated, &["manage_customers"]), true),
            (event(R::Agent, K::Updated, &["validity"]), true),
            (
                event(R::Customer, K::Created, &["email", "organisation_id"]),
                false,
            ),
            (event(R::Customer, K::Updated, &["phone"]), false),
            (event(R::Customer, K::Updated, &["organisation_id"]), true),
            (
                event(R::Customer, K::Updated, &["secondary_organisation_ids"]),
                true,
            ),
            (event(R::Customer, K::Deactivated, &["validity"]), true),
            (event(R::Customer, K::Deleted, &[]), true),
            (event(R::Customer, K::MergedAway, &["merged_into"]), true),
            (event(R::Organisation, K::Created, &["name"]), false),
            (event(R::Organisation, K::Updated, &["city"]), false),
            (event(R::Organisation, K::Deactivated, &["validity"]), true),
            (event(R::Ticket, K::Updated, &["group_id"]), false),
            (event(R::Token, K::Created, &["owner"]), false),
            (event(R::Token, K::Updated, &["revoke_time"]), true),
            (event(R::Token, K::Deleted, &[]), true),
        ];
        for (event, shapes) in cases {
            assert_eq!(
                event.shapes_rights(),
                shapes,
                "{:?} {:?} {:?}",
                event.resource_type,
                event.kind,
                event.changes
            );
        }
    }
}
