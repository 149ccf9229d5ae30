//! SLA deadlines and escalation, as pure functions of a ticket, its policy and the time:
//! creating, updating and the scheduler all derive deadlines and alerts the same way.
//!
//! Each deadline has a clock that starts at the ticket's creation (first response, solution)
//! or at the customer's last contact (update), counts business time of the policy's calendar,
//! and stands still while the ticket is pending. A deadline is met by a first response, an
//! agent's answer after the last contact, or closing, respectively.

use jiff::{SignedDuration, Timestamp};

use serde_json::json;

use super::business_time::Hours;
use crate::model::{
    Alert, Alerts, ChangeKind, Deadline, FieldChange, SlaPolicy, Ticket, TicketState,
};

/// The SLA a ticket runs under: its policy (if any) and the hours that count.
#[derive(Clone, Debug)]
pub struct Sla {
    /// The policy that applies.
    pub policy: Option<SlaPolicy>,
    /// Its calendar's business hours (24×7 without one).
    pub hours: Hours,
}

impl Sla {
    /// No policy: no deadlines.
    pub fn none() -> Self {
        Self {
            policy: None,
            hours: Hours::Always,
        }
    }
}

/// When `deadline`'s clock started.
fn start(ticket: &Ticket, deadline: Deadline) -> Timestamp {
    match deadline {
        Deadline::FirstResponse | Deadline::Solution => ticket.create_time,
        Deadline::Update => ticket.last_customer_contact,
    }
}

/// Whether `deadline` still has to be met.
fn open(ticket: &Ticket, deadline: Deadline) -> bool {
    ticket.state.is_open()
        && match deadline {
            Deadline::FirstResponse => ticket.first_response_time.is_none(),
            Deadline::Update => ticket
                .last_agent_response
                .is_none_or(|answer| answer < ticket.last_customer_contact),
            Deadline::Solution => true,
        }
}

/// Sets the ticket's deadlines and warning instants from its clocks and `sla`: none for a
/// met deadline, a policy without that budget, or while the ticket is pending.
pub fn schedule(ticket: &mut Ticket, sla: &Sla) {
    for deadline in Deadline::ALL {
        let budget = sla
            .policy
            .as_ref()
            .and_then(|policy| policy.budget(deadline));
        let running = ticket.pending_since.is_none() && open(ticket, deadline);
        let (due, warn) = match budget {
            Some(budget) if running => {
                let start = start(ticket, deadline);
                let paused = SignedDuration::from_secs(ticket.clocks.paused(deadline));
                let due = sla.hours.add(start, budget + paused);
                let percent = sla.policy.as_ref().map_or(0, |p| p.warning_percent);
                let warn = (1..=99).contains(&percent).then(|| {
                    let share =
                        SignedDuration::from_secs(budget.as_secs() * i64::from(percent) / 100);
                    sla.hours.add(start, share + paused)
                });
                (Some(due), warn)
            }
            _ => (None, None),
        };
        ticket.set_due(deadline, due);
        ticket.clocks.set_warn(deadline, warn);
    }
}

/// Stops the clocks: the ticket begins to wait at `now`.
pub fn pause(ticket: &mut Ticket, now: Timestamp) {
    if ticket.pending_since.is_none() {
        ticket.pending_since = Some(now);
    }
}

/// Restarts the clocks at `now`, adding the business time spent waiting to each clock that
/// was running (a clock that started during the wait only pauses from its start).
pub fn resume(ticket: &mut Ticket, now: Timestamp, sla: &Sla) {
    let Some(since) = ticket.pending_since.take() else {
        return;
    };
    for deadline in Deadline::ALL {
        let from = since.max(start(ticket, deadline));
        let waited = sla.hours.between(from, now).as_secs();
        ticket.clocks.add_pause(deadline, waited);
    }
}

/// What the ticket calls attention for at `now`.
pub fn alerts_at(ticket: &Ticket, now: Timestamp) -> Alerts {
    let mut alerts = Alerts {
        reminder_due: ticket.state == TicketState::PendingReminder
            && ticket.pending_until.is_some_and(|until| until <= now),
        ..Alerts::default()
    };
    for deadline in Deadline::ALL {
        let alert = match (ticket.due(deadline), ticket.clocks.warn(deadline)) {
            (Some(due), _) if due <= now => Alert::Escalated,
            (Some(_), Some(warn)) if warn <= now => Alert::Warning,
            _ => Alert::None,
        };
        alerts.set(deadline, alert);
    }
    alerts
}

/// The next instant after `now` at which the ticket changes by itself: a warning, a
/// deadline, or the end of a pending state.
pub fn next_event(ticket: &Ticket, now: Timestamp) -> Option<Timestamp> {
    let pending = ticket
        .state
        .is_pending()
        .then_some(ticket.pending_until)
        .flatten();
    Deadline::ALL
        .into_iter()
        .flat_map(|deadline| [ticket.due(deadline), ticket.clocks.warn(deadline)])
        .chain(std::iter::once(pending))
        .flatten()
        .filter(|at| *at > now)
        .min()
}

