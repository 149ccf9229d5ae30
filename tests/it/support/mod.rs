//! The test harness: a real server per test, generated clients, and database access for
//! checking what was (not) written.

#![allow(dead_code)]

use std::{future::Future, net::SocketAddr, sync::OnceLock, time::Duration};

use clientele::{
    Config,
    proto::v1::{
        self as pb, agent_service_client::AgentServiceClient,
        change_service_client::ChangeServiceClient, comment_service_client::CommentServiceClient,
        contact_group_service_client::ContactGroupServiceClient,
        customer_service_client::CustomerServiceClient,
        customer_source_service_client::CustomerSourceServiceClient,
        directory_service_client::DirectoryServiceClient,
        field_catalogue_service_client::FieldCatalogueServiceClient,
        group_service_client::GroupServiceClient,
        organisation_service_client::OrganisationServiceClient,
        permission_service_client::PermissionServiceClient,
        price_list_service_client::PriceListServiceClient,
        privacy_service_client::PrivacyServiceClient, sla_service_client::SlaServiceClient,
        ticket_service_client::TicketServiceClient, webhook_service_client::WebhookServiceClient,
    },
    store::{Store, StoreOptions, Table},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, transport::Channel};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
};
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

/// How long a test waits for something that must happen: far longer than it ever takes, even
/// on two cores shared with a build, so that only a real failure runs into it.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The events of a `WatchChanges` stream one at a time, in order. A message may carry any
/// number of them (the service sends what was placed in the feed since its last read), so a
/// test that needs the next event must keep the rest of the message for later.
pub struct ChangeEvents {
    stream: tonic::Streaming<pb::WatchChangesResponse>,
    pending: std::collections::VecDeque<pb::ChangeEvent>,
}

impl ChangeEvents {
    pub fn new(stream: tonic::Streaming<pb::WatchChangesResponse>) -> Self {
        Self {
            stream,
            pending: std::collections::VecDeque::new(),
        }
    }

    /// The next event, within [`PATIENCE`]; every message on the way carries a cursor.
    pub async fn next(&mut self) -> pb::ChangeEvent {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return event;
            }
            let message = tokio::time::timeout(PATIENCE, self.stream.message())
                .await
                .expect("a message in time")
                .expect("message")
                .expect("open");
            assert!(!message.cursor.is_empty(), "every message carries a cursor");
            self.pending.extend(message.events);
        }
    }
}

/// Runs each test once per backend: `backend_tests! { async fn name(server) { … } }` makes
/// `name::sqlite` and `name::postgres`.
macro_rules! backend_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($server:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(clientele_postgres_tests), ignore = "CLIENTELE_TEST_POSTGRES_URL is not set")]
            async fn postgres() {
                run($crate::support::Backend::Postgres).await;
            }

            #[allow(unused_mut)]
            async fn run(backend: $crate::support::Backend) {
                let Some(mut $server) = $crate::support::TestServer::start(backend).await else {
                    return;
                };
                $body
                $server.stop().await;
            }
        }
    )*};
}

/// Like `backend_tests!`, with a manual clock the test moves:
/// `clock_tests! { async fn name(server, clock) { … } }`.
macro_rules! clock_tests {
    ($( $(#[$meta:meta])* async fn $name:ident($server:ident, $clock:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                run($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(clientele_postgres_tests), ignore = "CLIENTELE_TEST_POSTGRES_URL is not set")]
            async fn postgres() {
                run($crate::support::Backend::Postgres).await;
            }

            #[allow(unused_mut, unused_variables)]
            async fn run(backend: $crate::support::Backend) {
                let Some((mut $server, $clock)) =
                    $crate::support::desk::start_with_clock(backend).await
                else {
                    return;
                };
                $body
                $server.stop().await;
            }
        }
    )*};
}

