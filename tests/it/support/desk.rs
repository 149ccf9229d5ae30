//! A small helpdesk for ticket tests: a group, an organisation with a customer, an agent with
//! RW on the group, tokens for both, and helpers for SLA policies and tickets.

use std::sync::Arc;

use clientele::{
    clock::ManualClock,
    proto::{
        google::r#type::{Date as GoogleDate, DayOfWeek, TimeOfDay},
        v1 as pb,
    },
};
use jiff::{SignedDuration, Timestamp};
use tonic::Status;

use super::{Backend, Clients, TestServer};

/// Monday 2026-11-30 08:00 UTC (09:00 in Berlin): where the manual clock of ticket tests starts.
pub const MONDAY_0900_BERLIN: &str = "2026-11-30T08:00:00Z";

/// A test server whose clock is moved by hand.
pub async fn start_with_clock(backend: Backend) -> Option<(TestServer, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(
        MONDAY_0900_BERLIN.parse().expect("start time"),
    ));
    let server = TestServer::start_with(backend, |config| config.clock = clock.clone()).await?;
    Some((server, clock))
}

/// Everything a ticket test needs in one group.
pub struct Desk {
    pub group: pb::Group,
    pub organisation: pb::Organisation,
    pub customer: pb::Customer,
    pub agent: pb::Agent,
    /// Calls as the customer.
    pub as_customer: Clients,
    /// Calls as the agent (RW on the group).
    pub as_agent: Clients,
}

impl TestServer {
    /// A desk named `name`: group `name`, organisation `name` (RW on the group in
    /// SAME_ORGANISATION context, so its customers use the group and work each other's
    /// tickets) with customer `someone@name.example`, and agent `name-agent` (RW on the group).
    pub async fn desk(&self, name: &str) -> Desk {
        let group = self.group(name).await;
        let organisation = self.organisation(name, &[]).await;
        let customer = self
            .customer(pb::Customer {
                email: format!("someone@{name}.example"),
                first_name: "Some".into(),
                last_name: "One".into(),
                organisation_id: organisation.id.clone(),
                ..Default::default()
            })
            .await;
        let agent = self.agent(&format!("{name}-agent"), false).await;
        self.grant(
            pb::subject::Subject::AgentId(agent.id.clone()),
            &group.id,
            pb::PermissionLevel::Rw,
            pb::GrantContext::Unspecified,
        )
        .await;
        self.grant(
            pb::subject::Subject::OrganisationId(organisation.id.clone()),
            &group.id,
            pb::PermissionLevel::Rw,
            pb::GrantContext::SameOrganisation,
        )
        .await;
        let as_customer = self.as_token(
            &self
                .token(pb::token_owner::Owner::CustomerId(customer.id.clone()))
                .await,
        );
        let as_agent = self.as_token(
            &self
                .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
                .await,
        );
        Desk {
            group,
            organisation,
            customer,
            agent,
            as_customer,
            as_agent,
        }
    }

