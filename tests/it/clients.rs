//! Real clients against the built binary: grpcurl through reflection, a Python client
//! generated from `proto/` with grpcio-tools, the README's examples, and the CLI itself.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::support::*;

const BINARY: &str = env!("CARGO_BIN_EXE_clientele");

/// The bootstrap token README.md starts the server with, so its examples run as written.
pub(crate) const TOKEN: &str = "clientele-dev-admin-token";

fn authorization() -> String {
    format!("authorization: Bearer {TOKEN}")
}

/// The built `clientele` binary, serving on an ephemeral port.
pub(crate) struct RunningBinary {
    child: Child,
    pub(crate) addr: String,
    lines: mpsc::Receiver<String>,
}

impl RunningBinary {
    pub(crate) fn start(database_url: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("DATABASE_URL", database_url)
            .env("CLIENTELE_BOOTSTRAP_TOKEN", TOKEN)
            .env_remove("CLIENTELE_LISTEN")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start clientele");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut binary = Self {
            child,
            addr: String::new(),
            lines,
        };
        let line = binary.wait_for_line(|line| line.contains("listening"));
        let start = line
            .find("127.0.0.1:")
            .expect("address in the listening line");
        binary.addr = line[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        binary
    }

    fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(error) => panic!("the server printed no such line: {error}"),
            }
        }
    }

    /// Kills the process at once (SIGKILL), as a crash or an OOM kill would.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and expects a clean exit.
    pub(crate) fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "clientele exited with {status} after SIGTERM"
        );
        self.wait_for_line(|line| line.contains("stopped"));
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program` can run here; when CI requires the tools, a missing one fails the test.
pub(crate) fn available(program: &str, probe: &[&str]) -> bool {
    let found = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        found || !require_tools(),
        "CLIENTELE_REQUIRE_TOOLS=1 but `{program} {}` does not run",
        probe.join(" ")
    );
    if !found {
        eprintln!("note: skipped, `{program}` is not available");
    }
    found
}

fn grpcurl(args: &[&str]) -> Output {
    Command::new("grpcurl")
        .args(args)
        .output()
        .expect("run grpcurl")
}

/// grpcurl with the admin token.
fn grpcurl_authed(args: &[&str]) -> Output {
    let header = authorization();
    Command::new("grpcurl")
        .args(["-H", &header])
        .args(args)
        .output()
        .expect("run grpcurl")
}

pub(crate) fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `check` against the binary on each backend.
async fn on_each_backend(check: impl Fn(&RunningBinary, &TestDatabase)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(database) = TestDatabase::create(backend).await else {
            continue;
        };
        let binary = RunningBinary::start(&database.url, &[]);
        check(&binary, &database);
        binary.terminate();
    }
}

#[tokio::test]
async fn grpcurl_explores_the_service_by_reflection_and_uses_it() {
    if !available("grpcurl", &["-version"]) {
        return;
    }
    on_each_backend(|binary, _| {
        let addr = binary.addr.as_str();
        let services = stdout_of(&grpcurl(&["-plaintext", addr, "list"]));
        for service in [
            "clientele.v1.OrganisationService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                services.lines().any(|l| l == service),
                "{service} in {services}"
            );
        }
        let described = stdout_of(&grpcurl(&[
            "-plaintext",
            addr,
            "describe",
            "clientele.v1.OrganisationService",
        ]));
        assert!(described.contains("rpc CreateOrganisation"), "{described}");
        assert!(
            described.contains("// Creates an organisation."),
            "comments are served"
        );
        let message = stdout_of(&grpcurl(&[
            "-plaintext",
            addr,
            "describe",
            "clientele.v1.Organisation",
        ]));
        assert!(message.contains("code"), "{message}");

        let unauthenticated = grpcurl(&[
            "-plaintext",
            "-d",
            "{}",
            addr,
            "clientele.v1.OrganisationService/ListOrganisations",
        ]);
        assert!(!unauthenticated.status.success());
        assert!(String::from_utf8_lossy(&unauthenticated.stderr).contains("Unauthenticated"));

        let created = stdout_of(&grpcurl_authed(&[
            "-plaintext",
            "-d",
            r#"{"organisation": {"code": "GRPCURL", "name": "Made by grpcurl", "country": "se"}}"#,
            addr,
            "clientele.v1.OrganisationService/CreateOrganisation",
        ]));
        let created: serde_json::Value = serde_json::from_str(&created).expect("json");
        let id = created["organisation"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        assert_eq!(created["organisation"]["country"], "SE");

        let found = stdout_of(&grpcurl_authed(&[
            "-plaintext",
            "-d",
            r#"{"code": "grpcurl"}"#,
            addr,
            "clientele.v1.OrganisationService/GetOrganisation",
        ]));
        let found: serde_json::Value = serde_json::from_str(&found).expect("json");
        assert_eq!(found["organisation"]["id"], id.as_str());

        let health = stdout_of(&grpcurl(&[
            "-plaintext",
            addr,
            "grpc.health.v1.Health/Check",
        ]));
        assert!(health.contains("SERVING"), "{health}");

        let refused = grpcurl_authed(&[
            "-plaintext",
            "-d",
            r#"{"organisation": {"code": "X", "name": "X", "country": "XX"}}"#,
            addr,
            "clientele.v1.OrganisationService/CreateOrganisation",
        ]);
        assert!(!refused.status.success());
        let error = String::from_utf8_lossy(&refused.stderr);
        assert!(error.contains("InvalidArgument"), "{error}");
        assert!(
            error.contains(r#""field":"organisation.country""#),
            "grpcurl decodes the field violations: {error}"
        );

        let probe = Command::new(BINARY)
            .args(["health", "--addr", addr])
            .output()
            .expect("clientele health");
        assert!(
            probe.status.success(),
            "clientele health exits 0 while serving"
        );
        let with_scheme = Command::new(BINARY)
            .args(["health", "--addr", &format!("http://{addr}")])
            .output()
            .expect("clientele health");
        assert!(
            with_scheme.status.success(),
            "an address with its scheme works too"
        );
        let unknown = Command::new(BINARY)
            .args([
                "health",
                "--addr",
                addr,
                "--service",
                "clientele.v1.NoSuchService",
            ])
            .output()
            .expect("clientele health");
        assert_eq!(
            unknown.status.code(),
            Some(1),
            "a service that is not served is not healthy"
        );
    })
    .await;
}

#[tokio::test]
async fn a_python_client_generated_from_the_protos_creates_reads_and_decodes_error_details() {
    if !available("python3", &["-c", "import grpc_tools, grpc"]) {
        return;
    }
    on_each_backend(|binary, _| {
        let generated = tempfile::tempdir().expect("temp dir");
        let output = Command::new("python3")
            .arg(repository().join("tests/clients/python_client.py"))
            .arg(repository().join("proto"))
            .arg(generated.path())
            .arg(&binary.addr)
            .arg(TOKEN)
            .output()
            .expect("run python");
        let stdout = stdout_of(&output);
        assert!(stdout.contains("python client: ok"), "{stdout}");
    })
    .await;
}

/// A Node client (@grpc/grpc-js, its types loaded from `proto/` and `third_party/googleapis`
/// by @grpc/proto-loader; `npm ci` in tests/clients/node installs them).
#[tokio::test]
async fn a_node_client_loaded_from_the_protos_creates_streams_and_decodes_error_details() {
    let node = repository().join("tests/clients/node");
    if !available("node", &["--version"]) {
        return;
    }
    let installed = node.join("node_modules/@grpc/grpc-js").exists();
    assert!(
        installed || !require_tools(),
        "CLIENTELE_REQUIRE_TOOLS=1 but tests/clients/node has no node_modules (npm ci)"
    );
    if !installed {
        eprintln!("note: skipped, tests/clients/node has no node_modules (npm ci)");
        return;
    }
    on_each_backend(|binary, _| {
        let output = Command::new("node")
            .arg(node.join("client.js"))
            .arg(repository())
            .arg(&binary.addr)
            .arg(TOKEN)
            .output()
            .expect("run node");
        let stdout = stdout_of(&output);
        assert!(stdout.contains("node client: ok"), "{stdout}");
    })
    .await;
}

/// The grpcurl examples of README.md run as written, against a server on the default
/// address's stand-in.
#[tokio::test]
async fn the_readme_grpcurl_examples_work_as_written() {
    if !available("grpcurl", &["-version"]) {
        return;
    }
    let readme = std::fs::read_to_string(repository().join("README.md")).expect("README.md");
    let script = readme_examples(&readme);
    assert!(script.contains("grpcurl"), "README has grpcurl examples");
    on_each_backend(|binary, _| {
        let script = script.replace("localhost:50051", &binary.addr);
        assert!(
            script.contains(TOKEN),
            "the examples use the README's bootstrap token"
        );
        // In a directory of its own: the examples save files (a customer sheet).
        let scratch = tempfile::tempdir().expect("scratch directory");
        let output = Command::new("sh")
            .args(["-eu", "-c", &script])
            .current_dir(scratch.path())
            .output()
            .expect("run README examples");
        stdout_of(&output);
    })
    .await;
}

/// The shell blocks that follow a `<!-- example -->` marker in the README.
fn readme_examples(readme: &str) -> String {
    let mut script = String::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- example -->" {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert!(
            fence.starts_with("```"),
            "an example marker is followed by a code block"
        );
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}

