//! The writes a desk makes all day (a state change, a public reply, a new customer whose
//! email domain assigns its organisation) and the mixed helpdesk workload: agents reading,
//! updating and creating at once, at saturation and at half of it.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use clientele::proto::v1 as pb;
use jiff::Timestamp;

use crate::{
    Args, BenchError,
    load::{Measured, requests, summarise},
    seed::Fixture,
    server::{Authed, Target},
};

type Tickets = pb::ticket_service_client::TicketServiceClient<Authed>;
type Comments = pb::comment_service_client::CommentServiceClient<Authed>;
type Customers = pb::customer_service_client::CustomerServiceClient<Authed>;

/// A ticket some client updates, with the etag of its last answer. A client holds the lock for
/// the whole update, so two never send the same etag.
struct Slot {
    id: String,
    etag: String,
    pending: bool,
}

/// The tickets to update, each with its current etag.
pub struct Slots(Vec<tokio::sync::Mutex<Slot>>);

impl Slots {
    /// Reads the etag of each of `ids`.
    pub async fn read(client: &Tickets, ids: &[String]) -> Result<Arc<Self>, BenchError> {
        let mut client = client.clone();
        let mut slots = Vec::with_capacity(ids.len());
        for id in ids {
            let ticket = get_ticket(&mut client, id).await?;
            slots.push(tokio::sync::Mutex::new(Slot {
                id: ticket.id,
                etag: ticket.etag,
                pending: ticket.state == pb::TicketState::PendingReminder as i32,
            }));
        }
        if slots.is_empty() {
            return Err("no open tickets to update".into());
        }
        Ok(Arc::new(Self(slots)))
    }

    /// UpdateTicket of the `n`th ticket: to PENDING_REMINDER with a reminder a day ahead, or
    /// back to OPEN, in turn.
    pub async fn update(&self, client: &mut Tickets, n: usize) -> bool {
        let mut slot = self.0[n % self.0.len()].lock().await;
        let (state, pending_until) = if slot.pending {
            (pb::TicketState::Open, None)
        } else {
            let tomorrow = Timestamp::now() + jiff::SignedDuration::from_hours(24);
            (
                pb::TicketState::PendingReminder,
                Some(prost_types::Timestamp {
                    seconds: tomorrow.as_second(),
                    nanos: 0,
                }),
            )
        };
        let sent = client
            .update_ticket(pb::UpdateTicketRequest {
                ticket: Some(pb::Ticket {
                    id: slot.id.clone(),
                    etag: slot.etag.clone(),
                    state: state as i32,
                    pending_until,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["state".into(), "pending_until".into()],
                }),
            })
            .await;
        match sent.map(|answer| answer.into_inner().ticket) {
            Ok(Some(ticket)) => {
                slot.etag = ticket.etag;
                slot.pending = !slot.pending;
                true
            }
            Ok(None) => false,
            Err(status) => {
                eprintln!("  UpdateTicket failed: {}", status.message());
                // Read it again, so that one failure does not fail every later turn.
                if let Ok(ticket) = get_ticket(client, &slot.id).await {
                    slot.etag = ticket.etag;
                    slot.pending = ticket.state == pb::TicketState::PendingReminder as i32;
                }
                false
            }
        }
    }
}

async fn get_ticket(client: &mut Tickets, id: &str) -> Result<pb::Ticket, BenchError> {
    client
        .get_ticket(pb::GetTicketRequest {
            key: Some(pb::get_ticket_request::Key::Id(id.into())),
        })
        .await?
        .into_inner()
        .ticket
        .ok_or_else(|| "no ticket".into())
}

