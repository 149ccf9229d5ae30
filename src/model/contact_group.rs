use jiff::Timestamp;
use uuid::Uuid;

use super::{Severity, Validity, organisation::etag_of};

/// An entry of the catalogue of contact group kinds ("Suppliers").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactGroupKind {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Whether the kind takes new contact groups.
    pub validity: Validity,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl ContactGroupKind {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// A price list applied to a contact group's members, with its precedence (lower first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PriceListAssignment {
    /// The price list.
    pub price_list_id: Uuid,
    /// 1 to 1000; the lower goes first.
    pub precedence: i32,
}

/// A classification of contacts (customers and organisations) with its conditions of
/// service. Not a group: it grants nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactGroup {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// Its kind, from the catalogue.
    pub kind_id: Uuid,
    /// Free text.
    pub comment: String,
    /// Whether it applies to its members.
    pub validity: Validity,
    /// The price lists of its members, ordered by precedence, then price list id.
    pub price_lists: Vec<PriceListAssignment>,
    /// The SLA contract of its members' new tickets.
    pub sla: SlaContract,
    /// Who is responsible for its members' new tickets, per area, by group id.
    pub responsibilities: Vec<Responsibility>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl ContactGroup {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// An SLA contract: a default level and a level (an SLA policy) per severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SlaContract {
    /// The level until a severity is assessed (or when none names it); `None` for no
    /// contract.
    pub default_policy: Option<Uuid>,
    /// The level of each severity, worst first, each severity once.
    pub levels: Vec<(Severity, Uuid)>,
}

impl SlaContract {
    /// Whether there is a contract at all.
    pub fn is_set(&self) -> bool {
        self.default_policy.is_some()
    }

    /// The SLA policy for `severity`: its level, else the default level.
    pub fn policy_for(&self, severity: Option<Severity>) -> Option<Uuid> {
        severity
            .and_then(|severity| {
                self.levels
                    .iter()
                    .find(|(level, _)| *level == severity)
                    .map(|(_, policy)| *policy)
            })
            .or(self.default_policy)
    }
}

/// Who is responsible for the new tickets of a contact group's members in one area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Responsibility {
    /// The area: a group.
    pub group_id: Uuid,
    /// The agent they are assigned to.
    pub agent_id: Uuid,
    /// The group whose readers alone read them.
    pub reader_group_id: Option<Uuid>,
}

/// A member of a contact group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Contact {
    /// A customer.
    Customer(Uuid),
    /// An organisation, and through it its customers.
    Organisation(Uuid),
}

/// A member of a contact group and when it joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactGroupMember {
    /// Who.
    pub contact: Contact,
    /// When it joined.
    pub create_time: Timestamp,
}

/// A contact group a customer or organisation is in, and the organisation it comes through
/// (none for a direct membership).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactGroupMembership {
    /// The contact group.
    pub contact_group: ContactGroup,
    /// The customer's organisation through which it applies.
    pub via_organisation_id: Option<Uuid>,
}

/// A price in ten-thousandths of the currency's unit, never negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Price(pub i64);

/// One item of a price list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PriceItem {
    /// The item's code, as given.
    pub item_code: String,
    /// What it is.
    pub name: String,
    /// The price of one unit.
    pub unit_price: Price,
}

/// Items with prices in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceList {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Free text.
    pub comment: String,
    /// Whether it applies to anybody.
    pub validity: Validity,
    /// Its items by case-folded item code (empty where a list was read without them).
    pub items: Vec<PriceItem>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl PriceList {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// The price that applies to a customer for one item, and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectivePrice {
    /// The item, as its price list has it.
    pub item: PriceItem,
    /// The currency of the price.
    pub currency: String,
    /// The price list it comes from.
    pub price_list_id: Uuid,
    /// The contact group that list applies through.
    pub contact_group_id: Uuid,
    /// The precedence it applies with.
    pub precedence: i32,
}
