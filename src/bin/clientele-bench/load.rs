//! The scenarios: concurrent request loops with a warm-up, the streamed ticket list, the
//! escalation watch, and PostgreSQL's own primary-key selects.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clientele::proto::v1 as pb;
use jiff::Timestamp;

use crate::{
    Args, BenchError, ceiling,
    seed::Fixture,
    server::{self, Authed, Clients, Target},
    writes,
};

/// What one scenario measured.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// Requests (or items) per second.
    pub rate: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Requests that failed.
    pub errors: u64,
    /// Requests (or items) counted.
    pub count: u64,
    /// The server's peak resident memory during the scenario.
    pub peak_memory: Option<u64>,
}

/// Many distinct principals, each calling once, and the server's memory meanwhile.
#[derive(Clone, Debug, Default)]
pub struct Principals {
    /// The calls.
    pub calls: Measured,
    /// Distinct principals (tokens of distinct customers).
    pub count: usize,
    /// The server's resident memory before the calls.
    pub before: Option<u64>,
    /// Its resident memory after them.
    pub after: Option<u64>,
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Results {
    pub health: Measured,
    pub get_organisation: Measured,
    pub get_ticket: Measured,
    /// GetTicket as a customer, of its organisation's tickets by a SAME_ORGANISATION grant.
    pub get_ticket_customer: Measured,
    /// Every principal once: GetTicket with `args.principals` distinct tokens.
    pub principals: Option<Principals>,
    pub create_ticket: Measured,
    /// UpdateTicket: a state change.
    pub update_ticket: Measured,
    /// CreateComment: a public agent reply.
    pub create_comment: Measured,
    /// CreateCustomer with domain assignment.
    pub create_customer: Measured,
    /// pgbench's TPC-B-like transaction through sqlx: the database's write ceiling.
    pub write_ceiling: Option<Measured>,
    /// The ticket rows streamed by the database to one sqlx client: the stream ceiling.
    pub stream_ceiling: Option<Measured>,
    /// The mixed helpdesk workload.
    pub mixed: Option<crate::writes::Mixed>,
    /// PostgreSQL's own primary-key selects, when the database is PostgreSQL.
    pub database: Option<Measured>,
    /// A reader that keeps up: tickets per second; p50 is the time to the first ticket.
    pub list_fast: Measured,
    /// A reader at half that pace: the server's memory while it streams everything.
    pub list_slow: Measured,
    /// Delay from a deadline to its ESCALATED event at each watcher.
    pub watch: Measured,
    /// Watchers that took part.
    pub watchers: usize,
    /// One WatchChanges follower reading the whole feed: changes per second; p50 is the
    /// time to the first message.
    pub watch_changes: Measured,
    /// PostgreSQL: CreateTicket through one replica at half the CreateTicket rate, a
    /// WatchChanges follower on another; the delay from each answer to its change there.
    pub feed_delay: Option<Measured>,
    /// The customer list and search.
    pub lists: Option<crate::lists::Lists>,
    /// The syncs of a customer source.
    pub sources: Option<crate::sources::SourceSyncs>,
}

impl Results {
    /// What went wrong in the scenarios that ran: failed requests, missed events, nothing
    /// measured. A run with problems measured something else than it claims.
    pub fn problems(&self, args: &Args) -> Vec<String> {
        let mut problems = Vec::new();
        let mut check = |name: &str, ran: bool, measured: &Measured| {
            if !ran {
                return;
            }
            if measured.errors > 0 {
                problems.push(format!("{name}: {} failed", measured.errors));
            }
            if measured.count == 0 {
                problems.push(format!("{name}: nothing measured"));
            }
        };
        check("Health/Check", args.runs("health"), &self.health);
        check(
            "GetOrganisation",
            args.runs("get-organisation"),
            &self.get_organisation,
        );
        check("GetTicket", args.runs("get-ticket"), &self.get_ticket);
        check(
            "GetTicket (customer)",
            args.runs("get-ticket-customer"),
            &self.get_ticket_customer,
        );
        if let Some(principals) = &self.principals {
            check("principals", true, &principals.calls);
        }
        check(
            "CreateTicket",
            args.runs("create-ticket"),
            &self.create_ticket,
        );
        check(
            "UpdateTicket",
            args.runs("update-ticket"),
            &self.update_ticket,
        );
        check(
            "CreateComment",
            args.runs("create-comment"),
            &self.create_comment,
        );
        check(
            "CreateCustomer",
            args.runs("create-customer"),
            &self.create_customer,
        );
        if let Some(mixed) = &self.mixed {
            check("mixed workload", true, &mixed.saturated);
            check("mixed workload at half", true, &mixed.half);
        }
        for (name, ceiling) in [
            ("write ceiling", &self.write_ceiling),
            ("stream ceiling", &self.stream_ceiling),
            ("primary-key selects", &self.database),
        ] {
            if let Some(ceiling) = ceiling {
                check(name, true, ceiling);
            }
        }
        check("ListTickets", args.runs("list-tickets"), &self.list_fast);
        check(
            "ListTickets (slow)",
            args.runs("list-tickets"),
            &self.list_slow,
        );
        check("WatchEscalations", args.runs("watch"), &self.watch);
        if let Some(lists) = &self.lists {
            check("ListCustomers, first page", true, &lists.first_page);
            check("ListCustomers, deep page", true, &lists.deep_page);
            check(
                "ListCustomers, search with one hit",
                true,
                &lists.search_one,
            );
            check(
                "ListCustomers, search with many hits",
                true,
                &lists.search_many,
            );
        }
        if let Some(sources) = &self.sources {
            for synced in [&sources.first, &sources.again] {
                let whole = usize::try_from(synced.read).is_ok_and(|read| read == sources.entries);
                if !synced.error.is_empty() || synced.refused > 0 || !whole {
                    problems.push(format!("customer source sync: {synced:?}"));
                }
            }
        }
        problems
    }
}

/// How many connections the concurrent clients share.
fn connections(args: &Args) -> usize {
    args.concurrency.clamp(1, 8)
}

/// Runs every scenario.
pub async fn run_all(
    args: &Args,
    target: &Target,
    fixture: &Fixture,
) -> Result<Results, BenchError> {
    let mut plain = Vec::new();
    let mut agents = Vec::new();
    for _ in 0..connections(args) {
        plain.push(target.plain_channel().await?);
        agents.push(target.channel(&fixture.agent_token).await?);
    }
    let mut results = Results::default();

    if args.runs("health") {
        eprintln!("Health/Check …");
        let health: Vec<_> = plain.iter().cloned().map(server::health).collect();
        results.health = requests(args, target, health, |mut client, _| async move {
            client
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .is_ok()
        })
        .await;
    }

    let clients: Vec<Clients> = agents.iter().cloned().map(Clients::new).collect();
    let organisations = Arc::new(fixture.organisation_ids.clone());
    if args.runs("get-organisation") {
        eprintln!("GetOrganisation …");
        results.get_organisation = requests(args, target, organisations_clients(&clients), {
            let organisations = organisations.clone();
            move |mut client, n| {
                let id = organisations[n % organisations.len()].clone();
                async move {
                    client
                        .get_organisation(pb::GetOrganisationRequest {
                            key: Some(pb::get_organisation_request::Key::Id(id)),
                        })
                        .await
                        .is_ok()
                }
            }
        })
        .await;
    }

    if args.runs("get-ticket") {
        eprintln!("GetTicket …");
        results.get_ticket =
            get_tickets(args, target, ticket_clients(&clients), &fixture.ticket_ids).await;
    }

    if args.runs("get-ticket-customer") {
        eprintln!("GetTicket as a customer, through its organisation's grant …");
        let mut customers = Vec::new();
        for _ in 0..connections(args) {
            customers.push(Clients::new(target.channel(&fixture.customer_token).await?));
        }
        results.get_ticket_customer = get_tickets(
            args,
            target,
            ticket_clients(&customers),
            &fixture.colleague_ticket_ids,
        )
        .await;
    }

    if args.runs("principals") {
        eprintln!("{} principals, once each …", args.principals);
        results.principals = Some(principals(args, target, fixture).await?);
    }

    let customers = Arc::new(fixture.customer_ids.clone());
    let group = fixture.group_id.clone();
    if args.runs("create-ticket") {
        eprintln!("CreateTicket …");
        results.create_ticket = requests(args, target, ticket_clients(&clients), {
            let customers = customers.clone();
            move |mut client, n| {
                let customer = customers[n % customers.len()].clone();
                let group = group.clone();
                async move { writes::create_ticket(&mut client, group, customer, n).await }
            }
        })
        .await;
    }

    if args.runs("update-ticket") {
        eprintln!("UpdateTicket …");
        results.update_ticket = writes::update_tickets(args, target, &agents, fixture).await?;
    }
    if args.runs("create-comment") {
        eprintln!("CreateComment …");
        results.create_comment = writes::create_comments(args, target, &agents, fixture).await;
    }
    if args.runs("create-customer") {
        eprintln!("CreateCustomer …");
        results.create_customer = writes::create_customers(args, target, fixture).await?;
    }
    if args.runs("mixed") {
        eprintln!("Mixed workload …");
        results.mixed = Some(writes::mixed(args, target, fixture).await?);
    }
    if let Some(url) = target.database_url.as_deref() {
        if args.runs("write-ceiling") {
            eprintln!("Write ceiling: TPC-B-like transactions through sqlx …");
            results.write_ceiling = Some(ceiling::write_ceiling(args, url).await?);
        }
        if args.runs("stream-ceiling") {
            eprintln!("Stream ceiling: the ticket rows through sqlx …");
            results.stream_ceiling = Some(ceiling::stream_ceiling(url).await?);
        }
    }

    if let Some(url) = target
        .database_url
        .as_deref()
        .filter(|url| url.starts_with("postgres") && args.runs("database"))
    {
        eprintln!("PostgreSQL primary-key selects …");
        results.database = Some(database_selects(args, url, &organisations).await?);
    }

    if args.runs("list-customers") {
        results.lists = Some(crate::lists::lists(args, target, &agents, fixture).await?);
    }

    if args.runs("customer-source") && target.pid().is_some() {
        if crate::sources::slapd_installed() {
            let binary = crate::server::binary_of(args)?;
            results.sources = Some(crate::sources::run(args, target, &binary).await?);
        } else if args.only.is_empty() {
            eprintln!("customer source: skipped, slapd (Debian's package) is not installed");
        } else {
            return Err("the customer-source scenario needs slapd (Debian's package)".into());
        }
    }

    if args.runs("list-tickets") {
        eprintln!("ListTickets …");
        let (fast, slow) = list_tickets(target, &agents[0]).await?;
        results.list_fast = fast;
        results.list_slow = slow;
    }

    if args.runs("feed-delay") && target.backend == "PostgreSQL" && target.pid().is_some() {
        let saturation = if results.create_ticket.rate > 0.0 {
            results.create_ticket.rate
        } else {
            400.0
        };
        eprintln!(
            "Commit to delivery across two replicas, writes at {:.0}/s …",
            saturation / 2.0
        );
        results.feed_delay = Some(feed_delay(args, target, fixture, saturation / 2.0).await?);
    }

    if args.runs("watch-changes") {
        eprintln!("WatchChanges, one follower from the first change …");
        results.watch_changes = watch_changes(target, args.changes).await?;
    }

    if args.runs("watch") {
        eprintln!("WatchEscalations with {} watchers …", args.watchers);
        results.watch = watch(args, target, fixture, &agents).await?;
        results.watchers = args.watchers;
    }
    Ok(results)
}

/// `args.principals` customers get a token each; then each calls GetTicket once, 32 at a time,
/// while the server's memory is watched: what keeping that many tokens and rights costs.
async fn principals(
    args: &Args,
    target: &Target,
    fixture: &Fixture,
) -> Result<Principals, BenchError> {
    let admin = target.admin().await?;
    let mut customers = pb::customer_service_client::CustomerServiceClient::new(admin.clone());
    let mut ids = Vec::new();
    let mut page_token = String::new();
    while ids.len() < args.principals {
        let page = customers
            .list_customers(pb::ListCustomersRequest {
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        ids.extend(page.customers.into_iter().map(|c| c.id));
        page_token = page.next_page_token;
        if page_token.is_empty() {
            break;
        }
    }
    ids.truncate(args.principals);
    eprintln!("  making {} tokens …", ids.len());
    let next = Arc::new(AtomicUsize::new(0));
    let ids = Arc::new(ids);
    let secrets = Arc::new(Mutex::new(Vec::with_capacity(ids.len())));
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (next, ids, secrets) = (next.clone(), ids.clone(), secrets.clone());
        let mut agents = pb::agent_service_client::AgentServiceClient::new(admin.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                let made = agents
                    .create_token(pb::CreateTokenRequest {
                        owner: Some(pb::TokenOwner {
                            owner: Some(pb::token_owner::Owner::CustomerId(id.clone())),
                        }),
                        description: "clientele-bench principal".into(),
                        expire_time: None,
                    })
                    .await?;
                if let Ok(mut secrets) = secrets.lock() {
                    secrets.push(made.into_inner().secret);
                }
            }
            Ok::<(), tonic::Status>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secrets: Arc<Vec<String>> = Arc::new(std::mem::take(
        &mut *secrets.lock().map_err(|_| "poisoned")?,
    ));
    let count = secrets.len();
    eprintln!("  {count} principals call …");
    let before = target.memory();
    target.reset_peak_memory();
    let channel = target.plain_channel().await?;
    let ticket = fixture.ticket_ids[0].clone();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (next, secrets, ticket) = (next.clone(), secrets.clone(), ticket.clone());
        let mut tickets = pb::ticket_service_client::TicketServiceClient::new(channel.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while let Some(secret) = secrets.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut request = tonic::Request::new(pb::GetTicketRequest {
                    key: Some(pb::get_ticket_request::Key::Id(ticket.clone())),
                });
                let Ok(bearer) = format!("Bearer {secret}").parse() else {
                    errors += 1;
                    continue;
                };
                request.metadata_mut().insert("authorization", bearer);
                let sent = Instant::now();
                // Read or not, the call authenticated the token and compiled the rights.
                match tickets.get_ticket(request).await {
                    Ok(_) => {}
                    Err(status) if status.code() == tonic::Code::NotFound => {}
                    Err(_) => errors += 1,
                }
                latencies.push(sent.elapsed());
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mine, failed) = task.await?;
        latencies.extend(mine);
        errors += failed;
    }
    let calls = summarise(latencies, errors, started.elapsed(), target.peak_memory());
    Ok(Principals {
        calls,
        count,
        before,
        after: target.memory(),
    })
}

/// GetTicket by `clients` over `ids`, in turn.
async fn get_tickets(
    args: &Args,
    target: &Target,
    clients: Vec<pb::ticket_service_client::TicketServiceClient<Authed>>,
    ids: &[String],
) -> Measured {
    let ids = Arc::new(ids.to_vec());
    requests(args, target, clients, move |mut client, n| {
        let id = ids[n % ids.len()].clone();
        async move {
            client
                .get_ticket(pb::GetTicketRequest {
                    key: Some(pb::get_ticket_request::Key::Id(id)),
                })
                .await
                .is_ok()
        }
    })
    .await
}

fn organisations_clients(
    clients: &[Clients],
) -> Vec<pb::organisation_service_client::OrganisationServiceClient<Authed>> {
    clients.iter().map(|c| c.organisations.clone()).collect()
}

fn ticket_clients(
    clients: &[Clients],
) -> Vec<pb::ticket_service_client::TicketServiceClient<Authed>> {
    clients.iter().map(|c| c.tickets.clone()).collect()
}

/// `args.concurrency` loops of `call` over `clients`, for the warm-up and then the measured
/// duration; `call` gets a client and a running number.
pub async fn requests<C, F, Fut>(args: &Args, target: &Target, clients: Vec<C>, call: F) -> Measured
where
    C: Clone + Send + 'static,
    F: Fn(C, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = Vec::new();
    for index in 0..args.concurrency.max(1) {
        let client = clients[index % clients.len()].clone();
        let call = call.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            loop {
                let begun = Instant::now();
                if begun >= end {
                    break;
                }
                // Spread the ids over the sample: a different one every call.
                let n = counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919);
                let ok = call(client.clone(), n).await;
                if begun >= measure_from {
                    if ok {
                        latencies.push(begun.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    // The peak memory counts from the end of the warm-up.
    tokio::time::sleep_until(measure_from.into()).await;
    target.reset_peak_memory();
    let (latencies, errors) = gather(tasks).await;
    summarise(latencies, errors, args.duration, target.peak_memory())
}

/// The latencies and failures of request loops, together.
pub async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, u64)>>,
) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((mine, failed)) = task.await {
            latencies.extend(mine);
            errors += failed;
        }
    }
    (latencies, errors)
}

pub fn summarise(
    mut latencies: Vec<Duration>,
    errors: u64,
    over: Duration,
    peak_memory: Option<u64>,
) -> Measured {
    latencies.sort();
    let at = |share: f64| {
        latencies
            .get(((latencies.len() as f64 * share) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Measured {
        rate: latencies.len() as f64 / over.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        errors,
        count: latencies.len() as u64,
        peak_memory,
    }
}

/// PostgreSQL's own ceiling: primary-key selects of organisation rows at the same
/// concurrency, as `pgbench -S` does on its accounts: each client on a connection of its own,
/// nothing else on the wire.
async fn database_selects(
    args: &Args,
    url: &str,
    organisations: &Arc<Vec<String>>,
) -> Result<Measured, BenchError> {
    use sea_orm::sqlx::{self, postgres::PgPoolOptions};
    let pool = PgPoolOptions::new()
        .max_connections(args.concurrency.max(1) as u32)
        .connect(url)
        .await?;
    let ids: Arc<Vec<uuid::Uuid>> = Arc::new(
        organisations
            .iter()
            .filter_map(|id| uuid::Uuid::parse_str(id).ok())
            .collect(),
    );
    let counter = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let pool = pool.clone();
        let ids = ids.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0_u64;
            let Ok(mut connection) = pool.acquire().await else {
                return (latencies, 1);
            };
            loop {
                let begun = Instant::now();
                if begun >= end {
                    break;
                }
                let n = counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919);
                let id = ids[n % ids.len()];
                let found = sqlx::query("SELECT * FROM organisations WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *connection)
                    .await;
                if begun >= measure_from {
                    match found {
                        Ok(Some(_)) => latencies.push(begun.elapsed()),
                        _ => errors += 1,
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let (latencies, errors) = gather(tasks).await;
    pool.close().await;
    Ok(summarise(latencies, errors, args.duration, None))
}

/// Streams every ticket twice as the agent: once as fast as the client reads, once at half
/// that pace, watching the server's memory.
/// Writes tickets through `target` at `rate` per second for the run's duration while an
/// administrator follows the feed on a second server on the same database; for each ticket,
/// the time from CreateTicket's answer to its change at the follower.
async fn feed_delay(
    args: &Args,
    target: &Target,
    fixture: &Fixture,
    rate: f64,
) -> Result<Measured, BenchError> {
    use std::collections::HashMap;
    let replica = target.replica(&server::binary_of(args)?).await?;
    let mut follower = pb::change_service_client::ChangeServiceClient::new(replica.admin().await?);
    let mut stream = follower
        .watch_changes(pb::WatchChangesRequest {
            from_now: true,
            resource_types: vec![pb::ResourceType::Ticket.into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    let arrivals: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let reader = tokio::spawn({
        let arrivals = arrivals.clone();
        async move {
            while let Ok(Some(message)) = stream.message().await {
                let now = Instant::now();
                let mut arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner());
                for event in message.events {
                    if event.kind() == pb::ChangeKind::Created {
                        arrivals.entry(event.resource_id).or_insert(now);
                    }
                }
            }
        }
    });
    let writers = 8_usize;
    let every = Duration::from_secs_f64(writers as f64 / rate.max(1.0));
    let acks: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut tickets = pb::ticket_service_client::TicketServiceClient::new(
            target.channel(&fixture.agent_token).await?,
        );
        let acks = acks.clone();
        let group = fixture.group_id.clone();
        let customers = fixture.customer_ids.clone();
        let duration = args.duration;
        tasks.push(tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut tick =
                tokio::time::interval_at(started + every.mul_f64(w as f64 / writers as f64), every);
            let mut n = w;
            while started.elapsed() < duration {
                tick.tick().await;
                let created = tickets
                    .create_ticket(pb::CreateTicketRequest {
                        ticket: Some(pb::Ticket {
                            title: format!("Feed {n}"),
                            group_id: group.clone(),
                            customer_id: customers[n % customers.len()].clone(),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    })
                    .await;
                if let Ok(created) = created
                    && let Some(ticket) = created.into_inner().ticket
                {
                    acks.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ticket.id, Instant::now());
                }
                n += writers;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let written: Vec<(String, Instant)> = acks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(id, at)| (id.clone(), *at))
        .collect();
    // Every change reaches the follower, or the run says how many did not.
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_secs(10) {
        let complete = {
            let arrived = arrivals.lock().unwrap_or_else(|e| e.into_inner());
            written.iter().all(|(id, _)| arrived.contains_key(id))
        };
        if complete {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    replica.stop().await;
    let arrived = arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut delays: Vec<Duration> = written
        .iter()
        .filter_map(|(id, acked)| {
            arrived
                .get(id)
                .map(|at| at.saturating_duration_since(*acked))
        })
        .collect();
    delays.sort();
    let at = |q: f64| {
        delays
            .get(((delays.len() as f64 * q) as usize).min(delays.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Measured {
        rate: written.len() as f64 / args.duration.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        errors: (written.len() - delays.len()) as u64,
        count: written.len() as u64,
        peak_memory: None,
    })
}

/// One follower reads the whole change feed from its start as an administrator, once the log
/// holds at least `backlog` entries (seeded when the tool knows the database).
async fn watch_changes(target: &Target, backlog: u64) -> Result<Measured, BenchError> {
    let admin = target.admin().await?;
    let mut client = pb::change_service_client::ChangeServiceClient::new(admin);
    if let Some(url) = &target.database_url {
        let store = clientele::store::Store::connect(url, &Default::default()).await?;
        let have = store.feed_head().await?;
        if have < i64::try_from(backlog).unwrap_or(i64::MAX) {
            let missing = backlog - u64::try_from(have).unwrap_or(0);
            store
                .seed_changes(missing, jiff::Timestamp::now().as_microsecond())
                .await?;
        }
        // On PostgreSQL the server's sequencer places them in the feed first.
        let started = Instant::now();
        while store.feed_head().await? < i64::try_from(backlog).unwrap_or(i64::MAX) {
            if started.elapsed() > Duration::from_secs(120) {
                return Err("the seeded changes did not reach the feed in 2 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.close().await;
    }
    target.reset_peak_memory();
    let started = Instant::now();
    let mut stream = client
        .watch_changes(pb::WatchChangesRequest::default())
        .await?
        .into_inner();
    let mut first = None;
    let mut count = 0_u64;
    // Up to the backlog (and what the other scenarios wrote), then a moment without news.
    loop {
        let next = if count >= backlog {
            match tokio::time::timeout(Duration::from_millis(500), stream.message()).await {
                Ok(next) => next?,
                Err(_) => break,
            }
        } else {
            stream.message().await?
        };
        let Some(message) = next else { break };
        if first.is_none() {
            first = Some(started.elapsed());
        }
        count += message.events.len() as u64;
    }
    // The wait for news after the last change is not reading.
    let took = started.elapsed().saturating_sub(if count >= backlog {
        Duration::from_millis(500)
    } else {
        Duration::ZERO
    });
    Ok(Measured {
        rate: count as f64 / took.as_secs_f64(),
        p50: first.unwrap_or_default(),
        p99: took,
        errors: 0,
        count,
        peak_memory: target.peak_memory(),
    })
}

async fn list_tickets(target: &Target, agent: &Authed) -> Result<(Measured, Measured), BenchError> {
    let mut client = pb::ticket_service_client::TicketServiceClient::new(agent.clone());
    target.reset_peak_memory();
    let started = Instant::now();
    let mut stream = client
        .list_tickets(pb::ListTicketsRequest::default())
        .await?
        .into_inner();
    let mut first = None;
    let mut count = 0_u64;
    while stream.message().await?.is_some() {
        if first.is_none() {
            first = Some(started.elapsed());
        }
        count += 1;
    }
    let took = started.elapsed();
    let fast = Measured {
        rate: count as f64 / took.as_secs_f64(),
        p50: first.unwrap_or_default(),
        p99: took,
        errors: 0,
        count,
        peak_memory: target.peak_memory(),
    };
    // Half the pace: the server must wait for the reader, and hold its memory flat while it
    // does.
    let pace = fast.rate / 2.0;
    target.reset_peak_memory();
    let started = Instant::now();
    let mut stream = client
        .list_tickets(pb::ListTicketsRequest::default())
        .await?
        .into_inner();
    let mut slow_count = 0_u64;
    while stream.message().await?.is_some() {
        slow_count += 1;
        if slow_count.is_multiple_of(1000) {
            let due = Duration::from_secs_f64(slow_count as f64 / pace);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    let took = started.elapsed();
    let slow = Measured {
        rate: slow_count as f64 / took.as_secs_f64(),
        p50: Duration::ZERO,
        p99: took,
        errors: 0,
        count: slow_count,
        peak_memory: target.peak_memory(),
    };
    Ok((fast, slow))
}

/// Opens the watchers, lets tickets escalate under them, and measures how long after each
/// deadline each watcher hears of it.
async fn watch(
    args: &Args,
    target: &Target,
    fixture: &Fixture,
    agents: &[Authed],
) -> Result<Measured, BenchError> {
    let watchers = args.watchers.max(1);
    let expected = args.escalations.max(1);
    // A connection per hundred watchers keeps each under HTTP/2's stream limits.
    let mut channels: Vec<Authed> = Vec::new();
    for _ in 0..watchers.div_ceil(100) {
        channels.push(target.channel(&fixture.agent_token).await?);
    }
    let delays: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(tokio::sync::Barrier::new(watchers + 1));
    target.reset_peak_memory();
    let mut tasks = Vec::new();
    for index in 0..watchers {
        let mut client = pb::ticket_service_client::TicketServiceClient::new(
            channels[index % channels.len()].clone(),
        );
        let delays = delays.clone();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            let stream = client
                .watch_escalations(pb::WatchEscalationsRequest::default())
                .await;
            let stream = match stream {
                Ok(stream) => stream,
                Err(status) => {
                    eprintln!("a watcher could not start: {status}");
                    ready.wait().await;
                    return expected as u64;
                }
            };
            let mut stream = stream.into_inner();
            // The snapshot first.
            loop {
                match stream.message().await {
                    Ok(Some(message)) if message.kind() == pb::WatchEventKind::SnapshotComplete => {
                        break;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(status) => {
                        eprintln!("a watcher's snapshot failed: {status}");
                        break;
                    }
                }
            }
            ready.wait().await;
            let mut heard = 0;
            let mut mine = Vec::new();
            while heard < expected {
                let message =
                    match tokio::time::timeout(Duration::from_secs(30), stream.message()).await {
                        Ok(Ok(Some(message))) => message,
                        Ok(Ok(None)) => break,
                        Ok(Err(status)) => {
                            eprintln!("a watch failed: {status}");
                            break;
                        }
                        Err(_) => {
                            eprintln!("a watcher heard nothing for 30 s");
                            break;
                        }
                    };
                if message.kind() == pb::WatchEventKind::Resync {
                    eprintln!("a watcher was told to resync");
                }
                if message.kind() != pb::WatchEventKind::Escalated {
                    continue;
                }
                let now = Timestamp::now();
                if let Some(deadline) = message.deadline_time
                    && let Ok(deadline) = Timestamp::new(deadline.seconds, deadline.nanos)
                {
                    let delay = now.duration_since(deadline);
                    mine.push(Duration::try_from(delay).unwrap_or_default());
                }
                heard += 1;
            }
            let missed = (expected - heard) as u64;
            if let Ok(mut all) = delays.lock() {
                all.extend(mine);
            }
            missed
        }));
    }
    ready.wait().await;
    // The escalating tickets: due three seconds after they are created, created over a
    // second or so.
    let mut tickets = pb::ticket_service_client::TicketServiceClient::new(agents[0].clone());
    for n in 0..expected {
        tickets
            .create_ticket(pb::CreateTicketRequest {
                ticket: Some(pb::Ticket {
                    title: format!("Escalation probe {n}"),
                    group_id: fixture.group_id.clone(),
                    customer_id: fixture.customer_ids[n % fixture.customer_ids.len()].clone(),
                    sla_policy_id: fixture.probe_policy_id.clone(),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await?;
        tokio::time::sleep(Duration::from_millis(1000 / expected as u64)).await;
    }
    let mut missed = 0;
    for task in tasks {
        missed += task.await.unwrap_or(expected as u64);
    }
    let delays = std::mem::take(&mut *delays.lock().map_err(|_| "poisoned")?);
    let count = delays.len();
    let mut measured = summarise(delays, missed, Duration::from_secs(1), target.peak_memory());
    measured.rate = count as f64;
    Ok(measured)
}
