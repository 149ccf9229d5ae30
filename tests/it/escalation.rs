//! Escalation with a manual clock: WARNING, ESCALATED, REMINDER_DUE and automatic closing at
//! their instants, the clock standing still while pending, and the live watch with its
//! snapshot, its filters, a slow watcher's RESYNC and a second replica.

use std::time::Duration;

use clientele::{clock::Clock, proto::v1 as pb};
use jiff::{SignedDuration, Timestamp};
use tonic::{Code, Streaming};

use crate::support::{
    Backend, PATIENCE, TestServer,
    desk::{self, Desk, time, update},
    reason,
};

type Kind = pb::WatchEventKind;

/// Starts a watch as `desk`'s agent (or customer) and reads its snapshot up to
/// SNAPSHOT_COMPLETE; returns the stream and the snapshot's ticket numbers.
async fn watch(
    clients: &crate::support::Clients,
    request: pb::WatchEscalationsRequest,
) -> (Streaming<pb::WatchEscalationsResponse>, Vec<i64>) {
    let mut stream = clients
        .tickets
        .clone()
        .watch_escalations(request)
        .await
        .expect("watch")
        .into_inner();
    let snapshot = read_snapshot(&mut stream).await;
    (stream, snapshot)
}

async fn read_snapshot(stream: &mut Streaming<pb::WatchEscalationsResponse>) -> Vec<i64> {
    let mut numbers = Vec::new();
    loop {
        let message = next(stream).await;
        match message.kind() {
            Kind::Snapshot => numbers.push(message.ticket.expect("ticket").number),
            Kind::SnapshotComplete => return numbers,
            other => panic!("unexpected {other:?} in a snapshot"),
        }
    }
}

/// The next message, which must come.
async fn next(
    stream: &mut Streaming<pb::WatchEscalationsResponse>,
) -> pb::WatchEscalationsResponse {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("a watch message")
        .expect("watch stream")
        .expect("the watch goes on")
}

/// Asserts that no message arrives for a while.
async fn quiet(stream: &mut Streaming<pb::WatchEscalationsResponse>) {
    if let Ok(message) = tokio::time::timeout(Duration::from_millis(300), stream.message()).await {
        panic!("expected no watch message, got {message:?}");
    }
}

/// A 24×7 policy: first response `hours`, solution five times as long, warnings at half.
async fn round_the_clock(server: &TestServer, desk: &Desk, hours: i64) -> pb::SlaPolicy {
    let policy = server
        .policy(
            &format!("24x7 {}", desk.group.name),
            Some(SignedDuration::from_hours(hours)),
            None,
            Some(SignedDuration::from_hours(hours * 5)),
            50,
            "",
        )
        .await;
    let mut group = desk.group.clone();
    group.default_sla_policy_id = policy.id.clone();
    server
        .groups()
        .update_group(pb::UpdateGroupRequest {
            group: Some(group),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["default_sla_policy_id".into()],
            }),
        })
        .await
        .expect("give the group the policy");
    policy
}

/// The numbers of the tickets ListTickets streams to `clients` for `request`.
async fn listed(clients: &crate::support::Clients, request: pb::ListTicketsRequest) -> Vec<i64> {
    let mut stream = clients
        .tickets
        .clone()
        .list_tickets(request)
        .await
        .expect("list")
        .into_inner();
    let mut numbers = Vec::new();
    while let Some(item) = stream.message().await.expect("stream") {
        numbers.push(item.ticket.expect("ticket").number);
    }
    numbers
}

/// The numbers in the organisation overview of `desk`'s organisation: (escalated, warning,
/// reminder due).
async fn overview_lists(desk: &Desk) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let overview = desk
        .as_agent
        .tickets
        .clone()
        .get_organisation_overview(pb::GetOrganisationOverviewRequest {
            key: Some(pb::get_organisation_overview_request::Key::Id(
                desk.organisation.id.clone(),
            )),
            limit: 0,
            reminder_window: None,
        })
        .await
        .expect("overview")
        .into_inner();
    let numbers = |tickets: &[pb::Ticket]| tickets.iter().map(|t| t.number).collect();
    (
        numbers(&overview.escalated_tickets),
        numbers(&overview.warning_tickets),
        numbers(&overview.reminder_due_tickets),
    )
}

