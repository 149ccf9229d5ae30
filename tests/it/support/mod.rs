//! The test harness: a real server per test, generated clients, and database access for
//! checking what was (not) written.

#![allow(dead_code)]

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Once, OnceLock},
};

use clientele::{
    Config,
    proto::v1::{
        self as pb, customer_service_client::CustomerServiceClient,
        organisation_service_client::OrganisationServiceClient,
        permission_service_client::PermissionServiceClient,
    },
    store::{Store, StoreOptions, Table},
};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::{Code, Status, transport::Channel};
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

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

fn require_postgres() -> bool {
    std::env::var("CLIENTELE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
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
                let Ok(admin_url) = std::env::var("CLIENTELE_TEST_POSTGRES_URL") else {
                    assert!(
                        !require_postgres(),
                        "CLIENTELE_REQUIRE_POSTGRES=1 but CLIENTELE_TEST_POSTGRES_URL is not set"
                    );
                    skip_note("PostgreSQL tests skipped: CLIENTELE_TEST_POSTGRES_URL is not set");
                    return None;
                };
                let admin = match Database::connect(&admin_url).await {
                    Ok(admin) => admin,
                    Err(error) => {
                        assert!(
                            !require_postgres(),
                            "CLIENTELE_REQUIRE_POSTGRES=1 but {admin_url} is unreachable: {error}"
                        );
                        skip_note(&format!("PostgreSQL tests skipped: {error}"));
                        return None;
                    }
                };
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

fn skip_note(message: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| eprintln!("note: {message}"));
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

/// A running server and what a test needs to talk to it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub database: TestDatabase,
    /// A store on the same database, for looking at what was written.
    pub store: Store,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), clientele::server::ServeError>>>,
}

impl TestServer {
    /// A server with the default test configuration, or `None` when the backend is skipped.
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, |_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    pub async fn start_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        init_logging();
        let database = TestDatabase::create(backend).await?;
        let mut config = Config::new(database.url.clone());
        config.shutdown_timeout = std::time::Duration::from_secs(10);
        config.health_interval = std::time::Duration::from_millis(200);
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
        Some(Self {
            addr,
            store: Store::connect(&database.url, &StoreOptions::default())
                .await
                .expect("inspection store"),
            database,
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

    pub fn organisations(&self) -> OrganisationServiceClient<Channel> {
        OrganisationServiceClient::new(self.channel())
    }

    pub fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel())
    }

    pub fn customers(&self) -> CustomerServiceClient<Channel> {
        CustomerServiceClient::new(self.channel())
    }

    pub fn permissions(&self) -> PermissionServiceClient<Channel> {
        PermissionServiceClient::new(self.channel())
    }

    /// Creates a valid organisation with this business key and these email domains
    /// (domain assignment on when there are any).
    pub async fn organisation(&self, customer_id: &str, domains: &[&str]) -> pb::Organisation {
        self.organisations()
            .create_organisation(pb::CreateOrganisationRequest {
                organisation: Some(pb::Organisation {
                    customer_id: customer_id.to_owned(),
                    name: format!("{customer_id} Ltd"),
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
        ] {
            counts.push(self.count(table).await);
        }
        counts
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
    for _ in 0..400 {
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
