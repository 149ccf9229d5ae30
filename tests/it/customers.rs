//! CustomerService: field rules, organisations, validity, delete, lists, the change log.

use std::collections::{HashMap, HashSet};

use clientele::{model::ResourceType, proto::v1 as pb, store::Table};
use prost_types::FieldMask;
use tonic::Code;
use uuid::Uuid;

use crate::support::*;

/// A valid customer with this email address.
fn person(email: &str) -> pb::Customer {
    pb::Customer {
        email: email.to_owned(),
        first_name: "Jane".to_owned(),
        last_name: "Doe".to_owned(),
        ..Default::default()
    }
}

fn update(customer: pb::Customer, paths: &[&str]) -> pb::UpdateCustomerRequest {
    pb::UpdateCustomerRequest {
        customer: Some(customer),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

async fn list_all(server: &TestServer, mut request: pb::ListCustomersRequest) -> Vec<pb::Customer> {
    let mut client = server.customers();
    let mut all = Vec::new();
    loop {
        let page = client
            .list_customers(request.clone())
            .await
            .expect("list")
            .into_inner();
        all.extend(page.customers);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
}

fn emails(customers: &[pb::Customer]) -> Vec<&str> {
    customers.iter().map(|c| c.email.as_str()).collect()
}

async fn kinds_of(server: &TestServer, id: &str) -> Vec<String> {
    server
        .store
        .changes_of(ResourceType::Customer, Uuid::parse_str(id).expect("uuid"))
        .await
        .expect("change log")
        .into_iter()
        .map(|c| c.kind)
        .collect()
}

backend_tests! {
    async fn creating_a_customer_returns_it_normalised(server) {
        let created = server.customer(pb::Customer {
            email: " Jane.Doe@Example.COM ".into(),
            secondary_emails: vec!["JD@Private.example".into()],
            login: "JDoe".into(),
            first_name: "  Jane ".into(),
            last_name: "Doe".into(),
            title: "Dr.".into(),
            phone: "+49 (30) 123-456".into(),
            r#type: "VIP".into(),
            external_id: "hr-1".into(),
            custom_fields: HashMap::from([("language".to_owned(), "de".to_owned())]),
            ..Default::default()
        }).await;
        assert_eq!(Uuid::parse_str(&created.id).expect("uuid").get_version_num(), 7);
        assert_eq!(created.email, "Jane.Doe@example.com");
        assert_eq!(created.secondary_emails, ["JD@private.example"]);
        assert_eq!(created.first_name, "Jane");
        assert_eq!(created.login, "JDoe");
        assert_eq!(created.organisation_id, "", "no organisation claims example.com");
        assert_eq!(created.validity, pb::Validity::Valid as i32);
        assert_eq!(server.customer_by_id(&created.id).await, created);
    }

    async fn a_customer_is_found_by_id_any_email_address_or_login_in_any_case(server) {
        let created = server.customer(pb::Customer {
            login: "jdoe".into(),
            secondary_emails: vec!["old@example.org".into()],
            ..person("jane@example.com")
        }).await;
        let mut client = server.customers();
        use pb::get_customer_request::Key;
        for key in [
            Key::Email("JANE@EXAMPLE.COM".into()),
            Key::Email("Old@Example.org".into()),
            Key::Login("JDOE".into()),
            Key::Id(created.id.clone()),
        ] {
            let found = client
                .get_customer(pb::GetCustomerRequest { key: Some(key.clone()) })
                .await
                .unwrap_or_else(|e| panic!("{key:?}: {e}"))
                .into_inner()
                .customer
                .expect("customer");
            assert_eq!(found.id, created.id);
        }
        let missing = client
            .get_customer(pb::GetCustomerRequest { key: Some(Key::Email("nobody@example.com".into())) })
            .await;
        expect_code(missing, Code::NotFound);
    }

    async fn an_address_is_found_in_any_spelling_of_its_domain(server) {
        let created = server.customer(person("kunde@bücher.example")).await;
        assert_eq!(created.email, "kunde@xn--bcher-kva.example");
        let mut client = server.customers();
        use pb::get_customer_request::Key;
        for spelling in ["kunde@Bücher.example", "kunde@xn--bcher-kva.example", " KUNDE@BÜCHER.EXAMPLE. "] {
            let found = client
                .get_customer(pb::GetCustomerRequest { key: Some(Key::Email(spelling.into())) })
                .await
                .unwrap_or_else(|e| panic!("{spelling:?}: {e}"))
                .into_inner()
                .customer
                .expect("customer");
            assert_eq!(found.id, created.id, "{spelling:?}");
        }
    }

    async fn keys_holding_a_nul_are_invalid_argument_on_every_lookup(server) {
        // No record holds a NUL character (PostgreSQL stores none): such a key is refused as
        // bad input before any database sees it, never INTERNAL.
        server.customer(pb::Customer { login: "nul".into(), ..person("nul@example.com") }).await;
        server.organisation("NUL", &[]).await;
        use pb::get_customer_request::Key;
        for key in [Key::Email("nul\0@example.com".into()), Key::Email("nul@example.com\0".into()), Key::Login("nul\0".into())] {
            let result = server.customers().get_customer(pb::GetCustomerRequest { key: Some(key.clone()) }).await;
            expect_code(result, Code::InvalidArgument);
        }
        let result = server.organisations().get_organisation(pb::GetOrganisationRequest {
            key: Some(pb::get_organisation_request::Key::Code("NUL\0".into())),
        }).await;
        expect_code(result, Code::InvalidArgument);
        let result = server.tickets().get_customer_overview(pb::GetCustomerOverviewRequest {
            key: Some(pb::get_customer_overview_request::Key::Email("nul\0@example.com".into())),
            limit: 0, reminder_window: None,
        }).await;
        expect_code(result, Code::InvalidArgument);
        let result = server.tickets().get_organisation_overview(pb::GetOrganisationOverviewRequest {
            key: Some(pb::get_organisation_overview_request::Key::Code("NUL\0".into())),
            limit: 0, reminder_window: None,
        }).await;
        expect_code(result, Code::InvalidArgument);
    }

    async fn email_addresses_are_unique_across_primary_and_secondary_addresses(server) {
        server.customer(pb::Customer {
            secondary_emails: vec!["shared@example.org".into()],
            ..person("first@example.com")
        }).await;
        let before = server.snapshot().await;
        let mut client = server.customers();
        for (customer, field) in [
            (person("FIRST@example.com"), "customer.email"),
            (person("Shared@Example.org"), "customer.email"),
            (pb::Customer { secondary_emails: vec!["x@example.net".into(), "first@EXAMPLE.com".into()], ..person("second@example.com") }, "customer.secondary_emails[1]"),
        ] {
            let taken = client
                .create_customer(pb::CreateCustomerRequest { customer: Some(customer), request_id: String::new() })
                .await;
            let status = expect_code(taken, Code::AlreadyExists);
            assert_eq!(violated_fields(&status), [field]);
            assert_eq!(reason(&status).as_deref(), Some("EMAIL_TAKEN"));
        }
        assert_eq!(server.snapshot().await, before);
    }

    async fn logins_and_external_ids_are_unique(server) {
        server.customer(pb::Customer { login: "jdoe".into(), external_id: "hr-1".into(), ..person("a@example.com") }).await;
        let mut client = server.customers();
        for (customer, field) in [
            (pb::Customer { login: "JDoe".into(), ..person("b@example.com") }, "customer.login"),
            (pb::Customer { external_id: "hr-1".into(), ..person("c@example.com") }, "customer.external_id"),
        ] {
            let taken = client
                .create_customer(pb::CreateCustomerRequest { customer: Some(customer), request_id: String::new() })
                .await;
            assert_eq!(violated_fields(&expect_code(taken, Code::AlreadyExists)), [field]);
        }
    }

    async fn a_customer_has_a_primary_and_secondary_organisations(server) {
        let acme = server.organisation("ACME", &[]).await;
        let globex = server.organisation("GLOBEX", &[]).await;
        let initech = server.organisation("INITECH", &[]).await;
        let customer = server.customer(pb::Customer {
            organisation_id: acme.id.clone(),
            secondary_organisation_ids: vec![initech.id.clone(), globex.id.clone()],
            ..person("multi@example.com")
        }).await;
        assert_eq!(customer.organisation_id, acme.id);
        let mut secondary = vec![globex.id.clone(), initech.id.clone()];
        secondary.sort();
        assert_eq!(customer.secondary_organisation_ids, secondary);
        for org in [&acme, &globex, &initech] {
            let members = list_all(&server, pb::ListCustomersRequest { organisation_id: org.id.clone(), ..Default::default() }).await;
            assert_eq!(emails(&members), ["multi@example.com"], "listed under {}", org.code);
        }
        let refused = server
            .customers()
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    organisation_id: acme.id.clone(),
                    secondary_organisation_ids: vec![acme.id.clone()],
                    ..person("twice@example.com")
                }),
                request_id: String::new(),
            })
            .await;
        expect_invalid(refused, "customer.secondary_organisation_ids");
    }

    async fn moving_a_customer_is_an_update_of_its_primary_organisation(server) {
        let acme = server.organisation("ACME", &[]).await;
        let globex = server.organisation("GLOBEX", &[]).await;
        let customer = server.customer(pb::Customer { organisation_id: acme.id.clone(), ..person("mover@example.com") }).await;
        let moved = server
            .customers()
            .update_customer(update(pb::Customer { organisation_id: globex.id.clone(), ..customer.clone() }, &["organisation_id"]))
            .await
            .expect("move")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(moved.organisation_id, globex.id);
        let at_acme = list_all(&server, pb::ListCustomersRequest { organisation_id: acme.id.clone(), ..Default::default() }).await;
        assert!(at_acme.is_empty());
        let released = server
            .customers()
            .update_customer(update(pb::Customer { organisation_id: String::new(), ..moved }, &["organisation_id"]))
            .await
            .expect("no organisation")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(released.organisation_id, "");
    }

    async fn an_invalid_organisation_takes_no_new_customers(server) {
        let closed = server.organisation("CLOSED", &[]).await;
        let open = server.organisation("OPEN", &[]).await;
        server
            .organisations()
            .deactivate_organisation(pb::DeactivateOrganisationRequest { id: closed.id.clone(), etag: server.organisation_etag(&closed.id).await, ..Default::default() })
            .await
            .expect("deactivate");
        let before = server.snapshot().await;
        let mut client = server.customers();
        for customer in [
            pb::Customer { organisation_id: closed.id.clone(), ..person("new@example.com") },
            pb::Customer { secondary_organisation_ids: vec![closed.id.clone()], ..person("new@example.com") },
        ] {
            let refused = client
                .create_customer(pb::CreateCustomerRequest { customer: Some(customer), request_id: String::new() })
                .await;
            let status = expect_code(refused, Code::FailedPrecondition);
            assert_eq!(reason(&status).as_deref(), Some("ORGANISATION_INVALID"));
        }
        assert_eq!(server.snapshot().await, before);
        let customer = server.customer(pb::Customer { organisation_id: open.id.clone(), ..person("existing@example.com") }).await;
        let move_in = client
            .update_customer(update(pb::Customer { organisation_id: closed.id.clone(), ..customer.clone() }, &["organisation_id"]))
            .await;
        expect_code(move_in, Code::FailedPrecondition);
        assert_eq!(server.customer_by_id(&customer.id).await, customer);
    }

    async fn deactivating_an_organisation_deactivates_its_customers_and_reactivating_it_does_not(server) {
        let org = server.organisation("FOLDING", &[]).await;
        let other = server.organisation("OTHER", &[]).await;
        let staff = server.customer(pb::Customer { organisation_id: org.id.clone(), ..person("staff@example.com") }).await;
        let paused = server.customer(pb::Customer { organisation_id: org.id.clone(), ..person("paused@example.com") }).await;
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest {
                id: paused.id.clone(),
                validity: pb::Validity::InvalidTemporarily as i32,
                etag: server.customer_etag(&paused.id).await,
            })
            .await
            .expect("pause one customer");
        let guest = server.customer(pb::Customer {
            organisation_id: other.id.clone(),
            secondary_organisation_ids: vec![org.id.clone()],
            ..person("guest@example.com")
        }).await;

        server
            .organisations()
            .deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), etag: server.organisation_etag(&org.id).await, ..Default::default() })
            .await
            .expect("deactivate organisation");
        assert_eq!(server.customer_by_id(&staff.id).await.validity, pb::Validity::Invalid as i32);
        assert_eq!(
            server.customer_by_id(&paused.id).await.validity,
            pb::Validity::InvalidTemporarily as i32,
            "an already invalid customer keeps its validity"
        );
        assert_eq!(server.customer_by_id(&guest.id).await.validity, pb::Validity::Valid as i32, "secondary members stay");
        assert_eq!(kinds_of(&server, &staff.id).await, ["created", "deactivated"]);

        server
            .organisations()
            .reactivate_organisation(pb::ReactivateOrganisationRequest { id: org.id.clone(), etag: server.organisation_etag(&org.id).await })
            .await
            .expect("reactivate organisation");
        assert_eq!(server.customer_by_id(&staff.id).await.validity, pb::Validity::Invalid as i32, "customers stay deactivated");
    }

    async fn a_customer_of_an_invalid_organisation_cannot_be_reactivated(server) {
        let org = server.organisation("GONE", &[]).await;
        let customer = server.customer(pb::Customer { organisation_id: org.id.clone(), ..person("left@example.com") }).await;
        server
            .organisations()
            .deactivate_organisation(pb::DeactivateOrganisationRequest { id: org.id.clone(), etag: server.organisation_etag(&org.id).await, ..Default::default() })
            .await
            .expect("deactivate organisation");
        let refused = server
            .customers()
            .reactivate_customer(pb::ReactivateCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await })
            .await;
        let status = expect_code(refused, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("ORGANISATION_INVALID"));
        // Moving the customer out first makes it possible.
        let current = server.customer_by_id(&customer.id).await;
        server
            .customers()
            .update_customer(update(pb::Customer { organisation_id: String::new(), ..current }, &["organisation_id"]))
            .await
            .expect("move out");
        let back = server
            .customers()
            .reactivate_customer(pb::ReactivateCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await })
            .await
            .expect("reactivate")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(back.validity, pb::Validity::Valid as i32);
    }

    async fn an_update_changes_the_masked_fields_and_needs_the_current_etag(server) {
        let customer = server.customer(person("upd@example.com")).await;
        let mut client = server.customers();
        let updated = client
            .update_customer(update(
                pb::Customer { first_name: "Janet".into(), last_name: "ignored".into(), phone: "+1 555 0100".into(), ..customer.clone() },
                &["first_name", "phone"],
            ))
            .await
            .expect("update")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(updated.first_name, "Janet");
        assert_eq!(updated.last_name, "Doe");
        assert_eq!(updated.phone, "+1 555 0100");
        assert_ne!(updated.etag, customer.etag);
        let stale = client
            .update_customer(update(pb::Customer { first_name: "Late".into(), ..customer.clone() }, &["first_name"]))
            .await;
        expect_code(stale, Code::Aborted);
        for path in ["validity", "id", "etag", "create_time", "nonsense"] {
            let refused = client.update_customer(update(updated.clone(), &[path])).await;
            expect_invalid(refused, "update_mask.paths[0]");
        }
        assert_eq!(server.customer_by_id(&customer.id).await, updated);
        assert_eq!(kinds_of(&server, &customer.id).await, ["created", "updated"]);
    }

    async fn deleting_a_customer_removes_it_and_frees_its_addresses(server) {
        let customer = server.customer(pb::Customer { login: "gone".into(), ..person("bye@example.com") }).await;
        let mut client = server.customers();
        let blind = client
            .delete_customer(pb::DeleteCustomerRequest { id: customer.id.clone(), etag: String::new() })
            .await;
        expect_invalid(blind, "etag");
        let stale = client
            .delete_customer(pb::DeleteCustomerRequest { id: customer.id.clone(), etag: "v0".into() })
            .await;
        expect_code(stale, Code::Aborted);
        client
            .delete_customer(pb::DeleteCustomerRequest { id: customer.id.clone(), etag: customer.etag.clone() })
            .await
            .expect("delete");
        let gone = client
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Id(customer.id.clone())) })
            .await;
        expect_code(gone, Code::NotFound);
        assert_eq!(kinds_of(&server, &customer.id).await, ["created", "deleted"]);
        assert_eq!(server.count(Table::CustomerEmails).await, 0);
        server.customer(pb::Customer { login: "gone".into(), ..person("BYE@example.com") }).await;
        let again = client
            .delete_customer(pb::DeleteCustomerRequest { id: customer.id.clone(), etag: customer.etag.clone() })
            .await;
        expect_code(again, Code::NotFound);
    }

    async fn lists_filter_by_text_type_and_validity_and_order_by_name_or_email(server) {
        for (email, first, last, kind) in [
            ("zed@example.com", "Anna", "Zimmer", "VIP"),
            ("amy@example.com", "Amy", "Adams", ""),
            ("bob@example.com", "Bob", "Smith", "partner"),
            ("bea@example.com", "Bea", "Smith", "VIP"),
            ("sam@example.com", "Sam", "Smithers", ""),
        ] {
            server.customer(pb::Customer {
                first_name: first.into(),
                last_name: last.into(),
                r#type: kind.into(),
                ..person(email)
            }).await;
        }
        let by_name = list_all(&server, pb::ListCustomersRequest::default()).await;
        assert_eq!(emails(&by_name), ["amy@example.com", "bea@example.com", "bob@example.com", "sam@example.com", "zed@example.com"]);
        let by_email = list_all(&server, pb::ListCustomersRequest { order_by: pb::CustomerOrder::Email as i32, ..Default::default() }).await;
        assert_eq!(emails(&by_email), ["amy@example.com", "bea@example.com", "bob@example.com", "sam@example.com", "zed@example.com"]);
        let smiths = list_all(&server, pb::ListCustomersRequest { text: "SMITH".into(), ..Default::default() }).await;
        assert_eq!(emails(&smiths), ["bea@example.com", "bob@example.com", "sam@example.com"]);
        let full_name = list_all(&server, pb::ListCustomersRequest { text: "anna zim".into(), ..Default::default() }).await;
        assert_eq!(emails(&full_name), ["zed@example.com"]);
        let vips = list_all(&server, pb::ListCustomersRequest { r#type: "VIP".into(), ..Default::default() }).await;
        assert_eq!(emails(&vips), ["bea@example.com", "zed@example.com"]);

        let zed = by_name.iter().find(|c| c.email == "zed@example.com").expect("zed");
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: zed.id.clone(), etag: server.customer_etag(&zed.id).await, ..Default::default() })
            .await
            .expect("deactivate");
        assert_eq!(list_all(&server, pb::ListCustomersRequest::default()).await.len(), 4);
        assert_eq!(list_all(&server, pb::ListCustomersRequest { include_invalid: true, ..Default::default() }).await.len(), 5);
        let invalid = list_all(&server, pb::ListCustomersRequest { validity: pb::Validity::Invalid as i32, ..Default::default() }).await;
        assert_eq!(emails(&invalid), ["zed@example.com"]);

        let mut request = pb::ListCustomersRequest { page_size: 2, include_invalid: true, ..Default::default() };
        let mut paged = Vec::new();
        loop {
            let page = server.customers().list_customers(request.clone()).await.expect("page").into_inner();
            assert!(page.customers.len() <= 2);
            paged.extend(page.customers.into_iter().map(|c| c.id));
            if page.next_page_token.is_empty() { break; }
            request.page_token = page.next_page_token;
        }
        assert_eq!(paged.iter().collect::<HashSet<_>>().len(), 5);
        assert_eq!(paged.len(), 5);
    }

    async fn a_retried_create_returns_the_first_customer(server) {
        let request = pb::CreateCustomerRequest { customer: Some(person("once@example.com")), request_id: "customer-once".into() };
        let calls = (0..10)
            .map(|_| {
                let mut client = server.customers();
                let request = request.clone();
                async move { client.create_customer(request).await }
            })
            .collect();
        let ids: HashSet<String> = concurrently(calls)
            .await
            .into_iter()
            .map(|r| r.expect("duplicate succeeds").into_inner().customer.expect("customer").id)
            .collect();
        assert_eq!(ids.len(), 1);
        assert_eq!(server.count(Table::Customers).await, 1);
        let other = server
            .customers()
            .create_customer(pb::CreateCustomerRequest { customer: Some(person("other@example.com")), request_id: "customer-once".into() })
            .await;
        expect_invalid(other, "request_id");
    }

    async fn bad_customer_inputs_are_refused_naming_the_field_and_write_nothing(server) {
        let org = server.organisation("EXISTS", &[]).await;
        let existing = server.customer(person("existing@example.com")).await;
        let before = server.snapshot().await;
        let long = |n: usize| "x".repeat(n);
        let with = |change: &dyn Fn(&mut pb::Customer)| {
            let mut customer = person("fresh@example.com");
            change(&mut customer);
            customer
        };
        let cases: Vec<(pb::Customer, &str)> = vec![
            (with(&|c| c.email = String::new()), "customer.email"),
            (with(&|c| c.email = "no-at-sign".into()), "customer.email"),
            (with(&|c| c.email = "two@@example.com".into()), "customer.email"),
            (with(&|c| c.email = "jane@localhost".into()), "customer.email"),
            (with(&|c| c.email = "ja ne@example.com".into()), "customer.email"),
            (with(&|c| c.email = format!("{}@example.com", long(65))), "customer.email"),
            (with(&|c| c.email = format!("a@{}.example.com", long(250))), "customer.email"),
            (with(&|c| c.secondary_emails = vec!["broken".into()]), "customer.secondary_emails[0]"),
            (with(&|c| c.secondary_emails = vec!["FRESH@example.com".into()]), "customer.secondary_emails[0]"),
            (with(&|c| c.secondary_emails = (0..21).map(|i| format!("s{i}@example.com")).collect()), "customer.secondary_emails"),
            (with(&|c| c.login = "has space".into()), "customer.login"),
            (with(&|c| c.login = long(101)), "customer.login"),
            (with(&|c| c.first_name = long(101)), "customer.first_name"),
            (with(&|c| c.last_name = "line\nbreak".into()), "customer.last_name"),
            (with(&|c| c.title = long(51)), "customer.title"),
            (with(&|c| c.phone = "call me".into()), "customer.phone"),
            (with(&|c| c.mobile = "+49 ".repeat(20)), "customer.mobile"),
            (with(&|c| c.r#type = long(51)), "customer.type"),
            (with(&|c| c.external_id = long(201)), "customer.external_id"),
            (with(&|c| c.custom_fields = HashMap::from([("bad key".to_owned(), "x".to_owned())])), "customer.custom_fields[\"bad key\"]"),
            (with(&|c| c.organisation_id = "not-a-uuid".into()), "customer.organisation_id"),
            (with(&|c| c.organisation_id = Uuid::now_v7().to_string()), "customer.organisation_id"),
            (with(&|c| c.secondary_organisation_ids = vec![org.id.clone(), "bad".into()]), "customer.secondary_organisation_ids[1]"),
            (with(&|c| c.secondary_organisation_ids = vec![Uuid::now_v7().to_string()]), "customer.secondary_organisation_ids[0]"),
            (with(&|c| c.secondary_organisation_ids = vec![org.id.clone(), org.id.clone()]), "customer.secondary_organisation_ids[1]"),
            (with(&|c| c.validity = 17), "customer.validity"),
        ];
        let mut client = server.customers();
        for (customer, field) in cases {
            let result = client
                .create_customer(pb::CreateCustomerRequest { customer: Some(customer), request_id: String::new() })
                .await;
            expect_invalid(result, field);
        }
        let updates: Vec<(pb::UpdateCustomerRequest, &str)> = vec![
            (update(pb::Customer { email: "broken".into(), ..existing.clone() }, &["email"]), "customer.email"),
            (update(pb::Customer { id: "x".into(), ..existing.clone() }, &["email"]), "customer.id"),
            (update(pb::Customer { etag: String::new(), ..existing.clone() }, &["first_name"]), "customer.etag"),
            (update(existing.clone(), &[]), "update_mask"),
        ];
        for (request, field) in updates {
            expect_invalid(client.update_customer(request).await, field);
        }
        let lists: Vec<(pb::ListCustomersRequest, &str)> = vec![
            (pb::ListCustomersRequest { page_size: -5, ..Default::default() }, "page_size"),
            (pb::ListCustomersRequest { organisation_id: "nope".into(), ..Default::default() }, "organisation_id"),
            (pb::ListCustomersRequest { order_by: 7, ..Default::default() }, "order_by"),
            (pb::ListCustomersRequest { text: long(201), ..Default::default() }, "text"),
        ];
        for (request, field) in lists {
            expect_invalid(client.list_customers(request).await, field);
        }
        expect_invalid(client.get_customer(pb::GetCustomerRequest { key: None }).await, "key");
        expect_invalid(client.delete_customer(pb::DeleteCustomerRequest { id: "bad".into(), etag: String::new() }).await, "id");
        expect_invalid(
            client
                .deactivate_customer(pb::DeactivateCustomerRequest { id: existing.id.clone(), validity: pb::Validity::Valid as i32, etag: String::new() })
                .await,
            "validity",
        );
        assert_eq!(server.snapshot().await, before, "refused requests wrote nothing");
        assert_eq!(server.customer_by_id(&existing.id).await, existing);
    }
}

backend_tests! {
    async fn deactivating_reactivating_and_domain_assignment_are_in_each_customers_log(server) {
        let customer = server.customer(pb::Customer { email: "pat@late.example".into(), ..Default::default() }).await;
        server.customers().deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await, ..Default::default() }).await.expect("deactivate");
        server.customers().reactivate_customer(pb::ReactivateCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await }).await.expect("reactivate");
        let org = server.organisation("LATE", &["late.example"]).await;
        let assigned = server.organisations().apply_domain_assignment(pb::ApplyDomainAssignmentRequest { id: org.id.clone() }).await.expect("apply").into_inner();
        assert_eq!(assigned.assigned, 1);
        assert_eq!(kinds_of(&server, &customer.id).await, ["created", "deactivated", "reactivated", "updated"]);
        let log = server.store.changes_of(ResourceType::Customer, Uuid::parse_str(&customer.id).expect("uuid")).await.expect("log");
        let assignment = log.last().expect("the assignment");
        assert_eq!(assignment.changes.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["organisation_id"]);
        assert_eq!(assignment.changes[0].new, serde_json::json!(org.id));
    }
}

