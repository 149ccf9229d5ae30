//! Escalation, live: the scheduler that turns passing deadlines into alerts at the instant
//! they pass, and the hub that tells watchers about every alert change.
//!
//! The scheduler sleeps until the earliest `next_event_time` of any ticket and is woken
//! earlier by the ticket feed (any committed ticket change, on this replica or another), so
//! events fire at the deadline without periodic scans. Each alert change is written once,
//! with its change-log event, guarded by the ticket's version: when several replicas wake for
//! the same deadline, one of them records it.
//!
//! The hub reads the alert events named by the ticket feed from the change log and broadcasts
//! them; each watcher filters them by its filters and by what it may read. A watcher that
//! falls behind, or a feed that lost track of other replicas, is told to resync and gets a
//! fresh snapshot: nothing is dropped silently.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    Tickets, changes,
    escalation::{self, AlertChange},
    stream_rights::RIGHTS_TTL,
    ticket::{alert_events, audit},
};
use crate::domain::access::ServiceWork;
use crate::{
    domain::access::Principal,
    error::Result,
    model::{Actor, ChangeKind, ResourceType, Ticket, TicketState},
    store::{FeedMessage, NextEvent, TicketChange, TicketFilter, TicketOrder, TicketScope},
};

/// How many due tickets one scheduler transaction handles.
const DUE_BATCH: u64 = 500;
/// How many snapshot tickets are read at a time.
const SNAPSHOT_CHUNK: u64 = 500;
/// What the hub broadcasts.
#[derive(Clone, Debug)]
enum HubMessage {
    /// An alert change of a ticket, recorded at `time`.
    Change {
        change: AlertChange,
        ticket: Arc<Ticket>,
        time: Timestamp,
    },
    /// The hub may have missed changes: every watcher must resync.
    Lost,
}

/// The escalation hub of this replica: watchers subscribe to it.
#[derive(Clone, Debug)]
pub struct Escalations {
    tickets: Tickets,
    sender: broadcast::Sender<HubMessage>,
    /// Turns true when the server shuts down: every watch ends.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// Where the scheduler says how late it ran.
    metrics: Arc<crate::metrics::Metrics>,
}

/// What a watcher is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchMessage {
    /// A ticket that calls for attention now: part of a snapshot.
    Snapshot(Ticket),
    /// The snapshot is complete; live events follow.
    SnapshotComplete,
    /// An alert change, recorded at `time`.
    Event {
        /// What changed.
        change: AlertChange,
        /// The ticket as it is after the change.
        ticket: Ticket,
        /// When the change was recorded.
        time: Timestamp,
    },
    /// The watcher fell behind; a fresh snapshot follows.
    Resync,
}

/// Which tickets a watcher wants to hear about. Empty lists mean any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchFilter {
    /// Tickets of these groups.
    pub group_ids: Vec<Uuid>,
    /// Tickets of these organisations.
    pub organisation_ids: Vec<Uuid>,
}

impl WatchFilter {
    fn admits(&self, ticket: &Ticket) -> bool {
        (self.group_ids.is_empty() || self.group_ids.contains(&ticket.group_id))
            && (self.organisation_ids.is_empty()
                || ticket
                    .organisation_id
                    .is_some_and(|org| self.organisation_ids.contains(&org)))
    }
}

/// One watcher's view of the hub.
#[derive(Debug)]
pub struct Watch {
    tickets: Tickets,
    principal: Principal,
    filter: WatchFilter,
    scope: TicketScope,
    /// When `scope` was taken from `rights`.
    scope_time: Instant,
    receiver: broadcast::Receiver<HubMessage>,
    snapshot_cursor: Option<Option<crate::store::TicketCursor>>,
    closing: tokio::sync::watch::Receiver<bool>,
}

