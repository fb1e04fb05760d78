//! Rate limits of a WebSocket connection: token buckets refilled continuously, one per limited
//! quantity (events, bytes), held by the connection. (A participant's limit over all its
//! connections and requests is [`super::budget`].)

use std::time::{Duration, Instant};

/// A token bucket: holds at most `burst` tokens, refilled at `rate` tokens a second.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// A full bucket (`rate` per second, at most `burst`; a zero rate means unlimited).
    pub fn new(rate: f64, burst: f64, now: Instant) -> Bucket {
        let burst = burst.max(1.0);
        Bucket {
            rate,
            burst,
            tokens: burst,
            refilled: now,
        }
    }

    /// Whether the bucket limits anything.
    pub fn unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    /// Takes `n` tokens at `now`, or answers how long until they would be there (nothing is
    /// taken then). More than the burst is never there: it waits for a full bucket.
    pub fn take(&mut self, n: f64, now: Instant) -> Result<(), Duration> {
        if self.unlimited() {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.refilled = now;
        let n = n.min(self.burst);
        if self.tokens >= n {
            self.tokens -= n;
            return Ok(());
        }
        Err(Duration::from_secs_f64((n - self.tokens) / self.rate))
    }
}

/// A connection's limits: events and bytes per second.
#[derive(Debug, Clone)]
pub struct Limits {
    events: Bucket,
    bytes: Bucket,
}

impl Limits {
    /// `events_per_sec` (bursts of `events_burst`) and `bytes_per_sec` (bursts of twice that);
    /// zero means unlimited.
    pub fn new(events_per_sec: f64, events_burst: f64, bytes_per_sec: f64, now: Instant) -> Limits {
        Limits {
            events: Bucket::new(events_per_sec, events_burst, now),
            bytes: Bucket::new(bytes_per_sec, 2.0 * bytes_per_sec, now),
        }
    }

    /// Admits one frame of `bytes` bytes at `now`, or answers when to retry. A refused frame
    /// takes nothing from either bucket.
    pub fn admit(&mut self, bytes: usize, now: Instant) -> Result<(), Duration> {
        let (events, bytes_bucket) = (self.events.clone(), self.bytes.clone());
        #[allow(clippy::cast_precision_loss)]
        let size = bytes as f64;
        match (self.events.take(1.0, now), self.bytes.take(size, now)) {
            (Ok(()), Ok(())) => Ok(()),
            (a, b) => {
                self.events = events;
                self.bytes = bytes_bucket;
                let wait = |r: Result<(), Duration>| r.err().unwrap_or_default();
                Err(wait(a).max(wait(b)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(10.0, 5.0, t0);
        for _ in 0..5 {
            assert_eq!(b.take(1.0, t0), Ok(()));
        }
        let wait = b.take(1.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // 100 ms later one more token is there, not two.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(1.0, t1), Ok(()));
        assert!(b.take(1.0, t1).is_err());
        // Never more than the burst, however long it waits.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..5 {
            assert_eq!(b.take(1.0, later), Ok(()));
        }
        assert!(b.take(1.0, later).is_err());
        assert!(
            Bucket::new(0.0, 1.0, t0).take(1e9, t0).is_ok(),
            "rate 0: unlimited"
        );
    }

    #[test]
    fn limits_refuse_on_either_bucket_and_take_nothing_then() {
        let t0 = Instant::now();
        let mut l = Limits::new(100.0, 100.0, 1000.0, t0);
        assert!(l.admit(2000, t0).is_ok(), "bytes burst is twice the rate");
        let wait = l.admit(10, t0).unwrap_err();
        assert!(wait > Duration::ZERO);
        // The refused frame took no event token: 99 more fit once bytes refill.
        let t1 = t0 + Duration::from_secs(1);
        for n in 0..99 {
            assert!(l.admit(10, t1).is_ok(), "frame {n}");
        }
    }
}
