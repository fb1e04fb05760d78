//! The rate-budget port: named token buckets held by the store, so that every node drawing on one
//! bucket (a participant's sessions on several session nodes) shares one budget.
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::rates`):
//! - a bucket nobody took from holds `burst` tokens; it refills continuously at `per_sec` tokens a
//!   second and never holds more than `burst`;
//! - `take` grants the whole tokens held, up to the number asked, and removes exactly those:
//!   concurrent takes from one bucket, by any number of clients, never grant more in all than it
//!   held;
//! - when it grants fewer than asked, it answers how long (more than zero) until the missing
//!   tokens would have accrued; when it grants them all, zero;
//! - buckets are independent: a take from one never changes another;
//! - time is the adapter's one clock, the same for every client (the Redis adapter reads the
//!   server's `TIME`, so nodes with skewed clocks agree); a bucket's `per_sec` and `burst` are the
//!   ones of the take (callers keep them constant per bucket);
//! - an idle bucket may be forgotten once it would be full again, which changes nothing; buckets
//!   need not survive a restart of the store (a lost bucket is a full one).

use super::Error;
use async_trait::async_trait;
use std::time::Duration;

/// A token bucket's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added a second (at least 1: see [`Rate::new`]).
    pub per_sec: u64,
    /// Most tokens held, and what a fresh bucket holds (at least 1).
    pub burst: u64,
}

impl Rate {
    /// `per_sec` tokens a second in bursts of `burst`, each at least 1.
    pub fn new(per_sec: u64, burst: u64) -> Rate {
        Rate {
            per_sec: per_sec.max(1),
            burst: burst.max(1),
        }
    }

    /// How long this rate takes to add `tokens` (fractions of a token included).
    pub fn time_for(&self, tokens: f64) -> Duration {
        #[allow(clippy::cast_precision_loss)]
        let per_sec = self.per_sec.max(1) as f64;
        Duration::try_from_secs_f64(tokens.max(0.0) / per_sec).unwrap_or(Duration::MAX)
    }
}

/// The answer to a take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Tokens granted (and removed from the bucket): at most the number asked.
    pub granted: u64,
    /// Zero when every token asked was granted; else how long until the missing ones would have
    /// accrued.
    pub retry_after: Duration,
}

/// Token buckets shared by every client of the store.
#[async_trait]
pub trait RateBudgets: Send + Sync + 'static {
    /// Takes up to `asked` tokens from the bucket `bucket` of parameters `rate`.
    async fn take(&self, bucket: &str, rate: Rate, asked: u64) -> Result<Grant, Error>;
}