impl Escalations {
    /// The hub of `tickets`, keeping `backlog` messages for watchers that fall behind;
    /// [`Escalations::run`] must run for it to say anything.
    pub fn new(tickets: Tickets, backlog: usize, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            tickets,
            sender: broadcast::Sender::new(backlog.max(1)),
            closing: Arc::new(tokio::sync::watch::Sender::new(false)),
            metrics,
        }
    }

    /// Ends every watch, so that a shutting-down server does not wait for them.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Runs the scheduler and the hub, in the calling task (aborting it stops both).
    pub async fn run(self) {
        tokio::join!(
            schedule(self.tickets.clone(), self.metrics.clone()),
            self.relay()
        );
    }

    /// Starts a watch for `principal`: a snapshot comes first ([`Watch::next_snapshot`]),
    /// then live events ([`Watch::next_event`]).
    pub async fn watch(&self, principal: &Principal, filter: WatchFilter) -> Result<Watch> {
        // Subscribe before the snapshot is read, so that nothing falls between the two.
        let receiver = self.sender.subscribe();
        let scope = self.tickets.stream_scope(principal).await?;
        Ok(Watch {
            tickets: self.tickets.clone(),
            principal: principal.clone(),
            filter,
            scope,
            scope_time: Instant::now(),
            receiver,
            snapshot_cursor: Some(None),
            closing: self.closing.subscribe(),
        })
    }

    /// Forwards the alert events named by the ticket feed to the watchers.
    async fn relay(&self) {
        let mut feed = self.tickets.store.subscribe_tickets();
        loop {
            let seqs = match feed.recv().await {
                Ok(FeedMessage::Committed { seqs, .. }) => seqs,
                Ok(FeedMessage::Lost) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = self.sender.send(HubMessage::Lost);
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if self.sender.receiver_count() == 0 {
                continue;
            }
            if let Err(error) = self.forward(&seqs).await {
                tracing::warn!(%error, "cannot read alert events; watchers must resync");
                let _ = self.sender.send(HubMessage::Lost);
            }
        }
    }

    async fn forward(&self, seqs: &[i64]) -> Result<()> {
        let store = &self.tickets.store;
        let entries = store.changes_by_seq(ResourceType::Ticket, seqs).await?;
        let alerts: Vec<(AlertChange, Uuid, Timestamp)> = entries
            .iter()
            .filter_map(|entry| {
                AlertChange::from_log(&entry.kind, &entry.changes)
                    .map(|change| (change, entry.resource_id, entry.time))
            })
            .collect();
        if alerts.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<Uuid> = alerts.iter().map(|(_, id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        let tickets: HashMap<Uuid, Arc<Ticket>> = store
            .tickets(&ServiceWork::ESCALATION_SCHEDULER.tickets(), &ids)
            .await?
            .into_iter()
            .map(|ticket| (ticket.id, Arc::new(ticket)))
            .collect();
        for (change, id, time) in alerts {
            if let Some(ticket) = tickets.get(&id) {
                let _ = self.sender.send(HubMessage::Change {
                    change,
                    ticket: ticket.clone(),
                    time,
                });
            }
        }
        Ok(())
    }
}

impl Watch {
    /// Takes the principal's current rights; a principal that lost its right to watch ends
    /// the watch with UNAUTHENTICATED.
    async fn refresh_rights(&mut self) -> Result<()> {
        self.scope_time = Instant::now();
        self.scope = self.tickets.stream_scope(&self.principal).await?;
        Ok(())
    }

    /// The next tickets of the snapshot, or `None` once it is complete.
    pub async fn next_snapshot(&mut self) -> Result<Option<Vec<Ticket>>> {
        let Some(cursor) = self.snapshot_cursor else {
            return Ok(None);
        };
        let filter = TicketFilter {
            attention: true,
            group_ids: self.filter.group_ids.clone(),
            organisation_ids: self.filter.organisation_ids.clone(),
            ..TicketFilter::default()
        };
        let order = TicketOrder::default();
        let chunk = self
            .tickets
            .store
            .list_tickets(&self.scope, &filter, order, cursor.as_ref(), SNAPSHOT_CHUNK)
            .await?;
        self.snapshot_cursor = match chunk.last() {
            Some(last) if chunk.len() as u64 == SNAPSHOT_CHUNK => {
                Some(Some(order.cursor_after(last)))
            }
            _ => None,
        };
        Ok(Some(chunk))
    }

    /// The next live message for this watcher: an event it may see, or a resync (after
    /// which [`Watch::next_snapshot`] yields a fresh snapshot). `None` when the server shuts
    /// down.
    pub async fn next_event(&mut self) -> Result<Option<WatchMessage>> {
        loop {
            // Rights are read again every RIGHTS_TTL even while no event comes, so that a
            // watcher whose token was revoked is told within that time.
            let recheck = tokio::time::Instant::from_std(self.scope_time + RIGHTS_TTL);
            let received = tokio::select! {
                received = self.receiver.recv() => Some(received),
                _ = self.closing.wait_for(|closing| *closing) => return Ok(None),
                () = tokio::time::sleep_until(recheck) => None,
            };
            let Some(received) = received else {
                self.refresh_rights().await?;
                continue;
            };
            match received {
                Ok(HubMessage::Change {
                    change,
                    ticket,
                    time,
                }) => {
                    if self.scope_time.elapsed() >= RIGHTS_TTL {
                        self.refresh_rights().await?;
                    }
                    if self.filter.admits(&ticket) && self.scope.admits_ticket(&ticket) {
                        return Ok(Some(WatchMessage::Event {
                            change,
                            ticket: Ticket::clone(&ticket),
                            time,
                        }));
                    }
                }
                Ok(HubMessage::Lost) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Skip what is still queued: the snapshot supersedes it.
                    self.receiver = self.receiver.resubscribe();
                    self.refresh_rights().await?;
                    self.snapshot_cursor = Some(None);
                    return Ok(Some(WatchMessage::Resync));
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(None),
            }
        }
    }
}

/// The scheduler: sleeps until the next ticket event, handles what is due, and starts over
/// whenever the feed reports a committed ticket change. A change of this replica's says the
/// earliest next event of the tickets it wrote, which is enough to move the wake-up earlier;
/// only a change it knows nothing about (another replica's, a lost notification) and a run
/// of what was due make it read the earliest deadline from the database again.
async fn schedule(tickets: Tickets, metrics: Arc<crate::metrics::Metrics>) {
    let mut feed = tickets.store.subscribe_tickets();
    // The next event as far as known; `None`: look it up.
    let mut known: Option<Option<Timestamp>> = None;
    loop {
        let next = match known {
            Some(next) => next,
            None => match tickets.store.next_ticket_event().await {
                Ok(next) => next,
                Err(error) => {
                    tracing::warn!(%error, "cannot read the next ticket deadline; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        known = Some(next);
        let clock = tickets.clock.clone();
        let sleep = async move {
            match next {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                // How late this run is: the time since the event it woke for.
                if let Some(at) = next {
                    let late = tickets.clock.now().duration_since(at);
                    metrics.scheduler_ran(late.try_into().unwrap_or_default());
                }
                if let Err(error) = process_due(&tickets).await {
                    tracing::warn!(%error, "escalation run failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                known = None;
            }
            message = feed.recv() => {
                if matches!(message, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
                known = earlier(known, message);
                // Everything that came in meanwhile, at once.
                loop {
                    match feed.try_recv() {
                        Err(broadcast::error::TryRecvError::Empty) => break,
                        Err(broadcast::error::TryRecvError::Closed) => return,
                        message => known = earlier(known, message.map_err(|_| ())),
                    }
                }
            }
        }
    }
}

/// The next event known after `message`: the earlier of the two when the message says when
/// its tickets' next event is, unknown otherwise.
fn earlier<E>(
    known: Option<Option<Timestamp>>,
    message: std::result::Result<FeedMessage, E>,
) -> Option<Option<Timestamp>> {
    match (known, message) {
        (
            Some(next),
            Ok(FeedMessage::Committed {
                next_event: NextEvent::Earliest(written),
                ..
            }),
        ) => Some(match (next, written) {
            (Some(next), Some(written)) => Some(next.min(written)),
            (next, written) => next.or(written),
        }),
        _ => None,
    }
}

/// Records every alert change and automatic close that is due now.
async fn process_due(tickets: &Tickets) -> Result<()> {
    let now = tickets.clock.now();
    let actor = Actor::system();
    // Bounded, so that a ticket that keeps being skipped (changed by a client meanwhile)
    // cannot keep this run going.
    for _ in 0..1000 {
        let due = tickets
            .store
            .due_tickets(&ServiceWork::ESCALATION_SCHEDULER.tickets(), now, DUE_BATCH)
            .await?;
        if due.is_empty() {
            return Ok(());
        }
        let full = due.len() as u64 == DUE_BATCH;
        let changes: Vec<TicketChange> = due
            .into_iter()
            .map(|ticket| due_change(&actor, ticket, now))
            .collect();
        let written = tickets.store.apply_ticket_changes(&changes).await?;
        if !full || written.is_empty() {
            return Ok(());
        }
    }
    Ok(())
}

/// What becomes of `ticket` at `now`: alerts that rose or fell, a pending close that is due.
fn due_change(actor: &Actor, ticket: Ticket, now: Timestamp) -> TicketChange {
    let mut next = ticket.clone();
    let closing = ticket.state == TicketState::PendingClose
        && ticket.pending_until.is_some_and(|until| until <= now);
    if closing {
        next.state = TicketState::Closed;
        next.close_time = ticket.pending_until;
        next.pending_until = None;
        // Closed: no deadline runs any more.
        escalation::schedule(&mut next, &escalation::Sla::none());
    }
    next.alerts = escalation::alerts_at(&next, now);
    next.next_event_time = escalation::next_event(&next, now);
    let mut events = Vec::new();
    if closing {
        events.push(changes::event(
            actor,
            now,
            ResourceType::Ticket,
            ticket.id,
            ChangeKind::Updated,
            changes::diff(Some(&audit(&ticket)), &audit(&next)),
        ));
    }
    events.extend(alert_events(actor, now, &ticket.alerts, &next));
    if !events.is_empty() {
        next.version = ticket.version + 1;
        next.update_time = now;
    }
    TicketChange {
        expected_version: ticket.version,
        ticket: next,
        events,
    }
}
