//! The rate budgets of the embedded store: token buckets in memory only (a restart refills them),
//! on the store clock. Buckets that would be full again are forgotten once there are many.

use crate::store::rates::{Grant, Rate};
use std::collections::HashMap;
use std::time::Duration;

/// Buckets kept before those that would be full again are forgotten.
const KEPT: usize = 10_000;

/// A bucket's level at a time.
#[derive(Debug, Clone, Copy)]
struct Level {
    /// Tokens held (fractions included).
    tokens: f64,
    /// When, epoch ms (store clock).
    at: i64,
    /// The bucket's parameters at its last take.
    rate: Rate,
}

impl Level {
    /// The tokens held at `now`: refilled at the rate since `at`, at most the burst.
    fn at(&self, now: i64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let elapsed = now.saturating_sub(self.at).max(0) as f64 / 1000.0;
        #[allow(clippy::cast_precision_loss)]
        let (per_sec, burst) = (self.rate.per_sec as f64, self.rate.burst as f64);
        (self.tokens + elapsed * per_sec).min(burst)
    }
}

/// Every bucket by name.
#[derive(Debug, Default)]
pub(super) struct Buckets {
    levels: HashMap<String, Level>,
}

impl Buckets {
    /// Takes up to `asked` tokens from `name` at `now`.
    pub fn take(&mut self, name: &str, rate: Rate, asked: u64, now: i64) -> Grant {
        if self.levels.len() >= KEPT && !self.levels.contains_key(name) {
            self.levels.retain(|_, level| {
                #[allow(clippy::cast_precision_loss)]
                let full = level.rate.burst as f64;
                level.at(now) < full
            });
        }
        #[allow(clippy::cast_precision_loss)]
        let held = self
            .levels
            .get(name)
            .map_or(rate.burst as f64, |level| Level { rate, ..*level }.at(now));
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = held.floor().max(0.0) as u64;
        let granted = asked.min(whole);
        #[allow(clippy::cast_precision_loss)]
        let left = held - granted as f64;
        if granted > 0 {
            let level = Level {
                tokens: left,
                at: now,
                rate,
            };
            self.levels.insert(name.to_owned(), level);
        }
        let retry_after = if granted < asked {
            #[allow(clippy::cast_precision_loss)]
            let missing = (asked - granted) as f64 - left;
            rate.time_for(missing).max(Duration::from_millis(1))
        } else {
            Duration::ZERO
        };
        Grant {
            granted,
            retry_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_grants_what_it_holds_and_refills_up_to_its_burst() {
        let mut b = Buckets::default();
        let rate = Rate::new(10, 5);
        let grant = b.take("a", rate, 3, 0);
        assert_eq!((grant.granted, grant.retry_after), (3, Duration::ZERO));
        let grant = b.take("a", rate, 4, 0);
        assert_eq!(grant.granted, 2);
        assert_eq!(grant.retry_after, Duration::from_millis(200));
        assert_eq!(
            b.take("a", rate, 4, 150).granted,
            1,
            "1.5 tokens after 150 ms"
        );
        assert_eq!(b.take("b", rate, 9, 0).granted, 5, "b is its own bucket");
        assert_eq!(
            b.take("a", rate, 9, 3_600_000).granted,
            5,
            "never over the burst"
        );
    }
}
