//! ImportCustomers and ImportOrganisations: rows stream in, each lands whole or not at all.

use std::collections::HashSet;

use clientele::{proto::v1 as pb, store::Table};

use crate::support::*;

fn row(email: &str) -> pb::CustomerImportRow {
    pb::CustomerImportRow {
        email: email.to_owned(),
        first_name: "Row".to_owned(),
        last_name: "Person".to_owned(),
        ..Default::default()
    }
}

async fn import_customers(
    server: &TestServer,
    rows: Vec<pb::CustomerImportRow>,
) -> pb::ImportSummary {
    let messages: Vec<pb::ImportCustomersRequest> = rows
        .into_iter()
        .map(|row| pb::ImportCustomersRequest { row: Some(row) })
        .collect();
    server
        .customers()
        .import_customers(tokio_stream::iter(messages))
        .await
        .expect("import customers")
        .into_inner()
        .summary
        .expect("summary")
}

async fn import_organisations(
    server: &TestServer,
    rows: Vec<pb::Organisation>,
) -> pb::ImportSummary {
    let messages: Vec<pb::ImportOrganisationsRequest> = rows
        .into_iter()
        .map(|organisation| pb::ImportOrganisationsRequest {
            organisation: Some(organisation),
        })
        .collect();
    server
        .organisations()
        .import_organisations(tokio_stream::iter(messages))
        .await
        .expect("import organisations")
        .into_inner()
        .summary
        .expect("summary")
}

/// The failed rows of `summary`, each with the fields named.
fn error_rows(summary: &pb::ImportSummary) -> Vec<(i64, Vec<&str>)> {
    summary
        .errors
        .iter()
        .map(|e| {
            (
                e.row_number,
                e.fields.iter().map(|f| f.field.as_str()).collect(),
            )
        })
        .collect()
}

fn organisation_row(code: &str, external_id: &str) -> pb::Organisation {
    pb::Organisation {
        code: code.to_owned(),
        name: format!("{code} imported"),
        country: "DE".to_owned(),
        external_id: external_id.to_owned(),
        ..Default::default()
    }
}

/// The rows of the large import: every hundredth row (the 37th of each hundred) is bad, in
/// one of four ways; the rest spread over three organisations, no organisation, and domain
/// assignment.
fn large_import() -> (Vec<pb::CustomerImportRow>, HashSet<i64>, HashSet<String>) {
    let mut rows = Vec::new();
    let mut bad_rows = HashSet::new();
    let mut good_emails = HashSet::new();
    for i in 0..10_000 {
        let mut row = pb::CustomerImportRow {
            external_id: format!("hr-{i:05}"),
            ..row(&format!("person{i:05}@bulk.example"))
        };
        match i % 4 {
            0 => row.organisation_code = "ORG-A".into(),
            1 => {
                row.organisation_code = "org-b".into();
                row.secondary_organisation_codes = vec!["ORG-C".into()];
            }
            2 => row.email = format!("person{i:05}@assigned.example"),
            _ => row.r#type = "partner".into(),
        }
        if i % 100 == 37 {
            match (i / 100) % 4 {
                0 => row.email = format!("broken-{i}"),
                1 => row.organisation_code = "NO-SUCH-ORG".into(),
                2 => row.last_name = "x".repeat(101),
                _ => row.secondary_organisation_codes = vec!["ORG-C".into(), "MISSING".into()],
            }
            bad_rows.insert(i64::from(i) + 1);
        } else {
            good_emails.insert(row.email.clone());
        }
        rows.push(row);
    }
    (rows, bad_rows, good_emails)
}