pub mod desk;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test, removed when the test ends.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Runs on panics too, so that failed tests leave no databases behind.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// True when CI demands the external tools (grpcurl, Python with grpcio-tools).
pub fn require_tools() -> bool {
    std::env::var("CLIENTELE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

impl TestDatabase {
    /// A fresh database, or `None` when PostgreSQL is not configured (and not required).
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("clientele.db").display()
                );
                Some(Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                // Without a URL the PostgreSQL tests are compiled as ignored (build.rs), so
                // that the run's summary counts them; only the tests that run a check on each
                // backend in turn get here, and skip that backend.
                let Some(admin_url) = std::env::var("CLIENTELE_TEST_POSTGRES_URL")
                    .ok()
                    .filter(|url| !url.is_empty())
                else {
                    if cfg!(clientele_postgres_tests) {
                        panic!(
                            "the tests were built with CLIENTELE_TEST_POSTGRES_URL and run without it"
                        );
                    }
                    return None;
                };
                // Asked for and not there is a failure, not a skip.
                let admin = Database::connect(&admin_url).await.unwrap_or_else(|error| {
                    panic!("CLIENTELE_TEST_POSTGRES_URL={admin_url} is unreachable: {error}")
                });
                let name = format!("clientele_test_{}", uuid::Uuid::now_v7().simple());
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.expect("close admin connection");
                let mut url = url::Url::parse(&admin_url).expect("CLIENTELE_TEST_POSTGRES_URL");
                url.set_path(&name);
                Some(Self {
                    url: url.to_string(),
                    backend,
                    _dir: None,
                    postgres: Some(PostgresDatabase { admin_url, name }),
                })
            }
        }
    }

    /// The PostgreSQL database's name.
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|p| p.name.as_str())
    }

    /// A connection with administrative rights over the test database (PostgreSQL only).
    pub async fn admin(&self) -> Option<DatabaseConnection> {
        let postgres = self.postgres.as_ref()?;
        Some(
            Database::connect(&postgres.admin_url)
                .await
                .expect("admin connection"),
        )
    }
}

/// Logs of the server under test go to the test's output; `RUST_LOG` sets the level.
pub fn init_logging() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// Adds `authorization: Bearer <secret>` to every call (nothing for `None`).
#[derive(Clone, Debug)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    pub fn new(secret: Option<&str>) -> Self {
        Self(secret.map(|s| format!("Bearer {s}").parse().expect("header value")))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel that authenticates every call.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Clients of every service, all calling as one principal.
#[derive(Clone)]
pub struct Clients {
    pub organisations: OrganisationServiceClient<Authed>,
    pub customers: CustomerServiceClient<Authed>,
    pub permissions: PermissionServiceClient<Authed>,
    pub groups: GroupServiceClient<Authed>,
    pub agents: AgentServiceClient<Authed>,
    pub tickets: TicketServiceClient<Authed>,
    pub slas: SlaServiceClient<Authed>,
    pub comments: CommentServiceClient<Authed>,
    pub changes: ChangeServiceClient<Authed>,
    pub privacy: PrivacyServiceClient<Authed>,
    pub contact_groups: ContactGroupServiceClient<Authed>,
    pub price_lists: PriceListServiceClient<Authed>,
    pub catalogue: FieldCatalogueServiceClient<Authed>,
    pub directories: DirectoryServiceClient<Authed>,
}

/// The secret of every test server's first admin token.
pub fn bootstrap_secret() -> String {
    format!("test-admin-{}", uuid::Uuid::now_v7().simple())
}

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub database: TestDatabase,
    /// The secret of the admin token the server was started with.
    pub admin_secret: String,
    /// A store on the same database, for looking at what was written.
    pub store: Store,
    /// The server's stream counters.
    pub metrics: std::sync::Arc<clientele::metrics::Metrics>,
    /// The configuration the server was started with (its clock, for replicas).
    pub config: Config,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), clientele::server::ServeError>>>,
}