/// The numbers of the pending tickets in the overview of `desk`'s organisation whose reminder
/// comes due within `window` (none: the default day).
async fn upcoming(desk: &Desk, window: Option<SignedDuration>) -> Vec<i64> {
    desk.as_agent
        .tickets
        .clone()
        .get_organisation_overview(pb::GetOrganisationOverviewRequest {
            key: Some(pb::get_organisation_overview_request::Key::Id(
                desk.organisation.id.clone(),
            )),
            limit: 0,
            reminder_window: window.map(desk::duration),
        })
        .await
        .expect("overview")
        .into_inner()
        .upcoming_reminder_tickets
        .iter()
        .map(|t| t.number)
        .collect()
}

/// ListTickets narrowed to one escalation level.
fn at_level(level: pb::Escalation) -> pb::ListTicketsRequest {
    pb::ListTicketsRequest {
        escalations: vec![level.into()],
        ..Default::default()
    }
}

fn deadline_time(message: &pb::WatchEscalationsResponse) -> Option<Timestamp> {
    time(&message.deadline_time)
}

clock_tests! {
    async fn warning_and_escalation_fire_at_their_instants_and_are_recorded_once(server, clock) {
        let desk = server.desk("acme").await;
        round_the_clock(&server, &desk, 2).await;
        let start = clock.now();
        let ticket = desk.create(desk.ticket("Slow")).await;
        let (mut stream, snapshot) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        assert!(snapshot.is_empty());
        clock.set(start + SignedDuration::from_mins(59));
        quiet(&mut stream).await;
        clock.set(start + SignedDuration::from_hours(1));
        let warning = next(&mut stream).await;
        assert_eq!((warning.kind(), warning.deadline()), (Kind::Warning, pb::Deadline::FirstResponse));
        assert_eq!(deadline_time(&warning), Some(start + SignedDuration::from_hours(1)));
        assert_eq!(warning.ticket.as_ref().map(|t| t.escalation()), Some(pb::Escalation::Warning));
        assert_eq!(listed(&desk.as_agent, at_level(pb::Escalation::Warning)).await, [ticket.number]);
        assert!(listed(&desk.as_agent, at_level(pb::Escalation::Escalated)).await.is_empty());
        assert_eq!(overview_lists(&desk).await, (vec![], vec![ticket.number], vec![]));
        clock.set(start + SignedDuration::from_hours(2));
        let escalated = next(&mut stream).await;
        assert_eq!((escalated.kind(), escalated.deadline()), (Kind::Escalated, pb::Deadline::FirstResponse));
        assert_eq!(deadline_time(&escalated), Some(start + SignedDuration::from_hours(2)));
        assert_eq!(time(&escalated.record_time), Some(start + SignedDuration::from_hours(2)));
        let stored = desk::ticket(&server, &ticket.id).await;
        assert_eq!(stored.escalation(), pb::Escalation::Escalated);
        assert_eq!(stored.first_response_escalation(), pb::Escalation::Escalated);
        assert_eq!(listed(&desk.as_agent, at_level(pb::Escalation::Escalated)).await, [ticket.number]);
        assert!(listed(&desk.as_agent, at_level(pb::Escalation::Warning)).await.is_empty());
        assert_eq!(overview_lists(&desk).await, (vec![ticket.number], vec![], vec![]));
        let history = server.tickets().get_ticket_history(pb::GetTicketHistoryRequest { id: ticket.id.clone(), ..Default::default() }).await.expect("history").into_inner();
        let kinds: Vec<(pb::ChangeKind, &str)> = history.entries.iter().map(|e| (e.kind(), e.actor.as_str())).collect();
        assert_eq!(kinds[1..], [(pb::ChangeKind::Warning, "system"), (pb::ChangeKind::Escalated, "system")]);
        // A new watcher finds the ticket in its snapshot.
        let (_, snapshot) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        assert_eq!(snapshot, [ticket.number]);
        // Closing meets the deadlines: the alerts clear.
        update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..stored }, &["state"]).await.expect("close");
        let cleared = next(&mut stream).await;
        assert_eq!((cleared.kind(), cleared.deadline()), (Kind::Cleared, pb::Deadline::FirstResponse));
        assert_eq!(cleared.ticket.as_ref().map(|t| t.escalation()), Some(pb::Escalation::None));
    }

    async fn a_reminder_becomes_due_and_a_pending_close_closes_at_its_time(server, clock) {
        let desk = server.desk("acme").await;
        let start = clock.now();
        let remind = desk.create(desk.ticket("Remind me")).await;
        let close = desk.create(desk.ticket("Close me")).await;
        let at = start + SignedDuration::from_hours(3);
        let pending = |ticket: pb::Ticket, state: pb::TicketState| pb::Ticket { state: state.into(), pending_until: Some(desk::proto_time(at)), ..ticket };
        update(&desk.as_agent, pending(remind.clone(), pb::TicketState::PendingReminder), &["state", "pending_until"]).await.expect("pending reminder");
        update(&desk.as_agent, pending(close.clone(), pb::TicketState::PendingClose), &["state", "pending_until"]).await.expect("pending close");
        let (mut stream, _) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        // About to come due: within the day an overview looks ahead by default, not within
        // the hour; a pending close is no reminder.
        assert_eq!(upcoming(&desk, None).await, [remind.number]);
        assert!(upcoming(&desk, Some(SignedDuration::from_hours(1))).await.is_empty());
        assert_eq!(upcoming(&desk, Some(SignedDuration::from_hours(4))).await, [remind.number]);
        clock.set(at - SignedDuration::from_secs(1));
        quiet(&mut stream).await;
        assert_eq!(desk::ticket(&server, &close.id).await.state(), pb::TicketState::PendingClose);
        clock.set(at + SignedDuration::from_mins(5));
        let due = next(&mut stream).await;
        assert_eq!((due.kind(), due.deadline()), (Kind::ReminderDue, pb::Deadline::Reminder));
        assert_eq!(deadline_time(&due), Some(at));
        assert_eq!(due.ticket.as_ref().map(|t| t.number), Some(remind.number));
        desk::eventually("the pending-close ticket closes", || {
            let server = &server;
            let id = close.id.clone();
            async move { desk::ticket(server, &id).await.state() == pb::TicketState::Closed }
        }).await;
        let closed = desk::ticket(&server, &close.id).await;
        assert_eq!(time(&closed.close_time), Some(at), "closed at its time, not when noticed");
        let reminded = desk::ticket(&server, &remind.id).await;
        assert!(reminded.reminder_due);
        assert_eq!(reminded.state(), pb::TicketState::PendingReminder, "a reminder waits for an agent");
        let due_only = pb::ListTicketsRequest { reminder_due: true, ..Default::default() };
        assert_eq!(listed(&desk.as_agent, due_only.clone()).await, [remind.number]);
        assert_eq!(overview_lists(&desk).await, (vec![], vec![], vec![remind.number]));
        assert!(upcoming(&desk, None).await.is_empty(), "a due reminder is no longer upcoming");
        // Opening the ticket clears the reminder.
        update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Open.into(), pending_until: None, ..reminded }, &["state"]).await.expect("open");
        let cleared = next(&mut stream).await;
        assert_eq!((cleared.kind(), cleared.deadline()), (Kind::Cleared, pb::Deadline::Reminder));
        assert!(listed(&desk.as_agent, due_only).await.is_empty());
    }

    async fn pending_stops_the_sla_clock_in_business_time(server, clock) {
        let desk = server.desk("acme").await;
        let calendar = server.office_calendar("Office", "Europe/Berlin", &[]).await;
        let policy = server.policy("Office", Some(SignedDuration::from_hours(4)), None, None, 0, &calendar.id).await;
        // Monday 09:00: due 13:00.
        let ticket = desk.create(pb::Ticket { sla_policy_id: policy.id.clone(), ..desk.ticket("Paused") }).await;
        assert_eq!(time(&ticket.first_response_due), Some(desk::local("Europe/Berlin", "2026-11-30T13:00")));
        // Pending from 10:00 until Tuesday: the deadline is gone while waiting.
        clock.set(desk::local("Europe/Berlin", "2026-11-30T10:00"));
        let until = desk::local("Europe/Berlin", "2026-12-01T09:00");
        let waiting = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::PendingReminder.into(), pending_until: Some(desk::proto_time(until)), ..ticket }, &["state", "pending_until"]).await.expect("pending");
        assert_eq!(waiting.first_response_due, None);
        // Monday 15:00 back to open: three business hours were left → Tuesday 10:00.
        clock.set(desk::local("Europe/Berlin", "2026-11-30T15:00"));
        let open = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Open.into(), ..waiting }, &["state"]).await.expect("open");
        assert_eq!(time(&open.first_response_due), Some(desk::local("Europe/Berlin", "2026-12-01T10:00")));
        // And it escalates then, not at the unpaused 13:00.
        clock.set(desk::local("Europe/Berlin", "2026-12-01T09:59"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(desk::ticket(&server, &open.id).await.escalation(), pb::Escalation::None);
        clock.set(desk::local("Europe/Berlin", "2026-12-01T10:00"));
        desk::eventually("the ticket escalates at 10:00 on Tuesday", || {
            let server = &server;
            let id = open.id.clone();
            async move { desk::ticket(server, &id).await.escalation() == pb::Escalation::Escalated }
        }).await;
    }

    async fn a_running_watch_follows_its_watchers_rights(server, clock) {
        let desk = server.desk("acme").await;
        round_the_clock(&server, &desk, 1).await;
        let start = clock.now();
        let first = desk.create(desk.ticket("First")).await;
        clock.set(start + SignedDuration::from_mins(10));
        let second = desk.create(desk.ticket("Second")).await;
        let (mut as_customer, _) = watch(&desk.as_customer, pb::WatchEscalationsRequest::default()).await;
        let (mut as_agent, _) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        clock.set(start + SignedDuration::from_mins(30));
        for stream in [&mut as_customer, &mut as_agent] {
            let warning = next(stream).await;
            assert_eq!((warning.kind(), warning.ticket.map(|t| t.number)), (Kind::Warning, Some(first.number)));
        }
        // The organisation's grant goes: its customer hears no more of the group's tickets.
        server.permissions().revoke_permission(pb::RevokePermissionRequest {
            subject: Some(pb::Subject { subject: Some(pb::subject::Subject::OrganisationId(desk.organisation.id.clone())) }),
            group_id: desk.group.id.clone(),
            context: pb::GrantContext::SameOrganisation.into(),
        }).await.expect("revoke the grant");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        clock.set(start + SignedDuration::from_mins(40));
        let warning = next(&mut as_agent).await;
        assert_eq!((warning.kind(), warning.ticket.map(|t| t.number)), (Kind::Warning, Some(second.number)));
        quiet(&mut as_customer).await;
        // The agent's token is revoked: its watch ends, though no event comes.
        let who = desk.as_agent.agents.clone().who_am_i(pb::WhoAmIRequest {}).await.expect("who").into_inner();
        server.agents().revoke_token(pb::RevokeTokenRequest { id: who.token.expect("token").id }).await.expect("revoke the token");
        let ended = tokio::time::timeout(PATIENCE, as_agent.message()).await.expect("an answer");
        let status = ended.expect_err("the watch ends");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        quiet(&mut as_customer).await;
    }

    async fn a_customer_whose_own_grant_is_its_only_way_in_hears_only_of_its_own_tickets(server, clock) {
        // Two customers of no organisation use one group through grants of their own: each
        // reaches its own tickets there (as main or additional customer), never the other's.
        let desk = server.desk("acme").await;
        round_the_clock(&server, &desk, 1).await;
        let customer = |email: &str| server.customer(pb::Customer { email: email.into(), ..Default::default() });
        let (me, neighbour) = (customer("me@own.example").await, customer("neighbour@own.example").await);
        for who in [&me, &neighbour] {
            server.grant(pb::subject::Subject::CustomerId(who.id.clone()), &desk.group.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        }
        let ticket_of = |main: &pb::Customer, additional: Vec<String>| pb::Ticket {
            customer_id: main.id.clone(),
            organisation_id: String::new(),
            additional_customer_ids: additional,
            ..desk.ticket("Own")
        };
        let start = clock.now();
        let mine = desk.create(ticket_of(&me, vec![])).await;
        let theirs = desk.create(ticket_of(&neighbour, vec![])).await;
        let shared = desk.create(ticket_of(&neighbour, vec![me.id.clone()])).await;
        let as_me = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(me.id.clone())).await);
        let (mut stream, snapshot) = watch(&as_me, pb::WatchEscalationsRequest::default()).await;
        assert!(snapshot.is_empty());
        clock.set(start + SignedDuration::from_mins(30));
        let mut heard = vec![next(&mut stream).await, next(&mut stream).await]
            .into_iter()
            .map(|message| (message.kind(), message.ticket.expect("ticket").number))
            .collect::<Vec<_>>();
        heard.sort();
        assert_eq!(heard, [(Kind::Warning, mine.number), (Kind::Warning, shared.number)], "not {}", theirs.number);
        quiet(&mut stream).await;
        let mut listed_numbers = listed(&as_me, pb::ListTicketsRequest::default()).await;
        listed_numbers.sort();
        assert_eq!(listed_numbers, [mine.number, shared.number]);
    }

    async fn watchers_see_only_the_tickets_they_may_read_and_asked_for(server, clock) {
        let acme = server.desk("acme").await;
        let other = server.desk("other").await;
        round_the_clock(&server, &acme, 1).await;
        round_the_clock(&server, &other, 1).await;
        let start = clock.now();
        let mine = acme.create(acme.ticket("Acme's")).await;
        let theirs = other.create(other.ticket("Other's")).await;
        clock.set(start + SignedDuration::from_hours(2));
        desk::eventually("both tickets escalate", || {
            let server = &server;
            let (a, b) = (mine.id.clone(), theirs.id.clone());
            async move {
                desk::ticket(server, &a).await.escalation() == pb::Escalation::Escalated
                    && desk::ticket(server, &b).await.escalation() == pb::Escalation::Escalated
            }
        }).await;
        let (_, admin) = watch(&server.as_token(&server.admin_secret), pb::WatchEscalationsRequest::default()).await;
        assert_eq!(admin, [mine.number, theirs.number]);
        let (_, agent) = watch(&acme.as_agent, pb::WatchEscalationsRequest::default()).await;
        assert_eq!(agent, [mine.number], "an agent sees the groups it has a grant on");
        let (_, customer) = watch(&acme.as_customer, pb::WatchEscalationsRequest::default()).await;
        assert_eq!(customer, [mine.number], "a customer sees its organisation's tickets");
        let (_, filtered) = watch(&server.as_token(&server.admin_secret), pb::WatchEscalationsRequest { organisation_ids: vec![other.organisation.id.clone()], ..Default::default() }).await;
        assert_eq!(filtered, [theirs.number]);
        let (_, filtered) = watch(&server.as_token(&server.admin_secret), pb::WatchEscalationsRequest { group_ids: vec![acme.group.id.clone()], ..Default::default() }).await;
        assert_eq!(filtered, [mine.number]);
        // Live events follow the same rules.
        let (mut acme_stream, _) = watch(&acme.as_agent, pb::WatchEscalationsRequest::default()).await;
        let fresh_theirs = other.create(other.ticket("Other's too")).await;
        let fresh_mine = acme.create(acme.ticket("Acme's too")).await;
        // Half an hour on: the fresh tickets' first-response warnings, and the first
        // tickets' solution warnings (at half of five hours).
        clock.set(start + SignedDuration::from_hours(2) + SignedDuration::from_mins(30));
        let mut heard = Vec::new();
        for _ in 0..2 {
            let message = next(&mut acme_stream).await;
            assert_eq!(message.kind(), Kind::Warning);
            let deadline = message.deadline();
            heard.push((message.ticket.expect("ticket").number, deadline));
        }
        quiet(&mut acme_stream).await;
        heard.sort();
        assert_eq!(
            heard,
            [(mine.number, pb::Deadline::Solution), (fresh_mine.number, pb::Deadline::FirstResponse)],
            "nothing of the other organisation's group ({})", fresh_theirs.number
        );
    }
}

