//! Start-up and shutdown: the database, health, reflection and the layers, around the
//! services built in [`services`]; graceful shutdown.

mod answers;
mod detach;
mod health;
pub mod limits;
mod observe;
mod outage;
mod rerun;
mod retention;
mod services;
pub mod tls;
pub mod webhooks;

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::oneshot};
use tokio_stream::{
    StreamExt,
    wrappers::{ReceiverStream, TcpListenerStream},
};
use tonic::{server::NamedService, transport::Server};
use tonic_health::{ServingStatus, pb::health_server::HealthServer, server::HealthReporter};

use self::services::Services;
use crate::{
    api::{
        AgentApi, ChangeApi, CommentApi, ContactGroupApi, CustomerApi, CustomerSourceApi,
        DirectoryApi, FieldCatalogueApi, GroupApi, OrganisationApi, PermissionApi, PriceListApi,
        PrivacyApi, SlaApi, TicketApi, WebhookApi,
    },
    auth::AuthLayer,
    clock::{Clock, SystemClock},
    error::Error,
    metrics::Metrics,
    proto::{
        self,
        v1::{
            agent_service_server::AgentServiceServer, change_service_server::ChangeServiceServer,
            comment_service_server::CommentServiceServer,
            contact_group_service_server::ContactGroupServiceServer,
            customer_service_server::CustomerServiceServer,
            customer_source_service_server::CustomerSourceServiceServer,
            directory_service_server::DirectoryServiceServer,
            field_catalogue_service_server::FieldCatalogueServiceServer,
            group_service_server::GroupServiceServer,
            organisation_service_server::OrganisationServiceServer,
            permission_service_server::PermissionServiceServer,
            price_list_service_server::PriceListServiceServer,
            privacy_service_server::PrivacyServiceServer, sla_service_server::SlaServiceServer,
            ticket_service_server::TicketServiceServer,
            webhook_service_server::WebhookServiceServer,
        },
    },
    store::{Store, StoreOptions},
    telemetry::RpcTraceLayer,
};

/// The SQLite file used when no `DATABASE_URL` is given: in the working directory, created
/// when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://clientele.db?mode=rwc";

/// The gRPC services this server implements, by their full names, for health reporting.
pub const SERVICE_NAMES: &[&str] = &[
    <OrganisationServiceServer<OrganisationApi> as NamedService>::NAME,
    <CustomerServiceServer<CustomerApi> as NamedService>::NAME,
    <CustomerSourceServiceServer<CustomerSourceApi> as NamedService>::NAME,
    <PermissionServiceServer<PermissionApi> as NamedService>::NAME,
    <GroupServiceServer<GroupApi> as NamedService>::NAME,
    <ContactGroupServiceServer<ContactGroupApi> as NamedService>::NAME,
    <PriceListServiceServer<PriceListApi> as NamedService>::NAME,
    <FieldCatalogueServiceServer<FieldCatalogueApi> as NamedService>::NAME,
    <DirectoryServiceServer<DirectoryApi> as NamedService>::NAME,
    <AgentServiceServer<AgentApi> as NamedService>::NAME,
    <SlaServiceServer<SlaApi> as NamedService>::NAME,
    <TicketServiceServer<TicketApi> as NamedService>::NAME,
    <CommentServiceServer<CommentApi> as NamedService>::NAME,
    <ChangeServiceServer<ChangeApi> as NamedService>::NAME,
    <WebhookServiceServer<WebhookApi> as NamedService>::NAME,
    <PrivacyServiceServer<PrivacyApi> as NamedService>::NAME,
];

/// How long ended streams get to deliver their end before a shutdown stops without them.
const STREAM_END: Duration = Duration::from_secs(1);

