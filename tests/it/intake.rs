//! The intake of mail gateways and portals (FindOrCreateCustomer: idempotent, one customer for
//! concurrent calls, domain assignment and auto-created organisations), and ConSol's rules on
//! contacts: a deactivated contact is not moved to another company, the closed tickets of a
//! deactivated contact can be transferred, a ticket needs a contact.

use clientele::{proto::v1 as pb, store::Table};
use tonic::Code;

use crate::support::{desk, *};

async fn find_or_create(
    server: &TestServer,
    customer: pb::Customer,
) -> Result<(pb::Customer, bool), tonic::Status> {
    let answer = server
        .customers()
        .find_or_create_customer(pb::FindOrCreateCustomerRequest {
            customer: Some(customer),
        })
        .await?
        .into_inner();
    Ok((answer.customer.expect("customer"), answer.newly_created))
}

fn from(email: &str) -> pb::Customer {
    pb::Customer {
        email: email.into(),
        first_name: "Mail".into(),
        ..Default::default()
    }
}

backend_tests! {
    async fn find_or_create_makes_a_customer_once_and_finds_it_by_any_address_after(server) {
        let acme = server.organisation("acme", &["acme.example"]).await;
        let (made, created) = find_or_create(&server, from("first.mail@acme.example")).await.expect("intake");
        assert!(created);
        assert_eq!(made.organisation_id, acme.id, "domain assignment applies");
        let (again, created) = find_or_create(&server, pb::Customer { first_name: "Other".into(), ..from("FIRST.MAIL@acme.example") }).await.expect("again");
        assert!(!created);
        assert_eq!(again, made, "found as it is, the request's other fields unused");
        // A secondary address finds its customer too, an invalid one as well.
        let old = server.customer(pb::Customer { secondary_emails: vec!["alias@elsewhere.example".into()], ..from("owner@elsewhere.example") }).await;
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: old.id.clone(), etag: old.etag.clone(), ..Default::default() })
            .await
            .expect("deactivate");
        let (found, created) = find_or_create(&server, from("alias@elsewhere.example")).await.expect("alias");
        assert_eq!((found.id.as_str(), created), (old.id.as_str(), false));
        assert_eq!(found.validity, i32::from(pb::Validity::Invalid));
        // Auto-created organisations, as CreateCustomer makes them.
        server.auto_create_organisations(true, "DE").await;
        let (fresh, created) = find_or_create(&server, from("ceo@newco.example")).await.expect("new domain");
        assert!(created);
        assert!(!fresh.organisation_id.is_empty(), "an organisation was made for newco.example");
        // Bad input is refused as CreateCustomer refuses it, and nothing is made.
        let before = server.snapshot().await;
        expect_invalid(find_or_create(&server, from("not an address")).await, "customer.email");
        expect_invalid(find_or_create(&server, pb::Customer::default()).await, "customer.email");
        assert_eq!(server.snapshot().await, before);
        // Agents without the customer administration right make no customers.
        let agent = server.agent("mailer", false).await;
        let as_agent = server.as_token(&server.token(pb::token_owner::Owner::AgentId(agent.id)).await);
        let denied = as_agent
            .customers
            .clone()
            .find_or_create_customer(pb::FindOrCreateCustomerRequest { customer: Some(from("x@acme.example")) })
            .await;
        expect_code(denied, Code::PermissionDenied);
    }

    async fn concurrent_intakes_of_one_address_answer_one_customer(server) {
        server.auto_create_organisations(true, "DE").await;
        for round in 0..3 {
            let email = format!("burst{round}@burst{round}.example");
            let calls: Vec<_> = (0..8)
                .map(|_| {
                    let mut client = server.customers();
                    let request = pb::FindOrCreateCustomerRequest { customer: Some(from(&email)) };
                    async move { client.find_or_create_customer(request).await.map(|answer| answer.into_inner()) }
                })
                .collect();
            let answers = concurrently(calls).await;
            let mut ids: Vec<String> = Vec::new();
            let mut made = 0;
            for answer in answers {
                let answer = answer.expect("every call answers the customer, none INTERNAL or ALREADY_EXISTS");
                made += usize::from(answer.newly_created);
                ids.push(answer.customer.expect("customer").id);
            }
            ids.dedup();
            assert_eq!(ids.len(), 1, "one customer for the address");
            assert_eq!(made, 1, "one call made it");
        }
        assert_eq!(server.count(Table::Customers).await, 3);
        assert_eq!(server.count(Table::Organisations).await, 3, "one organisation per new domain");
    }

    async fn a_deactivated_customer_is_not_moved_to_another_organisation(server) {
        let acme = server.organisation("acme", &[]).await;
        let globex = server.organisation("globex", &[]).await;
        let person = server.customer(pb::Customer { organisation_id: acme.id.clone(), ..from("leaver@acme.example") }).await;
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: person.id.clone(), etag: person.etag.clone(), ..Default::default() })
            .await
            .expect("deactivate");
        let current = server.customer_by_id(&person.id).await;
        let moving = |customer: pb::Customer, paths: &[&str]| pb::UpdateCustomerRequest {
            customer: Some(customer),
            update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        };
        let before = server.snapshot().await;
        for (customer, path) in [
            (pb::Customer { organisation_id: globex.id.clone(), ..current.clone() }, "organisation_id"),
            (pb::Customer { secondary_organisation_ids: vec![globex.id.clone()], ..current.clone() }, "secondary_organisation_ids"),
        ] {
            let refused = expect_code(server.customers().update_customer(moving(customer, &[path])).await, Code::FailedPrecondition);
            assert_eq!(reason(&refused).as_deref(), Some("CUSTOMER_INVALID"));
        }
        assert_eq!(server.snapshot().await, before);
        // Leaving an organisation is no move; reactivated, the customer moves.
        let left = server
            .customers()
            .update_customer(moving(pb::Customer { organisation_id: String::new(), ..current.clone() }, &["organisation_id"]))
            .await
            .expect("leave")
            .into_inner()
            .customer
            .expect("customer");
        let back = server
            .customers()
            .reactivate_customer(pb::ReactivateCustomerRequest { id: left.id.clone(), etag: left.etag.clone() })
            .await
            .expect("reactivate")
            .into_inner()
            .customer
            .expect("customer");
        server
            .customers()
            .update_customer(moving(pb::Customer { organisation_id: globex.id.clone(), ..back }, &["organisation_id"]))
            .await
            .expect("a valid customer moves");
    }

    async fn the_closed_tickets_of_a_deactivated_customer_can_be_transferred(server) {
        let desk = server.desk("consol").await;
        let ticket = desk.create(desk.ticket("Old matter")).await;
        let current = desk::ticket(&server, &ticket.id).await;
        desk::update(&desk.as_agent, pb::Ticket { state: pb::TicketState::Closed.into(), ..current }, &["state"]).await.expect("close");
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: desk.customer.id.clone(), etag: server.customer_etag(&desk.customer.id).await, ..Default::default() })
            .await
            .expect("deactivate");
        let successor = server.customer(pb::Customer { organisation_id: desk.organisation.id.clone(), ..from("successor@consol.example") }).await;
        let moved = server
            .tickets()
            .transfer_tickets(pb::TransferTicketsRequest { from_customer_id: desk.customer.id.clone(), to_customer_id: successor.id.clone(), open_only: false })
            .await
            .expect("transfer")
            .into_inner();
        assert_eq!(moved.ticket_numbers, [ticket.number]);
        assert_eq!(desk::ticket(&server, &ticket.id).await.customer_id, successor.id);
    }

    async fn a_ticket_needs_a_customer(server) {
        let desk = server.desk("nobody").await;
        let before = server.snapshot().await;
        for ticket in [
            pb::Ticket { customer_id: String::new(), ..desk.ticket("For a company alone") },
            pb::Ticket { customer_id: String::new(), organisation_id: desk.organisation.id.clone(), ..desk.ticket("For a company alone") },
        ] {
            expect_invalid(desk.try_create(ticket).await, "ticket.customer_id");
        }
        assert_eq!(server.snapshot().await, before);
    }
}
