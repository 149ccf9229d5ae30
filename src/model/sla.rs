use jiff::{SignedDuration, Timestamp, civil::Date};
use uuid::Uuid;

use super::organisation::etag_of;

/// Minutes since midnight; 1440 is the end of the day.
pub type Minute = u16;

/// Business hours in a time zone, and holidays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Business hours per weekday, Monday first: sorted, disjoint `[start, end)` minutes.
    pub week: [Vec<(Minute, Minute)>; 7],
    /// Days without business, sorted.
    pub holidays: Vec<Date>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl Calendar {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

/// The three deadlines of a ticket.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    /// The first answer to a new ticket, from its creation.
    FirstResponse,
    /// An answer to the customer's last contact.
    Update,
    /// The solution (closing), from creation.
    Solution,
}

impl Deadline {
    /// Every deadline.
    pub const ALL: [Self; 3] = [Self::FirstResponse, Self::Update, Self::Solution];

    /// The deadline's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstResponse => "first_response",
            Self::Update => "update",
            Self::Solution => "solution",
        }
    }

    /// Reads a deadline's name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

/// Service-level targets: how much business time a ticket's first response, updates and
/// solution may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlaPolicy {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Name, unique case-insensitively.
    pub name: String,
    /// Budget of the first response.
    pub first_response: Option<SignedDuration>,
    /// Budget of an update after a customer contact.
    pub update: Option<SignedDuration>,
    /// Budget of the solution.
    pub solution: Option<SignedDuration>,
    /// Warn when this share (1–99 %) of a budget is used; 0 for no warning.
    pub warning_percent: u8,
    /// Whose business hours count; none means 24×7.
    pub calendar_id: Option<Uuid>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
}

impl SlaPolicy {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }

    /// The budget of `deadline`, if the policy sets one.
    pub fn budget(&self, deadline: Deadline) -> Option<SignedDuration> {
        match deadline {
            Deadline::FirstResponse => self.first_response,
            Deadline::Update => self.update,
            Deadline::Solution => self.solution,
        }
    }
}