#[tokio::test]
async fn migrate_brings_an_empty_database_up_to_date() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(database) = TestDatabase::create(backend).await else {
            continue;
        };
        let status = Command::new(BINARY)
            .arg("migrate")
            .env("DATABASE_URL", &database.url)
            .status()
            .expect("clientele migrate");
        assert!(status.success());
        let store = clientele::store::Store::connect(&database.url, &Default::default())
            .await
            .expect("connect");
        let organisations = store
            .count_rows(clientele::store::Table::Organisations)
            .await
            .expect("the organisations table exists");
        assert_eq!(organisations, 0);
        store.close().await;
    }
}

#[tokio::test]
async fn json_logs_carry_one_span_per_rpc_with_method_code_and_latency() {
    let Some(database) = TestDatabase::create(Backend::Sqlite).await else {
        return;
    };
    let mut binary = RunningBinary::start(&database.url, &["--log-format", "json"]);
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", binary.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut client =
        clientele::proto::v1::organisation_service_client::OrganisationServiceClient::with_interceptor(
            channel,
            crate::support::Bearer::new(Some(TOKEN)),
        );
    let _ = client
        .get_organisation(clientele::proto::v1::GetOrganisationRequest {
            key: Some(clientele::proto::v1::get_organisation_request::Key::Code(
                "missing".into(),
            )),
        })
        .await;
    let line = binary.wait_for_line(|line| line.contains("rpc finished"));
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let span = &event["span"];
    assert_eq!(span["name"], "rpc");
    assert_eq!(
        span["method"],
        "/clientele.v1.OrganisationService/GetOrganisation"
    );
    assert_eq!(span["code"], "NotFound");
    assert!(
        span["principal"]
            .as_str()
            .is_some_and(|p| p.starts_with("admin:")),
        "{line}"
    );
    assert!(span["latency_ms"].as_f64().is_some(), "{line}");
    binary.terminate();
}