/// A grant of `level` on `group_id` to `subject` in `context`, as a request carries it.
fn grant_of(
    subject: pb::subject::Subject,
    group_id: &str,
    level: pb::PermissionLevel,
    context: pb::GrantContext,
) -> pb::Grant {
    pb::Grant {
        subject: Some(pb::Subject {
            subject: Some(subject),
        }),
        group_id: group_id.to_owned(),
        level: level as i32,
        context: context as i32,
        ..Default::default()
    }
}

impl TestServer {
    /// A server with the default test configuration, or `None` when the backend is skipped.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        Self::start_over(backend, adjust, None).await
    }

    /// A server serving TLS (`adjust` sets its files), called over TLS as `client` says.
    pub async fn start_tls(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
        client: tonic::transport::ClientTlsConfig,
    ) -> Option<Self> {
        Self::start_over(backend, adjust, Some(client)).await
    }

    async fn start_over(
        backend: Backend,
        adjust: impl FnOnce(&mut Config),
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Option<Self> {
        init_logging();
        let database = TestDatabase::create(backend).await?;
        let admin_secret = bootstrap_secret();
        let mut config = Config::new(database.url.clone());
        // Longer than any wait of a test: a test that checks that something does not hold
        // the drain waits at most `PATIENCE` for the server to stop.
        config.shutdown_timeout = 2 * PATIENCE;
        config.health_interval = std::time::Duration::from_millis(200);
        config.bootstrap_token = Some(admin_secret.clone());
        adjust(&mut config);
        let metrics = config.metrics.clone();
        let started = config.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(clientele::run(config, listener, async {
            let _ = stopped.await;
        }));
        let channel = match tls {
            None => Channel::from_shared(format!("http://{addr}"))
                .expect("uri")
                .connect_lazy(),
            Some(tls) => Channel::from_shared(format!("https://{addr}"))
                .expect("uri")
                .tls_config(tls)
                .expect("client TLS")
                .connect_lazy(),
        };
        let mut task = Some(task);
        wait_until_serving(&channel, &mut task).await;
        Some(Self {
            addr,
            admin_secret,
            store: Store::connect(&database.url, &StoreOptions::default())
                .await
                .expect("inspection store"),
            database,
            metrics,
            config: started,
            channel,
            shutdown: Some(shutdown),
            task,
        })
    }

    pub fn backend(&self) -> Backend {
        self.database.backend
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// A channel calling as the holder of `secret` (no token for `None`).
    pub fn authed(&self, secret: Option<&str>) -> Authed {
        InterceptedService::new(self.channel(), Bearer::new(secret))
    }

    /// Clients of every service calling as the holder of `secret`.
    pub fn as_token(&self, secret: &str) -> Clients {
        let channel = || self.authed(Some(secret));
        Clients {
            organisations: OrganisationServiceClient::new(channel()),
            customers: CustomerServiceClient::new(channel()),
            permissions: PermissionServiceClient::new(channel()),
            groups: GroupServiceClient::new(channel()),
            agents: AgentServiceClient::new(channel()),
            tickets: TicketServiceClient::new(channel()),
            slas: SlaServiceClient::new(channel()),
            comments: CommentServiceClient::new(channel()),
            changes: ChangeServiceClient::new(channel()),
            privacy: PrivacyServiceClient::new(channel()),
            contact_groups: ContactGroupServiceClient::new(channel()),
            price_lists: PriceListServiceClient::new(channel()),
            catalogue: FieldCatalogueServiceClient::new(channel()),
            directories: DirectoryServiceClient::new(channel()),
        }
    }

    fn admin(&self) -> Authed {
        self.authed(Some(&self.admin_secret))
    }

    pub fn organisations(&self) -> OrganisationServiceClient<Authed> {
        OrganisationServiceClient::new(self.admin())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel())
    }

    pub fn customers(&self) -> CustomerServiceClient<Authed> {
        CustomerServiceClient::new(self.admin())
    }

    pub fn permissions(&self) -> PermissionServiceClient<Authed> {
        PermissionServiceClient::new(self.admin())
    }

    pub fn groups(&self) -> GroupServiceClient<Authed> {
        GroupServiceClient::new(self.admin())
    }

    pub fn agents(&self) -> AgentServiceClient<Authed> {
        AgentServiceClient::new(self.admin())
    }

    pub fn tickets(&self) -> TicketServiceClient<Authed> {
        TicketServiceClient::new(self.admin())
    }

    pub fn slas(&self) -> SlaServiceClient<Authed> {
        SlaServiceClient::new(self.admin())
    }

    pub fn comments(&self) -> CommentServiceClient<Authed> {
        CommentServiceClient::new(self.admin())
    }

    pub fn changes(&self) -> ChangeServiceClient<Authed> {
        ChangeServiceClient::new(self.admin())
    }

    pub fn webhooks(&self) -> WebhookServiceClient<Authed> {
        WebhookServiceClient::new(self.admin())
    }

    pub fn privacy(&self) -> PrivacyServiceClient<Authed> {
        PrivacyServiceClient::new(self.admin())
    }

    pub fn contact_groups(&self) -> ContactGroupServiceClient<Authed> {
        ContactGroupServiceClient::new(self.admin())
    }

    pub fn price_lists(&self) -> PriceListServiceClient<Authed> {
        PriceListServiceClient::new(self.admin())
    }

    pub fn catalogue(&self) -> FieldCatalogueServiceClient<Authed> {
        FieldCatalogueServiceClient::new(self.admin())
    }

    pub fn directories(&self) -> DirectoryServiceClient<Authed> {
        DirectoryServiceClient::new(self.admin())
    }

    pub fn customer_sources(&self) -> CustomerSourceServiceClient<Authed> {
        CustomerSourceServiceClient::new(self.admin())
    }

    /// The customer's current etag, as an admin reads it: every change of a customer needs it.
    pub async fn customer_etag(&self, id: &str) -> String {
        self.customers()
            .get_customer(pb::GetCustomerRequest {
                key: Some(pb::get_customer_request::Key::Id(id.to_owned())),
            })
            .await
            .expect("read the customer's etag")
            .into_inner()
            .customer
            .expect("customer")
            .etag
    }

    /// The organisation's current etag, as an admin reads it.
    pub async fn organisation_etag(&self, id: &str) -> String {
        self.organisations()
            .get_organisation(pb::GetOrganisationRequest {
                key: Some(pb::get_organisation_request::Key::Id(id.to_owned())),
            })
            .await
            .expect("read the organisation's etag")
            .into_inner()
            .organisation
            .expect("organisation")
            .etag
    }

    /// The comment's current etag, as an admin reads it.
    pub async fn comment_etag(&self, id: &str) -> String {
        self.comments()
            .get_comment(pb::GetCommentRequest { id: id.to_owned() })
            .await
            .expect("read the comment's etag")
            .into_inner()
            .comment
            .expect("comment")
            .etag
    }

    /// Creates a valid agent.
    pub async fn agent(&self, login: &str, manage_customers: bool) -> pb::Agent {
        self.agents()
            .create_agent(pb::CreateAgentRequest {
                request_id: String::new(),
                agent: Some(pb::Agent {
                    login: login.to_owned(),
                    manage_customers,
                    ..Default::default()
                }),
            })
            .await
            .expect("create agent")
            .into_inner()
            .agent
            .expect("agent")
    }

    /// Creates a token for `owner` and returns its secret.
    pub async fn token(&self, owner: pb::token_owner::Owner) -> String {
        self.token_expiring(owner, None).await
    }

    /// Creates a token for `owner` expiring at `expire_time` and returns its secret.
    pub async fn token_expiring(
        &self,
        owner: pb::token_owner::Owner,
        expire_time: Option<prost_types::Timestamp>,
    ) -> String {
        self.agents()
            .create_token(pb::CreateTokenRequest {
                owner: Some(pb::TokenOwner { owner: Some(owner) }),
                description: "test".into(),
                expire_time,
            })
            .await
            .expect("create token")
            .into_inner()
            .secret
    }

    /// Creates a valid group.
    pub async fn group(&self, name: &str) -> pb::Group {
        self.groups()
            .create_group(pb::CreateGroupRequest {
                request_id: String::new(),
                group: Some(pb::Group {
                    name: name.to_owned(),
                    ..Default::default()
                }),
            })
            .await
            .expect("create group")
            .into_inner()
            .group
            .expect("group")
    }

    /// Grants `subject` `level` on `group_id` in `context`.
    pub async fn grant(
        &self,
        subject: pb::subject::Subject,
        group_id: &str,
        level: pb::PermissionLevel,
        context: pb::GrantContext,
    ) -> pb::Grant {
        self.permissions()
            .grant_permission(pb::GrantPermissionRequest {
                grant: Some(grant_of(subject, group_id, level, context)),
            })
            .await
            .expect("grant")
            .into_inner()
            .grant
            .expect("grant")
    }

    /// Sets `subject`'s level on `group_id` through SetPermission: the grant and the level it
    /// had before.
    pub async fn set_level(
        &self,
        subject: pb::subject::Subject,
        group_id: &str,
        level: pb::PermissionLevel,
        context: pb::GrantContext,
    ) -> (pb::Grant, pb::PermissionLevel) {
        let set = self
            .permissions()
            .set_permission(pb::SetPermissionRequest {
                grant: Some(grant_of(subject, group_id, level, context)),
            })
            .await
            .expect("set permission")
            .into_inner();
        let previous = set.previous_level();
        (set.grant.expect("grant"), previous)
    }

    /// Creates a valid organisation with this business key and these email domains
    /// (domain assignment on when there are any).
    pub async fn organisation(&self, code: &str, domains: &[&str]) -> pb::Organisation {
        self.organisations()
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    code: code.to_owned(),
                    name: format!("{code} Ltd"),
                    country: "DE".to_owned(),
                    email_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
                    domain_assignment: !domains.is_empty(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .expect("create organisation")
            .into_inner()
            .organisation
            .expect("organisation")
    }

    /// Creates `customer`.
    pub async fn customer(&self, customer: pb::Customer) -> pb::Customer {
        self.customers()
            .create_customer(pb::CreateCustomerRequest {
                customer: Some(customer),
                request_id: String::new(),
            })
            .await
            .expect("create customer")
            .into_inner()
            .customer
            .expect("customer")
    }

    /// Reads customer `id`.
    pub async fn customer_by_id(&self, id: &str) -> pb::Customer {
        self.customers()
            .get_customer(pb::GetCustomerRequest {
                key: Some(pb::get_customer_request::Key::Id(id.to_owned())),
            })
            .await
            .expect("get customer")
            .into_inner()
            .customer
            .expect("customer")
    }

    /// Turns automatic organisations on (with `country`) or off.
    pub async fn auto_create_organisations(&self, on: bool, country: &str) {
        let mut permissions = self.permissions();
        let current = permissions
            .get_settings(pb::GetSettingsRequest {})
            .await
            .expect("get settings")
            .into_inner()
            .settings
            .expect("settings");
        permissions
            .update_settings(pb::UpdateSettingsRequest {
                settings: Some(pb::Settings {
                    auto_create_organisations: on,
                    auto_create_organisation_country: country.to_owned(),
                    etag: current.etag,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec![
                        "auto_create_organisations".into(),
                        "auto_create_organisation_country".into(),
                    ],
                }),
            })
            .await
            .expect("update settings");
    }

    /// Rows in `table` now.
    pub async fn count(&self, table: Table) -> i64 {
        self.store.count_rows(table).await.expect("count rows")
    }

    /// Row counts of every table, to show that a refused request wrote nothing.
    pub async fn snapshot(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in [
            Table::Organisations,
            Table::OrganisationDomains,
            Table::ChangeEvents,
            Table::IdempotencyKeys,
            Table::Customers,
            Table::CustomerEmails,
            Table::CustomerOrganisations,
            Table::Tickets,
            Table::TicketCustomers,
            Table::ContactGroups,
            Table::ContactGroupMembers,
            Table::PriceLists,
            Table::PriceListItems,
            Table::CustomerTypes,
            Table::FieldDefinitions,
            Table::Directories,
        ] {
            counts.push(self.count(table).await);
        }
        counts
    }

    /// A second server (a replica) on the same database.
    pub async fn replica(&self) -> Replica {
        self.replica_with(|_| {}).await
    }

    /// A second server on the same database with the same clock, whose configuration
    /// `adjust` may change first.
    pub async fn replica_with(&self, adjust: impl FnOnce(&mut Config)) -> Replica {
        let mut config = Config::new(self.database.url.clone());
        config.health_interval = std::time::Duration::from_millis(200);
        config.clock = self.config.clock.clone();
        adjust(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(clientele::run(config, listener, async {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_lazy();
        let mut task = Some(task);
        wait_until_serving(&channel, &mut task).await;
        Replica {
            addr,
            channel,
            shutdown: Some(shutdown),
            task,
        }
    }

    /// Begins shutdown, as SIGTERM would.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits for the server to stop; returns what `run` returned.
    pub async fn join(&mut self) -> Result<(), clientele::server::ServeError> {
        match self.task.take() {
            Some(task) => task.await.expect("server task panicked"),
            None => Ok(()),
        }
    }

    /// Shuts the server down and checks that it stopped cleanly.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        self.join().await.expect("server stopped with an error");
        self.store.clone().close().await;
    }
}

async fn wait_until_serving(
    channel: &Channel,
    task: &mut Option<JoinHandle<Result<(), clientele::server::ServeError>>>,
) {
    let mut health = HealthClient::new(channel.clone());
    let deadline = tokio::time::Instant::now() + 2 * PATIENCE;
    while tokio::time::Instant::now() < deadline {
        let checked = health
            .check(tonic_health::pb::HealthCheckRequest::default())
            .await;
        if checked.is_ok_and(|r| r.into_inner().status == 1) {
            return;
        }
        if task.as_ref().is_some_and(JoinHandle::is_finished) {
            let outcome = task.take().expect("task").await;
            panic!("the server stopped during start-up: {outcome:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the server did not start serving");
}

/// A connection to `addr` with HTTP/2's smallest usual windows (64 KiB), so that what a
/// server sends ahead of a slow reader is not hidden in a large client-side buffer.
pub async fn small_window_channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("connect")
}

/// Another server process on a test server's database.
pub struct Replica {
    /// Where the replica listens.
    pub addr: SocketAddr,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), clientele::server::ServeError>>>,
}

impl Replica {
    /// A channel to the replica calling as the holder of `secret`.
    pub fn authed(&self, secret: &str) -> Authed {
        InterceptedService::new(self.channel.clone(), Bearer::new(Some(secret)))
    }

    /// Stops the replica.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("replica task")
                .expect("replica stopped cleanly");
        }
    }
}

/// Asserts that `result` failed with `code`; returns the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Ok(value) => panic!("expected {code:?}, got Ok({value:?})"),
        Err(status) => {
            assert_eq!(status.code(), code, "unexpected status: {status:?}");
            status
        }
    }
}

/// The fields named by the `BadRequest` details of `status`.
pub fn violated_fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The `ErrorInfo` reason of `status`.
pub fn reason(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
}

/// Asserts INVALID_ARGUMENT with a field violation naming `field`.
#[track_caller]
pub fn expect_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    let status = expect_code(result, Code::InvalidArgument);
    let fields = violated_fields(&status);
    assert!(
        fields.iter().any(|f| f == field),
        "expected a violation of {field}, got {fields:?} ({})",
        status.message()
    );
}

/// Runs `futures` at the same time and collects their outputs in order.
pub async fn concurrently<F, T>(futures: Vec<F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task panicked"));
    }
    outputs
}
