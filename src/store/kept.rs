//! A value read from the database and kept per replica like rights: with the rights
//! generation it was read at (a change that shapes rights or configuration moves it, here at
//! once, on other replicas as their notification arrives) and for at most a time to live,
//! should a notification be lost (a replica on SQLite hears of no other's changes).

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// One kept value; clones share it.
#[derive(Debug)]
pub struct Kept<T> {
    reading: Arc<Mutex<Option<(u64, Instant, T)>>>,
    ttl: Duration,
}

impl<T> Clone for Kept<T> {
    fn clone(&self) -> Self {
        Self {
            reading: self.reading.clone(),
            ttl: self.ttl,
        }
    }
}

impl<T: Clone> Kept<T> {
    /// Nothing kept yet; what is kept is trusted for `ttl` at most.
    pub fn new(ttl: Duration) -> Self {
        Self {
            reading: Arc::default(),
            ttl,
        }
    }

    /// The value read at `generation`, if it is still fresh.
    pub fn get(&self, generation: u64) -> Option<T> {
        let kept = self.reading.lock().unwrap_or_else(PoisonError::into_inner);
        kept.as_ref()
            .filter(|(at, since, _)| *at == generation && since.elapsed() < self.ttl)
            .map(|(_, _, value)| value.clone())
    }

    /// Keeps `value`, read at `generation`.
    pub fn put(&self, generation: u64, value: T) {
        *self.reading.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, Instant::now(), value));
    }
}