/// One process may serve SQLite and PostgreSQL at once (the tests do): the statements that
/// read one row by its key are built once per process for both databases, and each must be
/// the one of its own database — SQLite first here, so that a statement built for the
/// first caller's database would fail PostgreSQL's reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn one_process_reads_customers_and_groups_on_both_databases_each_in_its_own_sql() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(server) = TestServer::start(backend).await else {
            return;
        };
        let other = server.organisation("TWOSQL", &[]).await;
        let made = server
            .customer(pb::Customer {
                email: "both@twosql.example".into(),
                secondary_emails: vec![
                    "b.second@twosql.example".into(),
                    "A.first@twosql.example".into(),
                ],
                last_name: "Both".into(),
                secondary_organisation_ids: vec![other.id.clone()],
                ..Default::default()
            })
            .await;
        let read = server.customer_by_id(&made.id).await;
        assert_eq!(
            read.secondary_emails,
            ["A.first@twosql.example", "b.second@twosql.example"],
            "{backend:?}: addresses in their case-folded order"
        );
        assert_eq!(
            read.secondary_organisation_ids,
            std::slice::from_ref(&other.id),
            "{backend:?}"
        );
        let group = server.group("twosql").await;
        let found = server
            .groups()
            .get_group(pb::GetGroupRequest {
                key: Some(pb::get_group_request::Key::Id(group.id.clone())),
            })
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: {e:?}"))
            .into_inner()
            .group
            .expect("group");
        assert_eq!(found.name, "twosql");
        server.stop().await;
    }
}