fn import(kind: &str, file: &std::path::Path, addr: &str) -> Output {
    Command::new(BINARY)
        .args(["import", kind])
        .arg(file)
        .args(["--server", &format!("http://{addr}")])
        .args(["--token", TOKEN])
        .output()
        .expect("clientele import")
}

#[tokio::test]
async fn the_import_command_streams_csv_files_and_prints_the_summary() {
    on_each_backend(|binary, _| {
        let examples = repository().join("examples");
        let organisations = import(
            "organisations",
            &examples.join("organisations.csv"),
            &binary.addr,
        );
        assert!(organisations.status.success());
        assert!(
            stdout_of(&organisations)
                .contains("3 rows, 3 created, 0 updated, 0 unchanged, 0 failed")
        );
        let customers = import("customers", &examples.join("customers.csv"), &binary.addr);
        assert!(
            stdout_of(&customers).contains("5 rows, 5 created, 0 updated, 0 unchanged, 0 failed")
        );
        let again = import("customers", &examples.join("customers.csv"), &binary.addr);
        assert!(stdout_of(&again).contains("5 rows, 0 created, 0 updated, 5 unchanged, 0 failed"));

        let dir = tempfile::tempdir().expect("temp dir");
        let bad = dir.path().join("bad.csv");
        std::fs::write(
            &bad,
            "email,first_name,organisation_code,validity\n\
             ok@example.com,Okay,,\n\
             broken,Broken,,\n\
             nobody@example.com,Nobody,NO-SUCH-ORG,\n\
             odd@example.com,Odd,,sometimes\n",
        )
        .expect("write csv");
        let output = import("customers", &bad, &binary.addr);
        assert_eq!(output.status.code(), Some(1), "some rows failed");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("4 rows, 1 created, 0 updated, 0 unchanged, 3 failed"),
            "{text}"
        );
        assert!(text.contains("line 3: INVALID_FIELD email:"), "{text}");
        assert!(
            text.contains("line 4: INVALID_FIELD organisation_code:"),
            "{text}"
        );
        assert!(text.contains("line 5: UNREADABLE validity:"), "{text}");

        let unknown = dir.path().join("unknown.csv");
        std::fs::write(&unknown, "email,shoe_size\na@example.com,38\n").expect("write csv");
        let output = import("customers", &unknown, &binary.addr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "unknown columns stop the import"
        );
        assert!(String::from_utf8_lossy(&output.stderr).contains("shoe_size"));
    })
    .await;
}