backend_tests! {
    async fn importing_ten_thousand_customers_with_one_percent_bad_rows(server) {
        for (key, domains) in [("ORG-A", &[][..]), ("ORG-B", &[][..]), ("ORG-C", &[][..]), ("ASSIGNED", &["assigned.example"][..])] {
            server.organisation(key, domains).await;
        }
        let (rows, bad_rows, good_emails) = large_import();

        let first = import_customers(&server, rows.clone()).await;
        assert_eq!(first.rows, 10_000);
        assert_eq!(first.created, 9_900);
        assert_eq!(first.failed, 100);
        assert_eq!((first.updated, first.unchanged), (0, 0));
        let reported: HashSet<i64> = first.errors.iter().map(|e| e.row_number).collect();
        assert_eq!(reported, bad_rows, "exactly the bad rows are reported");
        for error in &first.errors {
            assert!(!error.fields.is_empty(), "row {} names its field: {error:?}", error.row_number);
        }
        let fields: HashSet<&str> = first.errors.iter().flat_map(|e| e.fields.iter().map(|f| f.field.as_str())).collect();
        assert_eq!(fields, HashSet::from(["email", "organisation_code", "last_name", "secondary_organisation_codes[1]"]));

        assert_eq!(server.count(Table::Customers).await, 9_900);
        let mut listed = HashSet::new();
        let mut request = pb::ListCustomersRequest { page_size: 1000, include_invalid: true, ..Default::default() };
        loop {
            let page = server.customers().list_customers(request.clone()).await.expect("page").into_inner();
            for customer in page.customers {
                assert!(listed.insert(customer.email.clone()), "{} listed twice", customer.email);
            }
            if page.next_page_token.is_empty() { break; }
            request.page_token = page.next_page_token;
        }
        assert_eq!(listed, good_emails, "every good row is present once");
        let assigned = server
            .customers()
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email("person00002@assigned.example".into())) })
            .await
            .expect("assigned customer")
            .into_inner()
            .customer
            .expect("customer");
        assert_ne!(assigned.organisation_id, "", "domain assignment applies to imported customers");

        let events = server.count(Table::ChangeEvents).await;
        let second = import_customers(&server, rows).await;
        assert_eq!((second.created, second.updated, second.unchanged, second.failed), (0, 0, 9_900, 100));
        let reported_again: HashSet<i64> = second.errors.iter().map(|e| e.row_number).collect();
        assert_eq!(reported_again, bad_rows);
        assert_eq!(server.count(Table::Customers).await, 9_900);
        assert_eq!(server.count(Table::ChangeEvents).await, events, "a second run changes nothing");
    }

    async fn an_import_row_updates_by_external_id_else_by_email(server) {
        server.customer(pb::Customer { email: "keyed@example.com".into(), external_id: "crm-1".into(), ..Default::default() }).await;
        server.customer(pb::Customer { email: "plain@example.com".into(), first_name: "Old".into(), ..Default::default() }).await;
        let summary = import_customers(&server, vec![
            pb::CustomerImportRow { external_id: "crm-1".into(), first_name: "Renamed".into(), ..row("new-address@example.com") },
            pb::CustomerImportRow { first_name: "New".into(), ..row("PLAIN@example.com") },
            row("fresh@example.com"),
        ]).await;
        assert_eq!((summary.created, summary.updated, summary.unchanged, summary.failed), (1, 2, 0, 0), "{summary:?}");
        let mut client = server.customers();
        let keyed = client
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email("new-address@example.com".into())) })
            .await
            .expect("found by its new address")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(keyed.external_id, "crm-1");
        assert_eq!(keyed.first_name, "Renamed");
        let plain = client
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email("plain@example.com".into())) })
            .await
            .expect("plain")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(plain.first_name, "New");
        assert_eq!(plain.email, "plain@example.com", "matched by email, the address stays");
        assert_eq!(server.count(Table::Customers).await, 3);
    }

    async fn a_row_whose_external_id_nobody_has_takes_over_the_record_with_its_email_or_code(server) {
        server.organisation("ACME", &[]).await;
        server.customer(pb::Customer { email: "jane@example.com".into(), first_name: "Jane".into(), ..Default::default() }).await;
        let summary = import_organisations(&server, vec![organisation_row("acme", "erp-7")]).await;
        assert_eq!((summary.created, summary.updated, summary.failed), (0, 1, 0), "{summary:?}");
        let summary = import_customers(&server, vec![pb::CustomerImportRow { external_id: "crm-9".into(), ..row("JANE@example.com") }]).await;
        assert_eq!((summary.created, summary.updated, summary.failed), (0, 1, 0), "{summary:?}");
        let jane = server
            .customers()
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email("jane@example.com".into())) })
            .await
            .expect("jane")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(jane.external_id, "crm-9", "the record now carries the source system's key");
        let acme = server
            .organisations()
            .get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Code("acme".into())) })
            .await
            .expect("acme")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(acme.external_id, "erp-7");
        assert_eq!((server.count(Table::Customers).await, server.count(Table::Organisations).await), (1, 1));
    }

    async fn a_bad_row_writes_nothing_of_itself_and_does_not_stop_the_rest(server) {
        server.organisation("HOME", &[]).await;
        let before = server.snapshot().await;
        let summary = import_customers(&server, vec![
            row("one@example.com"),
            pb::CustomerImportRow {
                organisation_code: "HOME".into(),
                secondary_organisation_codes: vec!["NOWHERE".into()],
                ..row("two@example.com")
            },
            pb::CustomerImportRow { validity: 99, ..row("three@example.com") },
            row("four@example.com"),
            row("one@EXAMPLE.com"),
        ]).await;
        assert_eq!((summary.rows, summary.created, summary.unchanged, summary.failed), (5, 2, 1, 2), "{summary:?}");
        let errors: Vec<(i64, Vec<&str>)> = summary
            .errors
            .iter()
            .map(|e| (e.row_number, e.fields.iter().map(|f| f.field.as_str()).collect()))
            .collect();
        assert_eq!(errors, [(2, vec!["secondary_organisation_codes[0]"]), (3, vec!["validity"])]);
        let after = server.snapshot().await;
        assert_eq!(after[4] - before[4], 2, "two customers, nothing of the bad rows");
        let missing = server
            .customers()
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email("two@example.com".into())) })
            .await;
        expect_code(missing, tonic::Code::NotFound);
    }

    async fn rows_with_keys_no_record_can_hold_are_row_errors_naming_the_field(server) {
        let before = server.snapshot().await;
        let summary = import_customers(&server, vec![
            pb::CustomerImportRow { external_id: "crm\0-1".into(), ..row("nul1@example.com") },
            row("nul\0@example.com"),
        ]).await;
        assert_eq!(error_rows(&summary), [(1, vec!["external_id"]), (2, vec!["email"])], "{summary:?}");
        let summary = import_organisations(&server, vec![
            pb::Organisation { name: "Nul".into(), ..organisation_row("NUL\0", "erp-1") },
            organisation_row("NUL", "erp\0-2"),
        ]).await;
        assert_eq!(error_rows(&summary), [(1, vec!["code"]), (2, vec!["external_id"])], "{summary:?}");
        assert_eq!(server.snapshot().await, before, "nothing written");
    }

    async fn importing_organisations_creates_updates_and_deactivates_with_customers(server) {
        let first = import_organisations(&server, vec![
            organisation_row("ALPHA", "erp-1"),
            pb::Organisation { email_domains: vec!["beta.example".into()], domain_assignment: true, ..organisation_row("BETA", "") },
            pb::Organisation { country: "XX".into(), ..organisation_row("BROKEN", "") },
        ]).await;
        assert_eq!((first.created, first.failed), (2, 1), "{first:?}");
        assert_eq!(first.errors[0].row_number, 3);
        assert_eq!(first.errors[0].fields[0].field, "country");
        let staff = server.customer(pb::Customer { email: "staff@beta.example".into(), ..Default::default() }).await;
        assert_ne!(staff.organisation_id, "", "assigned by the imported domain");

        let second = import_organisations(&server, vec![
            pb::Organisation { name: "Alpha renamed".into(), ..organisation_row("alpha", "erp-1") },
            pb::Organisation {
                email_domains: vec!["beta.example".into()],
                domain_assignment: true,
                validity: pb::Validity::Invalid as i32,
                ..organisation_row("BETA", "")
            },
            organisation_row("GAMMA", "erp-1"),
        ]).await;
        assert_eq!((second.created, second.updated, second.unchanged, second.failed), (0, 2, 0, 1), "{second:?}");
        assert_eq!(second.errors[0].row_number, 3);
        assert_eq!(second.errors[0].fields[0].field, "code", "code is immutable");
        assert_eq!(server.customer_by_id(&staff.id).await.validity, pb::Validity::Invalid as i32, "the deactivation cascades");

        let third = import_organisations(&server, vec![
            pb::Organisation { name: "Alpha renamed".into(), ..organisation_row("ALPHA", "erp-1") },
        ]).await;
        assert_eq!((third.updated, third.unchanged), (0, 1));
    }
}
