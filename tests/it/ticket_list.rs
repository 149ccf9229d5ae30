//! ListTickets: ten thousand tickets streamed with every item checked against what the
//! caller may read, resuming from a cursor without gap or duplicate, filters and orders, and
//! a server that reads ahead only a little for a slow client and stops for a gone one.

use std::{collections::BTreeSet, time::Duration};

use clientele::proto::v1 as pb;
use tonic::Code;

use crate::support::{
    Clients, TestServer, concurrently, desk, expect_code, expect_invalid, reason,
};

/// Streams `request` as `clients`; returns the tickets and the last resume token.
async fn stream(clients: &Clients, request: pb::ListTicketsRequest) -> (Vec<pb::Ticket>, String) {
    let mut stream = clients
        .tickets
        .clone()
        .list_tickets(request)
        .await
        .expect("list")
        .into_inner();
    let mut tickets = Vec::new();
    let mut token = String::new();
    while let Some(item) = stream.message().await.expect("stream") {
        token = item.resume_token;
        tickets.push(item.ticket.expect("ticket"));
    }
    (tickets, token)
}

/// Creates `count` tickets as the admin, cycling through `shapes` (group, customer), eight
/// at a time.
async fn seed(server: &TestServer, shapes: &[(String, String)], count: usize) -> Vec<pb::Ticket> {
    let mut created = Vec::with_capacity(count);
    let mut index = 0;
    while index < count {
        let batch: Vec<_> = (index..(index + 8).min(count))
            .map(|i| {
                let (group, customer) = shapes[i % shapes.len()].clone();
                let mut tickets = server.tickets();
                async move {
                    tickets
                        .create_ticket(pb::CreateTicketRequest {
                            ticket: Some(pb::Ticket {
                                title: format!("Ticket {i}"),
                                group_id: group,
                                customer_id: customer,
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        })
                        .await
                        .expect("create")
                        .into_inner()
                        .ticket
                        .expect("ticket")
                }
            })
            .collect();
        index += batch.len();
        created.extend(concurrently(batch).await);
    }
    created
}

backend_tests! {
    async fn ten_thousand_tickets_stream_to_each_caller_exactly_as_far_as_it_may_read(server) {
        let g1 = server.group("first-line").await;
        let g2 = server.group("second-line").await;
        let org_a = server.organisation("A", &[]).await;
        let org_b = server.organisation("B", &[]).await;
        let customer = |email: &str, org: &str| pb::Customer { email: email.into(), organisation_id: org.into(), ..Default::default() };
        let a1 = server.customer(customer("a1@a.example", &org_a.id)).await;
        let a2 = server.customer(customer("a2@a.example", &org_a.id)).await;
        let b1 = server.customer(customer("b1@b.example", &org_b.id)).await;
        use pb::subject::Subject as S;
        use pb::{GrantContext as C, PermissionLevel as L};
        server.grant(S::OrganisationId(org_a.id.clone()), &g1.id, L::Rw, C::SameOrganisation).await;
        server.grant(S::CustomerId(a1.id.clone()), &g2.id, L::Rw, C::Unspecified).await;
        server.grant(S::OrganisationId(org_b.id.clone()), &g1.id, L::Rw, C::SameOrganisation).await;
        server.grant(S::OrganisationId(org_b.id.clone()), &g2.id, L::Rw, C::SameOrganisation).await;
        let agent = server.agent("first-line-agent", false).await;
        server.grant(S::AgentId(agent.id.clone()), &g1.id, L::Ro, C::Unspecified).await;
        let shapes = [
            (g1.id.clone(), a1.id.clone()),
            (g2.id.clone(), a1.id.clone()),
            (g1.id.clone(), a2.id.clone()),
            (g1.id.clone(), b1.id.clone()),
            (g2.id.clone(), b1.id.clone()),
        ];
        let created = seed(&server, &shapes, 10_000).await;
        let as_a1 = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(a1.id.clone())).await);
        let as_a2 = server.as_token(&server.token(pb::token_owner::Owner::CustomerId(a2.id.clone())).await);
        let as_agent = server.as_token(&server.token(pb::token_owner::Owner::AgentId(agent.id.clone())).await);
        let admin = server.as_token(&server.admin_secret);
        type Rule = Box<dyn Fn(&pb::Ticket) -> bool>;
        let (g1_id, g2_id, a_id, a1_id, a2_id) = (g1.id.clone(), g2.id.clone(), org_a.id.clone(), a1.id.clone(), a2.id.clone());
        let may_read: Vec<(&str, &Clients, Rule)> = vec![
            ("admin", &admin, Box::new(|_| true)),
            // SAME_ORGANISATION on the first line; its own grant on the second line.
            ("a1", &as_a1, Box::new({ let (g1, g2, a, me) = (g1_id.clone(), g2_id.clone(), a_id.clone(), a1_id.clone()); move |t| (t.group_id == g1 && t.organisation_id == a) || (t.group_id == g2 && t.customer_id == me) })),
            // SAME_ORGANISATION on the first line only.
            ("a2", &as_a2, Box::new({ let (g1, a, _me) = (g1_id.clone(), a_id.clone(), a2_id.clone()); move |t| t.group_id == g1 && t.organisation_id == a })),
            ("agent", &as_agent, Box::new({ let g1 = g1_id.clone(); move |t| t.group_id == g1 })),
        ];
        for (who, clients, rule) in &may_read {
            let (tickets, _) = stream(clients, pb::ListTicketsRequest::default()).await;
            for ticket in &tickets {
                assert!(rule(ticket), "{who} was sent ticket {} it may not read", ticket.number);
            }
            let expected = created.iter().filter(|t| rule(t)).count();
            assert_eq!(tickets.len(), expected, "{who} gets every ticket it may read");
            let numbers: Vec<i64> = tickets.iter().map(|t| t.number).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{who}: ordered by number, no duplicates");
        }
        // Resume in pieces of 3,000 while more tickets arrive: no gap, no duplicate.
        let (first, mut token) = stream(&admin, pb::ListTicketsRequest { limit: 3_000, ..Default::default() }).await;
        assert_eq!(first.len(), 3_000);
        let mut seen: Vec<i64> = first.iter().map(|t| t.number).collect();
        let later = seed(&server, &shapes, 40).await;
        loop {
            let (more, next) = stream(&admin, pb::ListTicketsRequest { limit: 3_000, resume_token: token.clone(), ..Default::default() }).await;
            if more.is_empty() {
                break;
            }
            seen.extend(more.iter().map(|t| t.number));
            token = next;
        }
        let expected: Vec<i64> = created.iter().chain(&later).map(|t| t.number).collect::<BTreeSet<_>>().into_iter().collect();
        assert_eq!(seen, expected);
        // A token resumes only the list it came from.
        expect_invalid(
            admin.tickets.clone().list_tickets(pb::ListTicketsRequest { resume_token: token, descending: true, ..Default::default() }).await,
            "resume_token",
        );
    }

    async fn a_list_by_number_descending_resumes_without_gap_or_duplicate(server) {
        let desk = server.desk("acme").await;
        let shapes = [(desk.group.id.clone(), desk.customer.id.clone())];
        let created = seed(&server, &shapes, 700).await;
        let admin = server.as_token(&server.admin_secret);
        // Pieces of 300 cross the server's chunks of reading as well as the resume tokens.
        let mut seen: Vec<i64> = Vec::new();
        let mut token = String::new();
        loop {
            let request = pb::ListTicketsRequest { limit: 300, descending: true, resume_token: token.clone(), ..Default::default() };
            let (more, next) = stream(&admin, request).await;
            if more.is_empty() {
                break;
            }
            seen.extend(more.iter().map(|t| t.number));
            token = next;
        }
        let mut expected: Vec<i64> = created.iter().map(|t| t.number).collect();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(seen, expected, "every ticket once, the largest number first");
    }

    async fn filters_and_orders_narrow_and_sort_the_stream(server) {
        let desk = server.desk("acme").await;
        let colleague = server.customer(pb::Customer { email: "colleague@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let first = desk.create(pb::Ticket { priority: 1, ..desk.ticket("Printer broken") }).await;
        let cc = server.customer(pb::Customer { email: "cc@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let second = desk.create(pb::Ticket { priority: 5, customer_id: colleague.id.clone(), additional_customer_ids: vec![desk.customer.id.clone(), cc.id.clone()], ..desk.ticket("Mail down") }).await;
        let third = desk.create(pb::Ticket { priority: 3, customer_id: colleague.id.clone(), assignee_id: desk.agent.id.clone(), ..desk.ticket("PRINTER jammed") }).await;
        let elsewhere = server.desk("globex").await;
        let fourth = elsewhere.create(pb::Ticket { priority: 2, ..elsewhere.ticket("VPN slow") }).await;
        let closed = desk::update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..third.clone() }, &["state"]).await.expect("close");
        let numbers = |tickets: Vec<pb::Ticket>| tickets.iter().map(|t| t.number).collect::<Vec<_>>();
        let admin = server.as_token(&server.admin_secret);
        let (found, _) = stream(&admin, pb::ListTicketsRequest::default()).await;
        // A listed ticket is the ticket as read by itself, additional customers and all.
        let read = admin.tickets.clone().get_ticket(pb::GetTicketRequest { key: Some(pb::get_ticket_request::Key::Id(second.id.clone())) }).await.expect("read").into_inner().ticket.expect("a ticket");
        assert_eq!(read.additional_customer_ids.len(), 2);
        assert_eq!(found.iter().find(|t| t.id == second.id), Some(&read));
        assert_eq!(numbers(found), [first.number, second.number, third.number, fourth.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { organisation_ids: vec![desk.organisation.id.clone()], ..Default::default() }).await;
        assert_eq!(numbers(found), [first.number, second.number, third.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { organisation_ids: vec![elsewhere.organisation.id.clone(), elsewhere.organisation.id.clone()], ..Default::default() }).await;
        assert_eq!(numbers(found), [fourth.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { group_ids: vec![elsewhere.group.id.clone()], ..Default::default() }).await;
        assert_eq!(numbers(found), [fourth.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { created_after: second.create_time, created_before: fourth.create_time, ..Default::default() }).await;
        assert_eq!(numbers(found), [second.number, third.number], "created in [after, before)");
        let (found, _) = stream(&admin, pb::ListTicketsRequest { updated_after: closed.update_time, ..Default::default() }).await;
        assert_eq!(numbers(found), [third.number], "changed at or after the close");
        let (found, _) = stream(&admin, pb::ListTicketsRequest { updated_before: closed.update_time, ..Default::default() }).await;
        assert_eq!(numbers(found), [first.number, second.number, fourth.number], "changed before the close");
        let (found, _) = stream(&admin, pb::ListTicketsRequest { escalations: vec![pb::Escalation::None.into()], states: vec![pb::TicketState::New.into(), pb::TicketState::New.into()], ..Default::default() }).await;
        assert_eq!(numbers(found), [first.number, second.number, fourth.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { escalations: vec![pb::Escalation::Escalated.into()], ..Default::default() }).await;
        assert!(found.is_empty(), "nothing has escalated");
        let (found, _) = stream(&admin, pb::ListTicketsRequest { text: "printer".into(), ..Default::default() }).await;
        assert_eq!(numbers(found), [first.number, third.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { customer_id: desk.customer.id.clone(), ..Default::default() }).await;
        assert_eq!(numbers(found), [first.number, second.number], "main or additional customer");
        let (found, _) = stream(&admin, pb::ListTicketsRequest { states: vec![pb::TicketState::Closed.into()], ..Default::default() }).await;
        assert_eq!(numbers(found), [third.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { assignee_id: desk.agent.id.clone(), ..Default::default() }).await;
        assert_eq!(numbers(found), [third.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { order_by: pb::TicketOrder::Priority.into(), descending: true, ..Default::default() }).await;
        assert_eq!(numbers(found), [second.number, third.number, fourth.number, first.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { order_by: pb::TicketOrder::UpdateTime.into(), ..Default::default() }).await;
        assert_eq!(numbers(found), [first.number, second.number, fourth.number, third.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { order_by: pb::TicketOrder::CreateTime.into(), descending: true, limit: 2, ..Default::default() }).await;
        assert_eq!(numbers(found), [fourth.number, third.number]);
        let (found, _) = stream(&admin, pb::ListTicketsRequest { organisation_ids: vec![uuid::Uuid::now_v7().to_string()], ..Default::default() }).await;
        assert!(found.is_empty());
        let mut tickets = admin.tickets.clone();
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { states: vec![0], ..Default::default() }).await, "states[0]");
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { limit: -1, ..Default::default() }).await, "limit");
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { group_ids: vec!["nope".into()], ..Default::default() }).await, "group_ids[0]");
        let too_many: Vec<String> = (0..1001).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { group_ids: too_many.clone(), ..Default::default() }).await, "group_ids");
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { organisation_ids: too_many, ..Default::default() }).await, "organisation_ids");
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { created_after: Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }), ..Default::default() }).await, "created_after");
        expect_invalid(tickets.list_tickets(pb::ListTicketsRequest { resume_token: "garbage".into(), ..Default::default() }).await, "resume_token");
        expect_code(
            server.as_token("not-a-token").tickets.list_tickets(pb::ListTicketsRequest::default()).await,
            Code::Unauthenticated,
        );
    }

    async fn a_slow_reader_holds_the_servers_read_ahead_bounded_and_a_gone_one_stops_it(server) {
        let desk = server.desk("acme").await;
        let shapes = [(desk.group.id.clone(), desk.customer.id.clone())];
        seed(&server, &shapes, 6_000).await;
        let admin = server.as_token(&server.admin_secret);
        let channel = crate::support::small_window_channel(server.addr).await;
        let mut small_window = pb::ticket_service_client::TicketServiceClient::with_interceptor(
            channel,
            crate::support::Bearer::new(Some(&server.admin_secret)),
        );
        let mut slow = small_window.list_tickets(pb::ListTicketsRequest::default()).await.expect("list").into_inner();
        slow.message().await.expect("first").expect("item");
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Ahead of the reader: what HTTP/2's send buffer holds, and a chunk in each of the
        // server's stages (read, converted, being sent), of 256 to 1,024 tickets: never all.
        let read = server.metrics.tickets_read();
        assert!(read < 4_000, "the server read {read} of 6,000 tickets ahead of a reader that took one");
        assert_eq!(server.metrics.list_streams(), 1);
        // The reader goes away: the server stops reading.
        drop(slow);
        desk::eventually("the stream's task ends", || async { server.metrics.list_streams() == 0 }).await;
        let after = server.metrics.tickets_read();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(server.metrics.tickets_read(), after, "nothing more is read");
        assert!(after < 4_000, "{after}");
        // A reader that keeps up gets everything.
        let (all, _) = stream(&admin, pb::ListTicketsRequest::default()).await;
        assert_eq!(all.len(), 6_000);
    }

    async fn a_list_ends_once_the_callers_token_is_revoked(server) {
        let desk = server.desk("acme").await;
        seed(&server, &[(desk.group.id.clone(), desk.customer.id.clone())], 1_000).await;
        let secret = desk_secret(&server, &desk).await;
        let who = server.as_token(&secret).agents.who_am_i(pb::WhoAmIRequest {}).await.expect("who").into_inner();
        let mut list = slow_list(server.addr, &secret).await;
        server.agents().revoke_token(pb::RevokeTokenRequest { id: who.token.expect("token").id }).await.expect("revoke");
        let (read, end) = read_slowly(&mut list).await;
        assert_eq!(
            end.map_err(|status| (status.code(), reason(&status))),
            Err((Code::Unauthenticated, Some("TOKEN_REVOKED".to_owned()))),
            "after {read} tickets"
        );
        assert!(read < 1_000, "the list ended before its end: {read} tickets");
    }

    async fn a_list_ends_once_the_grant_that_opened_it_is_revoked(server) {
        let desk = server.desk("acme").await;
        seed(&server, &[(desk.group.id.clone(), desk.customer.id.clone())], 1_000).await;
        let secret = desk_secret(&server, &desk).await;
        let mut list = slow_list(server.addr, &secret).await;
        server.permissions().revoke_permission(pb::RevokePermissionRequest {
            subject: Some(pb::Subject { subject: Some(pb::subject::Subject::AgentId(desk.agent.id.clone())) }),
            group_id: desk.group.id.clone(),
            context: 0,
        }).await.expect("revoke the grant");
        let (read, end) = read_slowly(&mut list).await;
        assert_eq!(end.map_err(|status| status.code()), Err(Code::PermissionDenied), "after {read} tickets");
        assert!(read < 1_000, "{read}");
        // Rights that grow do not end a list: the agent gets the group back, opens a list, and
        // is granted a second group while it streams.
        server.grant(pb::subject::Subject::AgentId(desk.agent.id.clone()), &desk.group.id, pb::PermissionLevel::Ro, pb::GrantContext::Unspecified).await;
        let mut list = slow_list(server.addr, &secret).await;
        let more = server.group("More").await;
        server.grant(pb::subject::Subject::AgentId(desk.agent.id.clone()), &more.id, pb::PermissionLevel::Ro, pb::GrantContext::Unspecified).await;
        let (read, end) = read_slowly(&mut list).await;
        assert_eq!((read, end.map_err(|status| status.code())), (1_000, Ok(())));
    }

    async fn a_customers_list_ends_once_its_organisation_is_deactivated(server) {
        let desk = server.desk("acme").await;
        seed(&server, &[(desk.group.id.clone(), desk.customer.id.clone())], 1_000).await;
        // A colleague from a subsidiary reads Acme's tickets through Acme's SAME_ORGANISATION
        // grant; the subsidiary (its primary organisation, with no tickets) is deactivated.
        let subsidiary = server.organisation("SUBSIDIARY", &[]).await;
        let colleague = server.customer(pb::Customer {
            email: "colleague@subsidiary.example".into(),
            organisation_id: subsidiary.id.clone(),
            secondary_organisation_ids: vec![desk.organisation.id.clone()],
            ..Default::default()
        }).await;
        let secret = server.token(pb::token_owner::Owner::CustomerId(colleague.id.clone())).await;
        let mut list = slow_list(server.addr, &secret).await;
        server.organisations().deactivate_organisation(pb::DeactivateOrganisationRequest { id: subsidiary.id.clone(), etag: server.organisation_etag(&subsidiary.id).await, ..Default::default() }).await.expect("deactivate");
        let (read, end) = read_slowly(&mut list).await;
        // Its primary organisation's deactivation deactivated the colleague too.
        assert_eq!(
            end.map_err(|status| (status.code(), reason(&status))),
            Err((Code::Unauthenticated, Some("PRINCIPAL_INVALID".to_owned()))),
            "after {read} tickets"
        );
        assert!(read < 1_000, "{read}");
    }
}

