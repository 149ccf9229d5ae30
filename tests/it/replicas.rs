//! Two replicas on one PostgreSQL behind a real HAProxy (Debian's package) balancing gRPC over
//! HTTP/2, its health checks on the replicas' `/ready`: one replica is killed under a steady
//! write load. Clients see at most their in-flight calls fail UNAVAILABLE; retried with the
//! same `request_id` they succeed through the survivor; nothing acknowledged is lost or made
//! twice; HAProxy stops routing to the dead replica within its checks; watches go on.

use std::{
    collections::BTreeSet,
    io::Write,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clientele::proto::v1 as pb;
use tonic::{Code, transport::Channel};

use crate::{
    clients::{RunningBinary, TOKEN, available},
    support::*,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// HAProxy in the foreground; killed when dropped.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `status` says the call did not get an answer from a replica: UNAVAILABLE from the
/// server; HAProxy's own 502/503 page, which tonic's client reads as a malformed gRPC answer
/// (INTERNAL) where gRPC's HTTP mapping says UNAVAILABLE; or an answer cut off when its
/// replica was killed after HAProxy had passed its headers on (UNKNOWN, no trailers). In
/// each case the write may or may not have committed, and is sent again with its request_id.
fn unavailable(status: &tonic::Status) -> bool {
    status.code() == Code::Unavailable
        || (status.code() == Code::Internal
            && ["502 Bad Gateway", "503 Service Unavailable"]
                .iter()
                .any(|http| status.message().contains(http)))
        || (status.code() == Code::Unknown
            && status.message().contains("missing grpc-status trailer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn a_replica_killed_behind_haproxy_under_writes_loses_nothing_and_the_other_serves_on() {
    if !available("haproxy", &["-v"]) {
        return;
    }
    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let metrics = [free_port(), free_port()];
    let replicas: Vec<RunningBinary> = metrics
        .iter()
        .map(|port| {
            RunningBinary::start(
                &database.url,
                &["--metrics-listen", &format!("127.0.0.1:{port}")],
            )
        })
        .collect();
    let front = free_port();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("haproxy.cfg");
    let mut file = std::fs::File::create(&config).expect("config");
    write!(
        file,
        "global\n  maxconn 512\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
         retries 3\n  option redispatch\n\
         frontend grpc\n  bind 127.0.0.1:{front} proto h2\n  default_backend replicas\n\
         backend replicas\n  balance roundrobin\n  option httpchk\n  \
         http-check send meth GET uri /ready ver HTTP/1.1 hdr Host localhost\n  \
         http-check expect status 200\n  default-server inter 200ms fall 2 rise 2\n\
         {servers}",
        servers = replicas
            .iter()
            .zip(metrics)
            .enumerate()
            .map(|(index, (replica, metrics))| {
                format!(
                    "  server r{index} {} proto h2 check port {metrics} check-proto h1\n",
                    replica.addr
                )
            })
            .collect::<String>()
    )
    .expect("write config");
    drop(file);
    let _haproxy = Haproxy(
        Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy"),
    );
    let channel = Channel::from_shared(format!("http://127.0.0.1:{front}"))
        .expect("uri")
        .connect_lazy();
    let bearer = Bearer::new(Some(TOKEN));
    let organisations = || {
        pb::organisation_service_client::OrganisationServiceClient::with_interceptor(
            channel.clone(),
            bearer.clone(),
        )
    };
    // HAProxy up, both replicas checked healthy.
    desk::eventually("HAProxy serves", || async {
        organisations()
            .list_organisations(pb::ListOrganisationsRequest::default())
            .await
            .is_ok()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Writers: each create carries a request_id and is sent again on UNAVAILABLE.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let failures: Arc<Mutex<Vec<Code>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut client = organisations();
        let (acknowledged, failures, stop) = (acknowledged.clone(), failures.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut index = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let code = format!("HA{writer}-{index}");
                index += 1;
                let request = pb::CreateOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        code: code.clone(),
                        name: code.clone(),
                        country: "NL".into(),
                        ..Default::default()
                    }),
                    request_id: format!("create-{code}"),
                };
                for attempt in 0.. {
                    match client.create_organisation(request.clone()).await {
                        Ok(_) => {
                            acknowledged.lock().expect("list").push(code.clone());
                            break;
                        }
                        Err(status) => {
                            failures.lock().expect("list").push(status.code());
                            assert!(unavailable(&status) && attempt < 50, "{code}: {status:?}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut replicas = replicas.into_iter();
    let killed = replicas.next().expect("a replica");
    let survivor = replicas.next().expect("another");
    let before_kill = acknowledged.lock().expect("list").len();
    killed.kill();
    let killed_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a writer gave up or met another error");
    }
    let acknowledged = acknowledged.lock().expect("list").clone();
    assert!(
        acknowledged.len() > before_kill,
        "writes went on after the kill"
    );
    let failed = failures.lock().expect("list").len();
    eprintln!(
        "{} writes acknowledged ({before_kill} before the kill); {failed} calls failed and were \
         sent again",
        acknowledged.len()
    );

    // Routed to the survivor only once the checks saw the replica gone (2 × 200 ms).
    let settled = killed_at + Duration::from_millis(1_000);
    tokio::time::sleep_until(settled.into()).await;
    let mut client = organisations();
    for _ in 0..20 {
        client
            .list_organisations(pb::ListOrganisationsRequest {
                page_size: 1,
                ..Default::default()
            })
            .await
            .expect("every call reaches the survivor");
    }
    // Nothing acknowledged is lost, nothing made twice.
    let mut listed = BTreeSet::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_organisations(pb::ListOrganisationsRequest {
                page_size: 1000,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        for organisation in page.organisations {
            assert!(
                listed.insert(organisation.code.clone()),
                "{} twice",
                organisation.code
            );
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    for code in &acknowledged {
        assert!(
            listed.contains(&code.to_uppercase()) || listed.contains(code),
            "{code} acknowledged but lost"
        );
    }
    // Escalation watches go on through the survivor.
    let mut watch = pb::ticket_service_client::TicketServiceClient::with_interceptor(
        channel.clone(),
        bearer.clone(),
    )
    .watch_escalations(pb::WatchEscalationsRequest::default())
    .await
    .expect("watch through the survivor")
    .into_inner();
    let first = tokio::time::timeout(PATIENCE, watch.message())
        .await
        .expect("the watch answers")
        .expect("a message")
        .expect("not ended");
    assert_eq!(first.kind(), pb::WatchEventKind::SnapshotComplete);
    drop(watch);
    survivor.terminate();
}
