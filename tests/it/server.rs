//! The server around the services: health, graceful shutdown, database outages.

use std::time::Duration;

use clientele::proto::v1 as pb;
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};

use crate::support::*;

/// Every service the server names in health checks.
/// The whole server and every service of `proto/` (written out, not taken from the server,
/// so that a service left out of health reporting fails the test).
const SERVICES: [&str; 9] = [
    "",
    "clientele.v1.OrganisationService",
    "clientele.v1.CustomerService",
    "clientele.v1.PermissionService",
    "clientele.v1.GroupService",
    "clientele.v1.AgentService",
    "clientele.v1.SlaService",
    "clientele.v1.TicketService",
    "clientele.v1.CommentService",
];

fn new_organisation(code: &str) -> pb::CreateOrganisationRequest {
    pb::CreateOrganisationRequest {
        organisation: Some(pb::Organisation {
            code: code.into(),
            name: code.into(),
            country: "NL".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    }
}

/// Blocks writers to the organisations table from outside the server until released: a
/// real lock held by a second connection, so a request is genuinely in flight.
struct TableLock {
    connection: DatabaseConnection,
    transaction: DatabaseTransaction,
}

impl TableLock {
    async fn take(server: &TestServer) -> Self {
        let connection = Database::connect(&server.database.url)
            .await
            .expect("connect");
        let transaction = connection
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .expect("begin");
        if server.backend() == Backend::Postgres {
            transaction
                .execute_unprepared("LOCK TABLE organisations IN EXCLUSIVE MODE")
                .await
                .expect("lock");
        }
        Self {
            connection,
            transaction,
        }
    }

    async fn release(self) {
        self.transaction.commit().await.expect("unlock");
        self.connection.close().await.expect("close");
    }
}

/// Waits until a request of the server is waiting for the lock: PostgreSQL shows its waiters;
/// SQLite does not, so there it is enough that the server has received the request (the lock
/// is held, so it cannot finish).
async fn until_a_request_waits(server: &TestServer) {
    match server.database.admin().await {
        Some(admin) => {
            let database = server.database.postgres_name().expect("postgres");
            desk::eventually("a request waits for the lock", || async {
                let row = admin
                    .query_one_raw(sea_orm::Statement::from_string(
                        sea_orm::DbBackend::Postgres,
                        format!(
                            "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                             WHERE NOT l.granted AND d.datname = '{database}'"
                        ),
                    ))
                    .await
                    .expect("pg_locks")
                    .expect("row");
                row.try_get::<i64>("", "n").expect("n") > 0
            })
            .await;
        }
        None => {
            desk::eventually("the server has received the request", || async {
                server.metrics.rpcs_in_flight() > 0
            })
            .await;
        }
    }
}

backend_tests! {
    async fn health_reports_serving_for_the_server_and_every_service(server) {
        let mut health = server.health();
        for service in SERVICES {
            let status = health
                .check(HealthCheckRequest { service: service.into() })
                .await
                .expect("health check")
                .into_inner()
                .status();
            assert_eq!(status, ServingStatus::Serving, "service {service:?}");
        }
        let unknown = health
            .check(HealthCheckRequest { service: "no.such.Service".into() })
            .await;
        expect_code(unknown, Code::NotFound);
    }

    async fn shutdown_turns_health_not_serving_before_the_server_stops(server) {
        let mut watch = server
            .health()
            .watch(HealthCheckRequest::default())
            .await
            .expect("watch")
            .into_inner();
        let first = watch.next().await.expect("first status").expect("status");
        assert_eq!(first.status(), ServingStatus::Serving);
        server.begin_shutdown();
        let next = watch.next().await.expect("second status").expect("status");
        assert_eq!(next.status(), ServingStatus::NotServing);
        drop(watch);
        server.join().await.expect("clean stop");
    }

    async fn shutdown_ends_health_watches_after_their_not_serving(server) {
        let mut watches = Vec::new();
        for service in ["", "clientele.v1.TicketService"] {
            let mut watch = server
                .health()
                .watch(HealthCheckRequest { service: service.into() })
                .await
                .expect("watch")
                .into_inner();
            let first = watch.message().await.expect("first status").expect("status");
            assert_eq!(first.status(), ServingStatus::Serving, "service {service:?}");
            watches.push(watch);
        }
        server.begin_shutdown();
        // The harness gives in-flight requests twice `PATIENCE`: a watch held open would keep
        // the server draining that long. The watches stay open on this side until the server stopped.
        for watch in &mut watches {
            let last = watch.message().await.expect("the NOT_SERVING").expect("status");
            assert_eq!(last.status(), ServingStatus::NotServing);
            let ended = tokio::time::timeout(PATIENCE, watch.message())
                .await
                .expect("the watch ends well before the shutdown timeout");
            let status = ended.expect_err("a shutdown is not the normal end of a watch");
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert_eq!(reason(&status).as_deref(), Some("SHUTTING_DOWN"));
        }
        let stopped = tokio::time::timeout(PATIENCE, server.join()).await;
        assert!(matches!(stopped, Ok(Ok(()))), "the server stops at once: {stopped:?}");
        drop(watches);
    }

    async fn shutdown_lets_in_flight_requests_finish(server) {
        let lock = TableLock::take(&server).await;
        let mut client = server.organisations();
        let in_flight = tokio::spawn(async move {
            client.create_organisation(new_organisation("InFlight")).await
        });
        until_a_request_waits(&server).await;
        server.begin_shutdown();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!in_flight.is_finished(), "the request waits for the lock");
        lock.release().await;
        let created = in_flight.await.expect("task").expect("the in-flight request succeeds");
        assert_eq!(created.into_inner().organisation.expect("org").code, "InFlight");
        server.join().await.expect("clean stop");
        assert_eq!(server.count(clientele::store::Table::Organisations).await, 1);
    }

    async fn new_connections_are_refused_once_shutdown_began(server) {
        let addr = server.addr;
        server.begin_shutdown();
        server.join().await.expect("clean stop");
        let connected = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect_timeout(Duration::from_secs(2))
            .connect()
            .await;
        assert!(connected.is_err(), "the listener is closed");
    }
}

/// With a shutdown timeout of one second, a request stuck behind a lock does not keep the
/// server from stopping.
mod shutdown_gives_up_on_requests_that_outlast_the_timeout {
    use super::*;

    async fn run(backend: Backend) {
        let Some(mut server) = TestServer::start_with(backend, |config| {
            config.shutdown_timeout = Duration::from_secs(1);
        })
        .await
        else {
            return;
        };
        let lock = TableLock::take(&server).await;
        let mut client = server.organisations();
        let stuck =
            tokio::spawn(
                async move { client.create_organisation(new_organisation("Stuck")).await },
            );
        until_a_request_waits(&server).await;
        server.begin_shutdown();
        server
            .join()
            .await
            .expect("the server stops despite the stuck request");
        lock.release().await;
        let _ = stuck.await;
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

/// The admin connection to the PostgreSQL server of `server`, and the name of its database.
async fn postgres_admin(server: &TestServer) -> (DatabaseConnection, String) {
    let admin = server.database.admin().await.expect("admin connection");
    let database = server
        .database
        .postgres_name()
        .expect("postgres")
        .to_owned();
    (admin, database)
}

/// The sessions (backend pids) of `database`, but `admin`'s own.
async fn sessions(admin: &DatabaseConnection, database: &str) -> Vec<i32> {
    admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT pid FROM pg_stat_activity \
                 WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ),
        ))
        .await
        .expect("sessions")
        .iter()
        .map(|row| row.try_get::<i32>("", "pid").expect("pid"))
        .collect()
}

