//! Traces over OTLP: a real OTLP receiver (the collector's trace service, from the
//! OpenTelemetry protocol's own definitions) gets the server's spans; an RPC's span continues
//! the caller's W3C `traceparent` and the database work is its child.

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    trace::v1::Span,
};

use crate::{
    clients::{TOKEN, available, stdout_of},
    support::desk::eventually,
};

/// Keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.0.lock().expect("spans");
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_span_continues_the_callers_trace_and_the_database_work_is_its_child() {
    if !available("grpcurl", &["-version"]) {
        return;
    }
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let collector = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let mut server = Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args(["serve", "--listen", "127.0.0.1:0", "--otlp-endpoint"])
        .arg(format!("http://{collector}"))
        .env("DATABASE_URL", &database)
        .env("CLIENTELE_BOOTSTRAP_TOKEN", TOKEN)
        .env_remove("CLIENTELE_LISTEN")
        // Spans are sent every 100 ms instead of every 5 s.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start clientele");
    let stdout = server.stdout.take().expect("stdout");
    let address = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(at) = line.find("127.0.0.1:") {
                return line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect::<String>();
            }
        }
        panic!("the server never listened");
    })
    .await
    .expect("address");

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller = "00f067aa0ba902b7";
    let created = Command::new("grpcurl")
        .args([
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {TOKEN}"),
        ])
        .args(["-H", &format!("traceparent: 00-{trace}-{caller}-01")])
        .args(["-d", r#"{"agent": {"login": "traced"}}"#])
        .args([address.as_str(), "clientele.v1.AgentService/CreateAgent"])
        .output()
        .expect("grpcurl");
    stdout_of(&created);

    eventually("the spans of the call arrive", || async {
        receiver
            .0
            .lock()
            .expect("spans")
            .iter()
            .any(|span| span.name == "insert_agent")
    })
    .await;
    let spans = receiver.0.lock().expect("spans").clone();
    let rpc = spans
        .iter()
        .find(|span| span.name == "rpc" && hex(&span.trace_id) == trace)
        .unwrap_or_else(|| panic!("no rpc span in the caller's trace: {spans:#?}"));
    assert_eq!(
        hex(&rpc.parent_span_id),
        caller,
        "the caller's span is the parent"
    );
    let database = spans
        .iter()
        .find(|span| span.name == "insert_agent")
        .expect("the database work");
    assert_eq!(hex(&database.trace_id), trace);
    assert_eq!(
        database.parent_span_id, rpc.span_id,
        "the database work is the RPC's child"
    );

    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let exited = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || server.wait()),
    )
    .await
    .expect("the server stops");
    assert!(exited.expect("wait").expect("status").success());
}
