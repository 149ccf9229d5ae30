use jiff::Timestamp;
use uuid::Uuid;

use super::{organisation::etag_of, sla::Deadline};

/// Where a ticket stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Just created.
    New,
    /// Being worked on.
    Open,
    /// Waiting; a reminder is due at `pending_until`.
    PendingReminder,
    /// Waiting; closes by itself at `pending_until`.
    PendingClose,
    /// Done (may be reopened).
    Closed,
}

impl TicketState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Open => "open",
            Self::PendingReminder => "pending_reminder",
            Self::PendingClose => "pending_close",
            Self::Closed => "closed",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "new" => Some(Self::New),
            "open" => Some(Self::Open),
            "pending_reminder" => Some(Self::PendingReminder),
            "pending_close" => Some(Self::PendingClose),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }

    /// Every state but closed.
    pub fn is_open(self) -> bool {
        self != Self::Closed
    }

    /// The waiting states, which pause the SLA clock.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::PendingReminder | Self::PendingClose)
    }
}

/// How close a deadline is.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Alert {
    /// Not near.
    #[default]
    None,
    /// The policy's warning share of the budget is used.
    Warning,
    /// Past the deadline.
    Escalated,
}

impl Alert {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Warning => "warning",
            Self::Escalated => "escalated",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "none" => Some(Self::None),
            "warning" => Some(Self::Warning),
            "escalated" => Some(Self::Escalated),
            _ => None,
        }
    }
}

/// What a ticket currently calls attention for.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Alerts {
    /// The first-response deadline.
    pub first_response: Alert,
    /// The update deadline.
    pub update: Alert,
    /// The solution deadline.
    pub solution: Alert,
    /// A pending reminder is due.
    pub reminder_due: bool,
}

impl Alerts {
    /// The alert of `deadline`.
    pub fn of(&self, deadline: Deadline) -> Alert {
        match deadline {
            Deadline::FirstResponse => self.first_response,
            Deadline::Update => self.update,
            Deadline::Solution => self.solution,
        }
    }

    /// Sets the alert of `deadline`.
    pub fn set(&mut self, deadline: Deadline, alert: Alert) {
        match deadline {
            Deadline::FirstResponse => self.first_response = alert,
            Deadline::Update => self.update = alert,
            Deadline::Solution => self.solution = alert,
        }
    }

    /// The worst alert of any deadline: the ticket's escalation.
    pub fn escalation(&self) -> Alert {
        self.first_response.max(self.update).max(self.solution)
    }

    /// Nothing calls for attention.
    pub fn is_quiet(&self) -> bool {
        self.escalation() == Alert::None && !self.reminder_due
    }
}

/// Business time each deadline's clock spent paused (pending) since its start, in seconds,
/// and the warning instants that follow from the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlaClocks {
    /// Paused business seconds of the first-response clock.
    pub first_response_paused: i64,
    /// Paused business seconds of the update clock.
    pub update_paused: i64,
    /// Paused business seconds of the solution clock.
    pub solution_paused: i64,
    /// When the first-response warning is due.
    pub first_response_warn: Option<Timestamp>,
    /// When the update warning is due.
    pub update_warn: Option<Timestamp>,
    /// When the solution warning is due.
    pub solution_warn: Option<Timestamp>,
}

impl SlaClocks {
    /// The paused business seconds of `deadline`'s clock.
    pub fn paused(&self, deadline: Deadline) -> i64 {
        match deadline {
            Deadline::FirstResponse => self.first_response_paused,
            Deadline::Update => self.update_paused,
            Deadline::Solution => self.solution_paused,
        }
    }

    /// Adds `seconds` to the pause of `deadline`'s clock.
    pub fn add_pause(&mut self, deadline: Deadline, seconds: i64) {
        match deadline {
            Deadline::FirstResponse => self.first_response_paused += seconds,
            Deadline::Update => self.update_paused += seconds,
            Deadline::Solution => self.solution_paused += seconds,
        }
    }

    /// The warning instant of `deadline`.
    pub fn warn(&self, deadline: Deadline) -> Option<Timestamp> {
        match deadline {
            Deadline::FirstResponse => self.first_response_warn,
            Deadline::Update => self.update_warn,
            Deadline::Solution => self.solution_warn,
        }
    }

    /// Sets the warning instant of `deadline`.
    pub fn set_warn(&mut self, deadline: Deadline, at: Option<Timestamp>) {
        match deadline {
            Deadline::FirstResponse => self.first_response_warn = at,
            Deadline::Update => self.update_warn = at,
            Deadline::Solution => self.solution_warn = at,
        }
    }
}