/// CI requires PostgreSQL (`CLIENTELE_REQUIRE_POSTGRES=1`): then the PostgreSQL tests must have
/// been built to run, not as ignored for want of `CLIENTELE_TEST_POSTGRES_URL`.
#[test]
fn the_postgres_tests_run_where_they_are_required() {
    let required = std::env::var("CLIENTELE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    if required && !cfg!(clientele_postgres_tests) {
        panic!(
            "CLIENTELE_REQUIRE_POSTGRES=1 but CLIENTELE_TEST_POSTGRES_URL was not set when the \
             tests were built"
        );
    }
}

/// Ends every session of `database` but `admin`'s own, as a restart or an operator would.
async fn end_sessions(admin: &DatabaseConnection, database: &str) {
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("end sessions");
}

/// PostgreSQL only: organisation reads hold connections of their own beside the pool, lists
/// go through the pool, which takes a connection used within the last second as alive. When
/// the database ends every session (a restart, a failover, an operator), the reads and lists
/// right after still answer: a dead connection is replaced, not handed to the client as an
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn organisation_reads_answer_right_after_the_database_ended_every_session() {
    let Some(server) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    let (admin, database) = postgres_admin(&server).await;
    let id = server
        .organisations()
        .create_organisation(new_organisation("Survivor"))
        .await
        .expect("create")
        .into_inner()
        .organisation
        .expect("organisation")
        .id;
    // Eight callers at once, each reading and listing, so that several connections of both
    // kinds are open and idle afterwards.
    let read_concurrently = || {
        let reads: Vec<_> = (0..8)
            .map(|_| {
                let mut client = server.organisations();
                let key = Some(pb::get_organisation_request::Key::Id(id.clone()));
                tokio::spawn(async move {
                    let read = client
                        .get_organisation(pb::GetOrganisationRequest { key })
                        .await?
                        .into_inner()
                        .organisation;
                    let listed = client
                        .list_organisations(pb::ListOrganisationsRequest::default())
                        .await?
                        .into_inner()
                        .organisations;
                    Ok::<_, tonic::Status>((read, listed))
                })
            })
            .collect();
        async move {
            let mut answers = Vec::new();
            for read in reads {
                answers.push(read.await.expect("read task"));
            }
            answers
        }
    };
    for answer in read_concurrently().await {
        answer.expect("read before");
    }

    let before = sessions(&admin, &database).await;
    assert!(!before.is_empty(), "the server holds sessions");
    end_sessions(&admin, &database).await;
    // Until the ended sessions are gone, so that the calls meet dead connections (well within
    // the second after which an idle connection would be pinged anyway).
    desk::eventually("the sessions were ended", || async {
        let now = sessions(&admin, &database).await;
        !now.iter().any(|pid| before.contains(pid))
    })
    .await;

    for answer in read_concurrently().await {
        let (read, listed) = answer.expect("a call right after the sessions ended answers");
        assert_eq!(read.expect("organisation").id, id);
        assert_eq!(
            listed.iter().map(|o| &o.id).collect::<Vec<_>>(),
            [&id],
            "the list"
        );
    }
    admin.close().await.expect("close admin");
    server.stop().await;
}

