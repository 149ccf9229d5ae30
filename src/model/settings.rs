use jiff::Timestamp;
use uuid::Uuid;

use super::organisation::etag_of;

/// The one settings record of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Create organisations from the email domains of customers no organisation claims.
    pub auto_create_organisations: bool,
    /// The country of organisations created that way.
    pub auto_create_organisation_country: String,
    /// When off, every customer may use every valid group for its own tickets.
    pub customer_group_support: bool,
    /// Groups on which every customer has RW for its own tickets.
    pub always_groups: Vec<Uuid>,
    /// Groups on which every organisation has RW in SAME_ORGANISATION context.
    pub company_always_groups: Vec<Uuid>,
    /// The group tickets created without one go to.
    pub default_group_id: Option<Uuid>,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl Settings {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}
