//! WebhookService and the delivery loop, against a real HTTP receiver in the test that is
//! slow, fails, goes away and comes back: every matching change POSTed, signed, at least
//! once, in order per resource, retried with backoff, dead-lettered after its attempts,
//! retried on request; the delivery state lives in the database, so another replica goes on
//! where one stopped, and two replicas never make one delivery twice at once.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use clientele::{proto::v1 as pb, server::webhooks::signature};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tonic::Code;

use crate::support::{desk::eventually, *};

/// What the receiver does with the next requests.
#[derive(Default)]
struct Behaviour {
    /// Answer 503 to this many more requests.
    fail: usize,
    /// Answer this many more requests only after `delay`.
    slow: usize,
    delay: Duration,
    /// Answer 500 to every request.
    broken: bool,
}

/// A delivery the receiver accepted (answered 200).
#[derive(Clone, Debug)]
struct Received {
    delivery: String,
    signature: String,
    body: serde_json::Value,
    raw: String,
}

#[derive(Clone, Default)]
struct Receiver {
    behaviour: Arc<Mutex<Behaviour>>,
    accepted: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Serves on `addr` (a free port when `None`) until the task is aborted.
    async fn serve(&self, addr: Option<SocketAddr>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener =
            TcpListener::bind(addr.unwrap_or_else(|| "127.0.0.1:0".parse().expect("addr")))
                .await
                .expect("bind the receiver");
        let addr = listener.local_addr().expect("addr");
        let receiver = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let receiver = receiver.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                        let receiver = receiver.clone();
                        async move { Ok::<_, Infallible>(receiver.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (addr, task)
    }

    async fn answer(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        *self.requests.lock().expect("lock") += 1;
        let header = |name: &str| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let delivery = header("clientele-delivery");
        let signature = header("clientele-signature");
        let raw = String::from_utf8(
            request
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes()
                .to_vec(),
        )
        .expect("utf-8");
        let (status, delay) = {
            let mut behaviour = self.behaviour.lock().expect("lock");
            if behaviour.broken {
                (500, Duration::ZERO)
            } else if behaviour.fail > 0 {
                behaviour.fail -= 1;
                (503, Duration::ZERO)
            } else if behaviour.slow > 0 {
                behaviour.slow -= 1;
                (200, behaviour.delay)
            } else {
                (200, Duration::ZERO)
            }
        };
        tokio::time::sleep(delay).await;
        if status == 200 {
            self.accepted.lock().expect("lock").push(Received {
                delivery,
                signature,
                body: serde_json::from_str(&raw).expect("JSON body"),
                raw,
            });
        }
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"ok")))
            .expect("response")
    }

    fn accepted(&self) -> Vec<Received> {
        self.accepted.lock().expect("lock").clone()
    }
}

/// Fast retries, and a short timeout for a slow receiver.
fn quick(config: &mut clientele::Config) {
    config.webhooks.retry_base = Duration::from_millis(50);
    config.webhooks.retry_max = Duration::from_millis(200);
    config.webhooks.timeout = Duration::from_millis(500);
}

async fn subscribe(
    server: &TestServer,
    url: String,
    types: &[pb::ResourceType],
    max_attempts: i32,
) -> (pb::Webhook, String) {
    let created = server
        .webhooks()
        .create_webhook(pb::CreateWebhookRequest {
            webhook: Some(pb::Webhook {
                url,
                description: "CRM".into(),
                resource_types: types.iter().map(|t| (*t).into()).collect(),
                active: true,
                max_attempts,
                ..Default::default()
            }),
        })
        .await
        .expect("create webhook")
        .into_inner();
    assert!(
        created.secret.len() >= 32,
        "a secret is made and shown once"
    );
    (created.webhook.expect("webhook"), created.secret)
}

