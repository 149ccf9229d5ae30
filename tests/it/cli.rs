//! The `clientele` command as a new user meets it: durations as the README writes them, no
//! secret in a help text, a listen address by name, database errors that say what is wrong and
//! what to do, and commands that never make a database by accident.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
};

use sea_orm::{ConnectionTrait, Database, Statement};

const BINARY: &str = env!("CARGO_BIN_EXE_clientele");

/// `clientele ARGS` on `database_url`, with none of the environment that would change it.
fn clientele(args: &[&str], database_url: &str) -> Output {
    Command::new(BINARY)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("CLIENTELE_BOOTSTRAP_TOKEN")
        .env_remove("CLIENTELE_LISTEN")
        .env("RUST_LOG", "info")
        .output()
        .expect("run clientele")
}

/// Everything the command printed, on either stream.
fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sqlite_url(file: &Path, create: bool) -> String {
    let mode = if create { "?mode=rwc" } else { "" };
    format!("sqlite://{}{mode}", file.display())
}

#[tokio::test]
async fn token_lifetimes_are_given_in_hours_days_or_weeks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = sqlite_url(&dir.path().join("clientele.db"), true);
    assert!(clientele(&["migrate"], &url).status.success());
    for lifetime in ["90d", "2w", "12h"] {
        let output = clientele(
            &[
                "token",
                "create",
                "--admin",
                "--description",
                lifetime,
                "--expires-in",
                lifetime,
            ],
            &url,
        );
        assert!(output.status.success(), "{lifetime}: {}", printed(&output));
    }
    let db = Database::connect(&url).await.expect("database");
    let lifetime = |description: &'static str| {
        let db = &db;
        async move {
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    db.get_database_backend(),
                    "SELECT expire_time - create_time AS lifetime FROM tokens WHERE description = ?",
                    [description.into()],
                ))
                .await
                .expect("query")
                .expect("the token");
            row.try_get::<i64>("", "lifetime").expect("lifetime") as f64
        }
    };
    let half_day = lifetime("12h").await;
    assert_eq!((lifetime("90d").await / half_day).round(), 180.0, "90 days");
    assert_eq!((lifetime("2w").await / half_day).round(), 28.0, "2 weeks");
    db.close().await.expect("close");

    let refused = clientele(&["token", "create", "--admin", "--expires-in", "3mo"], &url);
    assert!(!refused.status.success());
    assert!(
        printed(&refused).contains("give days"),
        "months vary in length: {}",
        printed(&refused)
    );
}

#[test]
fn help_never_prints_a_secret_from_the_environment() {
    let url = "postgres://clientele:pa55-secret-word@db.example/clientele";
    // Every variable that holds a secret, each with a value of its own.
    let secrets = [
        ("CLIENTELE_BOOTSTRAP_TOKEN", "bootstrap-secret-value-1234"),
        ("CLIENTELE_PAGE_TOKEN_KEY", "page-key-secret-value-5678"),
        ("CLIENTELE_TOKEN", "import-token-secret-value-90"),
    ];
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["health", "--help"],
        &["import", "--help"],
        &["token", "create", "--help"],
    ] {
        let output = Command::new(BINARY)
            .args(args)
            .env("DATABASE_URL", url)
            .envs(secrets)
            .output()
            .expect("run clientele");
        let help = printed(&output);
        assert!(output.status.success(), "{args:?}: {help}");
        assert!(!help.contains("pa55-secret-word"), "{args:?}: {help}");
        for (name, value) in secrets {
            assert!(!help.contains(value), "{args:?} prints {name}: {help}");
        }
    }
    // Where a secret is an option, its variable is documented (without its value).
    let serve = printed(&clientele(&["serve", "--help"], url));
    for name in [
        "DATABASE_URL",
        "CLIENTELE_BOOTSTRAP_TOKEN",
        "CLIENTELE_PAGE_TOKEN_KEY",
    ] {
        assert!(
            serve.contains(name),
            "serve --help documents {name}: {serve}"
        );
    }
}

