//! Counters of the server's requests and streaming work, shared with whoever started it: tests use them to
//! see that a slow reader holds the server's read-ahead bounded and that a cancelled stream
//! stops the server's work; the benchmark tool reports them; `--metrics-listen` serves them to
//! Prometheus ([`Metrics::exposition`], with prometheus-client).

use std::{
    collections::HashSet,
    sync::{
        LazyLock,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// The labels of a finished call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    method: &'static str,
    code: &'static str,
}

/// The label of a method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: &'static str,
}

/// The label of a kind of stream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stream {
    kind: &'static str,
}

/// The label of a state of database connections.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Connections {
    state: &'static str,
}

/// The labels of the build.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Build {
    version: &'static str,
}

/// Latency buckets: 0.5 ms doubling to about 16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The connections of the database pool at a moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open (in use or idle).
    pub open: u32,
    /// Connections idle.
    pub idle: u32,
    /// Writes begun so far.
    pub writes: u64,
    /// The time those writes waited for their transaction to begin, in all.
    pub write_wait: Duration,
    /// Write transactions committed so far: on SQLite writes share them (group commit), so
    /// under load there are fewer than writes.
    pub commits: u64,
    /// Read statements begun so far.
    pub reads: u64,
    /// The time those reads waited for a connection, in all.
    pub read_wait: Duration,
}

/// Every method the server serves, by path: a label takes one of them or `other`, so that
/// clients calling made-up paths cannot grow the metrics without end.
static METHODS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    crate::proto::methods()
        .into_iter()
        .map(|method| method.path)
        .chain(
            [
                "/grpc.health.v1.Health/Check",
                "/grpc.health.v1.Health/Watch",
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            ]
            .map(str::to_owned),
        )
        .collect()
});

