//! The overviews' links (OTRS's customer info links): URL templates of the server's, filled
//! from the organisation's and the customer's fields.

use clientele::{domain::links::LinkTemplate, proto::v1 as pb};

use crate::support::*;

fn links(links: &[pb::Link]) -> Vec<(&str, &str)> {
    links
        .iter()
        .map(|l| (l.name.as_str(), l.url.as_str()))
        .collect()
}

async fn organisation_links(server: &TestServer, code: &str) -> Vec<pb::Link> {
    server
        .tickets()
        .get_organisation_overview(pb::GetOrganisationOverviewRequest {
            key: Some(pb::get_organisation_overview_request::Key::Code(
                code.into(),
            )),
            limit: 0,
            reminder_window: None,
        })
        .await
        .expect("overview")
        .into_inner()
        .links
}

backend_tests! {
    async fn the_default_links_map_the_address_and_open_the_web_site(server) {
        server
            .organisations()
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    code: "stuttgart".into(),
                    name: "Stuttgart GmbH".into(),
                    street: "Königstraße 1".into(),
                    zip: "70173".into(),
                    city: "Stuttgart".into(),
                    country: "DE".into(),
                    url: "https://stuttgart.example/about?x=1".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("organisation");
        assert_eq!(
            links(&organisation_links(&server, "stuttgart").await),
            [
                ("map", "https://www.openstreetmap.org/search?query=K%C3%B6nigstra%C3%9Fe+1+70173+Stuttgart+DE"),
                ("web", "https://stuttgart.example/about?x=1"),
            ]
        );
        // Without a web site there is no web link.
        server.organisation("plain", &[]).await;
        let names: Vec<String> = organisation_links(&server, "plain").await.into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["map"]);
    }
}

/// Configured templates replace the defaults, and a customer's view fills its own fields and
/// its primary organisation's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_templates_fill_customer_and_organisation_fields() {
    assert!(
        LinkTemplate::parse("phone=tel:{phone}").is_err(),
        "only http(s) links"
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(server) = TestServer::start_with(backend, |config| {
            config.link_templates = vec![
                LinkTemplate::parse("crm=https://crm.example/people?email={email}&org={code}")
                    .expect("template"),
                LinkTemplate::parse("call=https://call.example/{phone}").expect("template"),
            ];
        })
        .await
        else {
            continue;
        };
        let org = server.organisation("acme", &[]).await;
        let customer = server
            .customer(pb::Customer {
                email: "ann+vip@acme.example".into(),
                organisation_id: org.id.clone(),
                ..Default::default()
            })
            .await;
        let overview = server
            .tickets()
            .get_customer_overview(pb::GetCustomerOverviewRequest {
                key: Some(pb::get_customer_overview_request::Key::Id(
                    customer.id.clone(),
                )),
                limit: 0,
                reminder_window: None,
            })
            .await
            .expect("overview")
            .into_inner();
        assert_eq!(
            links(&overview.links),
            [(
                "crm",
                "https://crm.example/people?email=ann%2Bvip%40acme.example&org=acme"
            )],
            "no call link without a phone number"
        );
        server.stop().await;
    }
}