#[test]
fn the_server_listens_on_a_host_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Command::new(BINARY)
        .args(["serve", "--listen", "localhost:0"])
        .env("DATABASE_URL", sqlite_url(&dir.path().join("c.db"), true))
        .env_remove("CLIENTELE_BOOTSTRAP_TOKEN")
        .env_remove("CLIENTELE_LISTEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start clientele");
    let stdout = server.stdout.take().expect("stdout");
    let listening = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("listening"));
    let addr = listening
        .as_deref()
        .and_then(|line| line.split("addr=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    let health = addr.as_ref().map(|addr| {
        Command::new(BINARY)
            .args(["health", "--addr", addr])
            .output()
            .expect("clientele health")
    });
    let _ = server.kill();
    let _ = server.wait();
    let addr = addr.unwrap_or_else(|| panic!("no listening address in {listening:?}"));
    let health = health.expect("health");
    assert!(
        health.status.success(),
        "health of {addr}: {}",
        printed(&health)
    );
}

#[test]
fn an_unreachable_postgres_is_named_with_the_cause() {
    // A port nothing listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("postgres://someone:hidden-pw@127.0.0.1:{port}/clientele");
    let output = clientele(&["migrate"], &url);
    let message = printed(&output);
    assert!(!output.status.success());
    assert!(
        message.contains(&format!("someone@127.0.0.1:{port}/clientele")),
        "names the database: {message}"
    );
    assert!(
        message.to_lowercase().contains("connection refused"),
        "says why: {message}"
    );
    assert!(!message.contains("hidden-pw"), "{message}");
}

#[test]
fn a_missing_sqlite_file_is_reported_with_how_to_create_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("absent.db");
    let output = clientele(&["migrate"], &sqlite_url(&file, false));
    let message = printed(&output);
    assert!(!output.status.success());
    assert!(
        message.contains("there is no file") && message.contains("?mode=rwc"),
        "{message}"
    );
    assert!(!file.exists());
}

#[test]
fn a_short_bootstrap_token_is_refused_before_the_database_is_touched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("clientele.db");
    let output = Command::new(BINARY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", sqlite_url(&file, true))
        .env("CLIENTELE_BOOTSTRAP_TOKEN", "too-short")
        .env_remove("CLIENTELE_LISTEN")
        .output()
        .expect("run clientele");
    let message = printed(&output);
    assert!(!output.status.success());
    assert!(
        message.contains("CLIENTELE_BOOTSTRAP_TOKEN must be at least 20 characters"),
        "{message}"
    );
    assert!(!file.exists(), "no database was made");
}

#[test]
fn token_create_never_makes_a_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Named by the URL, or the default `clientele.db` in the working directory.
    let named = dir.path().join("named.db");
    let output = clientele(&["token", "create", "--admin"], &sqlite_url(&named, true));
    assert!(!output.status.success());
    assert!(
        printed(&output).contains("there is no database"),
        "{}",
        printed(&output)
    );
    assert!(!named.exists());

    let output = Command::new(BINARY)
        .args(["token", "create", "--admin"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .expect("run clientele");
    assert!(!output.status.success());
    assert!(
        printed(&output).contains("there is no database"),
        "{}",
        printed(&output)
    );
    assert!(!dir.path().join("clientele.db").exists());
}

/// `migrate status` lists every migration, `migrate down N` undoes the last N (every one of
/// them can be undone), and `migrate` brings them back, on both databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_listed_undone_and_applied_again() {
    for backend in [
        crate::support::Backend::Sqlite,
        crate::support::Backend::Postgres,
    ] {
        let Some(database) = crate::support::TestDatabase::create(backend).await else {
            continue;
        };
        // The commands run as a person runs them, one after the other (no server here).
        let run = |args: &[&str]| clientele(args, &database.url);
        let up = run(&["migrate"]);
        assert!(up.status.success(), "{}", printed(&up));
        let status = run(&["migrate", "status"]);
        assert!(status.status.success(), "{backend:?}: {}", printed(&status));
        let listed = String::from_utf8_lossy(&status.stdout).into_owned();
        let total = listed.lines().count();
        assert!(total >= 9, "{listed}");
        assert!(
            listed.lines().all(|line| line.starts_with("applied m")),
            "{listed}"
        );

        let down = run(&["migrate", "down", "1"]);
        assert!(down.status.success(), "{backend:?}: {}", printed(&down));
        let status = run(&["migrate", "status"]);
        assert_eq!(
            status.status.code(),
            Some(1),
            "one pending: {}",
            printed(&status)
        );
        let listed = String::from_utf8_lossy(&status.stdout).into_owned();
        assert_eq!(
            listed
                .lines()
                .filter(|line| line.starts_with("pending "))
                .count(),
            1,
            "{listed}"
        );
        assert!(
            listed
                .lines()
                .last()
                .expect("lines")
                .starts_with("pending "),
            "the newest: {listed}"
        );

        // Every migration undone, then all applied again.
        let down = run(&["migrate", "down", &total.to_string()]);
        assert!(down.status.success(), "{backend:?}: {}", printed(&down));
        let up = run(&["migrate"]);
        assert!(up.status.success(), "{backend:?}: {}", printed(&up));
        let status = run(&["migrate", "status"]);
        assert!(status.status.success(), "{backend:?}: {}", printed(&status));
    }
}

