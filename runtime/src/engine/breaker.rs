//! Circuit breakers on the topics the engine publishes to. An append to a topic that does not
//! answer within the publish timeout (a Kafka partition without a leader, a broker that stalls)
//! opens the topic's breaker: for `open_for`, steps do not try the topic at all — its records
//! wait in the outbox (committed, so nothing is lost) — and steps publishing elsewhere do not wait
//! behind it. After `open_for` one publish (a step's, or the outbox relay's) tries the topic
//! again: an answer closes the breaker, another stall opens it again. An append that fails at once
//! costs no waiting, so it leaves the breaker closed (the record waits in the outbox, and the
//! relay tries it every second).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether a topic is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Appends go to it.
    Closed,
    /// Not tried until the instant; then one try decides.
    Open(Instant),
}

/// The breakers of every topic published to.
#[derive(Debug)]
pub struct Breakers {
    timeout: Duration,
    open_for: Duration,
    topics: Mutex<HashMap<String, State>>,
}

impl Breakers {
    /// Breakers that open on a failure or on no answer within `timeout`, for `open_for`.
    pub fn new(timeout: Duration, open_for: Duration) -> Breakers {
        Breakers {
            timeout,
            open_for,
            topics: Mutex::new(HashMap::new()),
        }
    }

    /// How long an append may take before it counts as failed.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How long a topic is left alone after a failure.
    pub fn open_for(&self) -> Duration {
        self.open_for
    }

    /// Whether `topic` may be tried now: closed, or open past its time (the try decides).
    pub fn allows(&self, topic: &str, now: Instant) -> bool {
        let topics = self
            .topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match topics.get(topic) {
            None | Some(State::Closed) => true,
            Some(State::Open(until)) => now >= *until,
        }
    }

    /// Records how a try of `topic` went (`answered`: it succeeded or failed within the timeout);
    /// answers whether that opened a closed breaker.
    pub fn record(&self, topic: &str, answered: bool, now: Instant) -> bool {
        let mut topics = self
            .topics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = topics.get(topic).copied().unwrap_or(State::Closed);
        if answered {
            topics.remove(topic);
            return false;
        }
        topics.insert(topic.to_owned(), State::Open(now + self.open_for));
        before == State::Closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_opens_a_topic_for_a_while_and_an_answer_closes_it() {
        let b = Breakers::new(Duration::from_secs(1), Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(b.allows("agent", t0));
        assert!(b.record("agent", false, t0), "opened");
        assert!(!b.allows("agent", t0 + Duration::from_secs(5)));
        assert!(b.allows("sessions", t0), "other topics stay closed");
        let later = t0 + Duration::from_secs(10);
        assert!(b.allows("agent", later), "one try after open_for");
        assert!(!b.record("agent", false, later), "already open: reopened");
        assert!(!b.allows("agent", later + Duration::from_secs(1)));
        let much_later = later + Duration::from_secs(10);
        assert!(!b.record("agent", true, much_later));
        assert!(b.allows("agent", much_later), "closed again");
    }
}
