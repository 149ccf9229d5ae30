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
