//! The participant rate limit: the events and bytes a participant may send per second over all
//! its WebSocket connections and `POST /events` requests, on every session node. The token
//! buckets are held in the store ([`RateBudgets`], keys `rate:events:{participant}` and
//! `rate:bytes:{participant}`), so every node draws on the same budget.
//!
//! To spare a store round trip per event, a node leases tokens in chunks into a local allowance
//! per participant and spends them locally: a chunk is a tenth of the burst (at least 1, and at
//! least what the event needs). The price is accuracy: tokens a node leased but has not spent are
//! gone from the shared bucket, and spent later they come on top of a bucket that refilled
//! meanwhile, so a participant may exceed its budget by up to one chunk per session node (and
//! may be refused on one node while another holds unspent tokens of its). A refused event takes
//! nothing: tokens leased for it stay in the allowance for the next.
//!
//! When the store is unreachable (or answers later than [`STORE_TIMEOUT`]) the limit fails open:
//! the event is admitted, `threds_rate_budget_unavailable_total` counts it, a warning is logged
//! at most once per [`LOG_EVERY`], and the store is not asked again for [`BACKOFF`]. The
//! per-connection limits (`super::limit`) still apply then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use threds_runtime::metrics::metrics;
use threds_runtime::store::{Error, Grant, Rate, RateBudgets};
use threds_runtime::topology;

/// A chunk is this part of the burst.
const CHUNK_PARTS: u64 = 10;

/// Longest wait for the store's answer before the limit fails open.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// After a store failure, how long events are admitted without asking it.
pub const BACKOFF: Duration = Duration::from_secs(1);

/// Least time between two warnings that the store is unreachable.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// Participants tracked on a node before idle ones are forgotten.
const TRACKED: usize = 10_000;

/// How long a participant's allowance is kept after its last event (a forgotten allowance's
/// unspent tokens are lost, which only ever admits less).
const IDLE: Duration = Duration::from_secs(60);

/// One limited quantity (events or bytes) of every participant.
#[derive(Debug, Clone, Copy)]
struct Quantity {
    /// The bucket's parameters.
    rate: Rate,
    /// Tokens leased at once when the allowance runs short.
    chunk: u64,
}

impl Quantity {
    /// `per_sec` in bursts of `burst`; `None` (unlimited) when `per_sec` is 0.
    fn new(per_sec: u64, burst: u64) -> Option<Quantity> {
        (per_sec > 0).then(|| {
            let rate = Rate::new(per_sec, burst);
            Quantity {
                rate,
                chunk: (rate.burst / CHUNK_PARTS).max(1),
            }
        })
    }

    /// What one event of `bytes` needs of this quantity when it counts `events` (else bytes):
    /// never more than the burst (more would never be there; it waits for a full bucket).
    fn need(&self, events: bool, bytes: usize) -> u64 {
        let n = if events {
            1
        } else {
            u64::try_from(bytes).unwrap_or(u64::MAX)
        };
        n.min(self.rate.burst)
    }

    /// Tokens to lease when `held` are held and `need` needed: none when enough are held, else
    /// the shortfall or a chunk, whichever is more.
    fn lease(&self, need: u64, held: u64) -> Option<u64> {
        (held < need).then(|| (need - held).max(self.chunk))
    }

    /// How long until the shortfall of an event is there, from the store's answer to a lease of
    /// `asked` tokens with `held` held before: the store says when all `asked` would be, which is
    /// `asked - (need - held)` tokens later than the event needs.
    fn wait(&self, grant: Grant, asked: u64, need: u64, held: u64) -> Duration {
        #[allow(clippy::cast_precision_loss)]
        let excess = asked.saturating_sub(need.saturating_sub(held)) as f64;
        grant
            .retry_after
            .saturating_sub(self.rate.time_for(excess))
            .max(Duration::from_millis(1))
    }
}

/// A participant's tokens leased from the store and not yet spent, on this node.
#[derive(Debug, Default)]
struct Allowance {
    /// Event tokens.
    events: u64,
    /// Byte tokens.
    bytes: u64,
    /// Until when the store said the tokens missing for the last refused event cannot be there.
    refused_until: Option<Instant>,
}