#[test]
fn the_health_command_fails_when_nothing_serves() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let status = Command::new(BINARY)
        .args(["health", "--addr", &addr, "--timeout", "2s"])
        .status()
        .expect("clientele health");
    assert_eq!(status.code(), Some(1));
}

/// Two `clientele serve` processes on one PostgreSQL database, with the real clock: a
/// watcher on one hears of the escalation of a ticket created through the other, and the
/// escalation is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(clientele_postgres_tests),
    ignore = "CLIENTELE_TEST_POSTGRES_URL is not set"
)]
async fn two_server_processes_share_escalations_through_postgres() {
    use clientele::proto::v1 as pb;

    let Some(database) = TestDatabase::create(Backend::Postgres).await else {
        return;
    };
    let first = RunningBinary::start(&database.url, &[]);
    let second = RunningBinary::start(&database.url, &[]);
    let channel = |binary: &RunningBinary| {
        tonic::service::interceptor::InterceptedService::new(
            tonic::transport::Channel::from_shared(format!("http://{}", binary.addr))
                .expect("uri")
                .connect_lazy(),
            Bearer::new(Some(TOKEN)),
        )
    };
    let mut on_first = pb::ticket_service_client::TicketServiceClient::new(channel(&first));
    let mut on_second = pb::ticket_service_client::TicketServiceClient::new(channel(&second));
    let admin = channel(&second);
    let policy = pb::sla_service_client::SlaServiceClient::new(admin.clone())
        .create_sla_policy(pb::CreateSlaPolicyRequest {
            request_id: String::new(),
            sla_policy: Some(pb::SlaPolicy {
                name: "Two seconds".into(),
                first_response_within: Some(prost_types::Duration {
                    seconds: 2,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        })
        .await
        .expect("policy")
        .into_inner()
        .sla_policy
        .expect("policy");
    let group = pb::group_service_client::GroupServiceClient::new(admin.clone())
        .create_group(pb::CreateGroupRequest {
            request_id: String::new(),
            group: Some(pb::Group {
                name: "Support".into(),
                default_sla_policy_id: policy.id,
                ..Default::default()
            }),
        })
        .await
        .expect("group")
        .into_inner()
        .group
        .expect("group");
    let customer = pb::customer_service_client::CustomerServiceClient::new(admin.clone())
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                email: "jane@example.org".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("customer")
        .into_inner()
        .customer
        .expect("customer");
    pb::permission_service_client::PermissionServiceClient::new(admin)
        .grant_permission(pb::GrantPermissionRequest {
            grant: Some(pb::Grant {
                subject: Some(pb::Subject {
                    subject: Some(pb::subject::Subject::CustomerId(customer.id.clone())),
                }),
                group_id: group.id.clone(),
                level: pb::PermissionLevel::Rw.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("grant");
    let mut watch = on_first
        .watch_escalations(pb::WatchEscalationsRequest::default())
        .await
        .expect("watch")
        .into_inner();
    let complete = watch.message().await.expect("watch").expect("message");
    assert_eq!(complete.kind(), pb::WatchEventKind::SnapshotComplete);
    let ticket = on_second
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                title: "Across processes".into(),
                group_id: group.id,
                customer_id: customer.id,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("create through the second process")
        .into_inner()
        .ticket
        .expect("ticket");
    let escalated = tokio::time::timeout(PATIENCE, watch.message())
        .await
        .expect("the escalation reaches the first process's watcher")
        .expect("watch")
        .expect("message");
    assert_eq!(escalated.kind(), pb::WatchEventKind::Escalated);
    assert_eq!(escalated.ticket.map(|t| t.number), Some(ticket.number));
    let history = on_first
        .get_ticket_history(pb::GetTicketHistoryRequest {
            id: ticket.id,
            ..Default::default()
        })
        .await
        .expect("history")
        .into_inner();
    let escalations = history
        .entries
        .iter()
        .filter(|e| e.kind() == pb::ChangeKind::Escalated)
        .count();
    assert_eq!(escalations, 1, "recorded once by the two schedulers");
    // Close the connections first: a graceful shutdown waits for its clients to go.
    drop((watch, on_first, on_second));
    first.terminate();
    second.terminate();
}

/// The peak resident memory of process `pid`, in bytes (Linux).
fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A 64 MiB attachment goes up and comes back through the server process while its peak
/// memory grows by less than half the file: uploads and downloads hold a few chunks, not
/// files. (A server that held the file would grow by at least its size; what it keeps
/// whatever the file, such as each pooled SQLite connection's page cache of up to 2 MiB, stays
/// well inside the other half, however the load spreads the work over connections.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_attachment_passes_through_the_server_without_its_memory_growing_by_it() {
    use clientele::proto::v1 as pb;

    let Some(database) = TestDatabase::create(Backend::Sqlite).await else {
        return;
    };
    const LARGE: usize = 64 * 1024 * 1024;
    let binary = RunningBinary::start(&database.url, &["--attachment-limit", "64"]);
    let Some(before) = peak_memory(binary.child.id()) else {
        eprintln!("note: skipped, /proc/PID/status is not readable here");
        return;
    };
    let channel = tonic::service::interceptor::InterceptedService::new(
        tonic::transport::Channel::from_shared(format!("http://{}", binary.addr))
            .expect("uri")
            .connect_lazy(),
        Bearer::new(Some(TOKEN)),
    );
    let group = pb::group_service_client::GroupServiceClient::new(channel.clone())
        .create_group(pb::CreateGroupRequest {
            request_id: String::new(),
            group: Some(pb::Group {
                name: "Files".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("group")
        .into_inner()
        .group
        .expect("group");
    let customer = pb::customer_service_client::CustomerServiceClient::new(channel.clone())
        .create_customer(pb::CreateCustomerRequest {
            customer: Some(pb::Customer {
                email: "big@files.example".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("customer")
        .into_inner()
        .customer
        .expect("customer");
    pb::permission_service_client::PermissionServiceClient::new(channel.clone())
        .grant_permission(pb::GrantPermissionRequest {
            grant: Some(pb::Grant {
                subject: Some(pb::Subject {
                    subject: Some(pb::subject::Subject::CustomerId(customer.id.clone())),
                }),
                group_id: group.id.clone(),
                level: pb::PermissionLevel::Rw.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("grant");
    let ticket = pb::ticket_service_client::TicketServiceClient::new(channel.clone())
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                title: "Big file".into(),
                group_id: group.id,
                customer_id: customer.id,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("ticket")
        .into_inner()
        .ticket
        .expect("ticket");
    let mut comments = pb::comment_service_client::CommentServiceClient::new(channel);
    let comment = comments
        .create_comment(pb::CreateCommentRequest {
            comment: Some(pb::Comment {
                body: "Here it is".into(),
                parent: Some(pb::CommentParent {
                    parent: Some(pb::comment_parent::Parent::TicketId(ticket.id)),
                }),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .expect("comment")
        .into_inner()
        .comment
        .expect("comment");
    // A first, smaller file warms up what the server keeps whatever the file (database page
    // caches, HTTP/2 buffers); then a file eight times as large must not raise the peak by
    // anything like its size.
    round_trip(&mut comments, &comment.id, LARGE / 8).await;
    let warm = peak_memory(binary.child.id()).expect("peak memory");
    round_trip(&mut comments, &comment.id, LARGE).await;
    let after = peak_memory(binary.child.id()).expect("peak memory");
    eprintln!(
        "server peak memory: {} KiB at start, {} KiB after {} MiB, {} KiB after {} MiB",
        before / 1024,
        warm / 1024,
        LARGE / 8 / 1024 / 1024,
        after / 1024,
        LARGE / 1024 / 1024
    );
    let growth = after.saturating_sub(warm);
    assert!(
        growth < (LARGE / 2) as u64,
        "the server's peak memory grew by {} KiB for the {} MiB file",
        growth / 1024,
        LARGE / 1024 / 1024
    );
    drop(comments);
    binary.terminate();
}

/// Uploads `size` bytes onto comment `comment_id` in 256 KiB chunks and downloads them again.
async fn round_trip(
    comments: &mut clientele::proto::v1::comment_service_client::CommentServiceClient<Authed>,
    comment_id: &str,
    size: usize,
) {
    use clientele::proto::v1 as pb;
    const CHUNK: usize = 256 * 1024;
    // The chunks are made as they are sent, so the test holds no copy of the file either.
    let piece = |index: usize| -> Vec<u8> {
        (0..CHUNK)
            .map(|i| ((index * CHUNK + i) % 251) as u8)
            .collect()
    };
    let parts = std::iter::once(pb::UploadAttachmentRequest {
        part: Some(pb::upload_attachment_request::Part::Metadata(
            pb::AttachmentMetadata {
                comment_id: comment_id.into(),
                file_name: format!("{size}.bin"),
                size: size as i64,
                ..Default::default()
            },
        )),
    })
    .chain(
        (0..size / CHUNK).map(move |index| pb::UploadAttachmentRequest {
            part: Some(pb::upload_attachment_request::Part::Chunk(piece(index))),
        }),
    );
    let attachment = comments
        .upload_attachment(tokio_stream::iter(parts))
        .await
        .expect("upload")
        .into_inner()
        .attachment
        .expect("attachment");
    let mut download = comments
        .download_attachment(pb::DownloadAttachmentRequest { id: attachment.id })
        .await
        .expect("download")
        .into_inner();
    let mut received = 0;
    while let Some(message) = download.message().await.expect("download stream") {
        if let Some(pb::download_attachment_response::Part::Chunk(data)) = message.part {
            received += data.len();
        }
    }
    assert_eq!(received, size);
}

/// `buf breaking` against the committed baseline of the v1 contract, as CI runs it, in `dir`.
fn buf_breaking(dir: &Path) -> Output {
    Command::new("buf")
        .current_dir(dir)
        .args([
            "breaking",
            "proto",
            "--against",
            "contract/clientele-v1.binpb",
        ])
        .output()
        .expect("run buf")
}

/// The contract is stable: CI runs `buf breaking` against `contract/clientele-v1.binpb`. The
/// tree as committed passes; the same tree with a field taken away fails, naming it.
#[test]
fn a_breaking_change_of_the_contract_fails_the_check_against_the_baseline() {
    if !available("buf", &["--version"]) {
        return;
    }
    let as_is = buf_breaking(&repository());
    assert!(
        as_is.status.success(),
        "the committed contract breaks its baseline: {}{}",
        String::from_utf8_lossy(&as_is.stdout),
        String::from_utf8_lossy(&as_is.stderr)
    );

    let copy = tempfile::tempdir().expect("temp dir");
    for part in ["buf.yaml", "proto", "third_party", "contract"] {
        let copied = Command::new("cp")
            .args(["-r", &repository().join(part).display().to_string()])
            .arg(copy.path())
            .status()
            .expect("cp");
        assert!(copied.success(), "copy {part}");
    }
    let organisation = copy.path().join("proto/clientele/v1/organisation.proto");
    let text = std::fs::read_to_string(&organisation).expect("read");
    let without_street: String = text
        .lines()
        .filter(|line| line.trim() != "string street = 4;")
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(without_street, text, "the field was there to take away");
    std::fs::write(&organisation, without_street).expect("write");
    let broken = buf_breaking(copy.path());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&broken.stdout),
        String::from_utf8_lossy(&broken.stderr)
    );
    assert!(!broken.status.success(), "a removed field passed: {said}");
    assert!(said.contains("street"), "{said}");
}

/// Every request has an id: the client's `x-request-id`, or one made by the server, returned
/// in the answer's metadata; its log lines carry it and the trace id of the caller's W3C
/// `traceparent`. With the real grpcurl and the server's JSON log.
#[test]
fn request_ids_and_trace_ids_reach_the_answer_and_the_log() {
    if !available("grpcurl", &["-version"]) {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let mut binary = RunningBinary::start(&database, &["--log-format", "json"]);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let output = grpcurl_authed(&[
        "-plaintext",
        "-v",
        "-H",
        "x-request-id: support-ticket-4711",
        "-H",
        &format!("traceparent: 00-{trace}-00f067aa0ba902b7-01"),
        &binary.addr,
        "clientele.v1.GroupService/ListGroups",
    ]);
    let shown = stdout_of(&output).to_lowercase();
    assert!(
        shown.contains("x-request-id: support-ticket-4711"),
        "{shown}"
    );
    let line = binary.wait_for_line(|line| {
        line.contains("support-ticket-4711") && line.contains("rpc finished")
    });
    assert!(line.contains(trace), "the caller's trace: {line}");

    // Without one, the server makes an id and a trace and returns the id.
    let output = grpcurl_authed(&[
        "-plaintext",
        "-v",
        &binary.addr,
        "clientele.v1.GroupService/ListGroups",
    ]);
    let shown = stdout_of(&output).to_lowercase();
    let id = shown
        .lines()
        .find_map(|line| line.trim().strip_prefix("x-request-id: "))
        .expect("an id in the answer")
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let line = binary.wait_for_line(|line| line.contains(&id) && line.contains("rpc finished"));
    assert!(line.contains("trace_id"), "{line}");
    binary.terminate();
}
