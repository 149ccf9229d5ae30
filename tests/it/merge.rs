//! MergeCustomers: duplicates become one customer.

use std::collections::HashMap;

use clientele::{model::ResourceType, proto::v1 as pb, store::Table};
use tonic::Code;
use uuid::Uuid;

use crate::support::*;

/// A merge of `source` into `target`, without etags: for requests refused before either is
/// read.
fn merge(source: &str, target: &str) -> pb::MergeCustomersRequest {
    pb::MergeCustomersRequest {
        source_id: source.to_owned(),
        target_id: target.to_owned(),
        ..Default::default()
    }
}

/// A merge of `source` into `target` with the etags of both as they are now.
async fn merge_current(
    server: &TestServer,
    source: &str,
    target: &str,
) -> pb::MergeCustomersRequest {
    pb::MergeCustomersRequest {
        source_etag: server.customer_etag(source).await,
        target_etag: server.customer_etag(target).await,
        ..merge(source, target)
    }
}

backend_tests! {
    async fn merging_moves_what_the_source_owns_and_keeps_its_addresses_reachable(server) {
        let acme = server.organisation("ACME", &[]).await;
        let globex = server.organisation("GLOBEX", &[]).await;
        let initech = server.organisation("INITECH", &[]).await;
        let target = server.customer(pb::Customer {
            email: "jane@acme.example".into(),
            first_name: "Jane".into(),
            organisation_id: acme.id.clone(),
            custom_fields: HashMap::from([("language".to_owned(), "de".to_owned())]),
            ..Default::default()
        }).await;
        let source = server.customer(pb::Customer {
            email: "j.doe@old-mail.example".into(),
            secondary_emails: vec!["jdoe@older.example".into()],
            first_name: "J.".into(),
            last_name: "Doe".into(),
            phone: "+49 30 555".into(),
            login: "jdoe".into(),
            organisation_id: globex.id.clone(),
            secondary_organisation_ids: vec![initech.id.clone()],
            custom_fields: HashMap::from([
                ("language".to_owned(), "en".to_owned()),
                ("shoe_size".to_owned(), "38".to_owned()),
            ]),
            ..Default::default()
        }).await;

        let merged = server
            .customers()
            .merge_customers(merge_current(&server, &source.id, &target.id).await)
            .await
            .expect("merge")
            .into_inner()
            .customer
            .expect("customer");
        assert_eq!(merged.id, target.id);
        assert_eq!(merged.email, "jane@acme.example");
        assert_eq!(merged.first_name, "Jane", "the target keeps its own values");
        assert_eq!(merged.last_name, "Doe", "and takes the source's where it has none");
        assert_eq!(merged.phone, "+49 30 555");
        assert_eq!(merged.login, "jdoe");
        assert_eq!(merged.organisation_id, acme.id);
        let mut secondary = vec![globex.id.clone(), initech.id.clone()];
        secondary.sort();
        assert_eq!(merged.secondary_organisation_ids, secondary);
        assert_eq!(merged.custom_fields["language"], "de");
        assert_eq!(merged.custom_fields["shoe_size"], "38");
        assert_eq!(merged.secondary_emails, ["j.doe@old-mail.example", "jdoe@older.example"]);

        let mut client = server.customers();
        let gone = client
            .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Id(source.id.clone())) })
            .await;
        expect_code(gone, Code::NotFound);
        for address in ["J.Doe@old-mail.example", "jdoe@older.example"] {
            let found = client
                .get_customer(pb::GetCustomerRequest { key: Some(pb::get_customer_request::Key::Email(address.into())) })
                .await
                .expect("found by the source's address")
                .into_inner()
                .customer
                .expect("customer");
            assert_eq!(found.id, target.id);
        }
        assert_eq!(server.count(Table::Customers).await, 1);

        let source_log = server.store.changes_of(ResourceType::Customer, Uuid::parse_str(&source.id).expect("uuid")).await.expect("log");
        assert_eq!(source_log.last().expect("event").kind, "merged_away");
        assert_eq!(source_log.last().expect("event").changes[0].new, serde_json::json!(target.id));
        let target_log = server.store.changes_of(ResourceType::Customer, Uuid::parse_str(&target.id).expect("uuid")).await.expect("log");
        let merge_event = target_log.last().expect("event");
        assert_eq!(merge_event.kind, "merged");
        assert!(merge_event.changes.iter().any(|c| c.field == "merged_from" && c.new == serde_json::json!(source.id)));
    }

    async fn an_invalid_organisation_of_the_source_takes_no_new_member(server) {
        let kept = server.organisation("KEPT", &[]).await;
        let closed = server.organisation("CLOSED", &[]).await;
        let target = server.customer(pb::Customer { email: "stays@kept.example".into(), ..Default::default() }).await;
        let source = server.customer(pb::Customer {
            email: "goes@closed.example".into(),
            organisation_id: closed.id.clone(),
            secondary_organisation_ids: vec![kept.id.clone()],
            ..Default::default()
        }).await;
        server.organisations().deactivate_organisation(pb::DeactivateOrganisationRequest { id: closed.id.clone(), etag: server.organisation_etag(&closed.id).await, ..Default::default() }).await.expect("deactivate");
        let merged = server.customers().merge_customers(merge_current(&server, &source.id, &target.id).await).await.expect("merge").into_inner().customer.expect("customer");
        assert_eq!(merged.organisation_id, kept.id, "the valid organisation becomes the primary");
        assert!(merged.secondary_organisation_ids.is_empty(), "{:?}", merged.secondary_organisation_ids);
    }

    async fn a_merge_that_would_exceed_one_customers_limits_is_refused_and_changes_nothing(server) {
        let addresses = |prefix: &str| (0..12).map(|n| format!("{prefix}{n}@example.com")).collect::<Vec<_>>();
        let target = server.customer(pb::Customer { email: "target@example.com".into(), secondary_emails: addresses("t"), ..Default::default() }).await;
        let source = server.customer(pb::Customer { email: "source@example.com".into(), secondary_emails: addresses("s"), ..Default::default() }).await;
        let before = server.snapshot().await;
        let status = expect_code(server.customers().merge_customers(merge_current(&server, &source.id, &target.id).await).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("MERGE_TOO_LARGE"));
        assert_eq!(server.snapshot().await, before, "nothing changed");
    }

    async fn a_customer_cannot_be_merged_into_itself(server) {
        let customer = server.customer(pb::Customer { email: "self@example.com".into(), ..Default::default() }).await;
        let before = server.snapshot().await;
        let refused = server.customers().merge_customers(merge(&customer.id, &customer.id)).await;
        expect_invalid(refused, "target_id");
        assert_eq!(server.snapshot().await, before);
    }

    async fn a_customer_cannot_be_merged_into_an_invalid_customer(server) {
        let source = server.customer(pb::Customer { email: "dup@example.com".into(), ..Default::default() }).await;
        let target = server.customer(pb::Customer { email: "main@example.com".into(), ..Default::default() }).await;
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: target.id.clone(), etag: server.customer_etag(&target.id).await, ..Default::default() })
            .await
            .expect("deactivate target");
        let before = server.snapshot().await;
        let refused = server.customers().merge_customers(merge_current(&server, &source.id, &target.id).await).await;
        let status = expect_code(refused, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("TARGET_INVALID"));
        assert_eq!(server.snapshot().await, before);
        assert_eq!(server.customer_by_id(&source.id).await, source);
    }

    async fn merging_checks_etags_and_ids(server) {
        let source = server.customer(pb::Customer { email: "s@example.com".into(), ..Default::default() }).await;
        let target = server.customer(pb::Customer { email: "t@example.com".into(), ..Default::default() }).await;
        let mut client = server.customers();
        let stale = client
            .merge_customers(pb::MergeCustomersRequest { source_etag: "v7".into(), ..merge_current(&server, &source.id, &target.id).await })
            .await;
        expect_code(stale, Code::Aborted);
        let missing = client.merge_customers(merge(&Uuid::now_v7().to_string(), &target.id)).await;
        expect_code(missing, Code::NotFound);
        let status = expect_code(client.merge_customers(merge("x", "y")).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["source_id", "target_id"]);
    }
}
