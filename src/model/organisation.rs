use std::collections::BTreeMap;

use jiff::Timestamp;
use uuid::Uuid;

use super::Validity;

/// A customer company, authority or department.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organisation {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// The business key (OTRS "CustomerID"), unique case-insensitively.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Street and number.
    pub street: String,
    /// Postal code.
    pub zip: String,
    /// City.
    pub city: String,
    /// ISO 3166-1 alpha-2 code, upper-case.
    pub country: String,
    /// Web site, or empty.
    pub url: String,
    /// Free text for agents.
    pub comment: String,
    /// Whether the organisation is in use.
    pub validity: Validity,
    /// Email domains, lower-case ASCII, sorted.
    pub email_domains: Vec<String>,
    /// Whether customers are assigned by their email domain.
    pub domain_assignment: bool,
    /// Key in another system.
    pub external_id: Option<String>,
    /// Site-specific attributes.
    pub custom_fields: BTreeMap<String, String>,
    /// The SLA policy of its tickets, overriding the group's.
    pub sla_policy_id: Option<Uuid>,
    /// The agent its tickets are routed to.
    pub default_assignee_id: Option<Uuid>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
    /// The directory the organisation is filed in: it decides which agents read it.
    pub directory_id: Option<Uuid>,
}

impl Organisation {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// The etag of a resource at `version`.
pub fn etag_of(version: i64) -> String {
    format!("v{version}")
}
