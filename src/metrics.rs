//! Counters of the server's requests and streaming work, shared with whoever started it: tests use them to
//! see that a slow reader holds the server's read-ahead bounded and that a cancelled stream
//! stops the server's work; the benchmark tool reports them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    rpcs: AtomicI64,
    list_streams: AtomicI64,
    tickets_read: AtomicU64,
    tickets_sent: AtomicU64,
    watchers: AtomicI64,
    token_lookups: AtomicU64,
}

impl Metrics {
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
        };
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}