#[test]
fn status_down_and_backup_do_not_make_a_database_that_is_not_there() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.db");
    let url = sqlite_url(&missing, true);
    for args in [
        &["migrate", "status"][..],
        &["migrate", "down", "1"],
        &["backup", dir.path().join("copy.db").to_str().expect("path")],
    ] {
        let output = clientele(args, &url);
        assert!(!output.status.success(), "{args:?}");
        assert!(
            printed(&output).contains("there is no database"),
            "{args:?}: {}",
            printed(&output)
        );
        assert!(!missing.exists(), "{args:?} made the database");
    }
}

/// A backup taken while a server writes is the database at one moment: a server started on it
/// finds every write acknowledged before the backup began. PostgreSQL's backup is pg_dump's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_holds_every_write_acknowledged_before_it() {
    use clientele::proto::v1 as pb;
    use std::sync::{Arc, Mutex};

    let Some(server) = crate::support::TestServer::start(crate::support::Backend::Sqlite).await
    else {
        return;
    };
    let acknowledged: Arc<Mutex<Vec<(std::time::Instant, String)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut organisations = server.organisations();
        let acknowledged = acknowledged.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut index = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let code = format!("B{writer}-{index}");
                index += 1;
                let created = organisations
                    .create_organisation(pb::CreateOrganisationRequest {
                        organisation: Some(pb::Organisation {
                            code: code.clone(),
                            name: code.clone(),
                            country: "NL".into(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await;
                if created.is_ok() {
                    acknowledged
                        .lock()
                        .expect("list")
                        .push((std::time::Instant::now(), code));
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.db");
    let began = std::time::Instant::now();
    let backup = tokio::task::spawn_blocking({
        let url = server.database.url.clone();
        let copy = copy.clone();
        move || clientele(&["backup", copy.to_str().expect("path")], &url)
    })
    .await
    .expect("run");
    assert!(backup.status.success(), "{}", printed(&backup));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    let before: Vec<String> = acknowledged
        .lock()
        .expect("list")
        .iter()
        .filter(|(at, _)| *at < began)
        .map(|(_, code)| code.clone())
        .collect();
    assert!(
        before.len() >= 10,
        "only {} writes before the backup",
        before.len()
    );

    // A server on the copy (its admin token came along).
    let mut config = clientele::Config::new(sqlite_url(&copy, false));
    config.bootstrap_token = None;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_copy, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(clientele::run(config, listener, async {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    let mut restored = pb::organisation_service_client::OrganisationServiceClient::with_interceptor(
        channel,
        crate::support::Bearer::new(Some(&server.admin_secret)),
    );
    let mut found = 0;
    for code in &before {
        let mut attempt = 0;
        loop {
            let read = restored
                .get_organisation(pb::GetOrganisationRequest {
                    key: Some(pb::get_organisation_request::Key::Code(code.clone())),
                })
                .await;
            match read {
                Ok(_) => break,
                // The server on the copy may still be starting.
                Err(status) if status.code() == tonic::Code::Unavailable && attempt < 100 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(status) => {
                    panic!("{code}, acknowledged before the backup, is not in it: {status:?}")
                }
            }
        }
        found += 1;
    }
    assert_eq!(found, before.len());
    let _ = stop_copy.send(());
    task.await
        .expect("task")
        .expect("the server on the copy stops cleanly");
    server.stop().await;
}
