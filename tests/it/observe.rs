//! What an operator scrapes: Prometheus metrics and readiness on a listener of their own,
//! checked by the real `promtool`.

use std::{
    io::Write,
    process::{Command, Stdio},
};

use clientele::proto::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{clients::available, support::*};

/// `GET path` over HTTP/1.1: the status line's code and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .expect("read");
    let answer = String::from_utf8(answer).expect("text");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let code = head
        .split_whitespace()
        .nth(1)
        .expect("status")
        .parse()
        .expect("code");
    (code, body.to_owned())
}

/// The value of the sample `name` (with its labels as written) in `text`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
}

/// Reads that queue for the pool's few connections are counted with the time they waited.
async fn reads_waiting_for_a_connection_are_measured(backend: Backend) {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let metrics = free.local_addr().expect("address");
    drop(free);
    let Some(server) = TestServer::start_with(backend, |config| {
        config.metrics_listen = Some(metrics);
        config.store.max_connections = 3;
    })
    .await
    else {
        return;
    };
    for n in 0..40 {
        server
            .customer(pb::Customer {
                email: format!("reader{n}@waits.example"),
                ..Default::default()
            })
            .await;
    }
    let (_, before) = get(metrics, "/metrics").await;
    let reads_before = sample(&before, "clientele_db_reads_total").unwrap_or_default();
    let calls: Vec<_> = (0..24)
        .map(|_| {
            let mut customers = server.customers();
            async move {
                customers
                    .list_customers(pb::ListCustomersRequest {
                        page_size: 40,
                        ..Default::default()
                    })
                    .await
                    .expect("list")
            }
        })
        .collect();
    concurrently(calls).await;
    let (_, text) = get(metrics, "/metrics").await;
    let reads = sample(&text, "clientele_db_reads_total").expect("reads counted");
    assert!(reads >= reads_before + 24.0, "{reads_before} then {reads}");
    let waited = sample(&text, "clientele_db_read_wait_seconds_total").expect("read waits");
    assert!(
        waited > 0.0,
        "24 lists on three connections waited for them: {text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_for_a_connection_are_measured_on_sqlite() {
    reads_waiting_for_a_connection_are_measured(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn reads_waiting_for_a_connection_are_measured_on_postgres() {
    reads_waiting_for_a_connection_are_measured(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_are_served_beside_grpc_and_promtool_accepts_them() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let metrics = free.local_addr().expect("address");
    drop(free);
    let Some(server) = TestServer::start_with(Backend::Sqlite, |config| {
        config.metrics_listen = Some(metrics);
    })
    .await
    else {
        return;
    };
    server.group("observed").await;
    let mut groups = server.groups();
    for _ in 0..3 {
        groups
            .list_groups(pb::ListGroupsRequest::default())
            .await
            .expect("list");
    }
    let missing = groups
        .get_group(pb::GetGroupRequest {
            key: Some(pb::get_group_request::Key::Name("nobody".into())),
        })
        .await;
    assert!(missing.is_err());

    let (code, text) = get(metrics, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    let listed = sample(
        &text,
        r#"clientele_rpc_requests_total{method="/clientele.v1.GroupService/ListGroups",code="OK"}"#,
    );
    assert!(listed.is_some_and(|n| n >= 3.0), "{text}");
    let missed = sample(
        &text,
        r#"clientele_rpc_requests_total{method="/clientele.v1.GroupService/GetGroup",code="NOT_FOUND"}"#,
    );
    assert_eq!(missed, Some(1.0), "{text}");
    let timed = sample(
        &text,
        r#"clientele_rpc_duration_seconds_count{method="/clientele.v1.GroupService/ListGroups"}"#,
    );
    assert!(timed.is_some_and(|n| n >= 3.0), "{text}");
    for family in [
        "clientele_rpcs_in_flight",
        "clientele_streams_open",
        "clientele_tickets_streamed_total",
        "clientele_token_checks_total",
        "clientele_token_lookups_total",
        "clientele_db_connections",
        "clientele_db_writes_total",
        "clientele_db_write_wait_seconds_total",
        "clientele_db_commits_total",
        "clientele_db_reads_total",
        "clientele_db_read_wait_seconds_total",
        "clientele_rights_checks_total",
        "clientele_rights_reads_total",
        "clientele_escalation_scheduler_runs_total",
        "clientele_escalation_scheduler_lag_seconds",
        "clientele_ready",
        "clientele_build_info",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert_eq!(sample(&text, "clientele_ready"), Some(1.0));
    assert!(
        sample(&text, "clientele_db_writes_total").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    let commits = sample(&text, "clientele_db_commits_total");
    assert!(
        commits.is_some_and(|n| n >= 1.0 && Some(n) <= sample(&text, "clientele_db_writes_total")),
        "{text}"
    );

    // A made-up method is counted as `other`, so clients cannot grow the metrics.
    let made_up = crate::transport::call_raw(
        server.authed(Some(&server.admin_secret)),
        "/clientele.v1.MadeUpService/MadeUpMethod",
        crate::transport::Shape::Unary,
        Vec::new(),
    )
    .await
    .expect_err("no such method");
    assert_eq!(
        made_up.code(),
        tonic::Code::PermissionDenied,
        "in no policy: {made_up:?}"
    );
    let (_, text) = get(metrics, "/metrics").await;
    assert!(!text.contains("MadeUp"), "{text}");
    assert!(text.contains(r#"method="other""#), "{text}");

    if available("promtool", &["--version"]) {
        let mut check = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool");
        check
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write");
        let output = check.wait_with_output().expect("promtool ran");
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    assert_eq!(get(metrics, "/ready").await, (200, "SERVING\n".to_owned()));
    assert_eq!(get(metrics, "/live").await.0, 200);
    assert_eq!(get(metrics, "/elsewhere").await.0, 404);
    // Never on the gRPC port.
    let (code, _) = get(server.addr, "/metrics").await;
    assert_ne!(code, 200);
    server.stop().await;
}