/// The label for the method at `path`.
pub fn method_label(path: &str) -> &'static str {
    METHODS.get(path).map_or("other", String::as_str)
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Counters of one server.
#[derive(Debug)]
pub struct Metrics {
    rpcs: AtomicI64,
    list_streams: AtomicI64,
    tickets_read: AtomicU64,
    tickets_sent: AtomicU64,
    watchers: AtomicI64,
    change_watchers: AtomicI64,
    changes_sent: AtomicU64,
    /// Time from a change to its delivery to a WatchChanges follower.
    change_delay: Histogram,
    token_lookups: AtomicU64,
    token_checks: AtomicU64,
    rights_checks: AtomicU64,
    rights_reads: AtomicU64,
    scheduler_runs: AtomicU64,
    /// How late the scheduler's last run was, in microseconds.
    scheduler_lag: AtomicU64,
    calls: Family<Call, Counter>,
    latency: Family<Method, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            rpcs: AtomicI64::default(),
            list_streams: AtomicI64::default(),
            tickets_read: AtomicU64::default(),
            tickets_sent: AtomicU64::default(),
            watchers: AtomicI64::default(),
            change_watchers: AtomicI64::default(),
            changes_sent: AtomicU64::default(),
            change_delay: latency_histogram(),
            token_lookups: AtomicU64::default(),
            token_checks: AtomicU64::default(),
            rights_checks: AtomicU64::default(),
            rights_reads: AtomicU64::default(),
            scheduler_runs: AtomicU64::default(),
            scheduler_lag: AtomicU64::default(),
            calls: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl Metrics {
    /// Records a finished call of `method` (a [`method_label`]).
    pub(crate) fn finished(&self, method: &'static str, code: tonic::Code, latency: Duration) {
        self.calls
            .get_or_create(&Call {
                method,
                code: code_name(code),
            })
            .inc();
        self.latency
            .get_or_create(&Method { method })
            .observe(latency.as_secs_f64());
    }

    /// Records that a principal's rights were asked for, and whether the cache had them.
    pub(crate) fn rights_checked(&self, cached: bool) {
        self.rights_checks.fetch_add(1, Ordering::Relaxed);
        if !cached {
            self.rights_reads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records a run of the escalation scheduler, `late` after the event it woke for.
    pub(crate) fn scheduler_ran(&self, late: Duration) {
        self.scheduler_runs.fetch_add(1, Ordering::Relaxed);
        self.scheduler_lag.store(
            u64::try_from(late.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Records that a token was checked (from the cache or the database).
    pub(crate) fn token_checked(&self) {
        self.token_checks.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything in Prometheus's text format (0.0.4), with the database pool as `pool`
    /// found it and whether the server is `ready` to serve.
    pub fn exposition(&self, pool: PoolState, ready: bool) -> String {
        let mut registry = Registry::with_prefix("clientele");
        registry.register(
            "rpc_requests",
            "Calls finished, by method and gRPC status code",
            self.calls.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "Time from a call's arrival to the end of its answer, by method",
            self.latency.clone(),
        );
        let gauge = |value: i64| {
            let gauge: Gauge = Gauge::default();
            gauge.set(value);
            gauge
        };
        let counter = |value: u64| {
            let counter: Counter = Counter::default();
            counter.inc_by(value);
            counter
        };
        registry.register(
            "rpcs_in_flight",
            "Calls received and not yet answered in full",
            gauge(self.rpcs_in_flight()),
        );
        let streams = Family::<Stream, Gauge>::default();
        streams
            .get_or_create(&Stream {
                kind: "list_tickets",
            })
            .set(self.list_streams());
        streams
            .get_or_create(&Stream {
                kind: "watch_escalations",
            })
            .set(self.watchers());
        streams
            .get_or_create(&Stream {
                kind: "watch_changes",
            })
            .set(self.change_watchers.load(Ordering::Relaxed));
        registry.register("streams_open", "Server streams open, by kind", streams);
        registry.register(
            "changes_streamed",
            "Changes sent to WatchChanges followers",
            counter(self.changes_sent.load(Ordering::Relaxed)),
        );
        registry.register(
            "change_feed_lag_seconds",
            "Time from a change (its write) to its delivery to a WatchChanges follower",
            self.change_delay.clone(),
        );
        registry.register(
            "tickets_streamed",
            "Tickets sent to ListTickets clients",
            counter(self.tickets_sent()),
        );
        registry.register(
            "tickets_read",
            "Tickets read from the database for ListTickets streams",
            counter(self.tickets_read()),
        );
        registry.register(
            "token_checks",
            "API tokens checked (from the cache or the database)",
            counter(self.token_checks.load(Ordering::Relaxed)),
        );
        registry.register(
            "token_lookups",
            "API tokens looked up in the database (the cache's misses)",
            counter(self.token_lookups()),
        );
        registry.register(
            "rights_checks",
            "Rights of a principal asked for (from the cache or the database)",
            counter(self.rights_checks.load(Ordering::Relaxed)),
        );
        registry.register(
            "rights_reads",
            "Rights of a principal read from the database (the cache's misses)",
            counter(self.rights_reads.load(Ordering::Relaxed)),
        );
        registry.register(
            "escalation_scheduler_runs",
            "Runs of the escalation scheduler",
            counter(self.scheduler_runs.load(Ordering::Relaxed)),
        );
        let lag: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
        lag.set(self.scheduler_lag.load(Ordering::Relaxed) as f64 / 1e6);
        registry.register(
            "escalation_scheduler_lag_seconds",
            "How late the escalation scheduler's last run was after the event it woke for",
            lag,
        );
        let connections = Family::<Connections, Gauge>::default();
        connections
            .get_or_create(&Connections { state: "in_use" })
            .set(i64::from(pool.open.saturating_sub(pool.idle)));
        connections
            .get_or_create(&Connections { state: "idle" })
            .set(i64::from(pool.idle));
        registry.register(
            "db_connections",
            "Connections of the database pool, by state",
            connections,
        );
        registry.register(
            "db_writes",
            "Write transactions begun",
            counter(pool.writes),
        );
        let waited: Counter<f64, std::sync::atomic::AtomicU64> = Counter::default();
        waited.inc_by(pool.write_wait.as_secs_f64());
        registry.register(
            "db_write_wait_seconds",
            "Time writes waited for a connection (on SQLite also for the one writer) before \
             their transaction began, in all",
            waited,
        );
        registry.register(
            "db_commits",
            "Write transactions committed (on SQLite writes share them: group commit)",
            counter(pool.commits),
        );
        registry.register("db_reads", "Read statements begun", counter(pool.reads));
        let read_waited: Counter<f64, std::sync::atomic::AtomicU64> = Counter::default();
        read_waited.inc_by(pool.read_wait.as_secs_f64());
        registry.register(
            "db_read_wait_seconds",
            "Time reads waited for a connection of the pool (or of the direct reads beside it), \
             in all",
            read_waited,
        );
        registry.register(
            "ready",
            "1 while the server serves (the database answers and no shutdown began)",
            gauge(i64::from(ready)),
        );
        let build = Family::<Build, Gauge>::default();
        build
            .get_or_create(&Build {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The build of the server (always 1)", build);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }

    /// RPCs the server has received and not yet answered in full.
    pub fn rpcs_in_flight(&self) -> i64 {
        self.rpcs.load(Ordering::Relaxed)
    }

    /// ListTickets streams running now.
    pub fn list_streams(&self) -> i64 {
        self.list_streams.load(Ordering::Relaxed)
    }

    /// Tickets read from the database by ListTickets streams so far.
    pub fn tickets_read(&self) -> u64 {
        self.tickets_read.load(Ordering::Relaxed)
    }

    /// Tickets handed to ListTickets clients so far.
    pub fn tickets_sent(&self) -> u64 {
        self.tickets_sent.load(Ordering::Relaxed)
    }

    /// WatchEscalations streams running now.
    pub fn watchers(&self) -> i64 {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Database lookups of API tokens so far (calls answered from the cache do none).
    pub fn token_lookups(&self) -> u64 {
        self.token_lookups.load(Ordering::Relaxed)
    }

    pub(crate) fn token_looked_up(&self) {
        self.token_lookups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn read(&self, tickets: usize) {
        self.tickets_read
            .fetch_add(tickets as u64, Ordering::Relaxed);
    }

    pub(crate) fn sent(&self) {
        self.tickets_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Records changes sent to a follower, each `delay` after it was made.
    pub(crate) fn changes_delivered(&self, delays: impl Iterator<Item = Duration>) {
        for delay in delays {
            self.changes_sent.fetch_add(1, Ordering::Relaxed);
            self.change_delay.observe(delay.as_secs_f64());
        }
    }

    /// Counts a WatchChanges follower until the guard is dropped.
    pub(crate) fn change_watcher(self: &std::sync::Arc<Self>) -> Running {
        self.change_watchers.fetch_add(1, Ordering::Relaxed);
        Running(self.clone(), Kind::ChangeWatch)
    }

    /// Counts an RPC as in flight until the guard is dropped.
    pub(crate) fn rpc(self: &std::sync::Arc<Self>) -> Running {
        self.rpcs.fetch_add(1, Ordering::Relaxed);
        Running(self.clone(), Kind::Rpc)
    }

    /// Counts a ListTickets stream until the guard is dropped.
    pub(crate) fn list_stream(self: &std::sync::Arc<Self>) -> Running {
        self.list_streams.fetch_add(1, Ordering::Relaxed);
        Running(self.clone(), Kind::List)
    }

    /// Counts a watcher until the guard is dropped.
    pub(crate) fn watcher(self: &std::sync::Arc<Self>) -> Running {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Running(self.clone(), Kind::Watch)
    }
}

#[derive(Debug)]
enum Kind {
    Rpc,
    List,
    Watch,
    ChangeWatch,
}

/// A stream being counted as running.
#[derive(Debug)]
pub(crate) struct Running(std::sync::Arc<Metrics>, Kind);

impl Drop for Running {
    fn drop(&mut self) {
        let counter = match self.1 {
            Kind::Rpc => &self.0.rpcs,
            Kind::List => &self.0.list_streams,
            Kind::Watch => &self.0.watchers,
            Kind::ChangeWatch => &self.0.change_watchers,
        };
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}
