//! The service reads time through a [`Clock`] it is given, so that tests can move time
//! instead of sleeping, and so that waiting for a deadline follows the same clock.

use std::{fmt::Debug, future::Future, pin::Pin};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// A future that completes at a point in time.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current time, truncated to microseconds (the precision the store keeps).
    fn now(&self) -> Timestamp;

    /// Completes once the clock shows `deadline` or later.
    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_>;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_to_micros(Timestamp::now())
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            // Sleep in steps: a long sleep would miss a wall-clock change.
            loop {
                let left = deadline.duration_since(Timestamp::now());
                if left <= SignedDuration::ZERO {
                    return;
                }
                let step = std::time::Duration::try_from(left.min(SignedDuration::from_secs(60)))
                    .unwrap_or(std::time::Duration::from_secs(1));
                tokio::time::sleep(step).await;
            }
        })
    }
}

/// Drops the nanoseconds below a microsecond.
pub fn truncate_to_micros(time: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(time.as_microsecond()).unwrap_or(time)
}

/// A clock that stands still until it is moved: for tests of deadlines and expiry. Whoever
/// sleeps on it wakes when it is moved past their deadline.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: watch::Sender::new(truncate_to_micros(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: SignedDuration) {
        self.now
            .send_modify(|now| *now = now.checked_add(by).unwrap_or(*now));
    }

    /// Sets the clock to `time`.
    pub fn set(&self, time: Timestamp) {
        self.now.send_replace(truncate_to_micros(time));
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: Timestamp) -> Sleep<'_> {
        let mut shown = self.now.subscribe();
        Box::pin(async move {
            while *shown.borrow_and_update() < deadline {
                if shown.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}
