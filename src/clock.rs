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
