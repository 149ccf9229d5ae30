//! The ticket feed: which change-log entries about tickets have just been committed, on this
//! replica or (through PostgreSQL `LISTEN`/`NOTIFY`) on any other. It is what wakes the
//! escalation scheduler and what the escalation watch is fed from (DESIGN §3: the change log
//! is the wake-up signal across replicas).
//!
//! A write names its entries to the feed after it commits; on PostgreSQL it also sends a
//! `NOTIFY` inside its transaction, which PostgreSQL delivers only if the transaction commits.
//! The payload names the sending replica, so a replica skips its own notifications.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Store;

/// The PostgreSQL channel of the feed.
pub const CHANNEL: &str = "clientele_tickets";
/// The PostgreSQL channel on which a replica says that it committed a change that may change
/// someone's rights.
pub const RIGHTS_CHANNEL: &str = "clientele_rights";
/// How many feed messages a slow subscriber may fall behind before it is told it lagged.
const CAPACITY: usize = 4096;
/// A `NOTIFY` payload must stay below 8000 bytes.
const MAX_PAYLOAD: usize = 7000;

/// What the feed says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedMessage {
    /// These change-log entries (sequence numbers) about tickets were committed.
    Committed {
        /// Their sequence numbers.
        seqs: Vec<i64>,
        /// What the write tells the escalation scheduler about its next wake-up.
        next_event: NextEvent,
    },
    /// Notifications from other replicas may have been missed (the listening connection was
    /// lost); whoever keeps state derived from the feed must rebuild it.
    Lost,
}

/// What a committed write tells the escalation scheduler about the next ticket event, so
/// that a write does not cost the scheduler a look into the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextEvent {
    /// Not known here (another replica's write, a merge): the scheduler looks.
    Unknown,
    /// The earliest next event of the tickets written, if any of them has one. A write that
    /// moved the earliest deadline later only makes the scheduler wake early, find nothing
    /// due and look again.
    Earliest(Option<jiff::Timestamp>),
}

impl NextEvent {
    /// The earliest next event of `tickets`.
    pub fn of<'a>(tickets: impl IntoIterator<Item = &'a crate::model::Ticket>) -> Self {
        Self::Earliest(
            tickets
                .into_iter()
                .filter_map(|ticket| ticket.next_event_time)
                .min(),
        )
    }
}

/// The sending side of the feed, shared by every clone of a [`Store`].
#[derive(Clone, Debug)]
pub(crate) struct TicketFeed {
    replica: Uuid,
    sender: broadcast::Sender<FeedMessage>,
    /// Moves whenever a committed change may have changed someone's rights (a grant, the
    /// settings, a group, an agent, a customer or an organisation), here or on any other
    /// replica: rights read before it moved are stale.
    rights: Arc<AtomicU64>,
}

impl TicketFeed {
    pub(crate) fn new() -> Self {
        Self {
            replica: Uuid::now_v7(),
            sender: broadcast::Sender::new(CAPACITY),
            rights: Arc::default(),
        }
    }

    /// Says that rights may have changed.
    pub(crate) fn rights_changed(&self) {
        self.rights.fetch_add(1, Ordering::AcqRel);
    }

    /// Tells this replica's subscribers about `seqs`, committed just now.
    pub(crate) fn publish(&self, seqs: Vec<i64>, next_event: NextEvent) {
        if !seqs.is_empty() {
            // No subscriber is no error: nobody is waiting.
            let _ = self
                .sender
                .send(FeedMessage::Committed { seqs, next_event });
        }
    }
}

/// Sends the `NOTIFY` of `seqs` inside the transaction `conn`, on PostgreSQL.
pub(crate) async fn notify(
    conn: &impl ConnectionTrait,
    feed: &TicketFeed,
    seqs: &[i64],
) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres || seqs.is_empty() {
        return Ok(());
    }
    let head = format!("{}:", feed.replica);
    let mut payload = head.clone();
    for seq in seqs {
        if payload.len() > MAX_PAYLOAD {
            send(conn, &payload).await?;
            payload.clone_from(&head);
        }
        if payload.len() > head.len() {
            payload.push(',');
        }
        payload.push_str(&seq.to_string());
    }
    send(conn, &payload).await
}

