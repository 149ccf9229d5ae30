use jiff::Timestamp;
use uuid::Uuid;

use super::{Validity, organisation::etag_of};

/// What tickets live in and what rights are granted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// Whether the group is in use.
    pub validity: Validity,
    /// The agent tickets of this group's customers are routed to.
    pub responsible_agent_id: Option<Uuid>,
    /// The SLA policy of its tickets when neither ticket nor organisation names one.
    pub default_sla_policy_id: Option<Uuid>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl Group {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}
