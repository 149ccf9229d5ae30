//! The service reads time through a [`Clock`] it is given, so that tests can move time
//! instead of sleeping.

use std::fmt::Debug;

use jiff::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current time, truncated to microseconds (the precision the store keeps).
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_to_micros(Timestamp::now())
    }
}

/// Drops the nanoseconds below a microsecond.
pub fn truncate_to_micros(time: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(time.as_microsecond()).unwrap_or(time)
}

/// A clock that stands still until it is moved: for tests of deadlines and expiry.
#[derive(Debug)]
pub struct ManualClock {
    now: std::sync::Mutex<Timestamp>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: std::sync::Mutex::new(truncate_to_micros(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: jiff::SignedDuration) {
        if let Ok(mut now) = self.now.lock() {
            *now = now.checked_add(by).unwrap_or(*now);
        }
    }

    /// Sets the clock to `time`.
    pub fn set(&self, time: Timestamp) {
        if let Ok(mut now) = self.now.lock() {
            *now = truncate_to_micros(time);
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.now
            .lock()
            .map(|now| *now)
            .unwrap_or_else(|poisoned| *poisoned.into_inner())
    }
}
