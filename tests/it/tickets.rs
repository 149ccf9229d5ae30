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
        server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: desk.customer.id.clone(), etag: server.customer_etag(&desk.customer.id).await, ..Default::default() }).await.expect("deactivate");
        let status = expect_code(desk.try_create(desk.ticket("Nope")).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("CUSTOMER_INVALID"));
    }
}

/// The ticket numbers a FAILED_PRECONDITION names in its PreconditionFailure details.
fn blocking_numbers(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .precondition_failure()
        .map(|failure| {
            failure
                .violations
                .iter()
                .map(|v| v.subject.clone())
                .collect()
        })
        .unwrap_or_default()
}

clock_tests! {
    async fn open_tickets_block_deactivating_their_customer_and_organisation_and_name_the_tickets(server, clock) {
        let desk = server.desk("acme").await;
        let colleague = server.customer(pb::Customer { email: "colleague@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        // The colleague is only an additional customer of the open ticket.
        let open = desk.create(pb::Ticket { additional_customer_ids: vec![colleague.id.clone()], ..desk.ticket("Open") }).await;
        let closed = desk.create(desk.ticket("Closed")).await;
        update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..closed }, &["state"]).await.expect("close");
        let before = server.snapshot().await;
        for id in [&desk.customer.id, &colleague.id] {
            let status = expect_code(
                server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: id.clone(), etag: server.customer_etag(id).await, ..Default::default() }).await,
                Code::FailedPrecondition,
            );
            assert_eq!(reason(&status).as_deref(), Some("OPEN_TICKETS"));
            assert_eq!(blocking_numbers(&status), [open.number.to_string()], "only the open ticket is in the way");
        }
        let status = expect_code(
            server.organisations().deactivate_organisation(pb::DeactivateOrganisationRequest { id: desk.organisation.id.clone(), etag: server.organisation_etag(&desk.organisation.id).await, ..Default::default() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(blocking_numbers(&status), [open.number.to_string()]);
        assert_eq!(server.snapshot().await, before, "nothing changed");
        // Closed, the ticket is in nobody's way.
        update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..open }, &["state"]).await.expect("close");
        server.organisations().deactivate_organisation(pb::DeactivateOrganisationRequest { id: desk.organisation.id.clone(), etag: server.organisation_etag(&desk.organisation.id).await, ..Default::default() }).await.expect("deactivate");
        let status = expect_code(desk.try_create(desk.ticket("After")).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("CUSTOMER_INVALID"), "the cascade took the customer out of use too");
    }

    async fn a_customer_with_any_ticket_is_not_deleted_until_its_tickets_are_transferred(server, clock) {
        let desk = server.desk("acme").await;
        let successor = server.customer(pb::Customer { email: "successor@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let open = desk.create(desk.ticket("Open")).await;
        let closed = desk.create(desk.ticket("Closed")).await;
        let closed = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..closed }, &["state"]).await.expect("close");
        let status = expect_code(
            server.customers().delete_customer(pb::DeleteCustomerRequest { id: desk.customer.id.clone(), etag: server.customer_etag(&desk.customer.id).await }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&status).as_deref(), Some("HAS_TICKETS"));
        assert!(status.message().contains("TransferTickets"), "{}", status.message());
        assert_eq!(blocking_numbers(&status), [open.number.to_string(), closed.number.to_string()]);
        // Open ones only: the closed ticket stays.
        let moved = server.tickets().transfer_tickets(pb::TransferTicketsRequest {
            from_customer_id: desk.customer.id.clone(), to_customer_id: successor.id.clone(), open_only: true,
        }).await.expect("transfer").into_inner();
        assert_eq!((moved.transferred, moved.ticket_numbers.clone()), (1, vec![open.number]));
        assert_eq!(desk::ticket(&server, &closed.id).await.customer_id, desk.customer.id);
        let moved = server.tickets().transfer_tickets(pb::TransferTicketsRequest {
            from_customer_id: desk.customer.id.clone(), to_customer_id: successor.id.clone(), open_only: false,
        }).await.expect("transfer").into_inner();
        assert_eq!(moved.ticket_numbers, vec![closed.number]);
        let history = server.tickets().get_ticket_history(pb::GetTicketHistoryRequest { id: open.id.clone(), ..Default::default() }).await.expect("history").into_inner();
        let kinds: Vec<pb::ChangeKind> = history.entries.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds, [pb::ChangeKind::Created, pb::ChangeKind::Transferred], "one history entry per transferred ticket");
        let transfer = &history.entries[1];
        let customer = transfer.changes.iter().find(|c| c.field == "customer_id").expect("customer_id change");
        assert_eq!(customer.old_value, Some(text(&desk.customer.id)));
        assert_eq!(customer.new_value, Some(text(&successor.id)));
        server.customers().delete_customer(pb::DeleteCustomerRequest { id: desk.customer.id.clone(), etag: server.customer_etag(&desk.customer.id).await }).await.expect("delete");
        // A transfer to an invalid customer is refused.
        server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: desk.customer.id.clone(), etag: "gone".into(), ..Default::default() }).await.expect_err("gone");
        let third = server.customer(pb::Customer { email: "third@acme.example".into(), ..Default::default() }).await;
        server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: third.id.clone(), etag: server.customer_etag(&third.id).await, ..Default::default() }).await.expect("deactivate");
        let status = expect_code(server.tickets().transfer_tickets(pb::TransferTicketsRequest {
            from_customer_id: successor.id.clone(), to_customer_id: third.id.clone(), open_only: false,
        }).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("CUSTOMER_INVALID"));
    }

    async fn merges_and_transfers_move_no_ticket_the_caller_may_not_work_on(server, clock) {
        use pb::subject::Subject as S;
        let desk = server.desk("acme").await;
        let secret = server.group("Secret").await;
        server.grant(S::OrganisationId(desk.organisation.id.clone()), &secret.id, pb::PermissionLevel::Rw, pb::GrantContext::SameOrganisation).await;
        let visible = desk.create(desk.ticket("Visible")).await;
        let hidden = server.tickets().create_ticket(pb::CreateTicketRequest { ticket: Some(pb::Ticket { group_id: secret.id.clone(), ..desk.ticket("Hidden") }), request_id: String::new() }).await.expect("hidden").into_inner().ticket.expect("ticket");
        let successor = server.customer(pb::Customer { email: "successor@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        // A customer administrator with RW on the desk's group only.
        let manager = server.agent("manager", true).await;
        server.grant(S::AgentId(manager.id.clone()), &desk.group.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        let as_manager = server.as_token(&server.token(pb::token_owner::Owner::AgentId(manager.id.clone())).await);
        let before = server.snapshot().await;
        let merge = pb::MergeCustomersRequest { source_id: desk.customer.id.clone(), target_id: successor.id.clone(), source_etag: server.customer_etag(&desk.customer.id).await, target_etag: server.customer_etag(&successor.id).await };
        let status = expect_code(as_manager.customers.clone().merge_customers(merge.clone()).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("TICKETS_OUT_OF_REACH"));
        assert_eq!(blocking_numbers(&status), [hidden.number.to_string()], "only the ticket out of reach is named");
        let transfer = pb::TransferTicketsRequest { from_customer_id: desk.customer.id.clone(), to_customer_id: successor.id.clone(), open_only: false };
        let status = expect_code(as_manager.tickets.clone().transfer_tickets(transfer.clone()).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("TICKETS_OUT_OF_REACH"));
        assert_eq!(blocking_numbers(&status), [hidden.number.to_string()]);
        assert_eq!(server.snapshot().await, before, "nothing moved");
        // With RW on the other group too, both go through.
        server.grant(S::AgentId(manager.id.clone()), &secret.id, pb::PermissionLevel::Rw, pb::GrantContext::Unspecified).await;
        let moved = as_manager.tickets.clone().transfer_tickets(transfer).await.expect("transfer").into_inner();
        assert_eq!(moved.ticket_numbers, [visible.number, hidden.number]);
        let back = pb::MergeCustomersRequest { source_id: successor.id.clone(), target_id: desk.customer.id.clone(), source_etag: server.customer_etag(&successor.id).await, target_etag: server.customer_etag(&desk.customer.id).await };
        as_manager.customers.clone().merge_customers(back).await.expect("merge");
        for ticket in [&visible, &hidden] {
            assert_eq!(desk::ticket(&server, &ticket.id).await.customer_id, desk.customer.id);
        }
    }

    async fn merging_customers_moves_their_tickets_as_main_and_additional_customer(server, clock) {
        let desk = server.desk("acme").await;
        let duplicate = server.customer(pb::Customer { email: "some.one@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let main = desk.create(pb::Ticket { customer_id: duplicate.id.clone(), ..desk.ticket("Main") }).await;
        let both = desk.create(pb::Ticket { additional_customer_ids: vec![duplicate.id.clone()], ..desk.ticket("Both") }).await;
        server.customers().merge_customers(pb::MergeCustomersRequest {
            source_id: duplicate.id.clone(), target_id: desk.customer.id.clone(),
            source_etag: server.customer_etag(&duplicate.id).await, target_etag: server.customer_etag(&desk.customer.id).await,
        }).await.expect("merge");
        let main = desk::ticket(&server, &main.id).await;
        assert_eq!(main.customer_id, desk.customer.id);
        let both = desk::ticket(&server, &both.id).await;
        assert_eq!(both.customer_id, desk.customer.id);
        assert!(both.additional_customer_ids.is_empty(), "the target is main customer once, not also additional");
        let history = server.tickets().get_ticket_history(pb::GetTicketHistoryRequest { id: main.id.clone(), ..Default::default() }).await.expect("history").into_inner();
        assert_eq!(history.entries.last().map(|e| e.kind()), Some(pb::ChangeKind::Transferred));
    }

    async fn a_retried_create_with_the_same_request_id_returns_the_first_ticket(server, clock) {
        let desk = server.desk("acme").await;
        let request = pb::CreateTicketRequest { ticket: Some(desk.ticket("Once")), request_id: "ticket-once".into() };
        let mut tickets = desk.as_agent.tickets.clone();
        let first = tickets.create_ticket(request.clone()).await.expect("first").into_inner().ticket.expect("ticket");
        let again = tickets.create_ticket(request.clone()).await.expect("retry").into_inner().ticket.expect("ticket");
        assert_eq!(first.id, again.id);
        assert_eq!(first.number, again.number);
        let other = pb::CreateTicketRequest { ticket: Some(desk.ticket("Twice")), request_id: "ticket-once".into() };
        expect_invalid(tickets.create_ticket(other).await, "request_id");
        assert_eq!(server.count(clientele::store::Table::Tickets).await, 1);
    }

    async fn the_same_request_id_from_another_caller_is_another_ticket(server, clock) {
        let desk = server.desk("acme").await;
        let request = pb::CreateTicketRequest { ticket: Some(desk.ticket("Printer")), request_id: "mail-4711".into() };
        let by_agent = desk.as_agent.tickets.clone().create_ticket(request.clone()).await.expect("the agent's").into_inner().ticket.expect("ticket");
        let by_customer = desk.as_customer.tickets.clone().create_ticket(request.clone()).await.expect("the customer's").into_inner().ticket.expect("ticket");
        assert_ne!(by_agent.id, by_customer.id, "two callers, two tickets");
        let again = desk.as_customer.tickets.clone().create_ticket(request).await.expect("the customer's retry").into_inner().ticket.expect("ticket");
        assert_eq!(again.id, by_customer.id);
        assert_eq!(server.count(clientele::store::Table::Tickets).await, 2);
    }

    async fn the_history_names_who_changed_what_from_what_to_what(server, clock) {
        let desk = server.desk("acme").await;
        let ticket = desk.create(desk.ticket("Old title")).await;
        let changed = update(&desk.as_agent, pb::Ticket { title: "New title".into(), priority: 5, ..ticket.clone() }, &["title", "priority"]).await.expect("update");
        let page = server.tickets().get_ticket_history(pb::GetTicketHistoryRequest { id: ticket.id.clone(), page_size: 1, ..Default::default() }).await.expect("history").into_inner();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].kind(), pb::ChangeKind::Created);
        let next = server.tickets().get_ticket_history(pb::GetTicketHistoryRequest { id: ticket.id.clone(), page_size: 1, page_token: page.next_page_token }).await.expect("history").into_inner();
        let entry = &next.entries[0];
        assert_eq!(entry.kind(), pb::ChangeKind::Updated);
        assert_eq!(entry.actor, format!("agent:{}", desk.agent.id));
        let fields: Vec<(&str, Option<prost_types::Value>, Option<prost_types::Value>)> = entry.changes.iter().map(|c| (c.field.as_str(), c.old_value.clone(), c.new_value.clone())).collect();
        assert_eq!(fields, [("title", Some(text("Old title")), Some(text("New title"))), ("priority", Some(number(3.0)), Some(number(5.0)))], "typed values, not JSON in strings");
        assert!(next.next_page_token.is_empty());
        assert_ne!(changed.etag, ticket.etag);
    }

    async fn a_ticket_is_read_by_id_or_by_number_with_all_its_additional_customers(server, _clock) {
        let desk = server.desk("acme").await;
        let main = server.customer(pb::Customer { email: "main@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let other = server.customer(pb::Customer { email: "other@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let ticket = desk.create(pb::Ticket { customer_id: main.id.clone(), additional_customer_ids: vec![other.id.clone(), desk.customer.id.clone()], ..desk.ticket("Shared") }).await;
        let mut additional = vec![other.id.clone(), desk.customer.id.clone()];
        additional.sort();
        let keys = [pb::get_ticket_request::Key::Id(ticket.id.clone()), pb::get_ticket_request::Key::Number(ticket.number)];
        for key in keys {
            // The agent, and the desk's customer, who is only an additional customer of it.
            for clients in [&desk.as_agent, &desk.as_customer] {
                let read = clients.tickets.clone().get_ticket(pb::GetTicketRequest { key: Some(key.clone()) }).await.expect("read").into_inner().ticket.expect("a ticket");
                assert_eq!((read.id.as_str(), read.number, read.customer_id.as_str()), (ticket.id.as_str(), ticket.number, main.id.as_str()), "{key:?}");
                let mut read_additional = read.additional_customer_ids.clone();
                read_additional.sort();
                assert_eq!(read_additional, additional, "{key:?}");
            }
        }
        expect_code(desk.as_agent.tickets.clone().get_ticket(pb::GetTicketRequest { key: Some(pb::get_ticket_request::Key::Number(ticket.number + 1000)) }).await, Code::NotFound);
    }

    async fn additional_customers_stay_through_other_changes_and_change_when_asked(server, _clock) {
        let desk = server.desk("acme").await;
        let other = server.customer(pb::Customer { email: "other@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let third = server.customer(pb::Customer { email: "third@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let ticket = desk.create(pb::Ticket { additional_customer_ids: vec![other.id.clone()], ..desk.ticket("Shared") }).await;
        // A change of other fields leaves the stored additional customers as they were.
        let opened = update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Open.into(), ..ticket }, &["state"]).await.expect("open");
        assert_eq!(desk::ticket(&server, &opened.id).await.additional_customer_ids, std::slice::from_ref(&other.id));
        // A change of them is stored, read back from the database.
        let changed = update(&desk.as_agent, pb::Ticket { additional_customer_ids: vec![third.id.clone()], ..opened }, &["additional_customer_ids"]).await.expect("change the additional customers");
        assert_eq!(desk::ticket(&server, &changed.id).await.additional_customer_ids, std::slice::from_ref(&third.id));
        let cleared = update(&desk.as_agent, pb::Ticket { additional_customer_ids: Vec::new(), ..changed }, &["additional_customer_ids"]).await.expect("clear them");
        assert!(desk::ticket(&server, &cleared.id).await.additional_customer_ids.is_empty());
    }

    async fn overviews_count_and_list_an_organisations_and_a_customers_tickets(server, clock) {
        let desk = server.desk("acme").await;
        let colleague = server.customer(pb::Customer { email: "colleague@acme.example".into(), organisation_id: desk.organisation.id.clone(), ..Default::default() }).await;
        let first = desk.create(desk.ticket("First")).await;
        let second = desk.create(pb::Ticket { customer_id: colleague.id.clone(), additional_customer_ids: vec![desk.customer.id.clone()], ..desk.ticket("Second") }).await;
        let third = desk.create(pb::Ticket { customer_id: colleague.id.clone(), ..desk.ticket("Third") }).await;
        update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..third }, &["state"]).await.expect("close");
        let overview = desk.as_agent.tickets.clone().get_organisation_overview(pb::GetOrganisationOverviewRequest {
            key: Some(pb::get_organisation_overview_request::Key::Code("ACME".into())), limit: 0, reminder_window: None,
        }).await.expect("overview").into_inner();
        assert_eq!(overview.organisation.map(|o| o.id), Some(desk.organisation.id.clone()));
        assert_eq!(overview.counts.map(|c| (c.open, c.closed)), Some((2, 1)));
        let open: Vec<i64> = overview.open_tickets.iter().map(|t| t.number).collect();
        assert_eq!(open, [first.number, second.number]);
        let mut customers: Vec<String> = overview.customers.iter().map(|c| c.email.clone()).collect();
        customers.sort();
        assert_eq!(customers, ["colleague@acme.example", "someone@acme.example"]);
        let mine = desk.as_customer.tickets.clone().get_customer_overview(pb::GetCustomerOverviewRequest {
            key: Some(pb::get_customer_overview_request::Key::Id(desk.customer.id.clone())), limit: 0, reminder_window: None,
        }).await.expect("own overview").into_inner();
        assert_eq!(mine.counts.map(|c| (c.open, c.closed)), Some((2, 0)), "main or additional customer");
        // A customer reads its own overview, not a colleague's.
        expect_code(desk.as_customer.tickets.clone().get_customer_overview(pb::GetCustomerOverviewRequest {
            key: Some(pb::get_customer_overview_request::Key::Id(colleague.id.clone())), limit: 0, reminder_window: None,
        }).await, Code::NotFound);
        expect_invalid(desk.as_agent.tickets.clone().get_customer_overview(pb::GetCustomerOverviewRequest {
            key: Some(pb::get_customer_overview_request::Key::Id(colleague.id.clone())), limit: -1, reminder_window: None,
        }).await, "limit");
        for window in [-1, 367 * 86_400] {
            expect_invalid(desk.as_agent.tickets.clone().get_customer_overview(pb::GetCustomerOverviewRequest {
                key: Some(pb::get_customer_overview_request::Key::Id(desk.customer.id.clone())), limit: 0,
                reminder_window: Some(prost_types::Duration { seconds: window, nanos: 0 }),
            }).await, "reminder_window");
        }
    }
}

/// A `google.protobuf.Value` holding a string.
fn text(value: &str) -> prost_types::Value {
    prost_types::Value {
        kind: Some(prost_types::value::Kind::StringValue(value.to_owned())),
    }
}

/// A `google.protobuf.Value` holding a number.
fn number(value: f64) -> prost_types::Value {
    prost_types::Value {
        kind: Some(prost_types::value::Kind::NumberValue(value)),
    }
}