/// When the store last failed.
#[derive(Debug, Default)]
struct Outage {
    /// Events are admitted without asking the store until then.
    until: Option<Instant>,
    /// The last warning.
    logged: Option<Instant>,
}

/// Each participant's shared allowance, and when it was last used.
type Allowances = HashMap<String, (Arc<tokio::sync::Mutex<Allowance>>, Instant)>;

/// The participant rate limit of a session node (see the module documentation).
pub struct ParticipantBudget {
    store: Arc<dyn RateBudgets>,
    events: Option<Quantity>,
    bytes: Option<Quantity>,
    allowances: Mutex<Allowances>,
    outage: Mutex<Outage>,
}

impl std::fmt::Debug for ParticipantBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantBudget")
            .field("events", &self.events)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl ParticipantBudget {
    /// `events_per_sec` events (bursts of `events_burst`) and `bytes_per_sec` bytes (bursts of
    /// twice that) per participant, held in `store`; a zero rate means unlimited.
    pub fn new(
        store: Arc<dyn RateBudgets>,
        events_per_sec: u64,
        events_burst: u64,
        bytes_per_sec: u64,
    ) -> ParticipantBudget {
        ParticipantBudget {
            store,
            events: Quantity::new(events_per_sec, events_burst),
            bytes: Quantity::new(bytes_per_sec, bytes_per_sec.saturating_mul(2)),
            allowances: Mutex::new(HashMap::new()),
            outage: Mutex::new(Outage::default()),
        }
    }

    /// Admits one event of `bytes` bytes from `participant` at `now`, or answers when to retry.
    /// A refused event takes nothing from the participant's budget.
    pub async fn admit(
        &self,
        participant: &str,
        bytes: usize,
        now: Instant,
    ) -> Result<(), Duration> {
        let (need_events, need_bytes) = (
            self.events.map_or(0, |q| q.need(true, bytes)),
            self.bytes.map_or(0, |q| q.need(false, bytes)),
        );
        if need_events == 0 && need_bytes == 0 {
            return Ok(());
        }
        let Some(allowance) = self.allowance(participant, now) else {
            return Ok(());
        };
        let mut guard = allowance.lock().await;
        let held: &mut Allowance = &mut guard;
        if held.events < need_events || held.bytes < need_bytes {
            if let Some(until) = held.refused_until.filter(|until| *until > now) {
                return Err(until - now);
            }
            if self.failing_open(now) {
                return Ok(());
            }
            let lease_events = self.events.and_then(|q| q.lease(need_events, held.events));
            let lease_bytes = self.bytes.and_then(|q| q.lease(need_bytes, held.bytes));
            let (events, bytes) = futures_util::join!(
                self.lease(
                    topology::participant_events_bucket(participant),
                    self.events,
                    lease_events
                ),
                self.lease(
                    topology::participant_bytes_bucket(participant),
                    self.bytes,
                    lease_bytes
                ),
            );
            let mut wait = Duration::ZERO;
            let mut failed = None;
            for (answer, quantity, asked, need, slot) in [
                (
                    events,
                    self.events,
                    lease_events,
                    need_events,
                    &mut held.events,
                ),
                (bytes, self.bytes, lease_bytes, need_bytes, &mut held.bytes),
            ] {
                match (answer, quantity, asked) {
                    (Ok(grant), Some(q), Some(asked)) => {
                        let before = *slot;
                        *slot = slot.saturating_add(grant.granted);
                        if *slot < need {
                            wait = wait.max(q.wait(grant, asked, need, before));
                        }
                    }
                    (Err(e), _, _) => failed = Some(e),
                    _ => {}
                }
            }
            if let Some(e) = failed {
                self.store_failed(&e, now);
                return Ok(());
            }
            if wait > Duration::ZERO {
                held.refused_until = Some(now + wait);
                return Err(wait);
            }
        }
        held.events -= need_events;
        held.bytes -= need_bytes;
        held.refused_until = None;
        Ok(())
    }

    /// The allowance of `participant` (created empty), marked used at `now`; `None` if the table
    /// is poisoned (the limit then fails open).
    fn allowance(
        &self,
        participant: &str,
        now: Instant,
    ) -> Option<Arc<tokio::sync::Mutex<Allowance>>> {
        let mut all = self.allowances.lock().ok()?;
        if all.len() >= TRACKED && !all.contains_key(participant) {
            all.retain(|_, (_, used)| now.saturating_duration_since(*used) < IDLE);
        }
        let (allowance, used) = all
            .entry(participant.to_owned())
            .or_insert_with(|| (Arc::default(), now));
        *used = now;
        Some(Arc::clone(allowance))
    }

    /// Leases `asked` tokens (if any) of `quantity` from `bucket`.
    async fn lease(
        &self,
        bucket: String,
        quantity: Option<Quantity>,
        asked: Option<u64>,
    ) -> Result<Grant, Error> {
        let (Some(q), Some(asked)) = (quantity, asked) else {
            return Ok(Grant {
                granted: 0,
                retry_after: Duration::ZERO,
            });
        };
        match tokio::time::timeout(STORE_TIMEOUT, self.store.take(&bucket, q.rate, asked)).await {
            Ok(answer) => answer,
            Err(_) => Err(Error::Backend(format!(
                "no answer within {} ms",
                STORE_TIMEOUT.as_millis()
            ))),
        }
    }

    /// Whether the store failed within [`BACKOFF`] of `now` (the event is then admitted and
    /// counted).
    fn failing_open(&self, now: Instant) -> bool {
        let failing = self
            .outage
            .lock()
            .map_or(true, |o| o.until.is_some_and(|until| now < until));
        if failing {
            metrics().rate_budget_unavailable.inc();
        }
        failing
    }

    /// Records a store failure at `now`: counted, logged at most once per [`LOG_EVERY`].
    fn store_failed(&self, error: &Error, now: Instant) {
        metrics().rate_budget_unavailable.inc();
        let Ok(mut outage) = self.outage.lock() else {
            return;
        };
        outage.until = Some(now + BACKOFF);
        if outage
            .logged
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY)
        {
            outage.logged = Some(now);
            tracing::warn!(error = %error, "participant rate limit: the store is unreachable; admitting events unchecked (fail open)");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
    use threds_runtime::store::memory::MemoryStore;

    /// The embedded store on a hand-set clock, counting takes, failing on demand.
    struct Store {
        inner: MemoryStore,
        now: Arc<AtomicI64>,
        takes: AtomicUsize,
        down: AtomicBool,
    }

    impl Store {
        fn new() -> Arc<Store> {
            let now = Arc::new(AtomicI64::new(1_000_000));
            let clock = Arc::clone(&now);
            Arc::new(Store {
                inner: MemoryStore::with_clock(Arc::new(move || clock.load(Ordering::SeqCst))),
                now,
                takes: AtomicUsize::new(0),
                down: AtomicBool::new(false),
            })
        }

        fn advance(&self, ms: i64) {
            self.now.fetch_add(ms, Ordering::SeqCst);
        }

        fn takes(&self) -> usize {
            self.takes.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl RateBudgets for Store {
        async fn take(&self, bucket: &str, rate: Rate, asked: u64) -> Result<Grant, Error> {
            self.takes.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(Error::Backend("down".into()));
            }
            self.inner.take(bucket, rate, asked).await
        }
    }

    /// A store and a node's limit on it (`ParticipantBudget::new`'s rates).
    fn node(
        events_per_sec: u64,
        burst: u64,
        bytes_per_sec: u64,
    ) -> (Arc<Store>, ParticipantBudget) {
        let store = Store::new();
        let budget = ParticipantBudget::new(store.clone(), events_per_sec, burst, bytes_per_sec);
        (store, budget)
    }

    /// Events admitted of `n` from `participant` at `now`.
    async fn admitted(
        budget: &ParticipantBudget,
        participant: &str,
        n: usize,
        now: Instant,
    ) -> usize {
        let mut admitted = 0;
        for _ in 0..n {
            admitted += usize::from(budget.admit(participant, 10, now).await.is_ok());
        }
        admitted
    }

    #[tokio::test]
    async fn tokens_are_leased_a_chunk_at_a_time_and_spent_locally() {
        let (store, budget) = node(100, 100, 0);
        let now = Instant::now();
        assert_eq!(admitted(&budget, "alice", 10, now).await, 10);
        assert_eq!(store.takes(), 1, "one chunk of 10 (a tenth of the burst)");
        assert_eq!(admitted(&budget, "alice", 1, now).await, 1);
        assert_eq!(store.takes(), 2);
        assert_eq!(admitted(&budget, "alice", 89, now).await, 89);
        assert_eq!(store.takes(), 10, "the whole burst in ten chunks");
        assert!(budget.admit("alice", 10, now).await.is_err());
        assert_eq!(
            admitted(&budget, "bob", 5, now).await,
            5,
            "bob has his own budget"
        );
    }

    #[tokio::test]
    async fn nodes_share_a_participants_budget() {
        let store = Store::new();
        let nodes = [
            ParticipantBudget::new(store.clone(), 1, 20, 0),
            ParticipantBudget::new(store.clone(), 1, 20, 0),
        ];
        let now = Instant::now();
        let mut total = 0;
        for _ in 0..20 {
            for node in &nodes {
                total += admitted(node, "alice", 1, now).await;
            }
        }
        assert_eq!(
            total, 20,
            "the burst, shared (chunks of 2 divide it exactly)"
        );
    }

    #[tokio::test]
    async fn a_refused_event_takes_nothing_and_says_when_to_retry() {
        let (store, budget) = node(10, 50, 0);
        let now = Instant::now();
        assert_eq!(admitted(&budget, "alice", 50, now).await, 50);
        let takes = store.takes();
        let wait = budget.admit("alice", 10, now).await.unwrap_err();
        assert_eq!(
            wait,
            Duration::from_millis(100),
            "one token at 10/s, not the chunk of 5 leased for it"
        );
        assert_eq!(store.takes(), takes + 1);
        let again = budget
            .admit("alice", 10, now + Duration::from_millis(40))
            .await;
        assert_eq!(again, Err(Duration::from_millis(60)), "refused locally");
        assert_eq!(store.takes(), takes + 1, "without asking the store");
        store.advance(100);
        let later = now + Duration::from_millis(100);
        assert_eq!(admitted(&budget, "alice", 2, later).await, 1);
    }

    #[tokio::test]
    async fn bytes_are_limited_too_and_a_refusal_keeps_what_was_leased() {
        // 100 B/s in bursts of 200, chunks of 20; events unlimited.
        let (store, budget) = node(0, 0, 100);
        let now = Instant::now();
        assert!(budget.admit("alice", 150, now).await.is_ok());
        let wait = budget.admit("alice", 100, now).await.unwrap_err();
        assert_eq!(wait, Duration::from_millis(500), "50 B held, 50 missing");
        // Half a second later 50 more are there: the 50 kept and the 50 new make 100.
        store.advance(500);
        let later = now + Duration::from_millis(500);
        assert!(budget.admit("alice", 100, later).await.is_ok());
        // An event over the burst needs a full bucket, not more.
        store.advance(2_000);
        let full = later + Duration::from_secs(2);
        assert!(budget.admit("alice", 10_000, full).await.is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_store_fails_open_and_is_spared_for_a_while() {
        let (store, budget) = node(1, 1, 0);
        store.down.store(true, Ordering::SeqCst);
        let now = Instant::now();
        let before = metrics().rate_budget_unavailable.get();
        assert_eq!(
            admitted(&budget, "alice", 5, now).await,
            5,
            "admitted unchecked"
        );
        assert_eq!(
            store.takes(),
            1,
            "the store is not asked again within the backoff"
        );
        assert!(metrics().rate_budget_unavailable.get() >= before + 5);
        store.down.store(false, Ordering::SeqCst);
        let later = now + BACKOFF;
        assert_eq!(
            admitted(&budget, "alice", 5, later).await,
            1,
            "checked again"
        );
    }

    #[tokio::test]
    async fn no_limit_asks_nothing() {
        let (store, budget) = node(0, 0, 0);
        assert_eq!(admitted(&budget, "alice", 100, Instant::now()).await, 100);
        assert_eq!(store.takes(), 0);
    }
}
