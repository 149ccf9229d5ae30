//! AgentService and GroupService: agents, API tokens, groups.

use clientele::proto::v1 as pb;
use prost_types::FieldMask;
use tonic::Code;

use crate::support::*;

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

backend_tests! {
    async fn agents_are_created_read_updated_and_listed(server) {
        let created = server
            .agents()
            .create_agent(pb::CreateAgentRequest { request_id: String::new(),
                agent: Some(pb::Agent {
                    login: "Alice".into(),
                    first_name: "Alice".into(),
                    email: "alice@helpdesk.example".into(),
                    manage_customers: true,
                    ..Default::default()
                }),
            })
            .await
            .expect("create")
            .into_inner()
            .agent
            .expect("agent");
        assert!(created.manage_customers);
        assert_eq!(created.validity, pb::Validity::Valid as i32);
        let duplicate = server
            .agents()
            .create_agent(pb::CreateAgentRequest { request_id: String::new(), agent: Some(pb::Agent { login: "ALICE".into(), ..Default::default() }) })
            .await;
        assert_eq!(violated_fields(&expect_code(duplicate, Code::AlreadyExists)), ["agent.login"]);
        let found = server
            .agents()
            .get_agent(pb::GetAgentRequest { key: Some(pb::get_agent_request::Key::Login("alice".into())) })
            .await
            .expect("get by login")
            .into_inner()
            .agent
            .expect("agent");
        assert_eq!(found, created);
        let updated = server
            .agents()
            .update_agent(pb::UpdateAgentRequest {
                agent: Some(pb::Agent { manage_customers: false, last_name: "Liddell".into(), ..created.clone() }),
                update_mask: mask(&["manage_customers", "last_name"]),
            })
            .await
            .expect("update")
            .into_inner()
            .agent
            .expect("agent");
        assert!(!updated.manage_customers);
        assert_eq!(updated.last_name, "Liddell");
        let stale = server
            .agents()
            .update_agent(pb::UpdateAgentRequest { agent: Some(created.clone()), update_mask: mask(&["first_name"]) })
            .await;
        expect_code(stale, Code::Aborted);
        server.agent("bob", false).await;
        let listed: Vec<String> = server
            .agents()
            .list_agents(pb::ListAgentsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .agents
            .into_iter()
            .map(|a| a.login)
            .collect();
        assert_eq!(listed, ["Alice", "bob"]);
        for (agent, field) in [
            (pb::Agent { login: String::new(), ..Default::default() }, "agent.login"),
            (pb::Agent { login: "has space".into(), ..Default::default() }, "agent.login"),
            (pb::Agent { login: "x".into(), email: "not-an-address".into(), ..Default::default() }, "agent.email"),
        ] {
            expect_invalid(server.agents().create_agent(pb::CreateAgentRequest { agent: Some(agent), request_id: String::new() }).await, field);
        }
    }

    async fn an_agent_with_manage_customers_edits_the_customer_master_and_one_without_only_reads_it(server) {
        let editor = server.agent("editor", true).await;
        let reader = server.agent("reader", false).await;
        let editor = server.as_token(&server.token(pb::token_owner::Owner::AgentId(editor.id)).await);
        let mut reader = server.as_token(&server.token(pb::token_owner::Owner::AgentId(reader.id)).await);
        let mut editor = editor;
        let org = editor
            .organisations
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation { code: "EDITED".into(), name: "Edited".into(), country: "DE".into(), ..Default::default() }),
                request_id: String::new(),
            })
            .await
            .expect("the customer administrator creates")
            .into_inner()
            .organisation
            .expect("org");
        reader
            .organisations
            .get_organisation(pb::GetOrganisationRequest { key: Some(pb::get_organisation_request::Key::Id(org.id.clone())) })
            .await
            .expect("every agent reads");
        let refused = reader
            .customers
            .create_customer(pb::CreateCustomerRequest { customer: Some(pb::Customer { email: "x@example.com".into(), ..Default::default() }), request_id: String::new() })
            .await;
        let status = expect_code(refused, Code::PermissionDenied);
        assert_eq!(reason(&status).as_deref(), Some("NO_MANAGE_CUSTOMERS"));
    }

    async fn tokens_show_their_secret_once_list_without_it_and_revoke(server) {
        let agent = server.agent("holder", false).await;
        let owner = pb::TokenOwner { owner: Some(pb::token_owner::Owner::AgentId(agent.id.clone())) };
        let created = server
            .agents()
            .create_token(pb::CreateTokenRequest { owner: Some(owner.clone()), description: "laptop".into(), expire_time: None })
            .await
            .expect("create token")
            .into_inner();
        assert!(created.secret.starts_with("clt_") && created.secret.len() > 40);
        let token = created.token.expect("token");
        assert_eq!(token.description, "laptop");
        let listed = server
            .agents()
            .list_tokens(pb::ListTokensRequest { owner: Some(owner.clone()), ..Default::default() })
            .await
            .expect("list")
            .into_inner()
            .tokens;
        assert_eq!(listed, std::slice::from_ref(&token), "listed as created, without any secret");

        // The agent may revoke its own token but not another's (which it cannot even see).
        let other = server.token(pb::token_owner::Owner::Admin(true)).await;
        let other_id = server.as_token(&other).agents.who_am_i(pb::WhoAmIRequest {}).await.expect("whoami").into_inner().token.expect("token").id;
        let mut as_agent = server.as_token(&created.secret);
        expect_code(as_agent.agents.revoke_token(pb::RevokeTokenRequest { id: other_id }).await, Code::NotFound);
        let revoked = as_agent
            .agents
            .revoke_token(pb::RevokeTokenRequest { id: token.id.clone() })
            .await
            .expect("revoke own")
            .into_inner()
            .token
            .expect("token");
        assert!(revoked.revoke_time.is_some());
        expect_code(as_agent.agents.who_am_i(pb::WhoAmIRequest {}).await, Code::Unauthenticated);
        let active = server
            .agents()
            .list_tokens(pb::ListTokensRequest { owner: Some(owner.clone()), ..Default::default() })
            .await
            .expect("list")
            .into_inner()
            .tokens;
        assert!(active.is_empty(), "revoked tokens are inactive");
        let all = server
            .agents()
            .list_tokens(pb::ListTokensRequest { owner: Some(owner), include_inactive: true, ..Default::default() })
            .await
            .expect("list")
            .into_inner()
            .tokens;
        assert_eq!(all.len(), 1);
    }

    async fn tokens_are_refused_to_invalid_or_unknown_owners_and_past_expiries(server) {
        let customer = server.customer(pb::Customer { email: "left@example.com".into(), ..Default::default() }).await;
        server
            .customers()
            .deactivate_customer(pb::DeactivateCustomerRequest { id: customer.id.clone(), etag: server.customer_etag(&customer.id).await, ..Default::default() })
            .await
            .expect("deactivate");
        let mut agents = server.agents();
        let invalid = agents
            .create_token(pb::CreateTokenRequest {
                owner: Some(pb::TokenOwner { owner: Some(pb::token_owner::Owner::CustomerId(customer.id.clone())) }),
                ..Default::default()
            })
            .await;
        expect_code(invalid, Code::FailedPrecondition);
        let unknown = agents
            .create_token(pb::CreateTokenRequest {
                owner: Some(pb::TokenOwner { owner: Some(pb::token_owner::Owner::AgentId(uuid::Uuid::now_v7().to_string())) }),
                ..Default::default()
            })
            .await;
        expect_invalid(unknown, "owner");
        let past = agents
            .create_token(pb::CreateTokenRequest {
                owner: Some(pb::TokenOwner { owner: Some(pb::token_owner::Owner::Admin(true)) }),
                expire_time: Some(prost_types::Timestamp { seconds: 1_000_000, nanos: 0 }),
                ..Default::default()
            })
            .await;
        expect_invalid(past, "expire_time");
        expect_invalid(agents.create_token(pb::CreateTokenRequest::default()).await, "owner");
    }

    async fn groups_are_created_read_updated_and_listed(server) {
        let agent = server.agent("responsible", false).await;
        let created = server
            .groups()
            .create_group(pb::CreateGroupRequest { request_id: String::new(),
                group: Some(pb::Group { name: "Support".into(), comment: "first level".into(), responsible_agent_id: agent.id.clone(), ..Default::default() }),
            })
            .await
            .expect("create")
            .into_inner()
            .group
            .expect("group");
        assert_eq!(created.responsible_agent_id, agent.id);
        let duplicate = server.groups().create_group(pb::CreateGroupRequest { request_id: String::new(), group: Some(pb::Group { name: "support".into(), ..Default::default() }) }).await;
        assert_eq!(violated_fields(&expect_code(duplicate, Code::AlreadyExists)), ["group.name"]);
        let unknown_agent = server
            .groups()
            .create_group(pb::CreateGroupRequest { request_id: String::new(),
                group: Some(pb::Group { name: "Other".into(), responsible_agent_id: uuid::Uuid::now_v7().to_string(), ..Default::default() }),
            })
            .await;
        expect_invalid(unknown_agent, "group.responsible_agent_id");
        let found = server
            .groups()
            .get_group(pb::GetGroupRequest { key: Some(pb::get_group_request::Key::Name("SUPPORT".into())) })
            .await
            .expect("get by name")
            .into_inner()
            .group
            .expect("group");
        assert_eq!(found, created);
        let closed = server
            .groups()
            .update_group(pb::UpdateGroupRequest {
                group: Some(pb::Group { validity: pb::Validity::Invalid as i32, ..created.clone() }),
                update_mask: mask(&["validity"]),
            })
            .await
            .expect("deactivate")
            .into_inner()
            .group
            .expect("group");
        assert_eq!(closed.validity, pb::Validity::Invalid as i32);
        server.group("Billing").await;
        let names = |groups: Vec<pb::Group>| groups.into_iter().map(|g| g.name).collect::<Vec<_>>();
        let valid = server.groups().list_groups(pb::ListGroupsRequest::default()).await.expect("list").into_inner().groups;
        assert_eq!(names(valid), ["Billing"]);
        let all = server.groups().list_groups(pb::ListGroupsRequest { include_invalid: true, ..Default::default() }).await.expect("list").into_inner().groups;
        assert_eq!(names(all), ["Billing", "Support"]);
        expect_invalid(server.groups().create_group(pb::CreateGroupRequest { group: Some(pb::Group::default()), request_id: String::new() }).await, "group.name");
    }
}