/// A public reply of the agent to `ticket`: the first one moves its first-response clock.
async fn reply(client: &mut Comments, ticket: String, n: usize) -> bool {
    client
        .create_comment(pb::CreateCommentRequest {
            comment: Some(pb::Comment {
                parent: Some(pb::CommentParent {
                    parent: Some(pb::comment_parent::Parent::TicketId(ticket)),
                }),
                body: format!("Reply {n}: have you tried turning it off and on again?"),
                visibility: pb::CommentVisibility::Public as i32,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .is_ok()
}

/// A ticket for `customer` in `group`.
pub async fn create_ticket(
    client: &mut Tickets,
    group: String,
    customer: String,
    n: usize,
) -> bool {
    client
        .create_ticket(pb::CreateTicketRequest {
            ticket: Some(pb::Ticket {
                title: format!("Bench {n}: the printer is on fire again"),
                group_id: group,
                customer_id: customer,
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .is_ok()
}

/// UpdateTicket by agents: a state change of an open ticket, and back.
pub async fn update_tickets(
    args: &Args,
    target: &Target,
    agents: &[Authed],
    fixture: &Fixture,
) -> Result<Measured, BenchError> {
    let clients: Vec<Tickets> = agents.iter().cloned().map(Tickets::new).collect();
    let slots = Slots::read(&clients[0], &fixture.open_ticket_ids).await?;
    Ok(requests(args, target, clients, move |mut client, n| {
        let slots = slots.clone();
        async move { slots.update(&mut client, n).await }
    })
    .await)
}

/// CreateComment by agents: public replies to open tickets.
pub async fn create_comments(
    args: &Args,
    target: &Target,
    agents: &[Authed],
    fixture: &Fixture,
) -> Measured {
    let clients: Vec<Comments> = agents.iter().cloned().map(Comments::new).collect();
    let tickets = Arc::new(fixture.open_ticket_ids.clone());
    requests(args, target, clients, move |mut client, n| {
        let ticket = tickets[n % tickets.len()].clone();
        async move { reply(&mut client, ticket, n).await }
    })
    .await
}

/// CreateCustomer by an admin: customers without an organisation whose email domain assigns
/// them one.
pub async fn create_customers(
    args: &Args,
    target: &Target,
    fixture: &Fixture,
) -> Result<Measured, BenchError> {
    let admin = target.admin().await?;
    let clients = vec![Customers::new(admin)];
    let domain = Arc::new(fixture.customer_domain.clone());
    Ok(requests(args, target, clients, move |mut client, n| {
        let domain = domain.clone();
        async move {
            client
                .create_customer(pb::CreateCustomerRequest {
                    customer: Some(pb::Customer {
                        email: format!("customer-{n}@{domain}"),
                        first_name: "Bench".into(),
                        last_name: format!("Customer {n}"),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .is_ok()
        }
    })
    .await)
}

/// The mixed workload at saturation and at half of it.
#[derive(Clone, Debug, Default)]
pub struct Mixed {
    /// Closed loop, `args.concurrency` clients: the throughput at saturation.
    pub saturated: Measured,
    /// Requests sent at half that rate, whatever the answers' pace: latency from the moment
    /// each was due.
    pub half: Measured,
}

/// One desk's clients.
#[derive(Clone)]
struct Desk {
    tickets: Tickets,
    comments: Comments,
    customers: Customers,
}

/// What the mixed workload reads and writes.
struct Work {
    tickets: Vec<String>,
    customers: Vec<String>,
    open: Vec<String>,
    group: String,
    slots: Arc<Slots>,
    failures: AtomicUsize,
}

impl Work {
    /// The `n`th request: 70 % reads (three GetTicket, two first pages of ListTickets, two
    /// GetCustomer in ten), 20 % updates (UpdateTicket, a public reply), 10 % CreateTicket.
    async fn call(&self, mut desk: Desk, n: usize) -> bool {
        let pick = n / 10;
        let ok = self.one(&mut desk, n, pick).await;
        if !ok && self.failures.fetch_add(1, Ordering::Relaxed) < 5 {
            eprintln!("  mixed: call kind {} of 10 failed", n % 10);
        }
        ok
    }

    async fn one(&self, desk: &mut Desk, n: usize, pick: usize) -> bool {
        match n % 10 {
            0..=2 => get_ticket(&mut desk.tickets, &self.tickets[pick % self.tickets.len()])
                .await
                .is_ok(),
            3 | 4 => first_page(&mut desk.tickets).await,
            5 | 6 => desk
                .customers
                .get_customer(pb::GetCustomerRequest {
                    key: Some(pb::get_customer_request::Key::Id(
                        self.customers[pick % self.customers.len()].clone(),
                    )),
                })
                .await
                .is_ok(),
            7 => self.slots.update(&mut desk.tickets, pick).await,
            8 => {
                reply(
                    &mut desk.comments,
                    self.open[pick % self.open.len()].clone(),
                    n,
                )
                .await
            }
            _ => {
                let customer = self.customers[pick % self.customers.len()].clone();
                create_ticket(&mut desk.tickets, self.group.clone(), customer, n).await
            }
        }
    }
}

/// The first page of the agent's ticket list, as a desk's start screen shows it.
async fn first_page(client: &mut Tickets) -> bool {
    let Ok(answer) = client
        .list_tickets(pb::ListTicketsRequest {
            limit: 25,
            ..Default::default()
        })
        .await
    else {
        return false;
    };
    let mut stream = answer.into_inner();
    loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// The mixed helpdesk workload: [`crate::seed::Fixture::mixed_agent_tokens`]' agents, each on
/// a connection of its own.
pub async fn mixed(args: &Args, target: &Target, fixture: &Fixture) -> Result<Mixed, BenchError> {
    let mut desks = Vec::new();
    for token in &fixture.mixed_agent_tokens {
        let channel = target.channel(token).await?;
        desks.push(Desk {
            tickets: Tickets::new(channel.clone()),
            comments: Comments::new(channel.clone()),
            customers: Customers::new(channel),
        });
    }
    // A reply changes its ticket (its first response, its etag): the tickets updated and
    // those answered are apart, so that an update never meets a reply it did not read.
    let (updated, answered) = fixture
        .open_ticket_ids
        .split_at(fixture.open_ticket_ids.len() / 2);
    if answered.is_empty() {
        return Err("no open tickets to answer".into());
    }
    let work = Arc::new(Work {
        tickets: fixture.ticket_ids.clone(),
        customers: fixture.customer_ids.clone(),
        open: answered.to_vec(),
        group: fixture.group_id.clone(),
        slots: Slots::read(&desks[0].tickets, updated).await?,
        failures: AtomicUsize::new(0),
    });
    let call = move |desk: Desk, n: usize| {
        let work = work.clone();
        async move { work.call(desk, n).await }
    };
    let saturated = requests(args, target, desks.clone(), call.clone()).await;
    let half = paced(args, target, desks, call, saturated.rate / 2.0).await;
    Ok(Mixed { saturated, half })
}

/// Sends `call`s at `rate` per second over `clients` for the warm-up and the measured
/// duration, each when it is due whether or not earlier ones were answered (no coordinated
/// omission); latency counts from when a call was due.
pub async fn paced<C, F, Fut>(
    args: &Args,
    target: &Target,
    clients: Vec<C>,
    call: F,
    rate: f64,
) -> Measured
where
    C: Clone + Send + 'static,
    F: Fn(C, usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    if rate <= 0.0 || clients.is_empty() {
        return Measured::default();
    }
    // Calls in flight are bounded, so that a server that stops answering cannot make the
    // tool spawn without end; a call past the bound waits, and its wait counts.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let counter = AtomicUsize::new(0);
    let mut tasks = Vec::new();
    let mut peak_reset = false;
    for index in 0.. {
        let due = start + interval * index;
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        if !peak_reset && due >= measure_from {
            target.reset_peak_memory();
            peak_reset = true;
        }
        let n = counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(7919);
        let client = clients[index as usize % clients.len()].clone();
        let (call, in_flight, latencies, errors) = (
            call.clone(),
            in_flight.clone(),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(_permit) = in_flight.acquire_owned().await else {
                return;
            };
            let ok = call(client, n).await;
            if due < measure_from {
                return;
            }
            if ok {
                if let Ok(mut latencies) = latencies.lock() {
                    latencies.push(due.elapsed());
                }
            } else {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let latencies = latencies
        .lock()
        .map(|mut latencies| std::mem::take(&mut *latencies))
        .unwrap_or_default();
    summarise(
        latencies,
        errors.load(Ordering::Relaxed),
        args.duration,
        target.peak_memory(),
    )
}
