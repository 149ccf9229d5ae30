//! The `clientele` command: `serve` (the default), `migrate`, `health` and `import`.

mod cli;

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use std::sync::Arc;

use clientele::domain::access::ServiceWork;
use clientele::{
    Config,
    clock::{Clock, SystemClock},
    domain::Tokens,
    model::TokenOwner,
    server::{DEFAULT_DATABASE_URL, termination_signal},
    store::{Store, StoreOptions},
    telemetry::{self, LogFormat, LogTarget},
};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

/// mimalloc instead of glibc's allocator: a streamed list allocates and frees a few dozen
/// small buffers per ticket from several threads, and glibc's malloc, free and
/// consolidation took a quarter of the server's time there (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The address the server listens on unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// Clientele: the customer master of a helpdesk as one gRPC service.
#[derive(Parser, Debug)]
#[command(
    name = "clientele",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gRPC server (what a bare `clientele` does).
    Serve(Box<ServeArgs>),
    /// Bring the database schema up to date, then exit; `status` lists the migrations,
    /// `down N` undoes the last N.
    Migrate(MigrateArgs),
    /// Write a consistent copy of the SQLite database to FILE, also while the server writes
    /// (PostgreSQL is backed up with pg_dump).
    Backup(BackupArgs),
    /// Ask a running server for its gRPC health: exit 0 when SERVING, 1 otherwise.
    Health(HealthArgs),
    /// Stream a CSV file of customers or organisations to a running server's import; exit 0
    /// when every row was imported, 1 when some rows failed, 2 when the import could not run.
    Import(ImportArgs),
    /// Manage API tokens directly in the database (for the first admin token, or when no
    /// admin token is at hand).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print its secret (once) on standard output.
    Create(TokenCreateArgs),
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("owner").required(true).args(["admin", "agent", "customer"])))]
struct TokenCreateArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// An administrator's token.
    #[arg(long)]
    admin: bool,
    /// The token of the agent with this id.
    #[arg(long, value_name = "ID")]
    agent: Option<uuid::Uuid>,
    /// The token of the customer with this id.
    #[arg(long, value_name = "ID")]
    customer: Option<uuid::Uuid>,
    /// What the token is for.
    #[arg(long, default_value = "")]
    description: String,
    /// Let the token expire after this long, e.g. `90d`, `2w` or `12h` (a day is 24 hours).
    #[arg(long, value_parser = duration)]
    expires_in: Option<Duration>,
}

#[derive(Args, Debug)]
struct MigrateArgs {
    #[command(subcommand)]
    action: Option<MigrateAction>,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Subcommand, Debug)]
enum MigrateAction {
    /// List every migration and whether it is applied; exit 1 when some are pending.
    Status,
    /// Undo the last STEPS applied migrations, newest first (what they added is lost).
    Down {
        /// How many migrations to undo.
        #[arg(value_parser = clap::value_parser!(u32).range(1..))]
        steps: u32,
    },
}

