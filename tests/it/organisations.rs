//! OrganisationService: every field rule, idempotency, etags, validity, lists, the change log.

use std::collections::{HashMap, HashSet};

use clientele::{
    model::ResourceType,
    proto::v1::{self as pb, organisation_service_client::OrganisationServiceClient},
    store::Table,
};
use prost_types::FieldMask;
use tonic::Code;
use uuid::Uuid;

use crate::support::*;

/// A valid organisation with the given business key.
fn organisation(code: &str) -> pb::Organisation {
    pb::Organisation {
        code: code.to_owned(),
        name: format!("{code} Ltd"),
        country: "DE".to_owned(),
        ..Default::default()
    }
}

async fn create(
    client: &mut OrganisationServiceClient<Authed>,
    organisation: pb::Organisation,
) -> pb::Organisation {
    client
        .create_organisation(pb::CreateOrganisationRequest {
            organisation: Some(organisation),
            request_id: String::new(),
        })
        .await
        .expect("create organisation")
        .into_inner()
        .organisation
        .expect("organisation in response")
}

async fn get_by_id(client: &mut OrganisationServiceClient<Authed>, id: &str) -> pb::Organisation {
    client
        .get_organisation(pb::GetOrganisationRequest {
            key: Some(pb::get_organisation_request::Key::Id(id.to_owned())),
        })
        .await
        .expect("get organisation")
        .into_inner()
        .organisation
        .expect("organisation in response")
}

fn update_request(organisation: pb::Organisation, paths: &[&str]) -> pb::UpdateOrganisationRequest {
    pb::UpdateOrganisationRequest {
        organisation: Some(organisation),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    }
}

async fn list_all(
    client: &mut OrganisationServiceClient<Authed>,
    mut request: pb::ListOrganisationsRequest,
) -> Vec<pb::Organisation> {
    let mut all = Vec::new();
    loop {
        let page = client
            .list_organisations(request.clone())
            .await
            .expect("list organisations")
            .into_inner();
        all.extend(page.organisations);
        if page.next_page_token.is_empty() {
            return all;
        }
        request.page_token = page.next_page_token;
    }
}

fn codes(organisations: &[pb::Organisation]) -> Vec<&str> {
    organisations.iter().map(|o| o.code.as_str()).collect()
}