/// PostgreSQL only: an embedded SQLite file cannot become unreachable the way a database
/// server can. The test database stops accepting connections and its sessions are ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn health_is_not_serving_while_postgres_is_unreachable_and_serving_when_it_returns() {
    let Some(server) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    let (admin, database) = postgres_admin(&server).await;
    let mut watch = server
        .health()
        .watch(HealthCheckRequest {
            service: "clientele.v1.OrganisationService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(
        watch.next().await.expect("status").expect("ok").status(),
        ServingStatus::Serving
    );

    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE {database} ALLOW_CONNECTIONS false"
        ))
        .await
        .expect("close database");
    end_sessions(&admin, &database).await;
    assert_eq!(
        watch.next().await.expect("status").expect("ok").status(),
        ServingStatus::NotServing
    );
    // Once the outage is known, calls fail fast instead of waiting out the pool's 5 s
    // acquire timeout (the bound here is far from both, so a slow machine does not fail it).
    for attempt in 0..5 {
        let started = std::time::Instant::now();
        let refused = server
            .organisations()
            .create_organisation(new_organisation(&format!("DuringOutage{attempt}")))
            .await;
        let took = started.elapsed();
        let status = expect_code(refused, Code::Unavailable);
        assert!(
            !status.message().contains("SQL"),
            "no internals reach the client"
        );
        assert!(
            took < Duration::from_secs(1),
            "attempt {attempt} took {took:?}"
        );
        let read = server
            .organisations()
            .list_organisations(pb::ListOrganisationsRequest::default())
            .await;
        expect_code(read, Code::Unavailable);
    }

    admin
        .execute_unprepared(&format!("ALTER DATABASE {database} ALLOW_CONNECTIONS true"))
        .await
        .expect("reopen database");
    // The first call after the database returns succeeds, before health has noticed.
    server
        .organisations()
        .create_organisation(new_organisation("AfterOutage"))
        .await
        .expect("requests work again");
    assert_eq!(
        watch.next().await.expect("status").expect("ok").status(),
        ServingStatus::Serving
    );
    drop(watch);
    admin.close().await.expect("close admin");
    server.stop().await;
}

