//! The auth layer: every RPC is authenticated and authorised by the method policy.

use std::{sync::Arc, time::Duration};

use clientele::{
    auth::{Role, policy},
    clock::ManualClock,
    proto::{FILE_DESCRIPTOR_SET, v1 as pb},
};
use prost::Message;
use tonic::{Code, Status};

use crate::support::*;

/// Every method of every Clientele service, as `/clientele.v1.Service/Method`.
fn every_method() -> Vec<String> {
    let descriptors =
        prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("descriptor set");
    let mut methods = Vec::new();
    for file in descriptors
        .file
        .iter()
        .filter(|f| f.package() == "clientele.v1")
    {
        for service in &file.service {
            for method in &service.method {
                methods.push(format!(
                    "/clientele.v1.{}/{}",
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    methods.sort();
    methods
}

/// Calls `path` with an empty message, as `secret` (or without a token).
async fn call(server: &TestServer, secret: Option<&str>, path: &str) -> Status {
    let mut grpc = tonic::client::Grpc::new(server.authed(secret));
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::try_from(path).expect("path");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(tonic::Request::new(()), path, codec).await {
        Ok(_) => Status::ok("answered"),
        Err(status) => status,
    }
}

#[test]
fn every_method_of_the_api_is_in_the_policy_table_and_nothing_else_is() {
    let methods = every_method();
    assert!(
        methods.len() > 30,
        "the descriptor set holds the API: {methods:?}"
    );
    let missing: Vec<&String> = methods
        .iter()
        .filter(|m| policy::callers(m).is_none())
        .collect();
    assert!(missing.is_empty(), "methods without a policy: {missing:?}");
    let stale: Vec<&str> = policy::POLICY
        .iter()
        .map(|(method, _)| *method)
        .filter(|method| !methods.iter().any(|m| m == method))
        .collect();
    assert!(
        stale.is_empty(),
        "policy entries without a method: {stale:?}"
    );
}

#[test]
fn health_and_reflection_are_open_and_nothing_else_is() {
    assert!(policy::is_open("/grpc.health.v1.Health/Check"));
    assert!(policy::is_open(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    ));
    assert!(policy::is_open(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    ));
    for method in every_method() {
        assert!(!policy::is_open(&method), "{method} is open");
    }
}

/// A server on a manual clock, so that tokens can expire.
async fn with_manual_clock(backend: Backend) -> Option<(TestServer, Arc<ManualClock>)> {
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let shared = clock.clone();
    let server = TestServer::start_with(backend, move |config| config.clock = shared).await?;
    Some((server, clock))
}

async fn every_method_refuses_calls_without_a_valid_token(backend: Backend) {
    let Some((server, clock)) = with_manual_clock(backend).await else {
        return;
    };
    let agent = server.agent("bob", false).await;
    let revoked = server
        .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
        .await;
    let whoami = server
        .as_token(&revoked)
        .agents
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("the token works before it is revoked")
        .into_inner();
    server
        .agents()
        .revoke_token(pb::RevokeTokenRequest {
            id: whoami.token.expect("token").id,
        })
        .await
        .expect("revoke");
    let in_an_hour = prost_types::Timestamp {
        seconds: clock.now_seconds() + 3600,
        nanos: 0,
    };
    let expired = server
        .token_expiring(pb::token_owner::Owner::Admin(true), Some(in_an_hour))
        .await;
    clock.advance(jiff::SignedDuration::from_hours(2));

    for method in every_method() {
        for (secret, reason) in [
            (None, "MISSING_CREDENTIALS"),
            (Some("not-a-token-anyone-issued"), "UNKNOWN_TOKEN"),
            (Some(revoked.as_str()), "TOKEN_REVOKED"),
            (Some(expired.as_str()), "TOKEN_EXPIRED"),
        ] {
            let status = call(&server, secret, &method).await;
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{method} with {reason}: {status:?}"
            );
            assert_eq!(
                crate::support::reason(&status).as_deref(),
                Some(reason),
                "{method}"
            );
        }
    }
    server.stop().await;
}

async fn every_method_refuses_the_roles_the_policy_does_not_admit(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let agent = server.agent("carol", false).await;
    let agent_secret = server
        .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
        .await;
    let customer = server
        .customer(pb::Customer {
            email: "dora@example.com".into(),
            ..Default::default()
        })
        .await;
    let customer_secret = server
        .token(pb::token_owner::Owner::CustomerId(customer.id.clone()))
        .await;
    let mut refused = 0;
    for method in every_method() {
        let callers = policy::callers(&method).expect("in the policy");
        for (role, secret) in [
            (Role::Agent, &agent_secret),
            (Role::Customer, &customer_secret),
        ] {
            if callers.admit(role) {
                continue;
            }
            let status = call(&server, Some(secret), &method).await;
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{method} as {role:?}: {status:?}"
            );
            assert_eq!(
                crate::support::reason(&status).as_deref(),
                Some("ROLE_NOT_ALLOWED")
            );
            refused += 1;
        }
    }
    assert!(refused > 20, "many methods are closed to some role");
    server.stop().await;
}

async fn a_method_missing_from_the_policy_is_denied(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let status = call(
        &server,
        Some(&server.admin_secret.clone()),
        "/clientele.v1.OrganisationService/DropEverything",
    )
    .await;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        crate::support::reason(&status).as_deref(),
        Some("METHOD_NOT_IN_POLICY")
    );
    server.stop().await;
}

async fn a_revoked_token_stops_working_on_another_replica_within_a_second(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let replica = server.replica().await;
    let agent = server.agent("eve", false).await;
    let secret = server
        .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
        .await;
    let mut on_replica = pb::agent_service_client::AgentServiceClient::new(replica.authed(&secret));
    let token_id = on_replica
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("works on the replica (and is cached there now)")
        .into_inner()
        .token
        .expect("token")
        .id;
    server
        .agents()
        .revoke_token(pb::RevokeTokenRequest { id: token_id })
        .await
        .expect("revoke on the first server");
    let on_first = server
        .as_token(&secret)
        .agents
        .who_am_i(pb::WhoAmIRequest {})
        .await;
    expect_code(on_first, Code::Unauthenticated);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let on_second = on_replica.who_am_i(pb::WhoAmIRequest {}).await;
    expect_code(on_second, Code::Unauthenticated);
    replica.stop().await;
    server.stop().await;
}

async fn tokens_of_principals_that_became_invalid_stop_working(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let agent = server.agent("frank", false).await;
    let agent_secret = server
        .token(pb::token_owner::Owner::AgentId(agent.id.clone()))
        .await;
    let customer = server
        .customer(pb::Customer {
            email: "gina@example.com".into(),
            ..Default::default()
        })
        .await;
    let customer_secret = server
        .token(pb::token_owner::Owner::CustomerId(customer.id.clone()))
        .await;
    // Both work, so both are cached.
    server
        .as_token(&agent_secret)
        .agents
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("agent");
    server
        .as_token(&customer_secret)
        .agents
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("customer");

    server
        .agents()
        .update_agent(pb::UpdateAgentRequest {
            agent: Some(pb::Agent {
                validity: pb::Validity::Invalid as i32,
                ..agent
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["validity".into()],
            }),
        })
        .await
        .expect("deactivate agent");
    server
        .customers()
        .deactivate_customer(pb::DeactivateCustomerRequest {
            id: customer.id.clone(),
            etag: server.customer_etag(&customer.id).await,
            ..Default::default()
        })
        .await
        .expect("deactivate customer");
    for secret in [&agent_secret, &customer_secret] {
        let status = expect_code(
            server
                .as_token(secret)
                .agents
                .who_am_i(pb::WhoAmIRequest {})
                .await,
            Code::Unauthenticated,
        );
        assert_eq!(
            crate::support::reason(&status).as_deref(),
            Some("PRINCIPAL_INVALID")
        );
    }
    server.stop().await;
}

/// Token checks are answered from a cache: many calls with one token cost a database lookup
/// only when the cached verdict has aged (at most every 500 ms), not one per call.
async fn calls_with_one_token_do_not_each_look_the_token_up(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let agent = server.agent("busy", false).await;
    let secret = server
        .token(pb::token_owner::Owner::AgentId(agent.id))
        .await;
    let mut agents = server.as_token(&secret).agents;
    agents
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("first call");
    let before = server.metrics.token_lookups();
    let started = std::time::Instant::now();
    for _ in 0..200 {
        agents.who_am_i(pb::WhoAmIRequest {}).await.expect("call");
    }
    let lookups = server.metrics.token_lookups() - before;
    // One lookup per half second the calls took, at most; without the cache it would be 200.
    let allowed = started.elapsed().as_millis() / 500 + 1;
    assert!(
        u128::from(lookups) <= allowed,
        "{lookups} lookups for 200 calls in {:?}",
        started.elapsed()
    );
    server.stop().await;
}

/// Changing one customer makes only the cached verdicts about that customer stale: an agent
/// calling while customers are being edited is not looked up again on every call, while the
/// edited customer's own token sees its new organisation at once.
async fn edits_of_customers_leave_other_callers_cached(backend: Backend) {
    let Some(server) = TestServer::start(backend).await else {
        return;
    };
    let agent = server.agent("reader", false).await;
    let agent_secret = server
        .token(pb::token_owner::Owner::AgentId(agent.id))
        .await;
    let first = server.organisation("FIRST", &[]).await;
    let second = server.organisation("SECOND", &[]).await;
    let moved = server
        .customer(pb::Customer {
            email: "moved@cache.example".into(),
            organisation_id: first.id.clone(),
            ..Default::default()
        })
        .await;
    let customer_secret = server
        .token(pb::token_owner::Owner::CustomerId(moved.id.clone()))
        .await;
    let mut as_agent = server.as_token(&agent_secret).agents;
    let mut as_customer = server.as_token(&customer_secret).agents;
    let organisations_of =
        async |client: &mut pb::agent_service_client::AgentServiceClient<Authed>| {
            client
                .who_am_i(pb::WhoAmIRequest {})
                .await
                .expect("who am i")
                .into_inner()
                .organisation_ids
        };
    assert_eq!(
        organisations_of(&mut as_customer).await,
        vec![first.id.clone()]
    );
    as_agent
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("agent");

    let mut customers = server.customers();
    let before = server.metrics.token_lookups();
    let started = std::time::Instant::now();
    for n in 0..40 {
        customers
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(pb::Customer {
                    email: format!("busy{n}@cache.example"),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("create");
        as_agent
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .expect("agent");
    }
    let lookups = server.metrics.token_lookups() - before;
    // The admin's and the agent's tokens, each once per half second at most; a cache emptied
    // by every write would cost the agent 40.
    let allowed = 2 * (started.elapsed().as_millis() / 500 + 1);
    assert!(
        u128::from(lookups) <= allowed,
        "{lookups} lookups for 40 writes and 40 calls in {:?}",
        started.elapsed()
    );

    let current = server.customer_by_id(&moved.id).await;
    customers
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(pb::Customer {
                id: moved.id.clone(),
                etag: current.etag,
                organisation_id: second.id.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["organisation_id".into()],
            }),
        })
        .await
        .expect("move");
    assert_eq!(organisations_of(&mut as_customer).await, vec![second.id]);
    server.stop().await;
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(clientele_postgres_tests), ignore = "CLIENTELE_TEST_POSTGRES_URL is not set")]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await;
            }
        }
    )*};
}

on_both_backends!(
    every_method_refuses_calls_without_a_valid_token,
    every_method_refuses_the_roles_the_policy_does_not_admit,
    a_method_missing_from_the_policy_is_denied,
    a_revoked_token_stops_working_on_another_replica_within_a_second,
    tokens_of_principals_that_became_invalid_stop_working,
    calls_with_one_token_do_not_each_look_the_token_up,
    edits_of_customers_leave_other_callers_cached,
);

/// Seconds since the epoch on a manual clock.
trait Seconds {
    fn now_seconds(&self) -> i64;
}

impl Seconds for ManualClock {
    fn now_seconds(&self) -> i64 {
        use clientele::clock::Clock;
        self.now().as_second()
    }
}
