//! How lists are asked for and what they resume from: filters, orders and cursors, and the
//! entries of a resource's history as read back. The domain builds them from requests; the
//! store turns them into SQL.

use jiff::Timestamp;
use uuid::Uuid;

use super::{
    Alert, Customer, FieldChange, Fragment, Organisation, ResourceType, Subject, Ticket,
    TicketState, Validity, customer_document, organisation_document, ranked_key,
};

/// Where a page ended: the sort key and id of its last row. Lists are ordered by (key, id).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The last row's sort key.
    pub key: String,
    /// The last row's id.
    pub id: Uuid,
}

/// Which validities a list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum ValidityFilter {
    /// Valid records only (the default of every list).
    #[default]
    ValidOnly,
    /// Every record.
    All,
    /// Records of exactly this validity.
    Exactly(Validity),
}

impl ValidityFilter {
    /// The filter a list request asks for: an exact validity, or all, or valid only.
    pub fn new(exactly: Option<Validity>, include_invalid: bool) -> Self {
        match (exactly, include_invalid) {
            (Some(validity), _) => Self::Exactly(validity),
            (None, true) => Self::All,
            (None, false) => Self::ValidOnly,
        }
    }
}

/// Which customers a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CustomerFilter {
    /// Customers of this organisation, as primary or secondary organisation.
    pub organisation_id: Option<Uuid>,
    /// A fragment of the names, email, login, phone numbers or an organisation's name or
    /// code.
    pub text: Option<Fragment>,
    /// Exactly this type.
    pub customer_type: Option<String>,
    /// Which validities.
    pub validity: ValidityFilter,
    /// Last changed at or after (microseconds).
    pub updated_since: Option<i64>,
    /// A custom field's key and the exact value it holds (empty: the field is missing or
    /// empty).
    pub custom_field: Option<(String, String)>,
}

/// The orders customers can be listed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum CustomerOrder {
    /// By last name, then first name (case-insensitive), then id.
    #[default]
    Name,
    /// By primary email (case-insensitive), then id.
    Email,
    /// By update time, then id.
    UpdateTime,
}

impl CustomerFilter {
    /// The fragment a list in `order` is ranked by (relevance, then name): a fragment found
    /// anywhere, listed by name.
    pub fn ranked(&self, order: CustomerOrder) -> Option<&Fragment> {
        match (&self.text, order) {
            (Some(fragment @ Fragment::Anywhere(_)), CustomerOrder::Name) => Some(fragment),
            _ => None,
        }
    }

    /// The cursor that resumes a list of this filter in `order` after `customer`.
    pub fn cursor_after(&self, order: CustomerOrder, customer: &Customer) -> Cursor {
        match self.ranked(order) {
            Some(fragment) => Cursor {
                key: ranked_key(
                    fragment.rank(&customer_document(customer)),
                    &name_key(customer),
                ),
                id: customer.id,
            },
            None => order.cursor_after(customer),
        }
    }
}

impl CustomerOrder {
    /// The cursor that resumes a list in this order after `customer`.
    pub fn cursor_after(self, customer: &Customer) -> Cursor {
        let key = match self {
            Self::Name => name_key(customer),
            Self::Email => fold_case(&customer.email),
            Self::UpdateTime => customer.update_time.as_microsecond().to_string(),
        };
        Cursor {
            key,
            id: customer.id,
        }
    }
}

/// Which organisations a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OrganisationFilter {
    /// A fragment of the code, name, city or an email domain.
    pub text: Option<Fragment>,
    /// ISO country code, upper-case.
    pub country: Option<String>,
    /// Which validities.
    pub validity: ValidityFilter,
    /// Last changed at or after (microseconds).
    pub updated_since: Option<i64>,
    /// A custom field's key and the exact value it holds.
    pub custom_field: Option<(String, String)>,
}

/// The orders organisations can be listed in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum OrganisationOrder {
    /// By name (case-insensitive), then id.
    #[default]
    Name,
    /// By code (case-insensitive), then id.
    Code,
    /// By update time, then id.
    UpdateTime,
}

impl OrganisationFilter {
    /// The fragment a list in `order` is ranked by (relevance, then name).
    pub fn ranked(&self, order: OrganisationOrder) -> Option<&Fragment> {
        match (&self.text, order) {
            (Some(fragment @ Fragment::Anywhere(_)), OrganisationOrder::Name) => Some(fragment),
            _ => None,
        }
    }

    /// The cursor that resumes a list of this filter in `order` after `org`.
    pub fn cursor_after(&self, order: OrganisationOrder, org: &Organisation) -> Cursor {
        match self.ranked(order) {
            Some(fragment) => Cursor {
                key: ranked_key(
                    fragment.rank(&organisation_document(org)),
                    &fold_case(&org.name),
                ),
                id: org.id,
            },
            None => order.cursor_after(org),
        }
    }
}

