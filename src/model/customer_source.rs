//! Customer sources: the last sync of each LDAP directory customers are read from.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a sync read the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// Every entry.
    Full,
    /// The entries changed since the last sync, then the keys of all.
    Incremental,
}

impl SyncKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }

    /// The kind of a stored form; `None` for the empty one of a source never synced.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "full" => Some(Self::Full),
            "incremental" => Some(Self::Incremental),
            _ => None,
        }
    }
}

/// An entry a sync refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRefusal {
    /// The entry's DN.
    pub dn: String,
    /// Machine-readable reason.
    pub reason: String,
    /// For people.
    pub message: String,
}

/// A customer source's last sync, as every replica reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceSync {
    /// The source's configured name.
    pub name: String,
    /// The number of the latest run: the entries it saw carry it.
    pub run: i64,
    /// When the last sync began.
    pub last_start_time: Option<Timestamp>,
    /// When it ended.
    pub last_end_time: Option<Timestamp>,
    /// When a sync last succeeded.
    pub last_success_time: Option<Timestamp>,
    /// When a full sync last succeeded.
    pub last_full_sync_time: Option<Timestamp>,
    /// How the last sync read the directory.
    pub kind: Option<SyncKind>,
    /// Entries read with their attributes.
    pub entries_read: i64,
    /// Customers created or changed.
    pub entries_changed: i64,
    /// Entries refused.
    pub entries_refused: i64,
    /// Customers made invalid because their entries are gone.
    pub entries_invalidated: i64,
    /// Why the last sync failed; empty when it did not.
    pub error: String,
    /// The refused entries of the last sync.
    pub refusals: Vec<SourceRefusal>,
    /// The newest `modifyTimestamp` a successful sync read (LDAP generalized time).
    pub watermark: String,
}