/// `clientele token create` works on the database directly, and a bootstrap token is only
/// registered while no admin token works.
mod the_token_command_and_the_bootstrap_token {
    use std::process::Command;

    use super::*;

    async fn run(backend: Backend) {
        let Some(database) = TestDatabase::create(backend).await else {
            return;
        };
        // The database of an installation: `token create` never makes one.
        let migrated = Command::new(env!("CARGO_BIN_EXE_clientele"))
            .arg("migrate")
            .env("DATABASE_URL", &database.url)
            .status()
            .expect("clientele migrate");
        assert!(migrated.success());
        let output = Command::new(env!("CARGO_BIN_EXE_clientele"))
            .args(["token", "create", "--admin", "--description", "ops"])
            .env("DATABASE_URL", &database.url)
            .output()
            .expect("clientele token create");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let secret = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            secret.starts_with("clt_"),
            "the secret alone is printed: {secret}"
        );

        // The server starts on that database with a bootstrap token, which is not needed.
        let bootstrap = bootstrap_secret();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut config = clientele::Config::new(database.url.clone());
        config.bootstrap_token = Some(bootstrap.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(clientele::run(config, listener, async {
            let _ = stopped.await;
        }));
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let deadline = tokio::time::Instant::now() + 2 * crate::support::PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let who = |secret: &str| {
            let channel = channel.clone();
            let secret = secret.to_owned();
            async move {
                pb::agent_service_client::AgentServiceClient::with_interceptor(
                    channel,
                    Bearer::new(Some(&secret)),
                )
                .who_am_i(pb::WhoAmIRequest {})
                .await
            }
        };
        let token = who(&secret)
            .await
            .expect("the command's token works")
            .into_inner()
            .token
            .expect("token");
        assert_eq!(token.description, "ops");
        expect_code(who(&bootstrap).await, Code::Unauthenticated);

        // Tokens for an agent and a customer, made by the command for records made over gRPC.
        let agent = pb::agent_service_client::AgentServiceClient::with_interceptor(
            channel.clone(),
            Bearer::new(Some(&secret)),
        )
        .create_agent(pb::CreateAgentRequest {
            agent: Some(pb::Agent {
                login: "cli-agent".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("agent")
        .into_inner()
        .agent
        .expect("agent");
        let customer = pb::customer_service_client::CustomerServiceClient::with_interceptor(
            channel.clone(),
            Bearer::new(Some(&secret)),
        )
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                email: "cli@example.com".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("customer")
        .into_inner()
        .customer
        .expect("customer");
        let token_for = |flag: &str, id: &str| {
            Command::new(env!("CARGO_BIN_EXE_clientele"))
                .args(["token", "create", flag, id])
                .env("DATABASE_URL", &database.url)
                .output()
                .expect("clientele token create")
        };
        let output = token_for("--agent", &agent.id);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let me = who(String::from_utf8_lossy(&output.stdout).trim())
            .await
            .expect("the agent's token works")
            .into_inner();
        assert_eq!(me.agent.map(|a| a.id), Some(agent.id.clone()));
        let output = token_for("--customer", &customer.id);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let me = who(String::from_utf8_lossy(&output.stdout).trim())
            .await
            .expect("the customer's token works")
            .into_inner();
        assert_eq!(me.customer_id, customer.id);
        // Nobody with that id: the command fails and prints no secret.
        let output = token_for("--agent", &customer.id);
        assert!(!output.status.success());
        assert!(output.stdout.is_empty());
        let _ = stop.send(());
        task.await.expect("task").expect("clean stop");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[cfg_attr(
        not(clientele_postgres_tests),
        ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
    )]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}