/// Recomputes the ticket's deadlines under `sla`, its alerts at `now` and its next event.
pub fn refresh(ticket: &mut Ticket, sla: &Sla, now: Timestamp) {
    schedule(ticket, sla);
    ticket.alerts = alerts_at(ticket, now);
    ticket.next_event_time = next_event(ticket, now);
}

/// One change of what a ticket calls attention for, as the change log and the escalation
/// watch name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertChange {
    /// A deadline's warning share was used up at `at`.
    Warning {
        /// Which deadline.
        deadline: Deadline,
        /// The warning instant.
        at: Timestamp,
    },
    /// A deadline passed at `at`.
    Escalated {
        /// Which deadline.
        deadline: Deadline,
        /// The deadline.
        at: Timestamp,
    },
    /// The pending reminder became due at `at`.
    ReminderDue {
        /// The reminder time.
        at: Timestamp,
    },
    /// A deadline's alert went away (met, paused, or moved by a changed SLA).
    Cleared {
        /// Which deadline; none for the reminder.
        deadline: Option<Deadline>,
    },
}

impl AlertChange {
    /// The change-log kind of this change.
    pub fn kind(self) -> ChangeKind {
        match self {
            Self::Warning { .. } => ChangeKind::Warning,
            Self::Escalated { .. } => ChangeKind::Escalated,
            Self::ReminderDue { .. } => ChangeKind::ReminderDue,
            Self::Cleared { .. } => ChangeKind::Cleared,
        }
    }

    /// The change-log fields of this change: the deadline and the instant.
    pub fn fields(self) -> Vec<FieldChange> {
        let set = |field: &str, value: serde_json::Value| FieldChange {
            field: field.to_owned(),
            old: serde_json::Value::Null,
            new: value,
        };
        match self {
            Self::Warning { deadline, at } | Self::Escalated { deadline, at } => vec![
                set("deadline", json!(deadline.as_str())),
                set("at", json!(at.to_string())),
            ],
            Self::ReminderDue { at } => vec![
                set("deadline", json!("reminder")),
                set("at", json!(at.to_string())),
            ],
            Self::Cleared { deadline } => vec![set(
                "deadline",
                json!(deadline.map_or("reminder", Deadline::as_str)),
            )],
        }
    }

    /// Reads a change back from the change log.
    pub fn from_log(kind: &str, changes: &[FieldChange]) -> Option<Self> {
        let field = |name: &str| {
            changes
                .iter()
                .find(|c| c.field == name)
                .and_then(|c| c.new.as_str())
        };
        let deadline = field("deadline").and_then(Deadline::parse);
        let at = field("at").and_then(|at| at.parse::<Timestamp>().ok());
        match kind {
            "warning" => Some(Self::Warning {
                deadline: deadline?,
                at: at?,
            }),
            "escalated" => Some(Self::Escalated {
                deadline: deadline?,
                at: at?,
            }),
            "reminder_due" => Some(Self::ReminderDue { at: at? }),
            "cleared" => Some(Self::Cleared { deadline }),
            _ => None,
        }
    }
}

