//! `clientele-bench`: how fast Clientele is, next to the ceilings the same machine allows.
//!
//! It seeds a database of a chosen size (organisations, customers, tickets), starts a
//! `clientele serve` process on it (or targets a running server), and drives it from
//! concurrent clients: Health/Check (the ceiling of tonic here), GetOrganisation and
//! GetTicket as an agent, GetTicket as a customer through its organisation's grant,
//! CreateTicket, UpdateTicket, CreateComment and CreateCustomer next to the database's write
//! ceiling (pgbench's TPC-B-like transaction through sqlx), a mixed helpdesk workload,
//! ListTickets next to the stream ceiling (streamed tickets per second, time to the
//! first ticket, and the server's peak memory while a slow client streams everything),
//! WatchEscalations (the delay from a deadline to the event at many watchers), and on
//! PostgreSQL primary-key selects straight on the database (the raw ceiling), and the memory
//! that keeping the tokens and rights of many distinct principals costs. It prints a
//! markdown table per run.

mod ceiling;
mod lists;
mod load;
mod report;
mod seed;
mod server;
mod sources;
mod writes;

use std::{path::PathBuf, time::Duration};

use clap::Parser;

/// Command line of `clientele-bench`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "clientele-bench",
    version,
    about = "Benchmarks a Clientele server"
)]
pub struct Args {
    /// The database to seed and serve: `sqlite://FILE?mode=rwc` or `postgres://…` (an empty
    /// database; an already seeded one is reused as it is). Default: a new SQLite file in a
    /// temporary directory.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Benchmark this running server instead of starting one (no seeding; needs `--token`).
    #[arg(long)]
    pub server: Option<String>,
    /// An admin token of `--server`.
    #[arg(long, env = "CLIENTELE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The `clientele` binary to start; default: the one next to this one.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Organisations to seed.
    #[arg(long, default_value_t = 10_000)]
    pub organisations: usize,
    /// Customers to seed.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// Tickets to seed (two in five of them open).
    #[arg(long, default_value_t = 1_000_000)]
    pub tickets: usize,
    /// Concurrent clients of the request scenarios.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How long each request scenario is measured, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = duration)]
    pub duration: Duration,
    /// How long each request scenario runs before it is measured.
    #[arg(long, default_value = "2s", value_parser = duration)]
    pub warmup: Duration,
    /// Watchers of the escalation scenario.
    #[arg(long, default_value_t = 1_000)]
    pub watchers: usize,
    /// Tickets that escalate while the watchers watch.
    #[arg(long, default_value_t = 100)]
    pub escalations: usize,
    /// Changes in the log (seeded when missing) that one WatchChanges follower reads.
    #[arg(long, default_value_t = 200_000)]
    pub changes: u64,
    /// Also write the report to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Distinct principals of the `principals` scenario (each a customer: seed at least as
    /// many customers).
    #[arg(long, default_value_t = 100_000)]
    pub principals: usize,
    /// Run only these scenarios (comma-separated): health, get-organisation, get-ticket,
    /// watch-changes, feed-delay (PostgreSQL: a second server follows the feed),
    /// get-ticket-customer, create-ticket, update-ticket, create-comment, create-customer,
    /// mixed, write-ceiling, stream-ceiling, database, list-tickets, watch, principals,
    /// list-customers (the first page, a deep page, a search with one hit and with many),
    /// customer-source (an LDAP directory of `--ldap-entries` people synced twice; needs
    /// Debian's slapd).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// People in the directory of the customer-source scenario.
    #[arg(long, default_value_t = 100_000)]
    pub ldap_entries: usize,
}

impl Args {
    /// Whether the scenario `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|only| only == name)
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|e| format!("not a duration like 10s or 500ms: {e}"))?;
    Duration::try_from(signed).map_err(|_| "must not be negative".to_owned())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start a runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("clientele-bench: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Everything that can stop a benchmark.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

async fn run(args: Args) -> Result<(), BenchError> {
    let target = server::Target::prepare(&args).await?;
    let fixture = seed::Fixture::prepare(&args, &target).await?;
    let results = load::run_all(&args, &target, &fixture).await?;
    let report = report::markdown(&args, &target, &fixture, &results);
    println!("{report}");
    if let Some(path) = &args.output {
        std::fs::write(path, &report)?;
    }
    target.stop().await;
    let problems = results.problems(&args);
    if !problems.is_empty() {
        return Err(format!("the run is not valid: {}", problems.join("; ")).into());
    }
    Ok(())
}
