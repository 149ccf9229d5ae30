//! Finding customers and organisations by any fragment of what identifies them: names,
//! addresses, logins, phone numbers, an organisation's name or code; case and accents
//! ignored, the most relevant first, through an index on both databases.

use clientele::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::*;

/// The emails of every customer `text` finds, page by page of `page_size`.
async fn found(clients: &mut Clients, text: &str, page_size: i32) -> Vec<String> {
    let mut emails = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = clients
            .customers
            .list_customers(pb::ListCustomersRequest {
                text: text.into(),
                page_size,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list customers")
            .into_inner();
        emails.extend(page.customers.into_iter().map(|c| c.email));
        if page.next_page_token.is_empty() {
            return emails;
        }
        page_token = page.next_page_token;
    }
}

async fn organisations_found(server: &TestServer, text: &str) -> Vec<String> {
    server
        .organisations()
        .list_organisations(pb::ListOrganisationsRequest {
            text: text.into(),
            ..Default::default()
        })
        .await
        .expect("list organisations")
        .into_inner()
        .organisations
        .into_iter()
        .map(|o| o.code)
        .collect()
}

fn person(email: &str, first: &str, last: &str) -> pb::Customer {
    pb::Customer {
        email: email.into(),
        first_name: first.into(),
        last_name: last.into(),
        ..Default::default()
    }
}

backend_tests! {
    async fn a_customer_is_found_by_any_fragment_of_what_identifies_them(server) {
        let org = server.organisations().create_organisation(pb::CreateOrganisationRequest {
            organisation: Some(pb::Organisation { code: "NORDWIND".into(), name: "Nordwind Logistik".into(), city: "Hamburg".into(), country: "DE".into(), email_domains: vec!["nordwind.example".into()], ..Default::default() }),
            request_id: String::new(),
        }).await.expect("organisation").into_inner().organisation.expect("organisation");
        let partner = server.organisation("PARTNER-7", &[]).await;
        server.customer(pb::Customer {
            login: "jmueller".into(),
            phone: "+49 (30) 1234-567".into(),
            mobile: "0171 555 0199".into(),
            organisation_id: org.id.clone(),
            ..person("j.mueller@mail.example", "Jürgen", "Müller")
        }).await;
        server.customer(pb::Customer { secondary_organisation_ids: vec![partner.id.clone()], ..person("ola@elsewhere.example", "Ola", "Nordmann") }).await;
        server.customer(person("other@elsewhere.example", "Anna", "Schmidt")).await;
        let mut admin = server.as_token(&server.admin_secret);
        let jurgen = ["j.mueller@mail.example".to_owned()];
        // Names, case and accents ignored; the address; the login.
        for text in ["müller", "MULLER", "Muller", "jürg", "JURGEN MUL", "mueller@mail", "jmuel"] {
            assert_eq!(found(&mut admin, text, 50).await, jurgen, "{text:?}");
        }
        // "ü" is "u", not "ue": "mueller" finds him by his address only, "Jürgen Mueller" not.
        assert_eq!(found(&mut admin, "mueller", 50).await, jurgen);
        assert!(found(&mut admin, "Jürgen Mueller", 50).await.is_empty());
        // Phone and mobile by their digits, however they are written.
        for text in ["30 1234", "+49 30 12345", "0049-30-1234567", "(30) 1234 567", "555 01", "0171/555"] {
            assert_eq!(found(&mut admin, text, 50).await, jurgen, "{text:?}");
        }
        // Through the organisation: its name or code, primary or secondary.
        assert_eq!(found(&mut admin, "nordwind logis", 50).await, jurgen);
        assert_eq!(found(&mut admin, "partner-7", 50).await, ["ola@elsewhere.example"]);
        // "nord" finds both: Ola by her own name first, Jürgen through his organisation's.
        assert_eq!(found(&mut admin, "nord", 50).await, ["ola@elsewhere.example", "j.mueller@mail.example"]);
        // Organisations by name, code, city and domain.
        for text in ["wind log", "nordwind", "hamburg", "nordwind.example"] {
            assert_eq!(organisations_found(&server, text).await, ["NORDWIND"], "{text:?}");
        }
        // Shorter than a trigram: the start of the name or the code.
        assert_eq!(organisations_found(&server, "No").await, ["NORDWIND"]);
        assert_eq!(organisations_found(&server, "pa").await, ["PARTNER-7"]);
        assert!(organisations_found(&server, "am").await.is_empty(), "not inside the city");
        // A change is found at once, the old value no more; a deleted customer not at all.
        let anna = found(&mut admin, "schmidt", 50).await;
        assert_eq!(anna, ["other@elsewhere.example"]);
        let current = server.customers().list_customers(pb::ListCustomersRequest { text: "schmidt".into(), ..Default::default() }).await.expect("list").into_inner().customers.remove(0);
        let renamed = server.customers().update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { last_name: "Schneider".into(), ..current }),
            update_mask: Some(FieldMask { paths: vec!["last_name".into()] }),
        }).await.expect("rename").into_inner().customer.expect("customer");
        assert!(found(&mut admin, "schmidt", 50).await.is_empty());
        assert_eq!(found(&mut admin, "schneid", 50).await, ["other@elsewhere.example"]);
        server.customers().delete_customer(pb::DeleteCustomerRequest { id: renamed.id.clone(), etag: renamed.etag.clone() }).await.expect("delete");
        assert!(found(&mut admin, "schneid", 50).await.is_empty());
        // A customer finds only itself, whatever it searches for.
        let jane = server.customer(person("jane@nordwind.example", "Jane", "Roe")).await;
        let secret = server.token(pb::token_owner::Owner::CustomerId(jane.id.clone())).await;
        let mut as_jane = server.as_token(&secret);
        assert!(found(&mut as_jane, "müller", 50).await.is_empty());
        assert_eq!(found(&mut as_jane, "roe", 50).await, ["jane@nordwind.example"]);
    }

    async fn the_most_relevant_come_first_then_by_name_page_after_page(server) {
        for (email, first, last) in [
            ("c@x.example", "Carl", "Heidelberg"),
            ("b@x.example", "Bo", "Bergmann"),
            ("a2@x.example", "Zoe", "Berg"),
            ("a1@x.example", "Al", "Berg"),
            ("d@x.example", "Dan", "Ostberger"),
        ] {
            server.customer(person(email, first, last)).await;
        }
        let mut admin = server.as_token(&server.admin_secret);
        // A whole name first (by name), then names that start with it, then the rest.
        let expected = ["a1@x.example", "a2@x.example", "b@x.example", "c@x.example", "d@x.example"];
        assert_eq!(found(&mut admin, "berg", 50).await, expected);
        assert_eq!(found(&mut admin, "berg", 1).await, expected, "one page at a time, the same order");
        assert_eq!(found(&mut admin, "berg", 2).await, expected);
        // In another order the fragment only filters.
        let by_email: Vec<String> = admin.customers.list_customers(pb::ListCustomersRequest { text: "berg".into(), order_by: pb::CustomerOrder::Email as i32, ..Default::default() })
            .await.expect("list").into_inner().customers.into_iter().map(|c| c.email).collect();
        assert_eq!(by_email, ["a1@x.example", "a2@x.example", "b@x.example", "c@x.example", "d@x.example"]);
        // Shorter than a trigram: the start of the last name or of the address, by name.
        assert_eq!(found(&mut admin, "Be", 50).await, ["a1@x.example", "a2@x.example", "b@x.example"]);
        assert_eq!(found(&mut admin, "c", 50).await, ["c@x.example"]);
    }

    async fn a_fragment_is_taken_literally_and_bad_ones_are_refused(server) {
        server.customer(pb::Customer { login: "a_b%c".into(), ..person("one@x.example", "One", "Literal") }).await;
        server.customer(pb::Customer { login: "axbyc".into(), ..person("two@x.example", "Two", "Wild") }).await;
        let mut admin = server.as_token(&server.admin_secret);
        assert_eq!(found(&mut admin, "a_b%", 50).await, ["one@x.example"], "% and _ are characters");
        assert!(found(&mut admin, "\"x\"", 50).await.is_empty(), "quotes are characters");
        assert!(found(&mut admin, "%", 50).await.is_empty());
        assert_eq!(found(&mut admin, "   ", 50).await.len(), 2, "blank is no filter");
        let before = server.snapshot().await;
        for text in ["a\0b".to_owned(), "x".repeat(201), "x".repeat(10_000)] {
            let status = expect_code(admin.customers.list_customers(pb::ListCustomersRequest { text: text.clone(), ..Default::default() }).await, Code::InvalidArgument);
            assert_eq!(violated_fields(&status), ["text"]);
            expect_invalid(admin.organisations.list_organisations(pb::ListOrganisationsRequest { text, ..Default::default() }).await, "text");
        }
        assert_eq!(server.snapshot().await, before);
    }
}
