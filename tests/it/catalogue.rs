//! The field catalogue (OneDesk): customer types and custom-field definitions that creates,
//! updates and imports are checked against once there are any; lists filtered by a custom
//! field. An empty catalogue changes nothing.

use std::collections::HashMap;

use clientele::proto::v1 as pb;
use tonic::Code;

use crate::support::*;

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

async fn customer_type(server: &TestServer, name: &str) -> pb::CustomerType {
    server
        .catalogue()
        .create_customer_type(pb::CreateCustomerTypeRequest {
            customer_type: Some(pb::CustomerType {
                name: name.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create customer type")
        .into_inner()
        .customer_type
        .expect("type")
}

async fn define(
    server: &TestServer,
    record_type: pb::RecordType,
    key: &str,
    value_type: pb::FieldValueType,
    required: bool,
    allowed: &[&str],
) -> Result<pb::FieldDefinition, tonic::Status> {
    Ok(server
        .catalogue()
        .create_field_definition(pb::CreateFieldDefinitionRequest {
            field_definition: Some(pb::FieldDefinition {
                record_type: record_type.into(),
                key: key.into(),
                value_type: value_type.into(),
                required,
                allowed_values: allowed.iter().map(|v| (*v).into()).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .field_definition
        .expect("definition"))
}

fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn create_customer(
    server: &TestServer,
    customer: pb::Customer,
) -> Result<pb::Customer, tonic::Status> {
    Ok(server
        .customers()
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(customer),
            request_id: String::new(),
        })
        .await?
        .into_inner()
        .customer
        .expect("customer"))
}

async fn update_customer(
    server: &TestServer,
    customer: pb::Customer,
    paths: &[&str],
) -> Result<pb::Customer, tonic::Status> {
    let etag = server.customer_etag(&customer.id).await;
    Ok(server
        .customers()
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer { etag, ..customer }),
            update_mask: mask(paths),
        })
        .await?
        .into_inner()
        .customer
        .expect("customer"))
}

backend_tests! {
    async fn once_there_are_customer_types_a_customers_type_is_one_of_them(server) {
        // An empty catalogue: any type, as before.
        let free = create_customer(&server, pb::Customer {
            email: "free@types.example".into(),
            r#type: "whatever".into(),
            ..Default::default()
        })
        .await
        .expect("free-form while the catalogue is empty");
        assert_eq!(free.r#type, "whatever");

        let vip = customer_type(&server, "VIP").await;
        customer_type(&server, "Partner").await;
        let taken = expect_code(
            server
                .catalogue()
                .create_customer_type(pb::CreateCustomerTypeRequest {
                    customer_type: Some(pb::CustomerType { name: "vip".into(), ..Default::default() }),
                    request_id: String::new(),
                })
                .await,
            Code::AlreadyExists,
        );
        assert_eq!(reason(&taken).as_deref(), Some("NAME_TAKEN"));

        // Matched case-insensitively, stored as the catalogue spells it.
        let customer = create_customer(&server, pb::Customer {
            email: "typed@types.example".into(),
            r#type: "vip".into(),
            ..Default::default()
        })
        .await
        .expect("a catalogued type");
        assert_eq!(customer.r#type, "VIP");
        let before = server.snapshot().await;
        let refused = create_customer(&server, pb::Customer {
            email: "gold@types.example".into(),
            r#type: "Gold".into(),
            ..Default::default()
        })
        .await;
        expect_invalid(refused, "customer.type");
        assert_eq!(server.snapshot().await, before, "a refused create writes nothing");
        create_customer(&server, pb::Customer {
            email: "untyped@types.example".into(),
            ..Default::default()
        })
        .await
        .expect("no type at all");
        let partner = update_customer(
            &server,
            pb::Customer { r#type: "PARTNER".into(), ..customer.clone() },
            &["type"],
        )
        .await
        .expect("another type");
        assert_eq!(partner.r#type, "Partner");

        // A type taken out of use stays where it is and is refused as a new value; an update
        // that leaves the type alone is not checked against it.
        server
            .catalogue()
            .update_customer_type(pb::UpdateCustomerTypeRequest {
                customer_type: Some(pb::CustomerType {
                    id: vip.id.clone(),
                    etag: vip.etag.clone(),
                    validity: pb::Validity::Invalid.into(),
                    ..Default::default()
                }),
                update_mask: mask(&["validity"]),
            })
            .await
            .expect("retire VIP");
        let kept = create_customer(&server, pb::Customer {
            email: "kept@types.example".into(),
            r#type: "Partner".into(),
            ..Default::default()
        })
        .await
        .expect("partner");
        expect_invalid(
            update_customer(&server, pb::Customer { r#type: "VIP".into(), ..kept.clone() }, &["type"]).await,
            "customer.type",
        );
        update_customer(&server, pb::Customer { phone: "+49 30 1".into(), ..free.clone() }, &["phone"])
            .await
            .expect("the old free-form type is kept while other fields change");
        let listed = server
            .catalogue()
            .list_customer_types(pb::ListCustomerTypesRequest::default())
            .await
            .expect("list")
            .into_inner()
            .types;
        assert_eq!(listed.into_iter().map(|t| t.name).collect::<Vec<_>>(), ["Partner"]);
    }

    async fn custom_fields_are_checked_against_their_definitions_on_create_update_and_import(server) {
        use pb::{FieldValueType as V, RecordType as R};
        // Free-form while nothing is defined.
        let early = create_customer(&server, pb::Customer {
            email: "early@fields.example".into(),
            custom_fields: fields(&[("anything", "goes")]),
            ..Default::default()
        })
        .await
        .expect("free-form");

        define(&server, R::Customer, "tier", V::Choice, true, &["gold", "silver"]).await.expect("tier");
        define(&server, R::Customer, "since", V::Date, false, &[]).await.expect("since");
        define(&server, R::Customer, "seats", V::Number, false, &[]).await.expect("seats");
        define(&server, R::Customer, "vip", V::Boolean, false, &[]).await.expect("vip");
        define(&server, R::Organisation, "region", V::Text, true, &[]).await.expect("region");
        // The definitions are checked themselves.
        expect_invalid(define(&server, R::Customer, "colour", V::Choice, false, &[]).await, "field_definition.allowed_values");
        expect_invalid(define(&server, R::Customer, "notes", V::Text, false, &["a"]).await, "field_definition.allowed_values");
        expect_invalid(define(&server, R::Customer, "1st", V::Text, false, &[]).await, "field_definition.key");
        expect_invalid(define(&server, R::Unspecified, "x", V::Text, false, &[]).await, "field_definition.record_type");
        expect_invalid(define(&server, R::Customer, "y", V::Unspecified, false, &[]).await, "field_definition.value_type");
        let taken = expect_code(define(&server, R::Customer, "tier", V::Text, false, &[]).await, Code::AlreadyExists);
        assert_eq!(reason(&taken).as_deref(), Some("KEY_TAKEN"));
        define(&server, R::Organisation, "tier", V::Text, false, &[]).await.expect("the same key for organisations");

        let before = server.snapshot().await;
        let status = expect_code(
            create_customer(&server, pb::Customer {
                email: "wrong@fields.example".into(),
                custom_fields: fields(&[
                    ("tier", "bronze"),
                    ("since", "2026-13-01"),
                    ("seats", "many"),
                    ("vip", "yes"),
                    ("colour", "red"),
                ]),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
        );
        let mut named = violated_fields(&status);
        named.sort();
        assert_eq!(
            named,
            [
                "customer.custom_fields[\"colour\"]",
                "customer.custom_fields[\"seats\"]",
                "customer.custom_fields[\"since\"]",
                "customer.custom_fields[\"tier\"]",
                "customer.custom_fields[\"vip\"]",
            ],
            "every wrong field at once"
        );
        expect_invalid(
            create_customer(&server, pb::Customer { email: "none@fields.example".into(), ..Default::default() }).await,
            "customer.custom_fields[\"tier\"]",
        );
        assert_eq!(server.snapshot().await, before, "refused creates write nothing");
        let good = create_customer(&server, pb::Customer {
            email: "good@fields.example".into(),
            custom_fields: fields(&[("tier", "gold"), ("since", "2024-02-29"), ("seats", "-12.5"), ("vip", "true")]),
            ..Default::default()
        })
        .await
        .expect("valid custom fields");

        // An update checks what it changes.
        update_customer(&server, pb::Customer { phone: "+49 1".into(), ..early.clone() }, &["phone"])
            .await
            .expect("custom fields left alone are not checked");
        expect_invalid(
            update_customer(&server, pb::Customer { custom_fields: fields(&[("seats", "3")]), ..good.clone() }, &["custom_fields"]).await,
            "customer.custom_fields[\"tier\"]",
        );

        // Organisations have their own definitions.
        let organisations = server.organisations();
        let organisation = |code: &str, custom: &[(&str, &str)]| pb::CreateOrganisationRequest {
            organisation: Some(pb::Organisation {
                code: code.into(),
                name: code.into(),
                country: "DE".into(),
                custom_fields: fields(custom),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        expect_invalid(
            organisations.clone().create_organisation(organisation("NOREGION", &[])).await,
            "organisation.custom_fields[\"region\"]",
        );
        organisations
            .clone()
            .create_organisation(organisation("EMEA", &[("region", "Europe"), ("tier", "anything")]))
            .await
            .expect("an organisation with its fields");

        // Imports: a row against the catalogue is a row error naming the field.
        let rows = vec![
            pb::ImportCustomersRequest {
                row: Some(pb::CustomerImportRow {
                    email: "imported@fields.example".into(),
                    custom_fields: fields(&[("tier", "silver")]),
                    ..Default::default()
                }),
            },
            pb::ImportCustomersRequest {
                row: Some(pb::CustomerImportRow {
                    email: "badimport@fields.example".into(),
                    custom_fields: fields(&[("tier", "platinum")]),
                    ..Default::default()
                }),
            },
        ];
        let summary = server
            .customers()
            .import_customers(tokio_stream::iter(rows))
            .await
            .expect("import")
            .into_inner()
            .summary
            .expect("summary");
        assert_eq!((summary.created, summary.failed), (1, 1), "{summary:?}");
        assert_eq!(summary.errors[0].row_number, 2);
        assert_eq!(summary.errors[0].fields[0].field, "custom_fields[\"tier\"]");

        // A definition taken out of use checks nothing, and then its key is unknown.
        let definitions = server
            .catalogue()
            .list_field_definitions(pb::ListFieldDefinitionsRequest {
                record_type: R::Customer.into(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .field_definitions;
        assert_eq!(
            definitions.iter().map(|d| d.key.as_str()).collect::<Vec<_>>(),
            ["seats", "since", "tier", "vip"]
        );
        let tier = definitions.into_iter().find(|d| d.key == "tier").expect("tier");
        expect_invalid(
            server
                .catalogue()
                .update_field_definition(pb::UpdateFieldDefinitionRequest {
                    field_definition: Some(tier.clone()),
                    update_mask: mask(&["key"]),
                })
                .await,
            "update_mask.paths[0]",
        );
        server
            .catalogue()
            .update_field_definition(pb::UpdateFieldDefinitionRequest {
                field_definition: Some(pb::FieldDefinition { validity: pb::Validity::Invalid.into(), ..tier }),
                update_mask: mask(&["validity"]),
            })
            .await
            .expect("retire tier");
        create_customer(&server, pb::Customer { email: "notier@fields.example".into(), ..Default::default() })
            .await
            .expect("tier is no longer required");
        expect_invalid(
            create_customer(&server, pb::Customer {
                email: "oldtier@fields.example".into(),
                custom_fields: fields(&[("tier", "gold")]),
                ..Default::default()
            })
            .await,
            "customer.custom_fields[\"tier\"]",
        );
    }

    async fn lists_filter_customers_and_organisations_by_a_custom_field(server) {
        let mut made = Vec::new();
        for (email, tier) in [("a@filter.example", "gold"), ("b@filter.example", "silver"), ("c@filter.example", "gold"), ("d@filter.example", "")] {
            let custom = if tier.is_empty() { HashMap::new() } else { fields(&[("tier", tier)]) };
            made.push(create_customer(&server, pb::Customer { email: email.into(), custom_fields: custom, ..Default::default() }).await.expect("customer"));
        }
        let list = |key: &str, value: &str| pb::ListCustomersRequest {
            custom_field: Some(pb::CustomFieldFilter { key: key.into(), value: value.into() }),
            order_by: pb::CustomerOrder::Email.into(),
            ..Default::default()
        };
        let emails = |customers: Vec<pb::Customer>| customers.into_iter().map(|c| c.email).collect::<Vec<_>>();
        let gold = server.customers().list_customers(list("tier", "gold")).await.expect("list").into_inner().customers;
        assert_eq!(emails(gold), ["a@filter.example", "c@filter.example"]);
        let none = server.customers().list_customers(list("tier", "")).await.expect("list").into_inner().customers;
        assert_eq!(emails(none), ["d@filter.example"]);
        let odd = server.customers().list_customers(list("tier", "gold' OR '1'='1")).await.expect("list").into_inner().customers;
        assert!(odd.is_empty(), "values are matched literally");
        expect_invalid(server.customers().list_customers(list("", "gold")).await, "custom_field.key");
        expect_invalid(server.customers().list_customers(list("ti\"er", "gold")).await, "custom_field.key");
        expect_invalid(server.customers().list_customers(list("tier", "go\0ld")).await, "custom_field.value");
        // Pages keep the filter.
        let first = server.customers().list_customers(pb::ListCustomersRequest { page_size: 1, ..list("tier", "gold") }).await.expect("page").into_inner();
        let second = server.customers().list_customers(pb::ListCustomersRequest { page_size: 1, page_token: first.next_page_token, ..list("tier", "gold") }).await.expect("page").into_inner();
        assert_eq!(emails(second.customers), ["c@filter.example"]);

        for (code, region) in [("NORTH", "north"), ("SOUTH", "south")] {
            server
                .organisations()
                .create_organisation(pb::CreateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        code: code.into(),
                        name: code.into(),
                        country: "DE".into(),
                        custom_fields: fields(&[("region", region)]),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .expect("organisation");
        }
        let south = server
            .organisations()
            .list_organisations(pb::ListOrganisationsRequest {
                custom_field: Some(pb::CustomFieldFilter { key: "region".into(), value: "south".into() }),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner()
            .organisations;
        assert_eq!(south.into_iter().map(|o| o.code).collect::<Vec<_>>(), ["SOUTH"]);
    }
}

backend_tests! {
    // The catalogue is kept by each replica like rights: a change made on one is enforced by
    // the other as soon as its notification arrives (half a second at most without one).
    async fn a_catalogue_change_is_enforced_by_the_other_replica(server) {
        let replica = server.replica().await;
        let there = pb::customer_service_client::CustomerServiceClient::new(
            replica.authed(&server.admin_secret),
        );
        let attempt = |customer_type: &'static str| {
            let mut client = there.clone();
            async move {
                client
                    .create_customer(pb::CreateCustomerRequest {
                        customer: Some(pb::Customer {
                            email: format!("{}@replica.example", uuid::Uuid::now_v7().simple()),
                            r#type: customer_type.into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await
            }
        };
        attempt("Gold").await.expect("free-form: the replica has read an empty catalogue");
        customer_type(&server, "VIP").await;
        desk::eventually("the replica refuses a type outside the catalogue", || async {
            matches!(attempt("Gold").await, Err(status) if status.code() == Code::InvalidArgument)
        })
        .await;
        attempt("vip").await.expect("the catalogued type");
        replica.stop().await;
    }
}