/// A token of `desk`'s agent that the test may revoke.
async fn desk_secret(server: &TestServer, desk: &desk::Desk) -> String {
    server
        .token(pb::token_owner::Owner::AgentId(desk.agent.id.clone()))
        .await
}

/// ListTickets as the holder of `secret` at `addr`, over HTTP/2's smallest usual window
/// (64 KiB), so that what the server sent ahead is not hidden in a large client buffer; the
/// first item is read.
async fn slow_list(
    addr: std::net::SocketAddr,
    secret: &str,
) -> tonic::Streaming<pb::ListTicketsResponse> {
    let channel = crate::support::small_window_channel(addr).await;
    let mut tickets = pb::ticket_service_client::TicketServiceClient::with_interceptor(
        channel,
        crate::support::Bearer::new(Some(secret)),
    );
    let mut list = tickets
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .expect("list")
        .into_inner();
    list.message().await.expect("first").expect("an item");
    list
}

/// Reads the rest of `list` a little at a time; how many items came after the first, and how
/// it ended.
async fn read_slowly(
    list: &mut tonic::Streaming<pb::ListTicketsResponse>,
) -> (usize, Result<(), tonic::Status>) {
    let mut read = 1;
    loop {
        match list.message().await {
            Ok(Some(_)) => read += 1,
            Ok(None) => return (read, Ok(())),
            Err(status) => return (read, Err(status)),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Across replicas on PostgreSQL: a token revoked on one server ends a list on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn a_list_on_one_replica_ends_once_its_token_is_revoked_on_another() {
    let Some(server) = TestServer::start(crate::support::Backend::Postgres).await else {
        return;
    };
    let desk = server.desk("acme").await;
    seed(
        &server,
        &[(desk.group.id.clone(), desk.customer.id.clone())],
        1_000,
    )
    .await;
    let secret = desk_secret(&server, &desk).await;
    let who = server
        .as_token(&secret)
        .agents
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("who")
        .into_inner();
    let replica = server.replica().await;
    let mut list = slow_list(replica.addr, &secret).await;
    server
        .agents()
        .revoke_token(pb::RevokeTokenRequest {
            id: who.token.expect("token").id,
        })
        .await
        .expect("revoke");
    let (read, end) = read_slowly(&mut list).await;
    assert_eq!(
        end.map_err(|status| status.code()),
        Err(Code::Unauthenticated),
        "after {read} tickets"
    );
    assert!(read < 1_000, "{read}");
    drop(list);
    replica.stop().await;
    server.stop().await;
}

/// A shutdown gives open lists a grace, then ends them UNAVAILABLE (never OK); a reader
/// resumes on another replica from the last resume token it received and gets every ticket
/// exactly once; a reader that stopped reading does not hold the process past the grace.
mod a_shutdown_ends_lists_after_their_grace_and_they_resume_on_another_replica {
    use std::collections::HashSet;

    use super::*;

    async fn run(backend: crate::support::Backend) {
        let Some(mut server) = TestServer::start_with(backend, |config| {
            config.stream_grace = Duration::from_secs(1);
            config.shutdown_timeout = Duration::from_secs(60);
        })
        .await
        else {
            return;
        };
        let desk = server.desk("drain").await;
        seed(
            &server,
            &[(desk.group.id.clone(), desk.customer.id.clone())],
            1_200,
        )
        .await;
        let replica = server.replica().await;
        let secret = server.admin_secret.clone();
        let open = |addr| {
            let secret = secret.clone();
            async move {
                let channel = crate::support::small_window_channel(addr).await;
                pb::ticket_service_client::TicketServiceClient::with_interceptor(
                    channel,
                    crate::support::Bearer::new(Some(&secret)),
                )
                .list_tickets(pb::ListTicketsRequest::default())
                .await
                .expect("list")
                .into_inner()
            }
        };
        let mut reading = open(server.addr).await;
        let mut stalled = open(server.addr).await;
        stalled.message().await.expect("first").expect("an item");
        let first = reading.message().await.expect("first").expect("an item");
        let mut seen = vec![first.ticket.expect("ticket").id];
        let mut resume = first.resume_token;

        let began = std::time::Instant::now();
        server.begin_shutdown();
        let end = loop {
            match reading.message().await {
                Ok(Some(item)) => {
                    seen.push(item.ticket.expect("ticket").id);
                    resume = item.resume_token;
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                Ok(None) => panic!(
                    "the list ended OK after {} tickets: a shutdown looked like its end",
                    seen.len()
                ),
                Err(status) => break status,
            }
        };
        assert_eq!(end.code(), Code::Unavailable, "{end:?}");
        assert_eq!(reason(&end).as_deref(), Some("SHUTTING_DOWN"));
        assert!(seen.len() < 1_200, "the grace let the whole list through");
        let stopped = tokio::time::timeout(Duration::from_secs(30), server.join()).await;
        assert!(matches!(stopped, Ok(Ok(()))), "{stopped:?}");
        let took = began.elapsed();
        assert!(
            took < Duration::from_secs(20),
            "a reader that stopped reading held the server {took:?}"
        );
        drop(stalled);

        let mut tickets = pb::ticket_service_client::TicketServiceClient::new(
            replica.authed(&server.admin_secret),
        )
        .list_tickets(pb::ListTicketsRequest {
            resume_token: resume,
            ..Default::default()
        })
        .await
        .expect("resume on the replica")
        .into_inner();
        while let Some(item) = tickets.message().await.expect("the rest") {
            seen.push(item.ticket.expect("ticket").id);
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no ticket twice");
        assert_eq!(seen.len(), 1_200, "every ticket once");
        replica.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(crate::support::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(clientele_postgres_tests),
        ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
    )]
    async fn postgres() {
        run(crate::support::Backend::Postgres).await;
    }
}
