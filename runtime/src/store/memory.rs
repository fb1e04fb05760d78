//! The embedded store (for `threds dev`), implementing every store port: everything in memory,
//! optionally made durable in a redb database so it survives restarts.
//!
//! The in-memory image answers every read. A write is validated against it (changing
//! nothing), then, when durable, written in one redb transaction, and only then applied to the
//! image — so a refused or failed write leaves both untouched. One mutex serializes writes, which
//! makes the version checks and the lease check of a commit atomic with its effects.
//!
//! Outbox: a commit's entries are numbered after validation (the next numbers after the highest
//! ever given), stamped with the commit time, and written with the rest of the commit; `ack_outbox`
//! deletes them.
//!
//! Leases: a renewal by the holder before expiry keeps the token and extends the expiry; every
//! other grant takes the next token of the resource. Time comes from the store's [`Clock`].
//!
//! Rate budgets: token buckets in memory only, apart from the image (a restart refills them), on
//! the store's [`Clock`].

mod durable;
mod lease;
mod plan;
mod rates;
mod sessions;
mod slots;
mod state;

use self::durable::Durable;
use self::lease::LeaseRecord;
use self::state::Plan;
use self::state::State;
use super::rates::{Grant, Rate, RateBudgets};
use super::{
    Commit, Error, Lease, Leases, PatternRegistry, Pending, Registry, Session, SessionDirectory,
    SlotClaim, Stored, StoredCounter, Threds,
};
use async_trait::async_trait;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use threds_patterns::thred::Timer;

/// Where the store reads the time (epoch ms) for leases and outbox commit times.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, epoch ms.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    })
}

/// The embedded store (every store port).
pub struct MemoryStore {
    shared: Arc<Shared>,
}

/// What the store's handles (and its blocking tasks) share.
struct Shared {
    /// The in-memory image.
    state: Mutex<State>,
    /// The database, when durable.
    durable: Option<Durable>,
    /// The clock of leases and outbox commit times.
    clock: Clock,
    /// The pattern registry (its image; a durable store also keeps it in the database).
    registry: Mutex<Registry>,
    /// The rate budgets (in memory only).
    rates: Mutex<rates::Buckets>,
    /// The delivery slots of session nodes (in memory only).
    slots: Mutex<slots::Slots>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("durable", &self.shared.durable.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// A volatile store on the system clock.
    pub fn new() -> MemoryStore {
        MemoryStore::with_clock(system_clock())
    }

    /// A volatile store on `clock`.
    pub fn with_clock(clock: Clock) -> MemoryStore {
        MemoryStore::build(State::default(), None, clock)
    }

    /// A durable store in `dir` (file `store.redb`, created if missing) on the system clock.
    pub fn open(dir: &Path) -> Result<MemoryStore, Error> {
        MemoryStore::open_with_clock(dir, system_clock())
    }

    /// A durable store in `dir` on `clock`.
    pub fn open_with_clock(dir: &Path, clock: Clock) -> Result<MemoryStore, Error> {
        let (durable, state) = Durable::open(dir)?;
        let registry = durable.registry()?;
        let store = MemoryStore::build(state, Some(durable), clock);
        *store.shared.registry()? = registry;
        Ok(store)
    }

    /// Assembles a store.
    fn build(state: State, durable: Option<Durable>, clock: Clock) -> MemoryStore {
        MemoryStore {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                durable,
                clock,
                registry: Mutex::new(Registry::default()),
                rates: Mutex::new(rates::Buckets::default()),
                slots: Mutex::new(slots::Slots::default()),
            }),
        }
    }

    /// Runs a read against the image.
    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T, Error> {
        let state = self.shared.lock()?;
        Ok(f(&state))
    }

    /// Runs a write; on a blocking thread when it touches the disk.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        if self.shared.durable.is_none() {
            return f(&self.shared);
        }
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| Error::Backend(format!("store write task: {e}")))?
    }
}