async fn deliveries(
    server: &TestServer,
    webhook: &pb::Webhook,
    status: pb::DeliveryStatus,
) -> Vec<pb::WebhookDelivery> {
    server
        .webhooks()
        .list_webhook_deliveries(pb::ListWebhookDeliveriesRequest {
            webhook_id: webhook.id.clone(),
            status: status.into(),
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries
}

async fn start_quick(backend: Backend) -> Option<TestServer> {
    TestServer::start_with(backend, quick).await
}

macro_rules! webhook_tests {
    ($( async fn $name:ident($server:ident) $body:block )*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(clientele_postgres_tests), ignore = "CLIENTELE_TEST_POSTGRES_URL is not set")]
            async fn postgres() {
                run(Backend::Postgres).await;
            }

            async fn run(backend: Backend) {
                let Some($server) = start_quick(backend).await else { return };
                $body
                $server.stop().await;
            }
        }
    )*};
}

webhook_tests! {
    async fn changes_are_delivered_signed_in_order_per_resource_through_failures(server) {
        let receiver = Receiver::default();
        let (addr, _task) = receiver.serve(None).await;
        server.organisation("BEFORE", &[]).await;
        let (webhook, secret) = subscribe(&server, format!("http://{addr}/hooks"), &[pb::ResourceType::Customer], 0).await;
        assert_eq!(webhook.max_attempts, 10);
        // Three failures, then one answer slower than the server waits, then answers.
        *receiver.behaviour.lock().expect("lock") = Behaviour { fail: 3, slow: 1, delay: Duration::from_secs(2), broken: false };
        let ada = server.customer(pb::Customer { email: "ada@hooks.example".into(), first_name: "v0".into(), ..Default::default() }).await;
        for n in 1..=4 {
            crate::changes::rename(&mut server.customers(), &ada.id, &format!("v{n}")).await;
        }
        let bob = server.customer(pb::Customer { email: "bob@hooks.example".into(), ..Default::default() }).await;
        server.organisation("AFTER", &[]).await;
        eventually("six customer changes delivered", || {
            let server = &server;
            let webhook = &webhook;
            async move { deliveries(server, webhook, pb::DeliveryStatus::Delivered).await.len() == 6 }
        }).await;
        let accepted = receiver.accepted();
        // Signed with the secret over "<time>.<body>".
        for received in &accepted {
            let time: i64 = received.signature.strip_prefix("t=").and_then(|s| s.split(',').next()).and_then(|t| t.parse().ok()).expect("t=");
            assert_eq!(received.signature, signature(&secret, time, &received.raw));
            assert_eq!(received.body["delivery_id"], received.delivery);
            assert_eq!(received.body["webhook_id"], webhook.id);
            assert_eq!(received.body["event"]["resource_type"], "customer", "only customers");
        }
        // In order per resource: each of Ada's changes first arrives after the one before it,
        // and each rename's old name is the name before.
        let mut first_seen: Vec<(String, i64)> = Vec::new();
        for received in &accepted {
            let seq = received.body["event"]["seq"].as_i64().expect("seq");
            let id = received.body["event"]["resource_id"].as_str().expect("id").to_owned();
            if !first_seen.iter().any(|(i, s)| *i == id && *s == seq) {
                first_seen.push((id, seq));
            }
        }
        let ada_seqs: Vec<i64> = first_seen.iter().filter(|(id, _)| *id == ada.id).map(|(_, s)| *s).collect();
        assert_eq!(ada_seqs.len(), 5);
        assert!(ada_seqs.windows(2).all(|w| w[0] < w[1]), "{ada_seqs:?}");
        assert!(first_seen.iter().any(|(id, _)| *id == bob.id));
        let names: Vec<(String, String)> = accepted
            .iter()
            .filter(|r| r.body["event"]["kind"] == "updated")
            .map(|r| {
                let change = &r.body["event"]["changes"][0];
                (change["old"].as_str().unwrap_or_default().to_owned(), change["new"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let mut expected: Vec<(String, String)> = (1..=4).map(|n| (format!("v{}", n - 1), format!("v{n}"))).collect();
        let mut deduplicated = names.clone();
        deduplicated.dedup();
        expected.dedup();
        assert_eq!(deduplicated, expected);
        // The log says what it took: the first deliveries needed several attempts.
        let log = deliveries(&server, &webhook, pb::DeliveryStatus::Unspecified).await;
        assert_eq!(log.len(), 6);
        assert!(log.iter().all(|d| d.status() == pb::DeliveryStatus::Delivered && d.deliver_time.is_some()));
        assert!(log.iter().map(|d| d.attempts).sum::<i32>() >= 6 + 3, "{log:?}");
        assert!(log.windows(2).all(|w| w[0].cursor != w[1].cursor));
    }

    async fn an_erasure_reaches_webhooks_and_deliveries_made_after_it_carry_no_erased_value(server) {
        let receiver = Receiver::default();
        let (addr, _task) = receiver.serve(None).await;
        let (webhook, _) = subscribe(&server, format!("http://{addr}/hooks"), &[pb::ResourceType::Customer], 0).await;
        // The receiver is down while the person is created, edited and erased.
        receiver.behaviour.lock().expect("lock").broken = true;
        let person = server.customer(pb::Customer { email: "wren.canary@hooks.example".into(), first_name: "Wrenfield".into(), ..Default::default() }).await;
        crate::changes::rename(&mut server.customers(), &person.id, "Wrenfield-Canary").await;
        server
            .privacy()
            .erase_customer(pb::EraseCustomerRequest { id: person.id.clone(), ..Default::default() })
            .await
            .expect("erase");
        receiver.behaviour.lock().expect("lock").broken = false;
        eventually("the three changes delivered", || {
            let server = &server;
            let webhook = &webhook;
            async move { deliveries(server, webhook, pb::DeliveryStatus::Delivered).await.len() == 3 }
        }).await;
        let accepted = receiver.accepted();
        let kinds: Vec<String> = accepted.iter().map(|r| r.body["event"]["kind"].as_str().unwrap_or_default().to_owned()).collect();
        assert_eq!(kinds, ["created", "updated", "erased"]);
        for received in &accepted {
            assert_eq!(received.body["event"]["resource_id"], person.id.as_str());
            let raw = received.raw.to_lowercase();
            assert!(!raw.contains("wren"), "an erased value was delivered: {}", received.raw);
        }
        assert_eq!(accepted[0].body["event"]["values_erased"], true, "{}", accepted[0].raw);
    }

    async fn a_delivery_that_keeps_failing_is_dead_lettered_and_can_be_retried(server) {
        let receiver = Receiver::default();
        receiver.behaviour.lock().expect("lock").broken = true;
        let (addr, _task) = receiver.serve(None).await;
        // A URL with a query and no path works as written.
        let (webhook, _) = subscribe(&server, format!("http://{addr}?source=clientele"), &[pb::ResourceType::Organisation], 2).await;
        let organisation = server.organisation("DEAD", &[]).await;
        eventually("the delivery dead-lettered", || {
            let server = &server;
            let webhook = &webhook;
            async move { deliveries(server, webhook, pb::DeliveryStatus::Dead).await.len() == 1 }
        }).await;
        let dead = deliveries(&server, &webhook, pb::DeliveryStatus::Dead).await.remove(0);
        assert_eq!((dead.attempts, dead.last_http_status), (2, 500));
        assert_eq!(dead.resource_id, organisation.id);
        assert!(!dead.last_error.is_empty());
        assert_eq!(*receiver.requests.lock().expect("lock"), 2, "two attempts, no more");
        // A later change of the same resource is not held back by a dead one.
        receiver.behaviour.lock().expect("lock").broken = false;
        server.organisations().update_organisation(pb::UpdateOrganisationRequest {
            organisation: Some(pb::Organisation { name: "Dead Ltd (renamed)".into(), ..organisation.clone() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
        }).await.expect("rename");
        eventually("the later change delivered", || {
            let server = &server;
            let webhook = &webhook;
            async move { deliveries(server, webhook, pb::DeliveryStatus::Delivered).await.len() == 1 }
        }).await;
        // Retried on request, the dead one is delivered.
        let mut client = server.webhooks();
        let retried = client.retry_webhook_delivery(pb::RetryWebhookDeliveryRequest { id: dead.id.clone() }).await.expect("retry").into_inner().delivery.expect("delivery");
        assert_eq!((retried.status(), retried.attempts), (pb::DeliveryStatus::Pending, 0));
        eventually("the retried delivery made", || {
            let server = &server;
            let webhook = &webhook;
            async move { deliveries(server, webhook, pb::DeliveryStatus::Delivered).await.len() == 2 }
        }).await;
        let status = expect_code(client.retry_webhook_delivery(pb::RetryWebhookDeliveryRequest { id: dead.id.clone() }).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("DELIVERY_NOT_DEAD"));
        expect_code(client.retry_webhook_delivery(pb::RetryWebhookDeliveryRequest { id: uuid::Uuid::now_v7().to_string() }).await, Code::NotFound);
    }

    async fn an_activity_run_on_a_customer_reaches_its_webhook_and_the_history(server) {
        let receiver = Receiver::default();
        let (addr, _task) = receiver.serve(None).await;
        // The webhook follows organisations only: an activity's runs reach it all the same.
        let (webhook, _) = subscribe(&server, format!("http://{addr}/"), &[pb::ResourceType::Organisation], 0).await;
        let mut client = server.webhooks();
        for (activity, field) in [
            (pb::Activity { name: "x".into(), applies_to: pb::ActivityTarget::Customer.into(), ..Default::default() }, "activity.webhook_id"),
            (pb::Activity { name: "x".into(), webhook_id: webhook.id.clone(), ..Default::default() }, "activity.applies_to"),
            (pb::Activity { webhook_id: webhook.id.clone(), applies_to: 1, ..Default::default() }, "activity.name"),
            (pb::Activity { name: "x".into(), webhook_id: uuid::Uuid::now_v7().to_string(), applies_to: 1, ..Default::default() }, "activity.webhook_id"),
        ] {
            expect_invalid(client.create_activity(pb::CreateActivityRequest { activity: Some(activity) }).await, field);
        }
        let contract = pb::Activity {
            name: "Send contract".into(),
            webhook_id: webhook.id.clone(),
            applies_to: pb::ActivityTarget::Customer.into(),
            customer_types: vec!["vip".into()],
            ..Default::default()
        };
        let activity = client.create_activity(pb::CreateActivityRequest { activity: Some(contract.clone()) }).await.expect("create activity").into_inner().activity.expect("activity");
        expect_code(client.create_activity(pb::CreateActivityRequest { activity: Some(pb::Activity { name: "SEND CONTRACT".into(), ..contract }) }).await, Code::AlreadyExists);
        let vip = server.customer(pb::Customer { email: "vip@acts.example".into(), r#type: "vip".into(), ..Default::default() }).await;
        let plain = server.customer(pb::Customer { email: "plain@acts.example".into(), ..Default::default() }).await;
        let desk = server.desk("acts").await;
        let mut as_agent = clientele::proto::v1::webhook_service_client::WebhookServiceClient::new(server.authed(Some(&server.token(pb::token_owner::Owner::AgentId(desk.agent.id.clone())).await)));
        let offered = |customer: &str| {
            let mut client = as_agent.clone();
            let customer = customer.to_owned();
            async move { client.list_activities(pb::ListActivitiesRequest { customer_id: customer }).await.expect("activities").into_inner().activities.into_iter().map(|a| a.name).collect::<Vec<_>>() }
        };
        assert_eq!(offered(&vip.id).await, ["Send contract"]);
        assert!(offered(&plain.id).await.is_empty());
        let status = expect_code(as_agent.run_activity(pb::RunActivityRequest { activity_id: activity.id.clone(), target_id: plain.id.clone() }).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("ACTIVITY_NOT_OFFERED"));
        let as_customer = clientele::proto::v1::webhook_service_client::WebhookServiceClient::new(server.authed(Some(&server.token(pb::token_owner::Owner::CustomerId(desk.customer.id.clone())).await)));
        expect_code(as_customer.clone().run_activity(pb::RunActivityRequest { activity_id: activity.id.clone(), target_id: vip.id.clone() }).await, Code::PermissionDenied);
        let run = as_agent.run_activity(pb::RunActivityRequest { activity_id: activity.id.clone(), target_id: vip.id.clone() }).await.expect("run").into_inner().run.expect("run");
        assert_eq!((run.kind(), run.resource_type(), run.resource_id.as_str()), (pb::ChangeKind::ActivityRun, pb::ResourceType::Customer, vip.id.as_str()));
        assert_eq!(run.actor, format!("agent:{}", desk.agent.id));
        // In the customer's history…
        let history = server.changes().get_history(pb::GetHistoryRequest {
            resource_type: pb::ResourceType::Customer.into(),
            resource_id: vip.id.clone(),
            ..Default::default()
        }).await.expect("history").into_inner().events;
        assert_eq!(history.last().map(|e| (e.kind(), e.seq)), Some((pb::ChangeKind::ActivityRun, run.seq)));
        // …and at the webhook, with the record and the caller.
        eventually("the run delivered", || {
            let receiver = receiver.clone();
            async move { receiver.accepted().iter().any(|r| r.body["event"]["kind"] == "activity_run") }
        }).await;
        let delivered = receiver.accepted().into_iter().find(|r| r.body["event"]["kind"] == "activity_run").expect("run");
        let event = &delivered.body["event"];
        assert_eq!(event["resource_id"], vip.id);
        assert_eq!(event["actor"], run.actor);
        let field = |name: &str| event["changes"].as_array().expect("changes").iter().find(|c| c["field"] == name).map(|c| c["new"].clone()).expect("field");
        assert_eq!(field("activity"), "Send contract");
        assert_eq!(field("record")["email"], "vip@acts.example");
        // The webhook cannot go while the activity delivers to it.
        let webhook_now = client.get_webhook(pb::GetWebhookRequest { id: webhook.id.clone() }).await.expect("webhook").into_inner().webhook.expect("webhook");
        let status = expect_code(client.delete_webhook(pb::DeleteWebhookRequest { id: webhook.id.clone(), etag: webhook_now.etag.clone() }).await, Code::FailedPrecondition);
        assert_eq!(reason(&status).as_deref(), Some("WEBHOOK_IN_USE"));
        // Deleted with its etag; its runs stay in the history.
        client.delete_activity(pb::DeleteActivityRequest { id: activity.id.clone(), etag: activity.etag.clone() }).await.expect("delete");
        expect_code(as_agent.run_activity(pb::RunActivityRequest { activity_id: activity.id.clone(), target_id: vip.id.clone() }).await, Code::NotFound);
        client.delete_webhook(pb::DeleteWebhookRequest { id: webhook.id.clone(), etag: webhook_now.etag }).await.expect("delete the webhook");
    }

    async fn an_activitys_customer_types_come_from_the_catalogue_once_it_has_any(server) {
        let (webhook, _) = subscribe(&server, "http://127.0.0.1:9/".into(), &[pb::ResourceType::Customer], 0).await;
        let mut client = server.webhooks();
        let activity = |name: &str, types: &[&str]| pb::Activity {
            name: name.into(),
            webhook_id: webhook.id.clone(),
            applies_to: pb::ActivityTarget::Customer.into(),
            customer_types: types.iter().map(|t| (*t).to_owned()).collect(),
            ..Default::default()
        };
        // An empty catalogue: any type, as for customers.
        let free = client.create_activity(pb::CreateActivityRequest { activity: Some(activity("Free", &["whatever"])) }).await.expect("free-form").into_inner().activity.expect("activity");
        assert_eq!(free.customer_types, ["whatever"]);
        server
            .catalogue()
            .create_customer_type(pb::CreateCustomerTypeRequest {
                customer_type: Some(pb::CustomerType { name: "Großkunde".into(), ..Default::default() }),
                request_id: String::new(),
            })
            .await
            .expect("customer type");
        // A type the catalogue does not have is refused, by its place, and nothing is made.
        let status = expect_code(client.create_activity(pb::CreateActivityRequest { activity: Some(activity("Gold", &["GROẞKUNDE", "Gold"])) }).await, Code::InvalidArgument);
        assert_eq!(violated_fields(&status), ["activity.customer_types[1]"]);
        let listed = client.list_activities(pb::ListActivitiesRequest::default()).await.expect("list").into_inner().activities;
        assert_eq!(listed.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["Free"]);
        // Named in any case, kept as the catalogue spells it, once.
        let typed = client.create_activity(pb::CreateActivityRequest { activity: Some(activity("Typed", &["großkunde", "GROßKUNDE"])) }).await.expect("typed").into_inner().activity.expect("activity");
        assert_eq!(typed.customer_types, ["Großkunde"]);
        // And offered to a customer of that type whatever its case (beyond ASCII too).
        let customer = server.customer(pb::Customer { email: "gk@acts.example".into(), r#type: "GROßKUNDE".into(), ..Default::default() }).await;
        let offered = client.list_activities(pb::ListActivitiesRequest { customer_id: customer.id.clone() }).await.expect("offered").into_inner().activities;
        assert_eq!(offered.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["Typed"]);
    }

    async fn webhooks_are_managed_by_administrators_with_etags_and_checked_input(server) {
        let mut client = server.webhooks();
        for (webhook, field) in [
            (pb::Webhook { url: String::new(), ..Default::default() }, "webhook.url"),
            (pb::Webhook { url: "ftp://files.example/".into(), ..Default::default() }, "webhook.url"),
            (pb::Webhook { url: "/relative".into(), ..Default::default() }, "webhook.url"),
            (pb::Webhook { url: "https://user:secret@crm.example/".into(), ..Default::default() }, "webhook.url"),
            (pb::Webhook { url: "https://crm.example/".into(), max_attempts: 51, ..Default::default() }, "webhook.max_attempts"),
            (pb::Webhook { url: "https://crm.example/".into(), resource_types: vec![99], ..Default::default() }, "webhook.resource_types[0]"),
            (pb::Webhook { url: "https://crm.example/".into(), kinds: vec![0], ..Default::default() }, "webhook.kinds[0]"),
        ] {
            expect_invalid(client.create_webhook(pb::CreateWebhookRequest { webhook: Some(webhook) }).await, field);
        }
        let (webhook, _) = subscribe(&server, "https://crm.example/hooks".into(), &[pb::ResourceType::Organisation], 3).await;
        let listed = client.list_webhooks(pb::ListWebhooksRequest::default()).await.expect("list").into_inner().webhooks;
        assert_eq!(listed, vec![webhook.clone()]);
        let paused = client
            .update_webhook(pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook { active: false, kinds: vec![pb::ChangeKind::Created.into()], ..webhook.clone() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["active".into(), "kinds".into()] }),
            })
            .await
            .expect("pause")
            .into_inner()
            .webhook
            .expect("webhook");
        assert!(!paused.active);
        assert_eq!(paused.kinds, [i32::from(pb::ChangeKind::Created)]);
        assert_ne!(paused.etag, webhook.etag);
        expect_code(
            client.update_webhook(pb::UpdateWebhookRequest {
                webhook: Some(pb::Webhook { description: "stale".into(), ..webhook.clone() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["description".into()] }),
            }).await,
            Code::Aborted,
        );
        // Its changes are in the feed, without the secret.
        let history = server.changes().get_history(pb::GetHistoryRequest {
            resource_type: pb::ResourceType::Webhook.into(),
            resource_id: webhook.id.clone(),
            ..Default::default()
        }).await.expect("history").into_inner().events;
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|e| e.changes.iter().all(|c| c.field != "secret")));
        // Agents and customers may not touch webhooks.
        let desk = server.desk("hooks").await;
        let agent_client = clientele::proto::v1::webhook_service_client::WebhookServiceClient::new(server.authed(Some(&server.token(pb::token_owner::Owner::AgentId(desk.agent.id.clone())).await)));
        expect_code(agent_client.clone().list_webhooks(pb::ListWebhooksRequest::default()).await, Code::PermissionDenied);
        client.delete_webhook(pb::DeleteWebhookRequest { id: webhook.id.clone(), etag: paused.etag.clone() }).await.expect("delete");
        expect_code(client.get_webhook(pb::GetWebhookRequest { id: webhook.id.clone() }).await, Code::NotFound);
    }
}

/// Two replicas on one PostgreSQL: while the receiver is away, both try and fail; one replica
/// stops; the receiver comes back and the other replica delivers everything; with both
/// running and the receiver answering, no delivery is made twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn deliveries_outlive_a_replica_and_are_made_once_across_replicas() {
    let Some(server) = start_quick(Backend::Postgres).await else {
        return;
    };
    let replica = server.replica_with(quick).await;
    // A port nobody listens on yet.
    let addr: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr")
    };
    let (webhook, _) = subscribe(
        &server,
        format!("http://{addr}/"),
        &[pb::ResourceType::Customer],
        50,
    )
    .await;
    let mut customers = pb::customer_service_client::CustomerServiceClient::new(
        replica.authed(&server.admin_secret),
    );
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            customers
                .create_customer(pb::CreateCustomerRequest {
                    customer: Some(pb::Customer {
                        email: format!("r{n}@away.example"),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .expect("create")
                .into_inner()
                .customer
                .expect("customer")
                .id,
        );
    }
    eventually("attempts failed while the receiver is away", || {
        let server = &server;
        let webhook = &webhook;
        async move {
            let log = deliveries(server, webhook, pb::DeliveryStatus::Pending).await;
            log.len() == 10 && log.iter().all(|d| d.attempts >= 1)
        }
    })
    .await;
    replica.stop().await;
    let receiver = Receiver::default();
    let (_, _task) = receiver.serve(Some(addr)).await;
    eventually("every delivery made by the replica left", || {
        let server = &server;
        let webhook = &webhook;
        async move {
            deliveries(server, webhook, pb::DeliveryStatus::Delivered)
                .await
                .len()
                == 10
        }
    })
    .await;
    let delivered: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| {
            r.body["event"]["resource_id"]
                .as_str()
                .expect("id")
                .to_owned()
        })
        .collect();
    for id in &ids {
        assert!(delivered.contains(id), "{id} delivered");
    }
    // Both replicas running, the receiver answering: each delivery arrives once.
    let replica = server.replica_with(quick).await;
    let mut customers = pb::customer_service_client::CustomerServiceClient::new(
        replica.authed(&server.admin_secret),
    );
    for n in 0..30 {
        customers
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    email: format!("b{n}@both.example"),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create");
    }
    eventually("forty deliveries made", || {
        let server = &server;
        let webhook = &webhook;
        async move {
            deliveries(server, webhook, pb::DeliveryStatus::Delivered)
                .await
                .len()
                == 40
        }
    })
    .await;
    let mut times: HashMap<String, usize> = HashMap::new();
    for received in receiver.accepted() {
        *times.entry(received.delivery).or_default() += 1;
    }
    let twice: BTreeMap<&String, &usize> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "made twice: {twice:?}");
    assert_eq!(times.len(), 40);
    replica.stop().await;
    server.stop().await;
}
