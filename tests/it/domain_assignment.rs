//! Domain assignment: customers join the organisation that claims their email domain.

use std::collections::HashSet;

use clientele::{proto::v1 as pb, store::Table};
use tonic::Code;

use crate::support::*;

fn person(email: &str) -> pb::Customer {
    pb::Customer {
        email: email.to_owned(),
        ..Default::default()
    }
}

backend_tests! {
    async fn a_new_customer_joins_the_organisation_claiming_its_domain(server) {
        let acme = server.organisation("ACME", &["acme.example", "acme-mail.example"]).await;
        let first = server.customer(person("jane@ACME.example")).await;
        let second = server.customer(person("john@acme-mail.example")).await;
        assert_eq!(first.organisation_id, acme.id);
        assert_eq!(second.organisation_id, acme.id);
        let elsewhere = server.customer(person("eve@unrelated.example")).await;
        assert_eq!(elsewhere.organisation_id, "");
        // An explicit organisation wins over the domain.
        let other = server.organisation("OTHER", &[]).await;
        let chosen = server.customer(pb::Customer { organisation_id: other.id.clone(), ..person("x@acme.example") }).await;
        assert_eq!(chosen.organisation_id, other.id);
    }

    async fn a_subdomain_matches_its_parent_and_the_most_specific_claim_wins(server) {
        let parent = server.organisation("EXAMPLE", &["example.com"]).await;
        let sales = server.organisation("SALES", &["sales.example.com"]).await;
        let deep = server.customer(person("a@eu.sales.example.com")).await;
        let sales_person = server.customer(person("b@sales.example.com")).await;
        let support = server.customer(person("c@support.example.com")).await;
        assert_eq!(deep.organisation_id, sales.id);
        assert_eq!(sales_person.organisation_id, sales.id);
        assert_eq!(support.organisation_id, parent.id);
        // A suffix that is not a parent domain does not match.
        let lookalike = server.customer(person("d@notexample.com")).await;
        assert_eq!(lookalike.organisation_id, "");
    }

    async fn two_organisations_cannot_claim_one_domain(server) {
        server.organisation("FIRST", &["shared.example"]).await;
        let refused = server
            .organisations()
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    code: "SECOND".into(),
                    name: "Second".into(),
                    country: "DE".into(),
                    email_domains: vec!["Shared.Example".into()],
                    domain_assignment: true,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await;
        let status = expect_code(refused, Code::AlreadyExists);
        assert_eq!(violated_fields(&status), ["organisation.email_domains[0]"]);
    }

    async fn organisations_with_assignment_off_or_invalid_take_no_customers_by_domain(server) {
        let silent = server
            .organisations()
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    code: "SILENT".into(),
                    name: "Silent".into(),
                    country: "DE".into(),
                    email_domains: vec!["silent.example".into()],
                    domain_assignment: false,
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create");
        assert!(!silent.into_inner().organisation.expect("org").domain_assignment);
        let closed = server.organisation("CLOSED", &["closed.example"]).await;
        server
            .organisations()
            .deactivate_organisation(pb::DeactivateOrganisationRequest { id: closed.id.clone(), etag: server.organisation_etag(&closed.id).await, ..Default::default() })
            .await
            .expect("deactivate");
        assert_eq!(server.customer(person("a@silent.example")).await.organisation_id, "");
        assert_eq!(server.customer(person("b@closed.example")).await.organisation_id, "");
    }

    async fn free_mail_customers_are_never_assigned(server) {
        server.auto_create_organisations(true, "DE").await;
        let before = server.count(Table::Organisations).await;
        for email in ["jane@gmail.com", "john@GMX.de", "x@mail.yahoo.com"] {
            assert_eq!(server.customer(person(email)).await.organisation_id, "", "{email}");
        }
        assert_eq!(server.count(Table::Organisations).await, before, "no organisation made from free mail");
    }

    async fn auto_create_makes_an_organisation_from_an_unclaimed_domain_only_when_on(server) {
        let off = server.customer(person("first@newco.example")).await;
        assert_eq!(off.organisation_id, "");
        assert_eq!(server.count(Table::Organisations).await, 0);

        server.auto_create_organisations(true, "at").await;
        let on = server.customer(person("second@NewCo.example")).await;
        let created = server
            .organisations()
            .get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Id(on.organisation_id.clone())) })
            .await
            .expect("the new organisation")
            .into_inner()
            .organisation
            .expect("org");
        assert_eq!(created.code, "newco.example");
        assert_eq!(created.name, "newco.example");
        assert_eq!(created.country, "AT");
        assert_eq!(created.email_domains, ["newco.example"]);
        assert!(created.domain_assignment);
        let third = server.customer(person("third@newco.example")).await;
        assert_eq!(third.organisation_id, created.id, "later customers join it");
        assert_eq!(server.count(Table::Organisations).await, 1);
    }

    async fn concurrent_customers_of_a_new_domain_share_one_new_organisation(server) {
        server.auto_create_organisations(true, "DE").await;
        let calls = (0..10)
            .map(|i| {
                let mut client = server.customers();
                async move {
                    client
                        .create_customer(pb::CreateCustomerRequest {
                            customer: Some(person(&format!("p{i}@rush.example"))),
                            request_id: String::new(),
                        })
                        .await
                }
            })
            .collect();
        let organisations: HashSet<String> = concurrently(calls)
            .await
            .into_iter()
            .map(|r| r.expect("create").into_inner().customer.expect("customer").organisation_id)
            .collect();
        assert_eq!(organisations.len(), 1, "{organisations:?}");
        assert!(!organisations.contains(""));
        assert_eq!(server.count(Table::Organisations).await, 1);
    }

    async fn apply_domain_assignment_takes_in_existing_customers(server) {
        let before_domain = [
            server.customer(person("a@late.example")).await,
            server.customer(person("b@eu.late.example")).await,
        ];
        let claimed_elsewhere = server.customer(person("c@special.late.example")).await;
        let has_org_already = {
            let other = server.organisation("OTHER", &[]).await;
            server.customer(pb::Customer { organisation_id: other.id.clone(), ..person("d@late.example") }).await
        };
        let unrelated = server.customer(person("e@early.example")).await;

        let late = server.organisation("LATE", &["late.example"]).await;
        let special = server.organisation("SPECIAL", &["special.late.example"]).await;
        // Customers created before the organisations stayed unassigned.
        assert_eq!(server.customer_by_id(&claimed_elsewhere.id).await.organisation_id, "");

        let assigned = server
            .organisations()
            .apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: late.id.clone() })
            .await
            .expect("apply")
            .into_inner()
            .assigned;
        assert_eq!(assigned, 2);
        for customer in &before_domain {
            assert_eq!(server.customer_by_id(&customer.id).await.organisation_id, late.id);
        }
        assert_eq!(server.customer_by_id(&claimed_elsewhere.id).await.organisation_id, "", "the more specific claim wins");
        assert_ne!(server.customer_by_id(&has_org_already.id).await.organisation_id, late.id);
        assert_eq!(server.customer_by_id(&unrelated.id).await.organisation_id, "");

        let special_assigned = server
            .organisations()
            .apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: special.id.clone() })
            .await
            .expect("apply")
            .into_inner()
            .assigned;
        assert_eq!(special_assigned, 1);
        let again = server
            .organisations()
            .apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: late.id.clone() })
            .await
            .expect("apply again")
            .into_inner()
            .assigned;
        assert_eq!(again, 0, "applying twice changes nothing");
    }

    async fn apply_domain_assignment_needs_a_valid_organisation_with_assignment_on(server) {
        let off = server.organisation("OFF", &[]).await;
        let status = expect_code(
            server.organisations().apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: off.id.clone() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&status).as_deref(), Some("DOMAIN_ASSIGNMENT_OFF"));
        let closed = server.organisation("CLOSED", &["closed.example"]).await;
        server
            .organisations()
            .deactivate_organisation(pb::DeactivateOrganisationRequest { id: closed.id.clone(), etag: server.organisation_etag(&closed.id).await, ..Default::default() })
            .await
            .expect("deactivate");
        let status = expect_code(
            server.organisations().apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: closed.id.clone() }).await,
            Code::FailedPrecondition,
        );
        assert_eq!(reason(&status).as_deref(), Some("ORGANISATION_INVALID"));
        expect_invalid(
            server.organisations().apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: "x".into() }).await,
            "id",
        );
    }
}