impl Shared {
    /// The pattern registry, locked.
    fn registry(&self) -> Result<MutexGuard<'_, Registry>, Error> {
        self.registry
            .lock()
            .map_err(|_| Error::Backend("pattern registry poisoned by an earlier panic".into()))
    }

    /// The image, locked.
    fn lock(&self) -> Result<MutexGuard<'_, State>, Error> {
        self.state
            .lock()
            .map_err(|_| Error::Backend("store state poisoned by an earlier panic".into()))
    }

    /// Validates, persists and applies a commit.
    fn commit(&self, lease: Option<&Lease>, commit: Commit) -> Result<Vec<u64>, Error> {
        let mut state = self.lock()?;
        let plan = Plan::new(&state, lease, commit, (self.clock)())?;
        if let Some(durable) = &self.durable {
            durable.commit(&plan)?;
        }
        let seqs = plan.outbox_seqs();
        state.apply(plan);
        Ok(seqs)
    }

    /// Deletes acknowledged outbox entries (durably first).
    fn ack_outbox(&self, seqs: &[u64]) -> Result<(), Error> {
        let mut state = self.lock()?;
        let known = state.known_outbox(seqs);
        if known.is_empty() {
            return Ok(());
        }
        if let Some(durable) = &self.durable {
            durable.ack_outbox(&known)?;
        }
        state.ack_outbox(&known);
        Ok(())
    }

    /// Grants or renews a lease.
    fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Option<Lease>, Error> {
        let mut state = self.lock()?;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let current = state.leases.get(resource).cloned().unwrap_or_default();
        let Some((record, lease)) = current.acquire(resource, owner, (self.clock)(), ttl_ms) else {
            return Ok(None);
        };
        self.put_lease(&mut state, resource, record)?;
        Ok(Some(lease))
    }

    /// Gives a lease up if it is the current one.
    fn release(&self, lease: &Lease) -> Result<(), Error> {
        let mut state = self.lock()?;
        let released = state
            .leases
            .get(&lease.resource)
            .and_then(|r| r.release(lease));
        match released {
            Some(record) => self.put_lease(&mut state, &lease.resource, record),
            None => Ok(()),
        }
    }

    /// Stores a lease record (durably first).
    fn put_lease(
        &self,
        state: &mut State,
        resource: &str,
        record: LeaseRecord,
    ) -> Result<(), Error> {
        if let Some(durable) = &self.durable {
            durable.put_lease(resource, &record)?;
        }
        state.leases.insert(resource.to_string(), record);
        Ok(())
    }

    /// Records a session.
    fn add_session(&self, session: Session) -> Result<(), Error> {
        let mut state = self.lock()?;
        let (record, position) = state.sessions.preview(&session);
        if let Some(durable) = &self.durable {
            durable.put_session(&session.id, &record, position)?;
        }
        state.sessions.insert(session.id, record);
        Ok(())
    }

    /// Forgets a session.
    fn remove_session(&self, id: &str) -> Result<(), Error> {
        let mut state = self.lock()?;
        if !state.sessions.contains(id) {
            return Ok(());
        }
        if let Some(durable) = &self.durable {
            durable.remove_session(id)?;
        }
        state.sessions.remove(id);
        Ok(())
    }
}

#[async_trait]
impl Threds for MemoryStore {
    async fn load(&self, ids: &[String]) -> Result<Vec<Option<Stored>>, Error> {
        self.read(|s| s.load(ids))
    }

    async fn thred_ids(&self) -> Result<Vec<String>, Error> {
        self.read(State::thred_ids)
    }

    async fn thred_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, Error> {
        self.read(|s| s.thred_page(after, limit))
    }

    async fn threds_of(&self, participant: &str) -> Result<Vec<String>, Error> {
        self.read(|s| s.threds_of(participant))
    }

    async fn unbound_listeners(&self) -> Result<Vec<String>, Error> {
        self.read(State::unbound_listeners)
    }

    async fn counters(&self, pattern_ids: &[String]) -> Result<Vec<StoredCounter>, Error> {
        self.read(|s| s.counters(pattern_ids))
    }

    async fn applied(&self, topic: &str, partition: u32) -> Result<Option<u64>, Error> {
        self.read(|s| s.applied(topic, partition))
    }

    async fn commit(&self, lease: Option<&Lease>, commit: Commit) -> Result<Vec<u64>, Error> {
        let lease = lease.cloned();
        self.write(move |s| s.commit(lease.as_ref(), commit)).await
    }

