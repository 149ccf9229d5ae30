use jiff::Timestamp;
use uuid::Uuid;

use super::{Validity, organisation::etag_of};

/// A staff member who works tickets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Login name, unique case-insensitively.
    pub login: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Email address, or empty.
    pub email: String,
    /// May create and edit organisations and customers.
    pub manage_customers: bool,
    /// Whether the agent is in use.
    pub validity: Validity,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl Agent {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}