/// A customer's request, worked in a group under an SLA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Server-assigned UUIDv7.
    pub id: Uuid,
    /// Human number: the creation date (UTC, YYYYMMDD) and a counter of that day.
    pub number: i64,
    /// Title.
    pub title: String,
    /// The group it lives in.
    pub group_id: Uuid,
    /// The main customer.
    pub customer_id: Uuid,
    /// The organisation it is for.
    pub organisation_id: Option<Uuid>,
    /// Further customers, sorted.
    pub additional_customer_ids: Vec<Uuid>,
    /// Where it stands.
    pub state: TicketState,
    /// 1 (low) to 5 (critical).
    pub priority: u8,
    /// The agent working it.
    pub assignee_id: Option<Uuid>,
    /// The SLA policy set on the ticket itself (overrides organisation and group).
    pub sla_policy_id: Option<Uuid>,
    /// The SLA policy that applies.
    pub applied_sla_policy_id: Option<Uuid>,
    /// When a pending state ends.
    pub pending_until: Option<Timestamp>,
    /// When it got its first response.
    pub first_response_time: Option<Timestamp>,
    /// When it was closed.
    pub close_time: Option<Timestamp>,
    /// The customer's last contact: the update clock runs from here.
    pub last_customer_contact: Timestamp,
    /// An agent's last answer.
    pub last_agent_response: Option<Timestamp>,
    /// When the current pending period began.
    pub pending_since: Option<Timestamp>,
    /// Paused time and warning instants of the SLA clocks.
    pub clocks: SlaClocks,
    /// First-response deadline, while that clock runs.
    pub first_response_due: Option<Timestamp>,
    /// Update deadline, while that clock runs.
    pub update_due: Option<Timestamp>,
    /// Solution deadline, while that clock runs.
    pub solution_due: Option<Timestamp>,
    /// What the ticket calls attention for.
    pub alerts: Alerts,
    /// The next instant its alerts or state change by themselves.
    pub next_event_time: Option<Timestamp>,
    /// Creation time.
    pub create_time: Timestamp,
    /// Time of the last change.
    pub update_time: Timestamp,
    /// Counts the changes; the etag is derived from it.
    pub version: i64,
    /// The ticket this one was merged into: then it is closed for good, and its comments,
    /// customers and history are the target's.
    pub merged_into: Option<Uuid>,
    /// How severe an agent judged the problem; `None` until assessed.
    pub severity: Option<Severity>,
    /// The contact group whose SLA contract the ticket got when it was created.
    pub sla_contact_group_id: Option<Uuid>,
    /// The group whose readers alone (besides its customers and admins) read the ticket.
    pub reader_group_id: Option<Uuid>,
}

/// How severe a problem is, as an agent assessed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Business stands still.
    Critical,
    /// A major function is impaired.
    High,
    /// A function is impaired, with a workaround.
    Medium,
    /// A question, a cosmetic fault.
    Low,
}

impl Severity {
    /// Every severity, the worst first.
    pub const ALL: [Self; 4] = [Self::Critical, Self::High, Self::Medium, Self::Low];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Medium => "medium",
            Self::Low => "low",
        }
    }

    /// The severity stored under `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|severity| severity.as_str() == name)
    }
}

impl Ticket {
    /// The opaque version tag clients send back to update.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }

    /// The customer got in touch at `now`: the update clock starts again from nothing, so
    /// pauses of its earlier runs no longer count.
    pub fn customer_contact(&mut self, now: Timestamp) {
        self.last_customer_contact = now;
        self.clocks.update_paused = 0;
    }

    /// The number as people write it.
    pub fn number_text(&self) -> String {
        self.number.to_string()
    }

    /// The deadline of `deadline`.
    pub fn due(&self, deadline: Deadline) -> Option<Timestamp> {
        match deadline {
            Deadline::FirstResponse => self.first_response_due,
            Deadline::Update => self.update_due,
            Deadline::Solution => self.solution_due,
        }
    }

    /// Sets the deadline of `deadline`.
    pub fn set_due(&mut self, deadline: Deadline, at: Option<Timestamp>) {
        match deadline {
            Deadline::FirstResponse => self.first_response_due = at,
            Deadline::Update => self.update_due = at,
            Deadline::Solution => self.solution_due = at,
        }
    }

    /// Its main customer, then its additional customers.
    pub fn customer_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        std::iter::once(self.customer_id).chain(self.additional_customer_ids.iter().copied())
    }

    /// Whether `customer` is its main or an additional customer.
    pub fn has_customer(&self, customer: Uuid) -> bool {
        self.customer_id == customer || self.additional_customer_ids.contains(&customer)
    }
}