/// What changed between the alerts `before` and the ticket's alerts now: every deadline whose
/// alert fell (cleared, then a warning if it fell to one) or rose, and the reminder.
pub fn alert_changes(before: &Alerts, ticket: &Ticket) -> Vec<AlertChange> {
    let after = &ticket.alerts;
    let mut changes = Vec::new();
    for deadline in Deadline::ALL {
        let (was, is) = (before.of(deadline), after.of(deadline));
        if is == was {
            continue;
        }
        if is < was {
            changes.push(AlertChange::Cleared {
                deadline: Some(deadline),
            });
        }
        match is {
            Alert::Escalated => changes.extend(
                ticket
                    .due(deadline)
                    .map(|at| AlertChange::Escalated { deadline, at }),
            ),
            Alert::Warning => changes.extend(
                ticket
                    .clocks
                    .warn(deadline)
                    .map(|at| AlertChange::Warning { deadline, at }),
            ),
            Alert::None => {}
        }
    }
    match (before.reminder_due, after.reminder_due) {
        (false, true) => changes.extend(
            ticket
                .pending_until
                .map(|at| AlertChange::ReminderDue { at }),
        ),
        (true, false) => changes.push(AlertChange::Cleared { deadline: None }),
        _ => {}
    }
    changes
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use jiff::{civil::date, tz::TimeZone};
    use uuid::Uuid;

    use super::*;
    use crate::{
        domain::business_time::BusinessHours,
        model::{SlaClocks, SlaPolicy},
    };

    fn berlin(y: i16, m: i8, d: i8, h: i8, min: i8) -> Timestamp {
        TimeZone::get("Europe/Berlin")
            .unwrap()
            .to_timestamp(date(y, m, d).at(h, min, 0, 0))
            .unwrap()
    }

    fn office_sla(first_response_hours: i64, warning_percent: u8) -> Sla {
        let day = vec![(9 * 60, 17 * 60)];
        Sla {
            policy: Some(SlaPolicy {
                id: Uuid::nil(),
                name: "Office".into(),
                first_response: Some(SignedDuration::from_hours(first_response_hours)),
                update: None,
                solution: Some(SignedDuration::from_hours(16)),
                warning_percent,
                calendar_id: None,
                create_time: Timestamp::UNIX_EPOCH,
                update_time: Timestamp::UNIX_EPOCH,
                version: 1,
            }),
            hours: Hours::Calendar(BusinessHours::new(
                TimeZone::get("Europe/Berlin").unwrap(),
                [
                    day.clone(),
                    day.clone(),
                    day.clone(),
                    day.clone(),
                    day,
                    vec![],
                    vec![],
                ],
                BTreeSet::new(),
            )),
        }
    }

    fn ticket(created: Timestamp) -> Ticket {
        Ticket {
            id: Uuid::nil(),
            number: 1,
            title: "t".into(),
            group_id: Uuid::nil(),
            customer_id: Uuid::nil(),
            organisation_id: None,
            additional_customer_ids: Vec::new(),
            state: TicketState::New,
            priority: 3,
            assignee_id: None,
            sla_policy_id: None,
            applied_sla_policy_id: None,
            pending_until: None,
            first_response_time: None,
            close_time: None,
            last_customer_contact: created,
            last_agent_response: None,
            pending_since: None,
            clocks: SlaClocks::default(),
            first_response_due: None,
            update_due: None,
            solution_due: None,
            alerts: Alerts::default(),
            next_event_time: None,
            create_time: created,
            update_time: created,
            version: 1,
            merged_into: None,
            severity: None,
            sla_contact_group_id: None,
            reader_group_id: None,
        }
    }

    #[test]
    fn deadlines_and_warnings_follow_the_calendar() {
        let sla = office_sla(2, 50);
        let mut t = ticket(berlin(2026, 11, 27, 16, 30));
        schedule(&mut t, &sla);
        assert_eq!(t.first_response_due, Some(berlin(2026, 11, 30, 10, 30)));
        // Half of the two hours: 30 minutes on Friday, 30 on Monday morning.
        assert_eq!(
            t.clocks.first_response_warn,
            Some(berlin(2026, 11, 30, 9, 30))
        );
        assert_eq!(t.update_due, None, "the policy has no update budget");
        assert_eq!(
            next_event(&t, berlin(2026, 11, 27, 16, 30)),
            Some(berlin(2026, 11, 30, 9, 30))
        );
        let weekend = alerts_at(&t, berlin(2026, 11, 28, 12, 0));
        assert_eq!(weekend.first_response, Alert::None);
        let warned = alerts_at(&t, berlin(2026, 11, 30, 9, 45));
        assert_eq!(warned.first_response, Alert::Warning);
        let escalated = alerts_at(&t, berlin(2026, 11, 30, 10, 30));
        assert_eq!(escalated.first_response, Alert::Escalated);
        assert_eq!(escalated.escalation(), Alert::Escalated);
    }

    #[test]
    fn pending_pauses_the_clock_in_business_time() {
        let sla = office_sla(4, 0);
        // Monday 09:00, due 13:00.
        let mut t = ticket(berlin(2026, 11, 30, 9, 0));
        schedule(&mut t, &sla);
        assert_eq!(t.first_response_due, Some(berlin(2026, 11, 30, 13, 0)));
        // Pending from 10:00 to 15:00: five business hours pass while waiting.
        t.state = TicketState::PendingReminder;
        pause(&mut t, berlin(2026, 11, 30, 10, 0));
        schedule(&mut t, &sla);
        assert_eq!(t.first_response_due, None, "no deadline while pending");
        assert_eq!(
            alerts_at(&t, berlin(2026, 11, 30, 14, 0)).first_response,
            Alert::None
        );
        t.state = TicketState::Open;
        resume(&mut t, berlin(2026, 11, 30, 15, 0), &sla);
        schedule(&mut t, &sla);
        // Three hours were left: 15:00–17:00 on Monday, then 1 h on Tuesday.
        assert_eq!(t.first_response_due, Some(berlin(2026, 12, 1, 10, 0)));
    }

    #[test]
    fn closing_meets_every_deadline() {
        let sla = office_sla(2, 0);
        let mut t = ticket(berlin(2026, 11, 30, 9, 0));
        t.state = TicketState::Closed;
        schedule(&mut t, &sla);
        assert_eq!((t.first_response_due, t.solution_due), (None, None));
        assert!(alerts_at(&t, berlin(2027, 1, 1, 0, 0)).is_quiet());
    }
}
