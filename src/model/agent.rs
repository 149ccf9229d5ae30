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
    /// What the agent may do with supplementary details: the notes on organisations and
    /// customers and their attachments.
    pub details_access: DetailsAccess,
    /// Whether the agent is in use.
    pub validity: Validity,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

/// What an agent may do with supplementary details (notes on organisations and customers,
/// with their attachments): rights of their own, apart from the master data's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailsAccess {
    /// Does not see them.
    None,
    /// Reads them.
    Read,
    /// Reads, writes, deletes and restores them.
    Write,
}

impl DetailsAccess {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    /// The access with stored name `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            _ => None,
        }
    }

    /// What a new agent gets unless told: customer administrators write, others read.
    pub fn default_for(manage_customers: bool) -> Self {
        if manage_customers {
            Self::Write
        } else {
            Self::Read
        }
    }
}

impl Agent {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}
