//! TicketService: create with routing and SLA, the state machine, updates, transfer,
//! history, and the preconditions tickets put on deactivating and deleting.

use clientele::proto::v1 as pb;
use jiff::SignedDuration;
use tonic::Code;

use crate::support::{
    desk::{self, local, time, update},
    expect_code, expect_invalid, reason,
};

clock_tests! {
    async fn a_ticket_gets_a_number_routing_and_deadlines_from_its_groups_policy(server, clock) {
        let desk = server.desk("acme").await;
        let calendar = server.office_calendar("Office", "Europe/Berlin", &[]).await;
        let policy = server
            .policy("Standard", Some(SignedDuration::from_hours(2)), None, Some(SignedDuration::from_hours(16)), 50, &calendar.id)
            .await;
        let mut group = desk.group.clone();
        group.default_sla_policy_id = policy.id.clone();
        group.responsible_agent_id = desk.agent.id.clone();
        server.groups().update_group(pb::UpdateGroupRequest {
            group: Some(group),
            update_mask: Some(prost_types::FieldMask { paths: vec!["default_sla_policy_id".into(), "responsible_agent_id".into()] }),
        }).await.expect("update group");
        // Friday 16:30 in Berlin: two business hours end on Monday at 10:30.
        clock.set(local("Europe/Berlin", "2026-11-27T16:30"));
        let ticket = desk.create(desk.ticket("Printer on fire")).await;
        assert!(ticket.number.to_string().starts_with("20261127"), "{}", ticket.number);
        assert_eq!(ticket.state(), pb::TicketState::New);
        assert_eq!(ticket.priority, 3);
        assert_eq!(ticket.organisation_id, desk.organisation.id, "the customer's primary organisation");
        assert_eq!(ticket.assignee_id, desk.agent.id, "routed to the group's responsible agent");
        assert_eq!(ticket.applied_sla_policy_id, policy.id);
        assert_eq!(time(&ticket.first_response_due), Some(local("Europe/Berlin", "2026-11-30T10:30")));
        assert_eq!(time(&ticket.solution_due), Some(local("Europe/Berlin", "2026-12-01T16:30")));
        assert_eq!(ticket.update_due, None, "the policy sets no update budget");
        assert_eq!(ticket.escalation(), pb::Escalation::None);
        let second = desk.create(desk.ticket("Second")).await;
        assert_eq!(second.number, ticket.number + 1);
    }

    async fn the_organisations_policy_and_assignee_win_over_the_groups_and_the_tickets_policy_over_both(server, clock) {
        let desk = server.desk("acme").await;
        let group_policy = server.policy("Group", Some(SignedDuration::from_hours(8)), None, None, 0, "").await;
        let org_policy = server.policy("Org", Some(SignedDuration::from_hours(4)), None, None, 0, "").await;
        let ticket_policy = server.policy("Ticket", Some(SignedDuration::from_hours(1)), None, None, 0, "").await;
        let owner = server.agent("key-account", false).await;
        let mut group = desk.group.clone();
        group.default_sla_policy_id = group_policy.id.clone();
        group.responsible_agent_id = desk.agent.id.clone();
        server.groups().update_group(pb::UpdateGroupRequest {
            group: Some(group),
            update_mask: Some(prost_types::FieldMask { paths: vec!["*".into()] }),
        }).await.expect("update group");
        let mut organisation = desk.organisation.clone();
        organisation.sla_policy_id = org_policy.id.clone();
        organisation.default_assignee_id = owner.id.clone();
        server.organisations().update_organisation(pb::UpdateOrganisationRequest {
            organisation: Some(organisation),
            update_mask: Some(prost_types::FieldMask { paths: vec!["sla_policy_id".into(), "default_assignee_id".into()] }),
        }).await.expect("update organisation");
        let now = clientele::clock::Clock::now(&*clock);
        let by_org = desk.create(desk.ticket("Org rules")).await;
        assert_eq!(by_org.applied_sla_policy_id, org_policy.id);
        assert_eq!(by_org.assignee_id, owner.id, "the organisation's default assignee comes first");
        assert_eq!(time(&by_org.first_response_due), Some(now + SignedDuration::from_hours(4)));
        let own = desk.create(pb::Ticket { sla_policy_id: ticket_policy.id.clone(), ..desk.ticket("Own policy") }).await;
        assert_eq!(own.applied_sla_policy_id, ticket_policy.id);
        assert_eq!(time(&own.first_response_due), Some(now + SignedDuration::from_hours(1)));
        // Changing the ticket's policy recomputes its deadlines.
        let changed = update(&desk.as_agent, pb::Ticket { sla_policy_id: String::new(), ..by_org.clone() }, &["sla_policy_id"]).await.expect("update");
        assert_eq!(changed.applied_sla_policy_id, org_policy.id);
        let changed = update(&desk.as_agent, pb::Ticket { sla_policy_id: group_policy.id.clone(), ..changed }, &["sla_policy_id"]).await.expect("update");
        assert_eq!(changed.applied_sla_policy_id, group_policy.id);
        assert_eq!(time(&changed.first_response_due), Some(now + SignedDuration::from_hours(8)));
    }

    async fn the_state_machine_refuses_what_a_helpdesk_would_refuse(server, clock) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("States")).await;
        let now = clientele::clock::Clock::now(&*clock);
        // Pending needs a future pending_until.
        let pending = pb::Ticket { state: pb::TicketState::PendingReminder.into(), ..ticket.clone() };
        expect_invalid(update(&desk.as_agent, pending.clone(), &["state"]).await, "ticket.pending_until");
        let past = pb::Ticket { pending_until: Some(desk::proto_time(now - SignedDuration::from_mins(1))), ..pending.clone() };
        expect_invalid(update(&desk.as_agent, past, &["state", "pending_until"]).await, "ticket.pending_until");
        let until = now + SignedDuration::from_hours(3);
        let waiting = update(&desk.as_agent, pb::Ticket { pending_until: Some(desk::proto_time(until)), ..pending }, &["state", "pending_until"]).await.expect("pending");
        assert_eq!(waiting.state(), pb::TicketState::PendingReminder);
        assert_eq!(time(&waiting.pending_until), Some(until));
        // Nothing returns to NEW.
        let back = pb::Ticket { state: pb::TicketState::New.into(), ..waiting.clone() };
        expect_invalid(update(&desk.as_agent, back, &["state"]).await, "ticket.state");
        // Only pending states have a pending time.
        let open = pb::Ticket { state: pb::TicketState::Open.into(), pending_until: Some(desk::proto_time(until)), ..waiting.clone() };
        expect_invalid(update(&desk.as_agent, open.clone(), &["state", "pending_until"]).await, "ticket.pending_until");
        let open = update(&desk.as_agent, pb::Ticket { pending_until: None, ..open }, &["state"]).await.expect("open");
        assert_eq!(open.pending_until, None, "leaving a pending state clears its time");
        let closed = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..open }, &["state"]).await.expect("close");
        assert_eq!(time(&closed.close_time), Some(now));
        let reopened = update(&desk.as_customer, pb::Ticket { state: pb::TicketState::Open.into(), ..closed }, &["state"]).await.expect("reopen");
        assert_eq!(reopened.close_time, None);
        // A stale etag is ABORTED.
        expect_code(update(&desk.as_agent, pb::Ticket { title: "Late".into(), ..ticket }, &["title"]).await, Code::Aborted);
    }

    async fn customers_change_title_and_state_only_and_create_for_themselves(server, clock) {
        let desk = server.desk("acme").await;
        let mut as_customer = desk.as_customer.tickets.clone();
        let own = as_customer.create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket { title: "Mine".into(), group_id: desk.group.id.clone(), ..Default::default() }),
            request_id: String::new(),
        }).await.expect("a customer creates its own ticket").into_inner().ticket.expect("ticket");
        assert_eq!(own.customer_id, desk.customer.id);
        let other = server.customer(pb::Customer { email: "other@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let status = expect_code(as_customer.create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket { title: "Not mine".into(), group_id: desk.group.id.clone(), customer_id: other.id.clone(), ..Default::default() }),
            request_id: String::new(),
        }).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NOT_OWN_TICKET"));
        let status = expect_code(update(&desk.as_customer, pb::Ticket { priority: 5, ..own.clone() }, &["priority"]).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("STAFF_ONLY_FIELDS"));
        let renamed = update(&desk.as_customer, pb::Ticket { title: "Mine, renamed".into(), ..own.clone() }, &["title"]).await.expect("rename");
        assert_eq!(renamed.title, "Mine, renamed");
        let pending = pb::Ticket { state: pb::TicketState::PendingClose.into(), ..renamed.clone() };
        expect_invalid(update(&desk.as_customer, pending, &["state"]).await, "ticket.state");
        let status = expect_code(update(&desk.as_customer, pb::Ticket { pending_until: Some(desk::proto_time(clientele::clock::Clock::now(&*clock) + SignedDuration::from_hours(1))), ..renamed }, &["pending_until"]).await, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("STAFF_ONLY_FIELDS"));
    }

    async fn creating_needs_valid_parties_and_a_usable_group(server, clock) {
        let desk = server.desk("acme").await;
        // A group the customer has no grant on, one the agent may only read, and an
        // organisation that is not the customer's.
        let closed_group = server.group("closed").await;
        server.grant(pb::subject::Subject::AgentId(desk.agent.id.clone()), &closed_group.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        let read_only = server.group("read-only").await;
        server.grant(pb::subject::Subject::AgentId(desk.agent.id.clone()), &read_only.id, pb::PermissionLevel::Ro, pb::GrantContext::Unspecified).await;
        server.grant(pb::subject::Subject::CustomerId(desk.customer.id.clone()), &read_only.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        let stranger = server.organisation("stranger", &[]).await;
        let before = server.snapshot().await;
        let status = expect_code(desk.try_create(pb::Ticket { group_id: closed_group.id.clone(), ..desk.ticket("Nope") }).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("GROUP_NOT_USABLE"));
        expect_code(desk.try_create(pb::Ticket { group_id: read_only.id.clone(), ..desk.ticket("Nope") }).await, Code::PermissionDenied);
        expect_invalid(desk.try_create(pb::Ticket { organisation_id: stranger.id.clone(), ..desk.ticket("Nope") }).await, "ticket.organisation_id");
        // Unknown ids name their field.
        let unknown = uuid::Uuid::now_v7().to_string();
        expect_invalid(desk.try_create(pb::Ticket { customer_id: unknown.clone(), ..desk.ticket("Nope") }).await, "ticket.customer_id");
        expect_invalid(desk.try_create(pb::Ticket { group_id: unknown.clone(), ..desk.ticket("Nope") }).await, "ticket.group_id");
        expect_invalid(desk.try_create(pb::Ticket { assignee_id: unknown.clone(), ..desk.ticket("Nope") }).await, "ticket.assignee_id");
        expect_invalid(desk.try_create(pb::Ticket { sla_policy_id: unknown.clone(), ..desk.ticket("Nope") }).await, "ticket.sla_policy_id");
        expect_invalid(desk.try_create(pb::Ticket { additional_customer_ids: vec![unknown], ..desk.ticket("Nope") }).await, "ticket.additional_customer_ids[0]");
        expect_invalid(desk.try_create(pb::Ticket { additional_customer_ids: vec![desk.customer.id.clone()], ..desk.ticket("Nope") }).await, "ticket.additional_customer_ids[0]");
        expect_invalid(desk.try_create(pb::Ticket { title: String::new(), ..desk.ticket("") }).await, "ticket.title");
        expect_invalid(desk.try_create(pb::Ticket { title: "x".repeat(256), ..desk.ticket("") }).await, "ticket.title");
        expect_invalid(desk.try_create(pb::Ticket { priority: 6, ..desk.ticket("Nope") }).await, "ticket.priority");
        expect_invalid(desk.try_create(pb::Ticket { priority: -1, ..desk.ticket("Nope") }).await, "ticket.priority");
        expect_invalid(desk.try_create(pb::Ticket { state: pb::TicketState::Closed.into(), ..desk.ticket("Nope") }).await, "ticket.state");
        expect_invalid(desk.try_create(pb::Ticket { state: 42, ..desk.ticket("Nope") }).await, "ticket.state");
        expect_invalid(desk.try_create(pb::Ticket { group_id: "not-a-uuid".into(), ..desk.ticket("Nope") }).await, "ticket.group_id");
        assert_eq!(server.snapshot().await, before, "nothing was written");
        // An invalid customer gets no new tickets.
        server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: desk.customer.id.clone(), ..Default::default() }).await.expect("deactivate");
        let status = expect_code(desk.try_create(desk.ticket("Nope")).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("CUSTOMER_INVALID"));
    }
}