mod a_watcher_that_cannot_keep_up_is_told_to_resync {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(clientele_postgres_tests),
        ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
    )]
    async fn postgres() {
        run(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        let clock = std::sync::Arc::new(clientele::clock::ManualClock::new(
            desk::MONDAY_0900_BERLIN.parse().expect("time"),
        ));
        let Some(server) = TestServer::start_with(backend, |config| {
            config.clock = clock.clone();
            config.watch_backlog = 8;
            config.watch_buffer = 4;
        })
        .await
        else {
            return;
        };
        let desk = server.desk("acme").await;
        round_the_clock(&server, &desk, 1).await;
        let start = clock.now();
        let mut numbers = Vec::new();
        for i in 0..400 {
            numbers.push(
                desk.create(desk.ticket(&format!("Ticket {i}")))
                    .await
                    .number,
            );
        }
        let (mut stream, _) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        // Every ticket escalates at once; the watcher reads nothing meanwhile.
        clock.set(start + SignedDuration::from_hours(2));
        desk::eventually("all tickets escalate", || {
            let server = &server;
            async move {
                server
                    .tickets()
                    .get_organisation_overview(pb::GetOrganisationOverviewRequest {
                        key: Some(pb::get_organisation_overview_request::Key::Code(
                            "acme".into(),
                        )),
                        limit: 1000,
                        reminder_window: None,
                    })
                    .await
                    .expect("overview")
                    .into_inner()
                    .escalated_tickets
                    .len()
                    == 400
            }
        })
        .await;
        let mut seen_before = std::collections::BTreeSet::new();
        loop {
            let message = next(&mut stream).await;
            match message.kind() {
                Kind::Resync => break,
                Kind::Warning | Kind::Escalated => {
                    seen_before.insert(message.ticket.expect("ticket").number);
                }
                other => panic!("unexpected {other:?} before the resync"),
            }
        }
        assert!(
            seen_before.len() < 400,
            "the watcher fell behind before it heard of every ticket"
        );
        let snapshot = read_snapshot(&mut stream).await;
        assert_eq!(
            snapshot, numbers,
            "the fresh snapshot has every escalated ticket"
        );
        server.stop().await;
    }
}

