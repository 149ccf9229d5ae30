//! The server under test: a `clientele serve` process this tool starts, or one already
//! running; and its memory, read from `/proc`.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use clientele::proto::v1 as pb;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Channel, Endpoint},
};

use crate::{Args, BenchError};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Debug)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel that authenticates every call.
pub type Authed = InterceptedService<Channel, Bearer>;

/// The server being measured.
pub struct Target {
    /// `host:port`.
    pub addr: String,
    /// An admin token.
    pub admin_token: String,
    /// The database, when this tool knows it.
    pub database_url: Option<String>,
    /// Which database the server runs on, for the report.
    pub backend: String,
    child: Option<Child>,
    _directory: Option<tempfile::TempDir>,
}

/// The `clientele` binary to start: `--binary`, else the one beside this tool.
pub fn binary_of(args: &Args) -> Result<std::path::PathBuf, BenchError> {
    Ok(match &args.binary {
        Some(binary) => binary.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or("cannot find the directory of clientele-bench")?
            .join("clientele"),
    })
}

/// Starts `clientele serve` on `database_url` on a free port; the process and its address.
fn spawn_server(
    binary: &std::path::Path,
    database_url: &str,
    env: &[(&str, String)],
) -> Result<(Child, String), BenchError> {
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .env("DATABASE_URL", database_url)
        .env_remove("CLIENTELE_BOOTSTRAP_TOKEN")
        .env_remove("CLIENTELE_LISTEN")
        // One log line per RPC would measure the terminal; warnings and start-up only.
        .env("RUST_LOG", "warn,clientele::server=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout of the server")?;
    let (found, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        // Keep reading, so that the server never blocks on a full pipe.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent
                && line.contains("listening")
                && let Some(start) = line.find("127.0.0.1:")
            {
                let addr: String = line[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                sent = found.send(addr).is_ok();
            }
        }
    });
    let addr = address
        .recv_timeout(Duration::from_secs(600))
        .map_err(|_| "the server did not start listening")?;
    Ok((child, addr))
}

impl Target {
    /// Starts a server on the database of `args` (a temporary SQLite file by default), or
    /// connects to `args.server`.
    pub async fn prepare(args: &Args) -> Result<Self, BenchError> {
        if let Some(addr) = &args.server {
            let admin_token = args
                .token
                .clone()
                .ok_or("--server needs an admin --token")?;
            return Ok(Self {
                addr: addr.trim_start_matches("http://").to_owned(),
                admin_token,
                backend: backend_of(args.database_url.as_deref()),
                database_url: args.database_url.clone(),
                child: None,
                _directory: None,
            });
        }
        let (database_url, directory) = match &args.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let directory = tempfile::tempdir()?;
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    directory.path().join("bench.db").display()
                );
                (url, Some(directory))
            }
        };
        let binary = binary_of(args)?;
        // The database made (an SQLite file) or brought up to date, then an admin token made
        // on it, so that a database seeded by an earlier run can be measured again.
        let migrated = Command::new(&binary)
            .arg("migrate")
            .env("DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if !migrated.success() {
            return Err("`clientele migrate` failed".into());
        }
        let made = Command::new(&binary)
            .args([
                "token",
                "create",
                "--admin",
                "--description",
                "clientele-bench",
            ])
            .env("DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if !made.status.success() {
            return Err("`clientele token create --admin` failed".into());
        }
        let admin_token = String::from_utf8(made.stdout)?.trim().to_owned();
        let (child, addr) = spawn_server(&binary, &database_url, &[])?;
        let target = Self {
            addr,
            admin_token,
            backend: backend_of(Some(&database_url)),
            database_url: Some(database_url),
            child: Some(child),
            _directory: directory,
        };
        target.wait_until_serving().await?;
        Ok(target)
    }

    async fn wait_until_serving(&self) -> Result<(), BenchError> {
        let mut health =
            tonic_health::pb::health_client::HealthClient::new(self.plain_channel().await?);
        for _ in 0..600 {
            if let Ok(response) = health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                && response.into_inner().status == 1
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the server did not become SERVING".into())
    }

    /// A new connection without credentials.
    pub async fn plain_channel(&self) -> Result<Channel, BenchError> {
        Ok(Endpoint::from_shared(format!("http://{}", self.addr))?
            .tcp_nodelay(true)
            // Receive windows sized to the bandwidth-delay product, as gRPC's own clients
            // (Go, C++, Java) do: HTTP/2's default 64 KiB would make a streamed list wait for
            // window updates rather than for the server.
            .http2_adaptive_window(true)
            .connect()
            .await?)
    }

    /// A new connection calling with `token`.
    pub async fn channel(&self, token: &str) -> Result<Authed, BenchError> {
        let value: MetadataValue<Ascii> = format!("Bearer {token}").parse()?;
        Ok(InterceptedService::new(
            self.plain_channel().await?,
            Bearer(value),
        ))
    }

    /// Clients of the admin.
    pub async fn admin(&self) -> Result<Authed, BenchError> {
        self.channel(&self.admin_token).await
    }

    /// A second server on the same database (a replica), when this tool started the first;
    /// stopped when dropped.
    pub async fn replica(&self, binary: &std::path::Path) -> Result<Self, BenchError> {
        self.replica_with(binary, &[]).await
    }

    /// A replica started with the environment variables `env` besides the database's.
    pub async fn replica_with(
        &self,
        binary: &std::path::Path,
        env: &[(&str, String)],
    ) -> Result<Self, BenchError> {
        let database_url = self
            .database_url
            .clone()
            .ok_or("a replica needs the database's URL")?;
        let (child, addr) = spawn_server(binary, &database_url, env)?;
        let target = Self {
            addr,
            admin_token: self.admin_token.clone(),
            backend: self.backend.clone(),
            database_url: Some(database_url),
            child: Some(child),
            _directory: None,
        };
        target.wait_until_serving().await?;
        Ok(target)
    }

    /// The server process, when this tool started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts measuring the server's peak memory afresh.
    pub fn reset_peak_memory(&self) {
        if let Some(pid) = self.pid() {
            // Writing 5 to clear_refs resets the peak resident set size (Linux ≥ 4.0).
            let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        }
    }

    /// The server's peak resident memory since the last reset, in bytes.
    pub fn peak_memory(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The server's resident memory now, in bytes.
    pub fn memory(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Stops the server this tool started.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Target {
    /// A server this tool started does not outlive it, also when a scenario fails.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn backend_of(url: Option<&str>) -> String {
    match url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL".into(),
        Some(url) if url.starts_with("sqlite") => "SQLite".into(),
        _ => "unknown database".into(),
    }
}

/// The health client of a channel.
pub fn health(channel: Channel) -> tonic_health::pb::health_client::HealthClient<Channel> {
    tonic_health::pb::health_client::HealthClient::new(channel)
}

/// The service clients of a channel.
pub struct Clients {
    pub organisations: pb::organisation_service_client::OrganisationServiceClient<Authed>,
    pub tickets: pb::ticket_service_client::TicketServiceClient<Authed>,
}

impl Clients {
    /// Clients on `channel`.
    pub fn new(channel: Authed) -> Self {
        Self {
            organisations: pb::organisation_service_client::OrganisationServiceClient::new(
                channel.clone(),
            ),
            tickets: pb::ticket_service_client::TicketServiceClient::new(channel),
        }
    }
}