    async fn outbox(&self, before: i64, limit: usize) -> Result<Vec<Pending>, Error> {
        self.read(|s| s.outbox(before, limit))
    }

    async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), Error> {
        let seqs = seqs.to_vec();
        self.write(move |s| s.ack_outbox(&seqs)).await
    }

    async fn due_timers(
        &self,
        partition: u32,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Timer>, Error> {
        self.read(|s| s.due_timers(partition, now, limit))
    }

    async fn pending_timers(&self, partition: u32) -> Result<u64, Error> {
        self.read(|s| s.pending_timers(partition))
    }
}

#[async_trait]
impl Leases for MemoryStore {
    async fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        let (resource, owner) = (resource.to_string(), owner.to_string());
        self.write(move |s| s.acquire(&resource, &owner, ttl)).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        let lease = lease.clone();
        self.write(move |s| s.release(&lease)).await
    }
}

#[async_trait]
impl SessionDirectory for MemoryStore {
    async fn add_session(&self, session: Session) -> Result<(), Error> {
        self.write(move |s| s.add_session(session)).await
    }

    async fn remove_session(&self, session_id: &str) -> Result<(), Error> {
        let id = session_id.to_string();
        self.write(move |s| s.remove_session(&id)).await
    }

    async fn sessions_of(&self, participant: &str) -> Result<Vec<Session>, Error> {
        self.read(|s| s.sessions.sessions_of(participant))
    }

    async fn participants(&self) -> Result<Vec<String>, Error> {
        self.read(|s| s.sessions.participants())
    }

    async fn claim_slot(
        &self,
        node: &str,
        slots: u32,
        ttl: Duration,
    ) -> Result<Option<SlotClaim>, Error> {
        let now = (self.shared.clock)();
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Ok(self.shared.slots()?.claim(node, slots, now, ttl))
    }

    async fn release_slot(&self, node: &str) -> Result<(), Error> {
        self.shared.slots()?.release(node);
        Ok(())
    }

    async fn slots_of(&self, participants: &[String]) -> Result<Vec<Vec<u32>>, Error> {
        let now = (self.shared.clock)();
        let slots = self.shared.slots()?;
        self.read(|s| {
            participants
                .iter()
                .map(|p| {
                    let mut found: Vec<u32> = s
                        .sessions
                        .sessions_of(p)
                        .iter()
                        .filter_map(|session| slots.live_slot(&session.node, now))
                        .collect();
                    found.sort_unstable();
                    found.dedup();
                    found
                })
                .collect()
        })
    }
}

#[async_trait]
impl PatternRegistry for MemoryStore {
    async fn registry(&self) -> Result<Registry, Error> {
        Ok(self.shared.registry()?.clone())
    }

    async fn store_registry(&self, expected: u64, registry: &Registry) -> Result<u64, Error> {
        let registry = registry.clone();
        self.write(move |shared| {
            let mut stored = shared.registry()?;
            if stored.version != expected {
                return Err(Error::Conflict(format!(
                    "the pattern registry (now at version {}, not {expected})",
                    stored.version
                )));
            }
            let version = expected + 1;
            if let Some(durable) = &shared.durable {
                durable.put_registry(version, &registry)?;
            }
            *stored = Registry {
                version,
                ..registry
            };
            Ok(version)
        })
        .await
    }
}

#[async_trait]
impl RateBudgets for MemoryStore {
    async fn take(&self, bucket: &str, rate: Rate, asked: u64) -> Result<Grant, Error> {
        let now = (self.shared.clock)();
        let mut buckets = self
            .shared
            .rates
            .lock()
            .map_err(|_| Error::Backend("rate budgets poisoned by an earlier panic".into()))?;
        Ok(buckets.take(bucket, Rate::new(rate.per_sec, rate.burst), asked, now))
    }
}

impl Shared {
    /// The delivery slots.
    fn slots(&self) -> Result<MutexGuard<'_, slots::Slots>, Error> {
        self.slots
            .lock()
            .map_err(|_| Error::Backend("delivery slots poisoned by an earlier panic".into()))
    }
}