#[derive(Args, Debug)]
struct BackupArgs {
    /// The new file to write the copy to (it must not exist).
    file: PathBuf,
    #[command(flatten)]
    database: DatabaseArgs,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// What the file holds.
    #[arg(value_enum)]
    kind: cli::import::Kind,
    /// The CSV file; its first line names the columns (see README.md).
    file: PathBuf,
    /// The server to import into.
    #[arg(
        long,
        env = "CLIENTELE_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// An API token of an admin or of an agent with manage_customers.
    #[arg(long, env = "CLIENTELE_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Args, Debug)]
struct DatabaseArgs {
    /// `sqlite://FILE?mode=rwc` or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = DEFAULT_DATABASE_URL,
        global = true
    )]
    database_url: String,
    /// Largest number of pooled database connections (on PostgreSQL, organisation reads hold
    /// up to as many again of their own, past the pool's ping on release; on SQLite, writes
    /// run on one more, the writer's own).
    #[arg(
        long,
        env = "CLIENTELE_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    db_max_connections: u32,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on: `HOST:PORT`, where the host is an IP address or a name
    /// (`localhost:50051`, `[::]:50051`).
    #[arg(long, env = "CLIENTELE_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: String,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Log format.
    #[arg(long, env = "CLIENTELE_LOG_FORMAT", value_enum, default_value_t)]
    log_format: LogFormat,
    /// How long in-flight requests may take to finish on SIGTERM/SIGINT, e.g. `25s`.
    #[arg(long, env = "CLIENTELE_SHUTDOWN_TIMEOUT", default_value = "25s", value_parser = duration)]
    shutdown_timeout: Duration,
    /// How long open streams (ticket lists, watches, downloads) may run on after SIGTERM;
    /// then they end UNAVAILABLE and the client calls another replica, e.g. `5s`.
    #[arg(long, env = "CLIENTELE_STREAM_GRACE", default_value = "5s", value_parser = duration)]
    stream_grace: Duration,
    /// Registered as the first admin token when no admin token works yet (at least 20
    /// characters; `openssl rand -hex 32` makes a good one).
    #[arg(long, env = "CLIENTELE_BOOTSTRAP_TOKEN", hide_env_values = true)]
    bootstrap_token: Option<String>,
    /// The largest attachment, in MiB.
    #[arg(long, env = "CLIENTELE_ATTACHMENT_LIMIT_MIB", default_value_t = 25)]
    attachment_limit: u64,
    /// How long a webhook receiver may take to answer a delivery, e.g. `10s`.
    #[arg(long, env = "CLIENTELE_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = duration)]
    webhook_timeout: Duration,
    /// The wait before a failed webhook delivery is tried again; it doubles with every
    /// further attempt, up to `--webhook-retry-max`.
    #[arg(long, env = "CLIENTELE_WEBHOOK_RETRY_BASE", default_value = "1s", value_parser = duration)]
    webhook_retry_base: Duration,
    /// The longest wait between two attempts at a webhook delivery, e.g. `1h`.
    #[arg(long, env = "CLIENTELE_WEBHOOK_RETRY_MAX", default_value = "1h", value_parser = duration)]
    webhook_retry_max: Duration,
    /// How long the recorded values of customer changes are kept in the change log, e.g.
    /// `365d`; older ones are erased by a background job (the entries themselves stay). Kept
    /// for ever when not given.
    #[arg(long, env = "CLIENTELE_CUSTOMER_HISTORY_RETENTION", value_parser = duration)]
    customer_history_retention: Option<Duration>,
    /// A link of the overviews, `NAME=URL` with placeholders such as `{city}` (repeat the flag
    /// for several); replaces the default map and web links.
    #[arg(long = "link-template", value_parser = link_template)]
    link_templates: Vec<clientele::domain::links::LinkTemplate>,
    /// A JSON file of the LDAP directories customers are read from (README: Customer
    /// sources); none when not given.
    #[arg(long, env = "CLIENTELE_CUSTOMER_SOURCES")]
    customer_sources: Option<std::path::PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    /// The secret page tokens are signed with (at least 20 characters), the same on every
    /// replica; without it each process signs with a key of its own.
    #[arg(long, env = "CLIENTELE_PAGE_TOKEN_KEY", hide_env_values = true)]
    page_token_key: Option<String>,
    /// Serve TLS with this certificate chain (PEM); read again when the file changes.
    #[arg(long, env = "CLIENTELE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of the certificate (PEM).
    #[arg(long, env = "CLIENTELE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Require client certificates that chain to a CA in this PEM file (mutual TLS).
    #[arg(long, env = "CLIENTELE_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Origins whose pages may call gRPC-Web (CORS), comma-separated, e.g.
    /// `https://desk.example.com`; `*` for any.
    #[arg(long, env = "CLIENTELE_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Serve Prometheus metrics (`/metrics`) and readiness (`/ready`, `/live`) over HTTP on
    /// this address, e.g. `0.0.0.0:9090`; never on the gRPC port. Off by default.
    #[arg(long, env = "CLIENTELE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Export every RPC's span (and the database work under it) over OTLP/gRPC to this
    /// collector, e.g. `http://otel-collector:4317`. Off by default.
    #[arg(long, env = "CLIENTELE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