backend_tests! {
    async fn creating_an_organisation_returns_it_normalised_with_server_fields(server) {
        let mut client = server.organisations();
        let created = create(&mut client, pb::Organisation {
            code: "ACME-01".into(),
            name: "  Acme Corporation  ".into(),
            street: "Main Street 1".into(),
            zip: "10115".into(),
            city: "Berlin".into(),
            country: "de".into(),
            url: "https://acme.example".into(),
            comment: "Key account.\nCall before noon.".into(),
            email_domains: vec!["Sales.ACME.example".into(), "acme.example".into()],
            domain_assignment: true,
            external_id: "crm-4711".into(),
            custom_fields: HashMap::from([("tier".to_owned(), "gold".to_owned())]),
            id: "ignored".into(),
            etag: "ignored".into(),
            ..Default::default()
        }).await;

        let id = Uuid::parse_str(&created.id).expect("id is a UUID");
        assert_eq!(id.get_version_num(), 7, "ids are UUIDv7");
        assert_eq!(created.code, "ACME-01");
        assert_eq!(created.name, "Acme Corporation");
        assert_eq!(created.country, "DE");
        assert_eq!(created.email_domains, ["acme.example", "sales.acme.example"]);
        assert_eq!(created.validity, pb::Validity::Valid as i32);
        assert!(created.domain_assignment);
        assert_eq!(created.external_id, "crm-4711");
        assert_eq!(created.custom_fields["tier"], "gold");
        assert!(!created.etag.is_empty() && created.etag != "ignored");
        assert!(created.create_time.is_some());
        assert_eq!(created.create_time, created.update_time);
        assert_eq!(get_by_id(&mut client, &created.id).await, created);
    }

    async fn an_organisation_is_found_by_code_in_any_case(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Globex.Inc")).await;
        for key in ["Globex.Inc", "globex.inc", "GLOBEX.INC"] {
            let found = client
                .get_organisation(pb::GetOrganisationRequest {
                    key: Some(pb::get_organisation_request::Key::Code(key.into())),
                })
                .await
                .expect("get by code")
                .into_inner()
                .organisation
                .expect("organisation");
            assert_eq!(found.id, created.id, "looked up as {key}");
        }
    }

    async fn reading_a_missing_organisation_is_not_found(server) {
        let mut client = server.organisations();
        let missing = client
            .get_organisation(pb::GetOrganisationRequest {
                key: Some(pb::get_organisation_request::Key::Id(Uuid::now_v7().to_string())),
            })
            .await;
        let status = expect_code(missing, Code::NotFound);
        assert_eq!(reason(&status).as_deref(), Some("NOT_FOUND"));
        let missing = client
            .get_organisation(pb::GetOrganisationRequest {
                key: Some(pb::get_organisation_request::Key::Code("nobody".into())),
            })
            .await;
        expect_code(missing, Code::NotFound);
    }

    async fn codes_are_unique_case_insensitively_even_against_invalid_organisations(server) {
        let mut client = server.organisations();
        let first = create(&mut client, organisation("Initech")).await;
        client
            .deactivate_organisation(pb::DeactivateOrganisationRequest {
                id: first.id.clone(),
                etag: server.organisation_etag(&first.id).await,
                ..Default::default()
            })
            .await
            .expect("deactivate");
        let before = server.snapshot().await;
        let duplicate = client
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(organisation("INITECH")),
                request_id: String::new(),
            })
            .await;
        let status = expect_code(duplicate, Code::AlreadyExists);
        assert_eq!(violated_fields(&status), ["organisation.code"]);
        assert_eq!(reason(&status).as_deref(), Some("CODE_TAKEN"));
        assert_eq!(server.snapshot().await, before);
    }

    async fn external_ids_are_unique(server) {
        let mut client = server.organisations();
        create(&mut client, pb::Organisation { external_id: "crm-1".into(), ..organisation("A1") }).await;
        let duplicate = client
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation { external_id: "crm-1".into(), ..organisation("A2") }),
                request_id: String::new(),
            })
            .await;
        let status = expect_code(duplicate, Code::AlreadyExists);
        assert_eq!(violated_fields(&status), ["organisation.external_id"]);
        // Organisations without an external id do not collide with each other.
        create(&mut client, organisation("A3")).await;
        create(&mut client, organisation("A4")).await;
    }

    async fn an_email_domain_belongs_to_one_organisation_only(server) {
        let mut client = server.organisations();
        let first = create(&mut client, pb::Organisation {
            email_domains: vec!["example.com".into()],
            ..organisation("First")
        }).await;
        let before = server.snapshot().await;
        let claimed = client
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    email_domains: vec!["other.example".into(), "EXAMPLE.com".into()],
                    ..organisation("Second")
                }),
                request_id: String::new(),
            })
            .await;
        let status = expect_code(claimed, Code::AlreadyExists);
        assert_eq!(violated_fields(&status), ["organisation.email_domains[1]"]);
        assert_eq!(reason(&status).as_deref(), Some("EMAIL_DOMAIN_TAKEN"));
        assert_eq!(server.snapshot().await, before);

        // Claiming it by update is refused the same way; the owner may keep it.
        let second = create(&mut client, organisation("Second")).await;
        let taken = client
            .update_organisation(update_request(
                pb::Organisation { email_domains: vec!["example.com".into()], ..second },
                &["email_domains"],
            ))
            .await;
        expect_code(taken, Code::AlreadyExists);
        let kept = client
            .update_organisation(update_request(
                pb::Organisation {
                    email_domains: vec!["example.com".into(), "example.org".into()],
                    ..first
                },
                &["email_domains"],
            ))
            .await
            .expect("owner keeps its domain")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(kept.email_domains, ["example.com", "example.org"]);
    }

    async fn free_mail_domains_are_refused(server) {
        let mut client = server.organisations();
        let before = server.snapshot().await;
        for domain in ["gmail.com", "GMX.de", "mail.yahoo.com"] {
            let refused = client
                .create_organisation(pb::CreateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        email_domains: vec![domain.into()],
                        ..organisation("Freemail")
                    }),
                    request_id: String::new(),
                })
                .await;
            expect_invalid(refused, "organisation.email_domains[0]");
        }
        assert_eq!(server.snapshot().await, before);
    }

    async fn a_retry_with_the_same_request_id_returns_the_first_result(server) {
        let events = server.count(Table::ChangeEvents).await;
        let mut client = server.organisations();
        let request = pb::CreateOrganisationRequest {
            organisation: Some(organisation("Umbrella")),
            request_id: "9f0c5c1e-retry".into(),
        };
        let first = client.create_organisation(request.clone()).await.expect("first").into_inner();
        let retry = client.create_organisation(request).await.expect("retry").into_inner();
        assert_eq!(first, retry);
        assert_eq!(server.count(Table::Organisations).await, 1);
        assert_eq!(server.count(Table::ChangeEvents).await, events + 1);
    }

    async fn a_request_id_reused_for_another_request_is_refused(server) {
        let mut client = server.organisations();
        client
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(organisation("Hooli")),
                request_id: "same-id".into(),
            })
            .await
            .expect("first use");
        let before = server.snapshot().await;
        let reused = client
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(organisation("Pied-Piper")),
                request_id: "same-id".into(),
            })
            .await;
        let status = expect_code(reused, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["request_id"]);
        assert_eq!(reason(&status).as_deref(), Some("REQUEST_ID_REUSED"));
        assert_eq!(server.snapshot().await, before);
    }

    async fn a_request_id_belongs_to_its_caller(server) {
        let manager = server.agent("manager", true).await;
        let mut as_manager = server.as_token(&server.token(pb::token_owner::Owner::AgentId(manager.id.clone())).await).organisations;
        let mut as_admin = server.organisations();
        let create = |name: &str| pb::CreateOrganisationRequest {
            organisation: Some(organisation(name)),
            request_id: "shared-id".into(),
        };
        let admins = as_admin.create_organisation(create("Hooli")).await.expect("the admin's").into_inner();
        // Another caller's request with the same id is another request: neither refused nor
        // answered with the first caller's organisation.
        let managers = as_manager.create_organisation(create("Initech")).await.expect("the manager's").into_inner();
        assert_ne!(admins.organisation.as_ref().map(|o| &o.id), managers.organisation.as_ref().map(|o| &o.id));
        assert_eq!(managers.organisation.as_ref().map(|o| o.code.as_str()), Some("Initech"));
        // Each caller's retry still returns its own first result.
        assert_eq!(as_manager.create_organisation(create("Initech")).await.expect("retry").into_inner(), managers);
        assert_eq!(as_admin.create_organisation(create("Hooli")).await.expect("retry").into_inner(), admins);
        assert_eq!(server.count(Table::Organisations).await, 2);
    }

    async fn twenty_concurrent_duplicates_create_one_organisation(server) {
        let events = server.count(Table::ChangeEvents).await;
        let request = pb::CreateOrganisationRequest {
            organisation: Some(organisation("Stampede")),
            request_id: "stampede-1".into(),
        };
        let calls = (0..20)
            .map(|_| {
                let mut client = server.organisations();
                let request = request.clone();
                async move { client.create_organisation(request).await }
            })
            .collect();
        let results = concurrently(calls).await;
        let ids: HashSet<String> = results
            .into_iter()
            .map(|r| r.expect("every duplicate succeeds").into_inner().organisation.expect("org").id)
            .collect();
        assert_eq!(ids.len(), 1, "all duplicates return the same organisation");
        assert_eq!(server.count(Table::Organisations).await, 1);
        assert_eq!(server.count(Table::ChangeEvents).await, events + 1);
        assert_eq!(server.count(Table::IdempotencyKeys).await, 1);
    }

    async fn an_update_changes_exactly_the_fields_in_the_mask(server) {
        let mut client = server.organisations();
        let created = create(&mut client, pb::Organisation {
            street: "Old Street 1".into(),
            ..organisation("Vandelay")
        }).await;
        let updated = client
            .update_organisation(update_request(
                pb::Organisation {
                    name: "Vandelay Industries".into(),
                    street: "not in the mask".into(),
                    city: "New York".into(),
                    ..created.clone()
                },
                &["name", "city"],
            ))
            .await
            .expect("update")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(updated.name, "Vandelay Industries");
        assert_eq!(updated.city, "New York");
        assert_eq!(updated.street, "Old Street 1");
        assert_ne!(updated.etag, created.etag);
        let time = |t: &Option<prost_types::Timestamp>| t.as_ref().map(|t| (t.seconds, t.nanos));
        assert!(time(&updated.update_time) > time(&created.update_time), "update_time moves on");
        assert_eq!(updated.create_time, created.create_time);
        assert_eq!(get_by_id(&mut client, &created.id).await, updated);
    }

    async fn an_update_with_a_stale_etag_is_aborted_and_changes_nothing(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Wonka")).await;
        client
            .update_organisation(update_request(
                pb::Organisation { name: "Wonka Chocolate".into(), ..created.clone() },
                &["name"],
            ))
            .await
            .expect("first update");
        let current = get_by_id(&mut client, &created.id).await;
        let before = server.snapshot().await;
        let stale = client
            .update_organisation(update_request(
                pb::Organisation { name: "Slugworth".into(), ..created.clone() },
                &["name"],
            ))
            .await;
        let status = expect_code(stale, Code::Aborted);
        assert_eq!(reason(&status).as_deref(), Some("STALE_ETAG"));
        assert_eq!(get_by_id(&mut client, &created.id).await, current);
        assert_eq!(server.snapshot().await, before);
    }

    async fn of_two_writers_with_the_same_etag_exactly_one_wins(server) {
        let events = server.count(Table::ChangeEvents).await;
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Contested")).await;
        let writers = ["Writer A", "Writer B"]
            .into_iter()
            .map(|name| {
                let mut client = server.organisations();
                let request = update_request(
                    pb::Organisation { name: name.into(), ..created.clone() },
                    &["name"],
                );
                async move { client.update_organisation(request).await }
            })
            .collect();
        let results = concurrently(writers).await;
        let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        let aborted = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(|s| s.code() == Code::Aborted))
            .count();
        assert_eq!(winners.len(), 1, "one writer wins: {results:?}");
        assert_eq!(aborted, 1, "the other is aborted: {results:?}");
        let winner = winners[0].as_ref().expect("winner").get_ref().organisation.clone().expect("org");
        assert_eq!(get_by_id(&mut client, &created.id).await, winner);
        assert_eq!(server.count(Table::ChangeEvents).await, events + 2, "created + one update");
    }

    async fn code_validity_and_output_fields_cannot_be_updated(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Fixed")).await;
        for path in ["code", "validity", "id", "create_time", "update_time", "etag", "no_such_field"] {
            let refused = client
                .update_organisation(update_request(
                    pb::Organisation { code: "Changed".into(), ..created.clone() },
                    &[path],
                ))
                .await;
            expect_invalid(refused, "update_mask.paths[0]");
        }
        assert_eq!(get_by_id(&mut client, &created.id).await, created);
    }

    async fn an_update_without_etag_is_refused(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("NoEtag")).await;
        let refused = client
            .update_organisation(update_request(
                pb::Organisation { etag: String::new(), name: "x".into(), ..created.clone() },
                &["name"],
            ))
            .await;
        expect_invalid(refused, "organisation.etag");
        assert_eq!(get_by_id(&mut client, &created.id).await, created);
    }

    async fn an_update_that_changes_nothing_writes_nothing(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Steady")).await;
        let before = server.snapshot().await;
        let same = client
            .update_organisation(update_request(created.clone(), &["*"]))
            .await
            .expect("no-op update")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(same, created);
        assert_eq!(server.snapshot().await, before);
    }

    async fn the_wildcard_mask_replaces_every_updatable_field(server) {
        let mut client = server.organisations();
        let created = create(&mut client, pb::Organisation {
            street: "Somewhere 1".into(),
            custom_fields: HashMap::from([("a".to_owned(), "1".to_owned())]),
            ..organisation("Wild")
        }).await;
        let replaced = client
            .update_organisation(update_request(
                pb::Organisation {
                    code: created.code.clone(),
                    name: "Wild Card".into(),
                    country: "AT".into(),
                    id: created.id.clone(),
                    etag: created.etag.clone(),
                    custom_fields: HashMap::from([("b".to_owned(), "2".to_owned())]),
                    ..Default::default()
                },
                &["*"],
            ))
            .await
            .expect("replace")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(replaced.name, "Wild Card");
        assert_eq!(replaced.country, "AT");
        assert_eq!(replaced.street, "");
        assert_eq!(replaced.custom_fields, HashMap::from([("b".to_owned(), "2".to_owned())]));
    }

    async fn deactivating_and_reactivating_changes_validity_and_is_logged(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Sleepy")).await;
        let stale = client
            .deactivate_organisation(pb::DeactivateOrganisationRequest {
                id: created.id.clone(),
                validity: pb::Validity::InvalidTemporarily as i32,
                etag: "v999".into(),
            })
            .await;
        expect_code(stale, Code::Aborted);

        let paused = client
            .deactivate_organisation(pb::DeactivateOrganisationRequest {
                id: created.id.clone(),
                validity: pb::Validity::InvalidTemporarily as i32,
                etag: created.etag.clone(),
            })
            .await
            .expect("deactivate")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(paused.validity, pb::Validity::InvalidTemporarily as i32);

        // Deactivating to the validity it already has changes nothing.
        let again = client
            .deactivate_organisation(pb::DeactivateOrganisationRequest {
                id: created.id.clone(),
                validity: pb::Validity::InvalidTemporarily as i32,
                etag: server.organisation_etag(&created.id).await,
            })
            .await
            .expect("repeat deactivate")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(again.etag, paused.etag);

        // Invalid organisations can still be read and edited.
        let edited = client
            .update_organisation(update_request(
                pb::Organisation { comment: "paused contract".into(), ..paused.clone() },
                &["comment"],
            ))
            .await
            .expect("edit while invalid")
            .into_inner()
            .organisation
            .expect("organisation");

        let back = client
            .reactivate_organisation(pb::ReactivateOrganisationRequest {
                id: created.id.clone(),
                etag: edited.etag.clone(),
            })
            .await
            .expect("reactivate")
            .into_inner()
            .organisation
            .expect("organisation");
        assert_eq!(back.validity, pb::Validity::Valid as i32);

        let id = Uuid::parse_str(&created.id).expect("uuid");
        let kinds: Vec<String> = server
            .store
            .changes_of(ResourceType::Organisation, id)
            .await
            .expect("change log")
            .into_iter()
            .map(|change| change.kind)
            .collect();
        assert_eq!(kinds, ["created", "deactivated", "updated", "reactivated"]);
    }

    async fn every_change_is_logged_with_old_and_new_values(server) {
        let mut client = server.organisations();
        let created = create(&mut client, organisation("Logged")).await;
        client
            .update_organisation(update_request(
                pb::Organisation {
                    name: "Logged & Co".into(),
                    email_domains: vec!["logged.example".into()],
                    ..created.clone()
                },
                &["name", "email_domains"],
            ))
            .await
            .expect("update");
        let id = Uuid::parse_str(&created.id).expect("uuid");
        let log = server
            .store
            .changes_of(ResourceType::Organisation, id)
            .await
            .expect("change log");
        assert_eq!(log.len(), 2);
        assert!(log[0].seq < log[1].seq);
        assert!(log[0].actor.starts_with("admin:"), "{}", log[0].actor);
        let created_fields: Vec<&str> = log[0].changes.iter().map(|c| c.field.as_str()).collect();
        assert!(created_fields.contains(&"code") && created_fields.contains(&"name"));
        let update = &log[1].changes;
        let fields: Vec<&str> = update.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["name", "email_domains"]);
        assert_eq!(update[0].old, serde_json::json!("Logged Ltd"));
        assert_eq!(update[0].new, serde_json::json!("Logged & Co"));
        assert_eq!(update[1].old, serde_json::json!([]));
        assert_eq!(update[1].new, serde_json::json!(["logged.example"]));
    }

    async fn invalid_organisations_are_listed_only_when_asked_for(server) {
        let mut client = server.organisations();
        let valid = create(&mut client, organisation("Alive")).await;
        let gone = create(&mut client, organisation("Gone")).await;
        let paused = create(&mut client, organisation("Paused")).await;
        for (org, validity) in [(&gone, pb::Validity::Invalid), (&paused, pb::Validity::InvalidTemporarily)] {
            client
                .deactivate_organisation(pb::DeactivateOrganisationRequest {
                    id: org.id.clone(),
                    validity: validity as i32,
                    etag: server.organisation_etag(&org.id).await,
                })
                .await
                .expect("deactivate");
        }
        let default = list_all(&mut client, pb::ListOrganisationsRequest::default()).await;
        assert_eq!(codes(&default), [valid.code.as_str()]);
        let all = list_all(&mut client, pb::ListOrganisationsRequest {
            include_invalid: true,
            ..Default::default()
        }).await;
        assert_eq!(codes(&all), ["Alive", "Gone", "Paused"]);
        let only_paused = list_all(&mut client, pb::ListOrganisationsRequest {
            validity: pb::Validity::InvalidTemporarily as i32,
            ..Default::default()
        }).await;
        assert_eq!(codes(&only_paused), ["Paused"]);
    }

    async fn lists_filter_by_text_and_country(server) {
        let mut client = server.organisations();
        create(&mut client, pb::Organisation { city: "Hamburg".into(), ..organisation("Nord-1") }).await;
        create(&mut client, pb::Organisation { name: "Hamburger Hafen AG".into(), country: "DE".into(), ..organisation("Port") }).await;
        create(&mut client, pb::Organisation { city: "Wien".into(), country: "at".into(), ..organisation("Sued-1") }).await;
        create(&mut client, pb::Organisation { name: "100% Cotton".into(), ..organisation("Textile") }).await;
        create(&mut client, pb::Organisation { name: "1000 Cottons".into(), ..organisation("Other") }).await;

        let text = |t: &str| pb::ListOrganisationsRequest { text: t.into(), ..Default::default() };
        let mut found = codes(&list_all(&mut client, text("HAMBURG")).await).iter().map(|s| s.to_string()).collect::<Vec<_>>();
        found.sort();
        assert_eq!(found, ["Nord-1", "Port"], "matches city and name, any case");
        assert_eq!(codes(&list_all(&mut client, text("sued")).await), ["Sued-1"], "matches code");
        assert_eq!(codes(&list_all(&mut client, text("100%")).await), ["Textile"], "% is literal");
        assert_eq!(codes(&list_all(&mut client, text("0_")).await), Vec::<&str>::new(), "_ is literal");
        let austrian = list_all(&mut client, pb::ListOrganisationsRequest { country: "AT".into(), ..Default::default() }).await;
        assert_eq!(codes(&austrian), ["Sued-1"]);
    }

    async fn lists_are_ordered_by_name_or_by_code(server) {
        let mut client = server.organisations();
        for (code, name) in [("c-2", "alpha"), ("A-3", "Charlie"), ("b-1", "Bravo"), ("d-0", "bravo")] {
            create(&mut client, pb::Organisation { name: name.into(), ..organisation(code) }).await;
        }
        let by_name = list_all(&mut client, pb::ListOrganisationsRequest::default()).await;
        let names: Vec<&str> = by_name.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(&names[..1], ["alpha"]);
        assert_eq!(names[3], "Charlie");
        let mut bravos: Vec<&str> = names[1..3].to_vec();
        bravos.sort();
        assert_eq!(bravos, ["Bravo", "bravo"], "names compare case-insensitively");
        let by_key = list_all(&mut client, pb::ListOrganisationsRequest {
            order_by: pb::OrganisationOrder::Code as i32,
            ..Default::default()
        }).await;
        assert_eq!(codes(&by_key), ["A-3", "b-1", "c-2", "d-0"]);
    }

    async fn paging_returns_every_organisation_once_and_ends_with_an_empty_token(server) {
        let mut client = server.organisations();
        for i in 0..23 {
            // Equal names force the id tie-break across page boundaries.
            create(&mut client, pb::Organisation {
                name: format!("Same Name {}", i % 3),
                ..organisation(&format!("P{i:02}"))
            }).await;
        }
        let mut request = pb::ListOrganisationsRequest { page_size: 5, ..Default::default() };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = client.list_organisations(request.clone()).await.expect("page").into_inner();
            pages += 1;
            assert!(page.organisations.len() <= 5);
            seen.extend(page.organisations.into_iter().map(|o| o.code));
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
        }
        assert_eq!(pages, 5);
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(seen.len(), 23);
        assert_eq!(unique.len(), 23);
        let default_page = client
            .list_organisations(pb::ListOrganisationsRequest::default())
            .await
            .expect("default page")
            .into_inner();
        assert_eq!(default_page.organisations.len(), 23, "page_size 0 means 50");
        assert!(default_page.next_page_token.is_empty());
    }

    async fn paging_has_no_gaps_or_duplicates_while_organisations_are_created(server) {
        let mut client = server.organisations();
        let mut existing = HashSet::new();
        for i in 0..60 {
            existing.insert(create(&mut client, organisation(&format!("Early-{i:03}"))).await.id);
        }
        let inserter = {
            let mut client = server.organisations();
            tokio::spawn(async move {
                for i in 0..60 {
                    // Names sort before, between and after the early ones.
                    let prefix = ["Aaa", "Early-05", "Zzz"][i % 3];
                    create(&mut client, organisation(&format!("{prefix}-late-{i:03}"))).await;
                }
            })
        };
        let mut request = pb::ListOrganisationsRequest { page_size: 7, ..Default::default() };
        let mut seen: Vec<String> = Vec::new();
        loop {
            let page = client.list_organisations(request.clone()).await.expect("page").into_inner();
            seen.extend(page.organisations.into_iter().map(|o| o.id));
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
            tokio::task::yield_now().await;
        }
        inserter.await.expect("inserter");
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no organisation is listed twice");
        for id in &existing {
            assert!(unique.contains(id), "organisation {id} that existed throughout is missing");
        }
    }

    async fn a_page_token_only_resumes_its_own_query(server) {
        let mut client = server.organisations();
        for i in 0..3 {
            create(&mut client, organisation(&format!("T{i}"))).await;
        }
        let first = client
            .list_organisations(pb::ListOrganisationsRequest { page_size: 1, ..Default::default() })
            .await
            .expect("first page")
            .into_inner();
        assert!(!first.next_page_token.is_empty());
        let other_query = client
            .list_organisations(pb::ListOrganisationsRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                text: "t".into(),
                ..Default::default()
            })
            .await;
        expect_invalid(other_query, "page_token");
        let other_order = client
            .list_organisations(pb::ListOrganisationsRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                order_by: pb::OrganisationOrder::Code as i32,
                ..Default::default()
            })
            .await;
        expect_invalid(other_order, "page_token");
        // Another page size is the same query.
        client
            .list_organisations(pb::ListOrganisationsRequest {
                page_size: 2,
                page_token: first.next_page_token,
                ..Default::default()
            })
            .await
            .expect("same query, other page size");
    }

    async fn bad_inputs_are_refused_naming_the_field_and_write_nothing(server) {
        let mut client = server.organisations();
        let existing = create(&mut client, organisation("Existing")).await;
        let before = server.snapshot().await;

        let long = |n: usize| "x".repeat(n);
        let with = |change: &dyn Fn(&mut pb::Organisation)| {
            let mut org = organisation("Fresh");
            change(&mut org);
            org
        };
        let creates: Vec<(pb::Organisation, &str)> = vec![
            (with(&|o| o.code = String::new()), "organisation.code"),
            (with(&|o| o.code = "has space".into()), "organisation.code"),
            (with(&|o| o.code = "slash/ed".into()), "organisation.code"),
            (with(&|o| o.code = long(101)), "organisation.code"),
            (with(&|o| o.name = String::new()), "organisation.name"),
            (with(&|o| o.name = "   ".into()), "organisation.name"),
            (with(&|o| o.name = long(201)), "organisation.name"),
            (with(&|o| o.name = "two\nlines".into()), "organisation.name"),
            (with(&|o| o.street = long(201)), "organisation.street"),
            (with(&|o| o.zip = long(21)), "organisation.zip"),
            (with(&|o| o.city = "tab\there".into()), "organisation.city"),
            (with(&|o| o.country = String::new()), "organisation.country"),
            (with(&|o| o.country = "XX".into()), "organisation.country"),
            (with(&|o| o.country = "DEU".into()), "organisation.country"),
            (with(&|o| o.url = "ftp://files.example".into()), "organisation.url"),
            (with(&|o| o.url = "example.com".into()), "organisation.url"),
            (with(&|o| o.url = "https://".into()), "organisation.url"),
            (with(&|o| o.comment = long(10_001)), "organisation.comment"),
            (with(&|o| o.comment = "bell\u{7}".into()), "organisation.comment"),
            (with(&|o| o.email_domains = vec!["gmail.com".into()]), "organisation.email_domains[0]"),
            (with(&|o| o.email_domains = vec!["a.example".into(), "A.example".into()]), "organisation.email_domains[1]"),
            (with(&|o| o.email_domains = vec!["not a domain".into()]), "organisation.email_domains[0]"),
            (with(&|o| o.email_domains = vec!["localhost".into()]), "organisation.email_domains[0]"),
            (with(&|o| o.email_domains = vec!["10.0.0.1".into()]), "organisation.email_domains[0]"),
            (with(&|o| o.email_domains = (0..101).map(|i| format!("d{i}.example")).collect()), "organisation.email_domains"),
            (with(&|o| o.external_id = long(201)), "organisation.external_id"),
            (with(&|o| o.custom_fields = HashMap::from([("1st".to_owned(), "x".to_owned())])), "organisation.custom_fields[\"1st\"]"),
            (with(&|o| o.custom_fields = HashMap::from([("note".to_owned(), long(2001))])), "organisation.custom_fields[\"note\"]"),
            (with(&|o| o.custom_fields = (0..51).map(|i| (format!("k{i}"), "v".to_owned())).collect()), "organisation.custom_fields"),
            (with(&|o| o.validity = 42), "organisation.validity"),
        ];
        for (org, field) in creates {
            let result = client
                .create_organisation(pb::CreateOrganisationRequest { organisation: Some(org), request_id: String::new() })
                .await;
            expect_invalid(result, field);
        }
        for request_id in ["has space", &long(129)] {
            let result = client
                .create_organisation(pb::CreateOrganisationRequest {
                    organisation: Some(organisation("Fresh")),
                    request_id: request_id.to_owned(),
                })
                .await;
            expect_invalid(result, "request_id");
        }
        let missing = client
            .create_organisation(pb::CreateOrganisationRequest::default())
            .await;
        expect_invalid(missing, "organisation.code");

        let get = |key| pb::GetOrganisationRequest { key };
        expect_invalid(client.get_organisation(get(Some(pb::get_organisation_request::Key::Id("nope".into())))).await, "id");
        expect_invalid(client.get_organisation(get(None)).await, "key");

        let update = |paths: &[&str], change: &dyn Fn(&mut pb::Organisation)| {
            let mut org = existing.clone();
            change(&mut org);
            update_request(org, paths)
        };
        let updates: Vec<(pb::UpdateOrganisationRequest, &str)> = vec![
            (update(&[], &|_| {}), "update_mask"),
            (update(&["bogus"], &|_| {}), "update_mask.paths[0]"),
            (update(&["name", "create_time"], &|_| {}), "update_mask.paths[1]"),
            (update(&["name"], &|o| o.id = "not-a-uuid".into()), "organisation.id"),
            (update(&["country"], &|o| o.country = "XX".into()), "organisation.country"),
            (update(&["name"], &|o| o.name = String::new()), "organisation.name"),
            (update(&["email_domains"], &|o| o.email_domains = vec!["outlook.com".into()]), "organisation.email_domains[0]"),
        ];
        for (request, field) in updates {
            expect_invalid(client.update_organisation(request).await, field);
        }

        let list = |change: &dyn Fn(&mut pb::ListOrganisationsRequest)| {
            let mut request = pb::ListOrganisationsRequest::default();
            change(&mut request);
            request
        };
        let lists: Vec<(pb::ListOrganisationsRequest, &str)> = vec![
            (list(&|r| r.page_size = -1), "page_size"),
            (list(&|r| r.country = "XX".into()), "country"),
            (list(&|r| r.validity = 42), "validity"),
            (list(&|r| r.order_by = 9), "order_by"),
            (list(&|r| r.page_token = "garbage".into()), "page_token"),
            (list(&|r| r.text = long(201)), "text"),
        ];
        for (request, field) in lists {
            expect_invalid(client.list_organisations(request).await, field);
        }

        expect_invalid(
            client
                .deactivate_organisation(pb::DeactivateOrganisationRequest {
                    id: existing.id.clone(),
                    validity: pb::Validity::Valid as i32,
                    etag: String::new(),
                })
                .await,
            "validity",
        );
        expect_invalid(
            client
                .deactivate_organisation(pb::DeactivateOrganisationRequest { id: "x".into(), ..Default::default() })
                .await,
            "id",
        );
        expect_invalid(
            client
                .reactivate_organisation(pb::ReactivateOrganisationRequest { id: String::new(), etag: String::new() })
                .await,
            "id",
        );

        assert_eq!(server.snapshot().await, before, "refused requests wrote nothing");
        assert_eq!(get_by_id(&mut client, &existing.id).await, existing);
    }
}
