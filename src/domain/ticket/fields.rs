//! The values a client sends for a ticket and the rules of each field.

use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::fields::{self, Violations},
    error::Result,
    model::{Severity, TicketState},
};
use jiff::Timestamp;

/// The priority of a ticket created without one.
pub const DEFAULT_PRIORITY: u8 = 3;
/// The longest title.
pub const MAX_TITLE: usize = 255;
/// The most additional customers of one ticket.
pub const MAX_ADDITIONAL_CUSTOMERS: usize = 100;

/// The values a client sends for a ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TicketInput {
    /// Title.
    pub title: String,
    /// Group.
    pub group_id: Option<Uuid>,
    /// Main customer; a customer creating a ticket may leave it out.
    pub customer_id: Option<Uuid>,
    /// Organisation; defaults to the customer's primary one.
    pub organisation_id: Option<Uuid>,
    /// Further customers.
    pub additional_customer_ids: Vec<Uuid>,
    /// State; `None` means NEW on create.
    pub state: Option<TicketState>,
    /// 1 to 5; 0 means the default.
    pub priority: i32,
    /// Assignee; `None` on create means routing decides.
    pub assignee_id: Option<Uuid>,
    /// The ticket's own SLA policy.
    pub sla_policy_id: Option<Uuid>,
    /// End of a pending state.
    pub pending_until: Option<Timestamp>,
    /// The assessed severity; `None` for not assessed.
    pub severity: Option<Severity>,
}

/// The fields an update may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TicketField {
    /// `title`
    Title,
    /// `group_id`
    GroupId,
    /// `state`
    State,
    /// `pending_until`
    PendingUntil,
    /// `priority`
    Priority,
    /// `assignee_id`
    AssigneeId,
    /// `sla_policy_id`
    SlaPolicyId,
    /// `additional_customer_ids`
    AdditionalCustomerIds,
    /// `severity`
    Severity,
}

impl TicketField {
    /// Every updatable field.
    pub const ALL: [Self; 9] = [
        Self::Title,
        Self::GroupId,
        Self::State,
        Self::PendingUntil,
        Self::Priority,
        Self::AssigneeId,
        Self::SlaPolicyId,
        Self::AdditionalCustomerIds,
        Self::Severity,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::GroupId => "group_id",
            Self::State => "state",
            Self::PendingUntil => "pending_until",
            Self::Priority => "priority",
            Self::AssigneeId => "assignee_id",
            Self::SlaPolicyId => "sla_policy_id",
            Self::AdditionalCustomerIds => "additional_customer_ids",
            Self::Severity => "severity",
        }
    }

    /// The fields an update mask names.
    pub fn from_mask(paths: &[String]) -> Result<Vec<Self>> {
        fields::fields_of_mask(paths, &Self::ALL, Self::name, |path| match path {
            "customer_id" => Some("customer_id is changed by TransferTickets".into()),
            "organisation_id" => Some("organisation_id is set when the ticket is created".into()),
            "id"
            | "number"
            | "create_time"
            | "update_time"
            | "etag"
            | "first_response_time"
            | "close_time"
            | "first_response_due"
            | "update_due"
            | "solution_due"
            | "escalation"
            | "reminder_due"
            | "applied_sla_policy_id"
            | "merged_into_id"
            | "sla_contact_group_id"
            | "reader_group_id" => Some(format!("{path} is output only")),
            _ => None,
        })
    }

    /// Whether a customer may change this field of its ticket.
    pub(super) fn open_to_customers(self) -> bool {
        matches!(self, Self::Title | Self::State)
    }
}

/// The priority a client asked for: 0 is the default.
pub(super) fn priority(violations: &mut Violations, raw: i32) -> u8 {
    match raw {
        0 => DEFAULT_PRIORITY,
        1..=5 => u8::try_from(raw).unwrap_or(DEFAULT_PRIORITY),
        _ => {
            violations.add("priority", "must be from 1 (low) to 5 (critical)");
            DEFAULT_PRIORITY
        }
    }
}

/// Additional customers: each once, not the main customer; stored sorted.
pub(super) fn additional_customers(
    violations: &mut Violations,
    raw: &[Uuid],
    main: Option<Uuid>,
) -> Vec<Uuid> {
    if raw.len() > MAX_ADDITIONAL_CUSTOMERS {
        violations.add(
            "additional_customer_ids",
            format!("must list at most {MAX_ADDITIONAL_CUSTOMERS} customers"),
        );
        return Vec::new();
    }
    let mut ids: Vec<Uuid> = Vec::with_capacity(raw.len());
    for (index, id) in raw.iter().enumerate() {
        if Some(*id) == main {
            violations.add(
                format!("additional_customer_ids[{index}]"),
                "is the main customer",
            );
        } else if ids.contains(id) {
            violations.add(
                format!("additional_customer_ids[{index}]"),
                "is listed twice",
            );
        } else {
            ids.push(*id);
        }
    }
    ids.sort();
    ids
}