/// The limits of what the server takes on (README.md, "Limits").
#[derive(Args, Debug)]
struct LimitArgs {
    /// The largest request message, in KiB; a larger one is answered RESOURCE_EXHAUSTED.
    #[arg(long, env = "CLIENTELE_MAX_REQUEST_KIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    max_request_kib: u32,
    /// The largest response message, in KiB.
    #[arg(long, env = "CLIENTELE_MAX_RESPONSE_KIB", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    max_response_kib: u32,
    /// How often an idle HTTP/2 connection is pinged, e.g. `60s`; `0s` never.
    #[arg(long, env = "CLIENTELE_HTTP2_KEEPALIVE_INTERVAL", default_value = "60s", value_parser = duration)]
    http2_keepalive_interval: Duration,
    /// How long a keepalive ping may go unanswered before the connection is closed.
    #[arg(long, env = "CLIENTELE_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = duration)]
    http2_keepalive_timeout: Duration,
    /// The most concurrent calls on one connection.
    #[arg(long, env = "CLIENTELE_MAX_CONCURRENT_STREAMS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_streams: u32,
    /// The most requests worked on at once; past it requests are answered RESOURCE_EXHAUSTED
    /// at once. 0: no limit.
    #[arg(long, env = "CLIENTELE_MAX_IN_FLIGHT", default_value_t = 0)]
    max_in_flight: usize,
    /// Requests per second each principal (token's owner) may send on average; over it calls
    /// are answered RESOURCE_EXHAUSTED with RetryInfo. 0: no limit.
    #[arg(long, env = "CLIENTELE_RATE_LIMIT", default_value_t = 0.0)]
    rate_limit: f64,
    /// Requests a principal may send at once after a quiet spell; by default twice the rate.
    #[arg(long, env = "CLIENTELE_RATE_BURST")]
    rate_burst: Option<u32>,
}

impl LimitArgs {
    fn limits(&self) -> clientele::server::limits::Limits {
        let rate = (self.rate_limit > 0.0).then(|| clientele::auth::rate::Rate {
            per_second: self.rate_limit,
            burst: self
                .rate_burst
                .unwrap_or((self.rate_limit * 2.0).ceil().min(f64::from(u32::MAX)) as u32),
        });
        clientele::server::limits::Limits {
            max_decoding_message_size: self.max_request_kib as usize * 1024,
            max_encoding_message_size: self.max_response_kib as usize * 1024,
            http2_keepalive_interval: (!self.http2_keepalive_interval.is_zero())
                .then_some(self.http2_keepalive_interval),
            http2_keepalive_timeout: self.http2_keepalive_timeout,
            max_concurrent_streams: Some(self.max_concurrent_streams),
            max_in_flight: (self.max_in_flight > 0).then_some(self.max_in_flight),
            rate,
        }
    }
}

#[derive(Args, Debug)]
struct HealthArgs {
    /// Server address; by default the `CLIENTELE_LISTEN` address (an unspecified IP such as
    /// 0.0.0.0 becomes loopback), else 127.0.0.1:50051.
    #[arg(long)]
    addr: Option<String>,
    /// Service to check; empty means the whole server.
    #[arg(long, default_value = "")]
    service: String,
    /// Give up after this long, e.g. `3s`.
    #[arg(long, default_value = "3s", value_parser = duration)]
    timeout: Duration,
}

/// A duration such as `500ms`, `25s`, `12h`, `90d` or `2w`; a day is 24 hours. Months and
/// years are refused: their length depends on when they start.
fn link_template(text: &str) -> Result<clientele::domain::links::LinkTemplate, String> {
    clientele::domain::links::LinkTemplate::parse(text)
}