impl OrganisationOrder {
    /// The cursor that resumes a list in this order after `org`.
    pub fn cursor_after(self, org: &Organisation) -> Cursor {
        let key = match self {
            Self::Name => fold_case(&org.name),
            Self::Code => fold_case(&org.code),
            Self::UpdateTime => org.update_time.as_microsecond().to_string(),
        };
        Cursor { key, id: org.id }
    }
}

/// Whose grants a list shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum GrantFilter {
    /// Every group of one subject.
    Subject(Subject),
    /// Every subject of one group.
    Group(Uuid),
}

/// Which tickets a list or count shows. Empty lists mean "any".
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TicketFilter {
    /// Tickets of these organisations.
    pub organisation_ids: Vec<Uuid>,
    /// Tickets with this customer as main or additional customer.
    pub customer_id: Option<Uuid>,
    /// Tickets in these groups.
    pub group_ids: Vec<Uuid>,
    /// Tickets in these states.
    pub states: Vec<TicketState>,
    /// Tickets whose worst alert is one of these.
    pub escalations: Vec<Alert>,
    /// Tickets whose pending reminder is due (true) or not (false).
    pub reminder_due: Option<bool>,
    /// Tickets assigned to this agent.
    pub assignee_id: Option<Uuid>,
    /// Created at or after (microseconds).
    pub created_from: Option<i64>,
    /// Created before (microseconds).
    pub created_until: Option<i64>,
    /// Changed at or after (microseconds).
    pub updated_from: Option<i64>,
    /// Changed before (microseconds).
    pub updated_until: Option<i64>,
    /// Case-insensitive substring of the title.
    pub text: Option<String>,
    /// Pending until before (microseconds).
    pub pending_until_before: Option<i64>,
    /// Only tickets that call for attention: in warning, escalated or with a due reminder.
    pub attention: bool,
}

/// The orders tickets can be listed in; ties are broken by id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum TicketOrderKey {
    /// By number (the default; numbers are unique).
    #[default]
    Number,
    /// By creation time.
    CreateTime,
    /// By time of the last change.
    UpdateTime,
    /// By priority.
    Priority,
}

/// An order: a key and a direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TicketOrder {
    /// The sort key.
    pub key: TicketOrderKey,
    /// Largest first.
    pub descending: bool,
}

impl TicketOrder {
    /// Whether no two tickets share a key of this order, so that the key alone orders them.
    pub fn unique(self) -> bool {
        self.key == TicketOrderKey::Number
    }

    /// Where a list in this order continues after `ticket`.
    pub fn cursor_after(self, ticket: &Ticket) -> TicketCursor {
        let key = match self.key {
            TicketOrderKey::Number => ticket.number,
            TicketOrderKey::CreateTime => ticket.create_time.as_microsecond(),
            TicketOrderKey::UpdateTime => ticket.update_time.as_microsecond(),
            TicketOrderKey::Priority => i64::from(ticket.priority),
        };
        TicketCursor { key, id: ticket.id }
    }
}

/// Where a ticket list stopped: the last ticket's sort key and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TicketCursor {
    /// The sort key of the last ticket.
    pub key: i64,
    /// Its id.
    pub id: Uuid,
}

/// Which entries a read of the change feed returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only these kinds of resources; every kind when empty.
    pub resource_types: Vec<ResourceType>,
    /// Only this resource.
    pub resource_id: Option<Uuid>,
}

/// A change-log entry as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredChange {
    /// Position in the log; increases with every event.
    pub seq: i64,
    /// Its place in the change feed, once it has one (always, as the feed reads it).
    pub position: Option<i64>,
    /// When it happened.
    pub time: Timestamp,
    /// Who did it.
    pub actor: String,
    /// The kind of resource, e.g. `organisation`.
    pub resource_type: String,
    /// The resource.
    pub resource_id: Uuid,
    /// What happened, e.g. `updated`.
    pub kind: String,
    /// The fields that changed.
    pub changes: Vec<FieldChange>,
    /// Whether the recorded values were erased (an erasure or the history retention): the
    /// field names remain, every value is null.
    pub values_erased: bool,
}

/// The name sort key: last name, then first name, case-folded. `\u{1}` sorts before every
/// printable character, so "Smith" comes before "Smithers".
pub fn name_key(customer: &Customer) -> String {
    fold_case(&format!(
        "{}\u{1}{}",
        customer.last_name, customer.first_name
    ))
}

/// The case-insensitive form of a key, as stored in `*_key` columns.
pub fn fold_case(text: &str) -> String {
    text.to_lowercase()
}