mod a_watcher_on_one_replica_sees_escalations_of_tickets_changed_through_another {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(clientele_postgres_tests),
        ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
    )]
    async fn postgres() {
        // Replicas share a PostgreSQL database; SQLite is one process's embedded store.
        let Some((server, clock)) = desk::start_with_clock(Backend::Postgres).await else {
            return;
        };
        let replica = server.replica().await;
        let desk = server.desk("acme").await;
        round_the_clock(&server, &desk, 1).await;
        let (mut stream, _) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        // Created and later closed through the replica.
        let agent_secret = server
            .token(pb::token_owner::Owner::AgentId(desk.agent.id.clone()))
            .await;
        let mut through_replica =
            pb::ticket_service_client::TicketServiceClient::new(replica.authed(&agent_secret));
        let ticket = through_replica
            .create_ticket(pb::CreateTicketRequest {
                ticket: Some(desk.ticket("Across")),
                request_id: String::new(),
            })
            .await
            .expect("create through the replica")
            .into_inner()
            .ticket
            .expect("ticket");
        let start = time(&ticket.create_time).expect("create time");
        // Both replicas' schedulers wake at the warning and at the deadline.
        clock.set(start + SignedDuration::from_mins(30));
        let warning = next(&mut stream).await;
        assert_eq!(warning.kind(), Kind::Warning);
        clock.set(start + SignedDuration::from_hours(1));
        let escalated = next(&mut stream).await;
        assert_eq!(
            (escalated.kind(), escalated.deadline()),
            (Kind::Escalated, pb::Deadline::FirstResponse)
        );
        assert_eq!(
            escalated.ticket.as_ref().map(|t| t.number),
            Some(ticket.number)
        );
        let current = through_replica
            .get_ticket(pb::GetTicketRequest {
                key: Some(pb::get_ticket_request::Key::Id(ticket.id.clone())),
            })
            .await
            .expect("get")
            .into_inner()
            .ticket
            .expect("ticket");
        through_replica
            .update_ticket(pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    state: pb::TicketState::Closed.into(),
                    ..current
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["state".into()],
                }),
            })
            .await
            .expect("close through the replica");
        let cleared = next(&mut stream).await;
        assert_eq!(
            cleared.kind(),
            Kind::Cleared,
            "the change on the replica reached this watcher"
        );
        let history = server
            .tickets()
            .get_ticket_history(pb::GetTicketHistoryRequest {
                id: ticket.id.clone(),
                ..Default::default()
            })
            .await
            .expect("history")
            .into_inner();
        let escalations = history
            .entries
            .iter()
            .filter(|e| e.kind() == pb::ChangeKind::Escalated)
            .count();
        let warnings = history
            .entries
            .iter()
            .filter(|e| e.kind() == pb::ChangeKind::Warning)
            .count();
        assert_eq!(
            (warnings, escalations),
            (1, 1),
            "each alert recorded once, however many replicas ran"
        );
        replica.stop().await;
        server.stop().await;
    }
}

clock_tests! {
    async fn shutting_down_ends_open_watches_instead_of_waiting_for_them(server, clock) {
        let desk = server.desk("acme").await;
        let (mut stream, _) = watch(&desk.as_agent, pb::WatchEscalationsRequest::default()).await;
        server.begin_shutdown();
        let ended = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the watch ends well before the shutdown timeout");
        // UNAVAILABLE, never OK: a client tells a shutdown from a normal end and calls again.
        let status = ended.expect_err("a shutdown is not the normal end of a watch");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(reason(&status).as_deref(), Some("SHUTTING_DOWN"));
        drop(stream);
        drop(desk);
        // The harness gives in-flight requests twice as long as this wait.
        let stopped = tokio::time::timeout(PATIENCE, server.join()).await;
        assert!(matches!(stopped, Ok(Ok(()))), "the server stops at once: {stopped:?}");
    }
}
