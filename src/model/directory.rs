use jiff::Timestamp;
use uuid::Uuid;

use super::organisation::etag_of;

/// A directory (address book): contacts filed in it are read by admins, its readers and
/// themselves only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// The name, unique case-insensitively.
    pub name: String,
    /// Free text.
    pub comment: String,
    /// The agents that read its contacts.
    pub reader_agent_ids: Vec<Uuid>,
    /// The groups whose agents (those that read every ticket of the group) read its contacts.
    pub reader_group_ids: Vec<Uuid>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl Directory {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}
