//! A rate per principal: a token bucket for each caller, refilled continuously, so that one
//! runaway client cannot take the service from the others. Over its rate a call is answered
//! RESOURCE_EXHAUSTED with `RetryInfo` saying when the next one would be admitted.
//!
//! The buckets live in this process: behind a load balancer each replica admits the rate, so a
//! deployment of `n` replicas admits up to `n` times it (README.md says so).

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How many requests a principal may send: `per_second` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Requests per second, on average.
    pub per_second: f64,
    /// Requests at once after a quiet spell.
    pub burst: u32,
}

/// When the buckets of callers gone quiet are dropped, so the table cannot grow without end.
const PRUNE_ABOVE: usize = 10_000;

/// The buckets of every caller.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Buckets of `rate` (a rate of at least one request per second and a burst of one).
    pub fn new(rate: Rate) -> Self {
        Self {
            rate: Rate {
                per_second: rate.per_second.max(f64::MIN_POSITIVE),
                burst: rate.burst.max(1),
            },
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `caller`'s bucket, or says how long until it holds one.
    pub fn admit(&self, caller: &str) -> Result<(), Duration> {
        self.admit_at(caller, Instant::now())
    }

    fn admit_at(&self, caller: &str, now: Instant) -> Result<(), Duration> {
        let burst = f64::from(self.rate.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            let full_after =
                Duration::try_from_secs_f64(burst / self.rate.per_second).unwrap_or(Duration::MAX);
            buckets.retain(|_, bucket| now.duration_since(bucket.at) < full_after);
        }
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.duration_since(bucket.at).as_secs_f64() * self.rate.per_second;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(
                Duration::try_from_secs_f64((1.0 - bucket.tokens) / self.rate.per_second)
                    .unwrap_or(Duration::MAX),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate_and_each_caller_has_its_own() {
        let limiter = RateLimiter::new(Rate {
            per_second: 10.0,
            burst: 3,
        });
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit_at("a", start).is_ok());
        }
        let wait = limiter.admit_at("a", start).unwrap_err();
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100));
        assert!(limiter.admit_at("b", start).is_ok());
        assert!(
            limiter
                .admit_at("a", start + Duration::from_millis(100))
                .is_ok()
        );
        assert!(
            limiter
                .admit_at("a", start + Duration::from_millis(110))
                .is_err()
        );
        // A quiet spell refills no more than the burst.
        for _ in 0..3 {
            assert!(
                limiter
                    .admit_at("a", start + Duration::from_secs(60))
                    .is_ok()
            );
        }
        assert!(
            limiter
                .admit_at("a", start + Duration::from_secs(60))
                .is_err()
        );
    }
}