fn duration(text: &str) -> Result<Duration, String> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| format!("not a duration like 25s, 12h or 90d: {e}"))?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err("months and years vary in length; give days (e.g. 90d) instead".into());
    }
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("not a duration: {e}"))?;
    Duration::try_from(signed).map_err(|_| "must not be negative".to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Migrate(args)) => match args.action {
            None => migrate(args.database).await,
            Some(MigrateAction::Status) => migration_status(args.database).await,
            Some(MigrateAction::Down { steps }) => migrate_down(args.database, steps).await,
        },
        Some(Command::Backup(args)) => backup(args).await,
        Some(Command::Health(args)) => health(args).await,
        Some(Command::Import(args)) => {
            ExitCode::from(cli::import::run(args.kind, &args.file, &args.server, &args.token).await)
        }
        Some(Command::Token(TokenCommand::Create(args))) => create_token(args).await,
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let traces = match telemetry::init_with_traces(
        args.log_format,
        LogTarget::Stdout,
        args.otlp_endpoint.as_deref(),
    ) {
        Ok(traces) => traces,
        Err(error) => {
            eprintln!("cannot export traces: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = serve_logged(args).await;
    if let Some(traces) = traces {
        // The exporter sends what is left before the process ends.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    code
}

async fn serve_logged(args: ServeArgs) -> ExitCode {
    let shutdown = match termination_signal() {
        Ok(shutdown) => shutdown,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM and SIGINT");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen.as_str()).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(addr = %args.listen, %error, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::new(args.database.database_url.clone());
    if let Some(path) = &args.customer_sources {
        match clientele::domain::customer_source::config::load(path) {
            Ok(sources) => config.customer_sources = sources,
            Err(error) => {
                tracing::error!(%error, "the customer sources cannot be used");
                return ExitCode::FAILURE;
            }
        }
    }
    config.store = store_options(&args.database);
    config.shutdown_timeout = args.shutdown_timeout;
    config.stream_grace = args.stream_grace;
    config.bootstrap_token = args.bootstrap_token.filter(|token| !token.is_empty());
    config.attachment_limit = args.attachment_limit.saturating_mul(1024 * 1024);
    config.webhooks = clientele::server::webhooks::WebhookOptions {
        timeout: args.webhook_timeout,
        retry_base: args.webhook_retry_base,
        retry_max: args.webhook_retry_max,
        ..config.webhooks
    };
    config.customer_history_retention = args.customer_history_retention;
    if !args.link_templates.is_empty() {
        config.link_templates = args.link_templates;
    }
    config.limits = args.limits.limits();
    config.page_token_key = args.page_token_key.filter(|key| !key.is_empty());
    config.cors_origins = args.cors_origins;
    config.metrics_listen = args.metrics_listen;
    config.tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(clientele::server::tls::TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca,
        }),
        _ => None,
    };
    match clientele::run(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(args: DatabaseArgs) -> ExitCode {
    telemetry::init(LogFormat::Human, LogTarget::Stderr);
    let migrated = async {
        let store = Store::connect(&args.database_url, &store_options(&args)).await?;
        store.migrate().await?;
        store.close().await;
        Ok::<_, clientele::error::Error>(())
    };
    match migrated.await {
        Ok(()) => {
            tracing::info!("the database schema is up to date");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "migration failed");
            ExitCode::FAILURE
        }
    }
}

/// The store of an existing installation: an SQLite file that is not there is not created
/// (a typo in the path must not look like an empty database).
async fn existing_store(args: &DatabaseArgs) -> Result<Store, String> {
    if let Some(file) = missing_sqlite_file(&args.database_url) {
        return Err(format!(
            "there is no database {}; point --database-url at the server's",
            file.display()
        ));
    }
    Store::connect(&args.database_url, &store_options(args))
        .await
        .map_err(|error| error.to_string())
}

async fn migration_status(args: DatabaseArgs) -> ExitCode {
    telemetry::init(LogFormat::Human, LogTarget::Stderr);
    let listed = async {
        let store = existing_store(&args).await?;
        let status = store.migration_status().await.map_err(|e| e.to_string());
        store.close().await;
        status
    };
    match listed.await {
        Ok(migrations) => {
            let pending = migrations.iter().filter(|(_, applied)| !applied).count();
            for (name, applied) in &migrations {
                println!("{} {name}", if *applied { "applied" } else { "pending" });
            }
            if pending == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("{pending} migrations pending: run `clientele migrate`");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            tracing::error!(%error, "cannot read the migrations");
            ExitCode::from(2)
        }
    }
}

async fn migrate_down(args: DatabaseArgs, steps: u32) -> ExitCode {
    telemetry::init(LogFormat::Human, LogTarget::Stderr);
    let undone = async {
        let store = existing_store(&args).await?;
        let outcome = store.migrate_down(steps).await.map_err(|e| e.to_string());
        store.close().await;
        outcome
    };
    match undone.await {
        Ok(()) => {
            tracing::info!(steps, "migrations undone");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "undoing migrations failed");
            ExitCode::FAILURE
        }
    }
}

async fn backup(args: BackupArgs) -> ExitCode {
    telemetry::init(LogFormat::Human, LogTarget::Stderr);
    let copied = async {
        let store = existing_store(&args.database).await?;
        let outcome = store.backup_to(&args.file).await.map_err(|e| e.to_string());
        store.close().await;
        outcome
    };
    match copied.await {
        Ok(()) => {
            tracing::info!(file = %args.file.display(), "backup written");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "backup failed");
            ExitCode::FAILURE
        }
    }
}

async fn create_token(args: TokenCreateArgs) -> ExitCode {
    telemetry::init(LogFormat::Human, LogTarget::Stderr);
    let owner = match (args.admin, args.agent, args.customer) {
        (true, _, _) => TokenOwner::Admin,
        (_, Some(id), _) => TokenOwner::Agent(id),
        (_, _, Some(id)) => TokenOwner::Customer(id),
        _ => unreachable!("clap requires exactly one owner"),
    };
    // A token belongs to an existing installation: an SQLite file the server has not made yet
    // is not created here, as a typo in the path or the wrong directory would.
    if let Some(file) = missing_sqlite_file(&args.database.database_url) {
        tracing::error!(
            "cannot create the token: there is no database {}; start the server once (or run \
             `clientele migrate`) to create it, or point --database-url at the server's",
            file.display()
        );
        return ExitCode::FAILURE;
    }
    let created = async {
        let store =
            Store::connect(&args.database.database_url, &store_options(&args.database)).await?;
        store.migrate().await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let tokens = Tokens::new(store.clone(), clock.clone());
        let expire_time = args
            .expires_in
            .map(|ttl| {
                jiff::SignedDuration::try_from(ttl)
                    .ok()
                    .and_then(|ttl| clock.now().checked_add(ttl).ok())
                    .ok_or_else(|| clientele::error::Error::invalid("expires_in", "is too long"))
            })
            .transpose()?;
        let created = tokens
            .create(
                &ServiceWork::START_UP.administrator(),
                owner,
                &args.description,
                expire_time,
            )
            .await;
        store.close().await;
        created
    };
    match created.await {
        Ok((token, secret)) => {
            tracing::info!(id = %token.id, owner = owner.kind(), "token created; its secret follows, shown once");
            println!("{secret}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "cannot create the token");
            ExitCode::FAILURE
        }
    }
}

/// The file of an SQLite `url` when it does not exist.
fn missing_sqlite_file(url: &str) -> Option<PathBuf> {
    use sea_orm::sqlx::sqlite::SqliteConnectOptions;
    let options: SqliteConnectOptions = url.strip_prefix("sqlite:").and(url.parse().ok())?;
    let file = options.get_filename();
    (!file.exists()).then(|| file.to_owned())
}

fn store_options(args: &DatabaseArgs) -> StoreOptions {
    StoreOptions {
        max_connections: args.db_max_connections.max(1),
        ..StoreOptions::default()
    }
}

async fn health(args: HealthArgs) -> ExitCode {
    let addr = args.addr.unwrap_or_else(|| {
        let listen = std::env::var("CLIENTELE_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.into());
        match listen.parse::<SocketAddr>() {
            Ok(mut socket) if socket.ip().is_unspecified() => {
                socket.set_ip(match socket {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
                socket.to_string()
            }
            _ => listen,
        }
    });
    let checked = async {
        // `host:port`, or a whole `http://host:port` as other tools take it.
        let uri = if addr.contains("://") {
            addr.clone()
        } else {
            format!("http://{addr}")
        };
        let channel = tonic::transport::Endpoint::from_shared(uri)?
            .connect_timeout(args.timeout)
            .timeout(args.timeout)
            .connect()
            .await?;
        let response = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(response.into_inner().status())
    };
    match tokio::time::timeout(args.timeout, checked).await {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("SERVING");
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            println!("{}", status.as_str_name());
            ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("health check of {addr} failed: {error}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("health check of {addr} timed out");
            ExitCode::FAILURE
        }
    }
}