/// PostgreSQL only: every connection the server holds to the database has TCP_NODELAY set.
/// sqlx 0.9.0 stopped setting it (vendor/README.md), and then the tail of any statement sent
/// in more than one piece waits 40 ms for PostgreSQL's delayed ACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn every_postgres_connection_of_the_server_has_tcp_nodelay() {
    let Some(server) = TestServer::start(Backend::Postgres).await else {
        return;
    };
    // A write through the pool, a read on a connection of the direct reads.
    let id = server
        .organisations()
        .create_organisation(new_organisation("NoDelay"))
        .await
        .expect("create")
        .into_inner()
        .organisation
        .expect("organisation")
        .id;
    server
        .organisations()
        .get_organisation(pb::GetOrganisationRequest {
            key: Some(pb::get_organisation_request::Key::Id(id)),
        })
        .await
        .expect("read");
    let (admin, database) = postgres_admin(&server).await;
    let port = |row: &sea_orm::QueryResult, column: &str| {
        let port: i32 = row.try_get("", column).expect("port");
        u16::try_from(port).expect("a port")
    };
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT client_port, inet_server_port() AS server_port FROM pg_stat_activity \
                 WHERE datname = '{database}' AND pid <> pg_backend_pid() \
                 AND client_port IS NOT NULL"
            ),
        ))
        .await
        .expect("sessions");
    let postgres_port = rows.first().map(|row| port(row, "server_port"));
    let mut ports: Vec<u16> = rows.iter().map(|row| port(row, "client_port")).collect();
    ports.sort_unstable();
    assert!(
        ports.len() >= 2,
        "the pool's and the direct reads' sessions: {ports:?}"
    );
    let mut found: Vec<(u16, bool)> = tcp_sockets_of_this_process()
        .into_iter()
        .filter(|(local, peer, _)| {
            Some(*peer) == postgres_port && ports.binary_search(local).is_ok()
        })
        .map(|(local, _, nodelay)| (local, nodelay))
        .collect();
    found.sort_unstable();
    let found_ports: Vec<u16> = found.iter().map(|(port, _)| *port).collect();
    assert_eq!(
        found_ports, ports,
        "each session is a socket of this process"
    );
    assert!(
        found.iter().all(|(_, nodelay)| *nodelay),
        "every connection has TCP_NODELAY: {found:?}"
    );
}

/// The local port, the peer's port and the TCP_NODELAY option of every connected TCP socket
/// this process holds.
fn tcp_sockets_of_this_process() -> Vec<(u16, u16, bool)> {
    use std::os::fd::{BorrowedFd, RawFd};

    let mut sockets = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if !is_socket {
            continue;
        }
        // SAFETY: the descriptor is only asked for two socket options. Other tests run in
        // this process; one that closes this descriptor meanwhile makes the calls fail
        // (EBADF), and the socket is skipped.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let socket = socket2::SockRef::from(&borrowed);
        let local = socket.local_addr().ok().and_then(|addr| addr.as_socket());
        let peer = socket.peer_addr().ok().and_then(|addr| addr.as_socket());
        if let (Some(local), Some(peer), Ok(nodelay)) = (local, peer, socket.tcp_nodelay()) {
            sockets.push((local.port(), peer.port(), nodelay));
        }
    }
    sockets
}