async fn send(conn: &impl ConnectionTrait, payload: &str) -> Result<(), DbErr> {
    send_on(conn, CHANNEL, payload).await
}

/// Tells the other replicas, inside the transaction `conn`, that it changes rights (on
/// PostgreSQL; SQLite has no other replicas).
pub(crate) async fn notify_rights(
    conn: &impl ConnectionTrait,
    feed: &TicketFeed,
) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    send_on(conn, RIGHTS_CHANNEL, &feed.replica.to_string()).await
}

async fn send_on(conn: &impl ConnectionTrait, channel: &str, payload: &str) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [channel.into(), payload.into()],
    ))
    .await
    .map(|_| ())
}

/// The sequence numbers of a payload from another replica; `None` for this replica's own.
fn parse_payload(own: Uuid, payload: &str) -> Option<Vec<i64>> {
    let (replica, seqs) = payload.split_once(':')?;
    if Uuid::parse_str(replica).ok()? == own {
        return None;
    }
    Some(seqs.split(',').filter_map(|s| s.parse().ok()).collect())
}

impl Store {
    /// The generation of rights: it moves whenever a committed change may have changed
    /// someone's rights, on this replica (before the write returns) or on another (as its
    /// notification arrives).
    pub fn rights_generation(&self) -> u64 {
        self.feed.rights.load(Ordering::Acquire)
    }

    /// Subscribes to the ticket feed.
    pub fn subscribe_tickets(&self) -> broadcast::Receiver<FeedMessage> {
        self.feed.sender.subscribe()
    }

    /// On PostgreSQL, forwards other replicas' notifications to this replica's feed until the
    /// store is closed; on SQLite (one process) there is nothing to listen to.
    pub async fn listen_to_other_replicas(&self) {
        let Some(pool) = self
            .reader()
            .get_database_backend()
            .eq(&DbBackend::Postgres)
            .then(|| self.db.get_postgres_connection_pool().clone())
        else {
            return;
        };
        loop {
            let mut listener = match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await
            {
                Ok(listener) => listener,
                Err(error) => {
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%error, "cannot listen for other replicas' ticket changes; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(error) = listener
                .listen_all([CHANNEL, RIGHTS_CHANNEL, super::change_feed::CHANNEL])
                .await
            {
                tracing::warn!(%error, "LISTEN failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            // Whatever happened while nobody listened is unknown.
            self.lost_track();
            loop {
                match listener.try_recv().await {
                    Ok(Some(notification))
                        if notification.channel() == super::change_feed::CHANNEL =>
                    {
                        self.changes.advance();
                    }
                    Ok(Some(notification)) if notification.channel() == RIGHTS_CHANNEL => {
                        if notification.payload() != self.feed.replica.to_string() {
                            self.feed.rights_changed();
                        }
                    }
                    Ok(Some(notification)) => {
                        if let Some(seqs) = parse_payload(self.feed.replica, notification.payload())
                        {
                            self.feed.publish(seqs, NextEvent::Unknown);
                        }
                    }
                    Ok(None) => {
                        tracing::warn!("lost the connection listening for other replicas");
                        self.liveness.lost();
                        self.lost_track();
                    }
                    Err(error) => {
                        if pool.is_closed() {
                            return;
                        }
                        tracing::warn!(%error, "listening for other replicas failed; reconnecting");
                        if super::liveness::lost(&error) {
                            // Before the rights generation moves and sends every caller's
                            // next call to the pool: its idle connections may be as dead.
                            self.liveness.lost();
                        }
                        self.lost_track();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    }
}

impl Store {
    /// Other replicas' changes may have been missed: what is derived from them is stale.
    fn lost_track(&self) {
        let _ = self.feed.sender.send(FeedMessage::Lost);
        self.feed.rights_changed();
        self.changes.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_skips_its_own_notifications() {
        let own = Uuid::now_v7();
        let other = Uuid::now_v7();
        assert_eq!(parse_payload(own, &format!("{own}:1,2")), None);
        assert_eq!(
            parse_payload(own, &format!("{other}:1,2,30")),
            Some(vec![1, 2, 30])
        );
        assert_eq!(parse_payload(own, "garbage"), None);
    }
}
