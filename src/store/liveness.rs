//! Which idle connections to test before use.
//!
//! A connection used within the last second is taken as alive: pinging it on every checkout
//! would cost every statement a second round trip. That holds until the database ends its
//! sessions (a restart, a failover, an operator's `pg_terminate_backend`): then every
//! connection idle at that moment is dead, however recently it was used. Whoever meets a lost
//! connection first (the listener for other replicas, which notices at once, or a read)
//! records the moment, and every connection released before it is pinged before its next use,
//! in the pool as in [`super::direct::DirectReads`].

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use sea_orm::sqlx;

/// A connection idle for longer than this is pinged before use (it may have been dropped by
/// the server or a firewall meanwhile).
pub(crate) const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// When this process last saw the database end a session.
#[derive(Debug)]
pub(crate) struct Liveness {
    start: Instant,
    /// Microseconds from `start` to the last loss, plus one; zero while none was seen.
    lost_at: AtomicU64,
}

impl Liveness {
    pub(crate) fn new() -> Self {
        Self {
            start: Instant::now(),
            lost_at: AtomicU64::new(0),
        }
    }

    /// Records that a connection was found lost now: the others idle now are suspect.
    pub(crate) fn lost(&self) {
        self.lost_at
            .fetch_max(self.micros(Instant::now()) + 1, Ordering::AcqRel);
    }

    /// Whether a connection released `idle_for` ago must be pinged before use.
    pub(crate) fn must_ping(&self, idle_for: Duration) -> bool {
        if idle_for >= PING_WHEN_IDLE_FOR {
            return true;
        }
        let lost_at = self.lost_at.load(Ordering::Acquire);
        let released = Instant::now().checked_sub(idle_for).unwrap_or(self.start);
        lost_at != 0 && self.micros(released) < lost_at
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_micros()).unwrap_or(u64::MAX - 1)
    }
}

/// Whether `error` says the connection is gone rather than the statement failed: a broken
/// socket, or PostgreSQL's classes 08 (connection exception) and 57P (the server ended the
/// session: shutdown, crash, `pg_terminate_backend`).
pub(crate) fn lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(error) => error
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_long_idle_connections_are_pinged_until_a_loss_then_all_released_before_it() {
        let liveness = Liveness::new();
        assert!(!liveness.must_ping(Duration::from_millis(10)));
        assert!(liveness.must_ping(PING_WHEN_IDLE_FOR));
        std::thread::sleep(Duration::from_millis(5));
        liveness.lost();
        // Idle for 4 ms: released before the loss, so perhaps dead.
        assert!(liveness.must_ping(Duration::from_millis(4)));
        std::thread::sleep(Duration::from_millis(5));
        // Released 1 ms ago, after the loss: alive as before.
        assert!(!liveness.must_ping(Duration::from_millis(1)));
    }
}