    /// Creates an SLA policy; `calendar_id` empty for 24×7.
    pub async fn policy(
        &self,
        name: &str,
        first_response: Option<SignedDuration>,
        update: Option<SignedDuration>,
        solution: Option<SignedDuration>,
        warning_percent: i32,
        calendar_id: &str,
    ) -> pb::SlaPolicy {
        self.slas()
            .create_sla_policy(pb::CreateSlaPolicyRequest {
                request_id: String::new(),
                sla_policy: Some(pb::SlaPolicy {
                    name: name.into(),
                    first_response_within: first_response.map(duration),
                    update_within: update.map(duration),
                    solution_within: solution.map(duration),
                    warning_percent,
                    calendar_id: calendar_id.into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("create SLA policy")
            .into_inner()
            .sla_policy
            .expect("policy")
    }

    /// Creates the calendar Monday to Friday 09:00–17:00 in `zone`.
    pub async fn office_calendar(&self, name: &str, zone: &str, holidays: &[&str]) -> pb::Calendar {
        let weekday = |day: DayOfWeek| pb::DayHours {
            weekday: day.into(),
            ranges: vec![pb::TimeRange {
                start: Some(clock("09:00")),
                end: Some(clock("17:00")),
            }],
        };
        self.slas()
            .create_calendar(pb::CreateCalendarRequest {
                request_id: String::new(),
                calendar: Some(pb::Calendar {
                    name: name.into(),
                    time_zone: zone.into(),
                    hours: vec![
                        weekday(DayOfWeek::Monday),
                        weekday(DayOfWeek::Tuesday),
                        weekday(DayOfWeek::Wednesday),
                        weekday(DayOfWeek::Thursday),
                        weekday(DayOfWeek::Friday),
                    ],
                    holidays: holidays.iter().map(|d| date(d)).collect(),
                    ..Default::default()
                }),
            })
            .await
            .expect("create calendar")
            .into_inner()
            .calendar
            .expect("calendar")
    }
}

impl Desk {
    /// The customer's ticket as the agent creates it.
    pub fn ticket(&self, title: &str) -> pb::Ticket {
        pb::Ticket {
            title: title.into(),
            group_id: self.group.id.clone(),
            customer_id: self.customer.id.clone(),
            ..Default::default()
        }
    }

    /// Creates `ticket` as the agent.
    pub async fn create(&self, ticket: pb::Ticket) -> pb::Ticket {
        self.try_create(ticket).await.expect("create ticket")
    }

    /// Tries to create `ticket` as the agent.
    pub async fn try_create(&self, ticket: pb::Ticket) -> Result<pb::Ticket, Status> {
        let mut tickets = self.as_agent.tickets.clone();
        Ok(tickets
            .create_ticket(pb::CreateTicketRequest {
                ticket: Some(ticket),
                request_id: String::new(),
            })
            .await?
            .into_inner()
            .ticket
            .expect("ticket"))
    }
}

/// Reads ticket `id` as the admin of `server`.
pub async fn ticket(server: &TestServer, id: &str) -> pb::Ticket {
    server
        .tickets()
        .get_ticket(pb::GetTicketRequest {
            key: Some(pb::get_ticket_request::Key::Id(id.into())),
        })
        .await
        .expect("get ticket")
        .into_inner()
        .ticket
        .expect("ticket")
}

/// Changes the `paths` of `ticket` (with its etag) to the values in it, as `clients`.
pub async fn update(
    clients: &Clients,
    ticket: pb::Ticket,
    paths: &[&str],
) -> Result<pb::Ticket, Status> {
    let mut tickets = clients.tickets.clone();
    Ok(tickets
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(ticket),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
        })
        .await?
        .into_inner()
        .ticket
        .expect("ticket"))
}

/// A duration for the API.
pub fn duration(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

/// A time for the API.
pub fn proto_time(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// A time from the API.
pub fn time(t: &Option<prost_types::Timestamp>) -> Option<Timestamp> {
    t.as_ref()
        .map(|t| Timestamp::new(t.seconds, t.nanos).expect("valid time"))
}

/// A time in `zone` as an instant.
pub fn local(zone: &str, text: &str) -> Timestamp {
    let civil: jiff::civil::DateTime = text.parse().expect("civil time");
    jiff::tz::TimeZone::get(zone)
        .expect("zone")
        .to_timestamp(civil)
        .expect("instant")
}

/// Waits for `check` to hold, checking every 10 ms, for at most [`super::PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + super::PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// A time of day written `HH:MM`.
pub fn clock(text: &str) -> TimeOfDay {
    let (hours, minutes) = text.split_once(':').expect("HH:MM");
    TimeOfDay {
        hours: hours.parse().expect("hours"),
        minutes: minutes.parse().expect("minutes"),
        seconds: 0,
        nanos: 0,
    }
}

/// A date written `YYYY-MM-DD`.
pub fn date(text: &str) -> GoogleDate {
    let date: jiff::civil::Date = text.parse().expect("YYYY-MM-DD");
    GoogleDate {
        year: i32::from(date.year()),
        month: i32::from(date.month()),
        day: i32::from(date.day()),
    }
}