/// Everything [`run`] needs besides the listener.
#[derive(Clone, Debug)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Connection pool settings.
    pub store: StoreOptions,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub shutdown_timeout: Duration,
    /// How long open streams may run on after shutdown begins; then they end UNAVAILABLE.
    pub stream_grace: Duration,
    /// How often the database is checked for health reporting.
    pub health_interval: Duration,
    /// The source of time.
    pub clock: Arc<dyn Clock>,
    /// Registered as the first admin token when no admin token works yet
    /// (`CLIENTELE_BOOTSTRAP_TOKEN`).
    pub bootstrap_token: Option<String>,
    /// Counters of the server's streams, readable by whoever holds a clone.
    pub metrics: Arc<Metrics>,
    /// How many escalation events a watcher may fall behind before it must resync.
    pub watch_backlog: usize,
    /// How many messages wait for a slow watcher before the server stops sending to it.
    pub watch_buffer: usize,
    /// The largest attachment, in bytes.
    pub attachment_limit: u64,
    /// Message sizes, keepalive, concurrency and rates.
    pub limits: limits::Limits,
    /// The key page tokens are signed with, the same on every replica
    /// (`CLIENTELE_PAGE_TOKEN_KEY`); without one each process makes its own.
    pub page_token_key: Option<String>,
    /// Serve TLS (and require client certificates) from these files; plaintext without.
    pub tls: Option<tls::TlsFiles>,
    /// Where to serve metrics and readiness over HTTP (`--metrics-listen`); nowhere by default.
    pub metrics_listen: Option<SocketAddr>,
    /// The origins browsers may call gRPC-Web from (CORS); `*` for any. None by default:
    /// gRPC-Web then serves clients that are not browsers, and pages of no other origin.
    pub cors_origins: Vec<String>,
    /// How webhook deliveries are made.
    pub webhooks: webhooks::WebhookOptions,
    /// How long the recorded values of customer changes are kept; for ever when `None`.
    pub customer_history_retention: Option<Duration>,
    /// The URL templates of the overviews' links.
    pub link_templates: Vec<crate::domain::links::LinkTemplate>,
    /// The LDAP directories customers are read from (`--customer-sources`).
    pub customer_sources: Vec<crate::domain::customer_source::config::SourceConfig>,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            store: StoreOptions::default(),
            shutdown_timeout: Duration::from_secs(25),
            stream_grace: Duration::from_secs(5),
            health_interval: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
            bootstrap_token: None,
            metrics: Arc::default(),
            watch_backlog: 16_384,
            watch_buffer: 256,
            attachment_limit: 25 * 1024 * 1024,
            limits: limits::Limits::default(),
            page_token_key: None,
            tls: None,
            cors_origins: Vec::new(),
            metrics_listen: None,
            webhooks: webhooks::WebhookOptions::default(),
            customer_history_retention: None,
            link_templates: crate::domain::links::LinkTemplate::defaults(),
            customer_sources: Vec::new(),
        }
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable; nothing was started.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(#[from] Error),
    /// The listener or the gRPC transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not read the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The listener's address could not be read.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects to the database, migrates it, and serves gRPC on `listener` until `shutdown`
/// completes. Then health turns NOT_SERVING, the listener stops accepting, and in-flight
/// requests get `config.shutdown_timeout` to finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let address: SocketAddr = listener.local_addr()?;
    // Checked before the database is touched: a bad value must not leave a migrated database.
    if let Some(secret) = &config.bootstrap_token
        && secret.len() < crate::domain::access::MIN_SECRET_LENGTH
    {
        return Err(ServeError::Config(format!(
            "CLIENTELE_BOOTSTRAP_TOKEN must be at least {} characters long (`openssl rand -hex \
             32` makes a good one)",
            crate::domain::access::MIN_SECRET_LENGTH
        )));
    }
    match &config.page_token_key {
        Some(key) if key.len() < crate::domain::access::MIN_SECRET_LENGTH => {
            return Err(ServeError::Config(format!(
                "CLIENTELE_PAGE_TOKEN_KEY must be at least {} characters long",
                crate::domain::access::MIN_SECRET_LENGTH
            )));
        }
        Some(key) => crate::domain::paging::use_key(key),
        None => {
            // The process's own key (one for every server in it) needs the system's
            // randomness; without it the server does not start.
            getrandom::fill(&mut [0u8; 32]).map_err(|error| {
                ServeError::Config(format!(
                    "no randomness for a page token key ({error}); set CLIENTELE_PAGE_TOKEN_KEY"
                ))
            })?;
            crate::domain::paging::ensure_key();
            tracing::info!(
                "page tokens are signed with a key of this process: set \
                 CLIENTELE_PAGE_TOKEN_KEY to the same secret on every replica so that any of \
                 them resumes a list"
            );
        }
    }
    let tls = match &config.tls {
        Some(files) => Some(Arc::new(
            tls::Reloading::new(files.clone()).map_err(ServeError::Config)?,
        )),
        None => None,
    };
    // Bound before the database is touched: a port in use must not leave a migrated database.
    let metrics_listener = match config.metrics_listen {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|error| {
            ServeError::Config(format!("cannot serve metrics on {address}: {error}"))
        })?),
        None => None,
    };
    let store = Store::connect(&config.database_url, &config.store).await?;
    store.migrate().await?;
    tracing::info!(backend = ?store.backend(), "database ready");

    let reporter = HealthReporter::new();
    let (end_health_watches, health_watches_end) = tokio::sync::watch::channel(false);
    let health_service = HealthServer::new(health::ClosingHealth::new(
        reporter.clone(),
        health_watches_end,
    ));
    health::set_all(&reporter, ServingStatus::Serving).await;
    let outage = outage::Outage::default();
    let watchdog = tokio::spawn(health::watch_database(
        store.clone(),
        reporter.clone(),
        config.health_interval,
        outage.clone(),
    ));

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    let clock = config.clock.clone();
    let services = Services::new(&store, &config);
    if let Some(secret) = &config.bootstrap_token {
        if services.tokens.bootstrap(secret).await? {
            tracing::info!("registered CLIENTELE_BOOTSTRAP_TOKEN as the first admin token");
        } else {
            tracing::info!(
                "an admin token exists already; CLIENTELE_BOOTSTRAP_TOKEN is not needed"
            );
        }
    }
    let escalations = services.escalations.clone();
    let closing_watches = escalations.clone();
    // Uploads a crashed server left unfinished are discarded once they are an hour old.
    let abandoned = store
        .discard_abandoned_uploads(clock.now() - jiff::SignedDuration::from_hours(1))
        .await?;
    if abandoned > 0 {
        tracing::info!(abandoned, "discarded unfinished uploads");
    }
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let observer = metrics_listener.map(|listener| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(addr = %address, "serving metrics and readiness over HTTP");
        }
        tokio::spawn(observe::serve(
            listener,
            observe::Observed {
                metrics: config.metrics.clone(),
                store: store.clone(),
                outage: outage.clone(),
                stopping: stopping.clone(),
            },
        ))
    });
    // The escalation scheduler and hub, and the wake-ups from other replicas.
    let background = [
        tokio::spawn(escalations.clone().run()),
        tokio::spawn({
            let store = store.clone();
            async move { store.listen_to_other_replicas().await }
        }),
        tokio::spawn({
            let store = store.clone();
            async move { store.run_sequencer().await }
        }),
        tokio::spawn(webhooks::run(store.clone(), clock.clone(), config.webhooks)),
        tokio::spawn(retention::run(
            store.clone(),
            clock.clone(),
            config.customer_history_retention,
        )),
        tokio::spawn(services.customer_sources.clone().run()),
    ];

    let routes = services
        .routes
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    let drain = answers::Drain::new();
    let limits = &config.limits;
    let limiter = limits
        .rate
        .map(|rate| Arc::new(crate::auth::rate::RateLimiter::new(rate)));
    let router = Server::builder()
        .http2_keepalive_interval(limits.http2_keepalive_interval)
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        .max_concurrent_streams(limits.max_concurrent_streams)
        // gRPC-Web (HTTP/1.1 or HTTP/2) on the same port, translated to gRPC before anything
        // else sees it.
        .accept_http1(true)
        .layer(cors(&config.cors_origins))
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(RpcTraceLayer::new(config.metrics.clone()))
        .layer(answers::AnswersLayer::new(drain.clone()))
        .layer(outage::FailFastLayer::new(outage, store.clone()))
        .layer(limits::ShedLayer::new(limits.max_in_flight))
        .layer(AuthLayer::new(services.authenticator.clone(), limiter))
        .layer(rerun::RerunLayer::new(limits.max_decoding_message_size))
        .layer(detach::DetachLayer)
        .add_routes(routes);

    tracing::info!(addr = %address, tls = tls.is_some(), "listening");
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async {
        let _ = stopped.await;
    };
    let mut acceptor = None;
    let mut serve: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
        match tls {
            Some(tls) => {
                let (incoming, task) = tls::accept(listener, tls);
                acceptor = Some(task);
                Box::pin(
                    router.serve_with_incoming_shutdown(ReceiverStream::new(incoming), stopped),
                )
            }
            None => {
                // Small answers go out at once: without TCP_NODELAY, Nagle's algorithm holds
                // the tail of a response until the client's delayed ACK, some 40 ms later.
                let incoming = TcpListenerStream::new(listener).map(|stream| {
                    let stream = stream?;
                    stream.set_nodelay(true)?;
                    Ok::<_, std::io::Error>(stream)
                });
                Box::pin(router.serve_with_incoming_shutdown(incoming, stopped))
            }
        };

    tokio::select! {
        result = &mut serve => {
            watchdog.abort();
            background.iter().chain(&acceptor).chain(&observer).for_each(|task| task.abort());
            return result.map_err(ServeError::from);
        }
        () = shutdown => {}
    }

    tracing::info!("shutting down: health is NOT_SERVING, in-flight requests may finish");
    watchdog.abort();
    stopping.store(true, std::sync::atomic::Ordering::Release);
    health::set_all(&reporter, ServingStatus::NotServing).await;
    // Open watch streams would keep the server from draining; the scheduler stops too.
    closing_watches.close();
    end_health_watches.send_replace(true);
    background
        .iter()
        .chain(&acceptor)
        .for_each(|task| task.abort());
    let _ = stop.send(());
    let began = tokio::time::Instant::now();
    let finished =
        match tokio::time::timeout(config.stream_grace.min(config.shutdown_timeout), &mut serve)
            .await
        {
            Ok(result) => Some(result),
            Err(_) => {
                // Open streams end UNAVAILABLE now (those whose clients read on). What may still
                // hold the server: requests being worked on, which get the rest of the shutdown
                // timeout, and clients that stopped reading, which do not.
                drain.end_streams();
                let ended = tokio::time::Instant::now();
                loop {
                    let left = config.shutdown_timeout.saturating_sub(began.elapsed());
                    if left.is_zero() {
                        break None;
                    }
                    match tokio::time::timeout(left.min(Duration::from_millis(50)), &mut serve)
                        .await
                    {
                        Ok(result) => break Some(result),
                        Err(_) if drain.in_progress() == 0 && ended.elapsed() >= STREAM_END => {
                            tracing::warn!(
                                "streams whose clients stopped reading are still open; stopping \
                             without them"
                            );
                            break None;
                        }
                        Err(_) => {}
                    }
                }
            }
        };
    match finished {
        Some(result) => {
            result?;
            store.close().await;
        }
        // Closing the pool would wait for the connections the unfinished requests hold.
        None => tracing::warn!(
            timeout = ?config.shutdown_timeout,
            "in-flight requests or streams did not finish in time; stopping anyway"
        ),
    }
    if let Some(observer) = &observer {
        observer.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// CORS for gRPC-Web calls from pages of `origins` (`*`: any): the headers gRPC-Web sends,
/// and the status headers it must read.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use http::{HeaderName, Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| http::HeaderValue::from_str(origin).ok()),
        )
    };
    let name = HeaderName::from_static;
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            name("x-grpc-web"),
            name("x-user-agent"),
            name("grpc-timeout"),
            name("x-request-id"),
            name("traceparent"),
        ])
        .expose_headers([
            name("grpc-status"),
            name("grpc-message"),
            name("grpc-status-details-bin"),
            name("grpc-encoding"),
            name("x-request-id"),
        ])
        .max_age(Duration::from_secs(24 * 3600))
}

/// Listens for SIGTERM and SIGINT (Ctrl-C) from this call on, and returns a future that
/// completes on the first of them. The handlers are installed before it returns, so that a
/// signal sent as soon as the server says it is listening stops it gracefully instead of
/// killing it.
pub fn termination_signal() -> std::io::Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT received"),
                _ = terminate.recv() => tracing::info!("SIGTERM received"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            match tokio::signal::ctrl_c().await {
                Ok(()) => tracing::info!("SIGINT received"),
                Err(error) => {
                    tracing::error!(%error, "cannot listen for Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
