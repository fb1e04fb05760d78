//! The thred store port: thred state, pattern counters, durable timers, partition leases and the
//! session registry.
//!
//! Guarantees every adapter MUST keep (checked by `crate::contract::store`):
//! - a [`Commit`] is all-or-nothing: thred states, counters, timers, index entries and applied
//!   offsets change together or not at all;
//! - a commit is refused ([`Error::Conflict`]) when any thred or counter it expects at a version is
//!   at another version — two engines can never both advance the same thred from the same state;
//! - a commit under a [`Lease`] is refused ([`Error::Fenced`]) when a newer lease of that resource
//!   was granted since; every stored thred records the fencing token of the lease it was written under;
//! - lease tokens of a resource strictly increase across grants, holders and restarts;
//! - outbox entries are written by the same atomic commit as the state they belong to, keep their
//!   order, and survive until acknowledged;
//! - the pattern registry is replaced as a whole, and each replacement raises its version.

pub mod memory;
pub mod redis;

use async_trait::async_trait;
use std::time::Duration;
use threds_patterns::machine::Counter;
use threds_patterns::thred::{ThredState, Timer};

/// A thred as stored: its state, the version the store gave it, and the lease token that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The state.
    pub state: ThredState,
    /// Incremented by every commit that changes the thred (1 for a new thred).
    pub version: u64,
    /// The fencing token of the lease the last write was made under (0 without a lease).
    pub token: u64,
}

/// A pattern counter as stored, with its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoredCounter {
    /// The counter.
    pub counter: Counter,
    /// Incremented by every commit that changes it (0 = never written).
    pub version: u64,
}

/// An exclusive, expiring claim on a resource (e.g. a partition of the events topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What is claimed, e.g. `threds.events/3`.
    pub resource: String,
    /// Who holds it.
    pub owner: String,
    /// Strictly increasing per resource.
    pub token: u64,
    /// When it lapses unless renewed, epoch ms (store clock).
    pub expires_at: i64,
}

/// One thred write in a commit.
// Saves are the common case and removals rare: boxing the state would cost every save an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ThredWrite {
    /// Store `state` (new or changed); `expected` is the version read (`None` = must not exist).
    Save {
        /// The new state.
        state: ThredState,
        /// The version the step read, or `None` for a thred the step created.
        expected: Option<u64>,
        /// The partition whose timer set holds this thred's timer.
        partition: u32,
        /// The expiry timer the thred needs now (replaces any pending one).
        timer: Option<Timer>,
        /// Whether it belongs in the unbound-listener index.
        listens_unbound: bool,
    },
    /// Delete a terminated thred (its timer and index entries go with it).
    Remove {
        /// The thred.
        id: String,
        /// The version the step read.
        expected: Option<u64>,
        /// The partition whose timer set held its timer.
        partition: u32,
    },
}

/// A bus record to append once the commit that produced it is durable (transactional outbox):
/// a step's messages go out if and only if its state change is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Topic.
    pub topic: String,
    /// Key.
    pub key: Option<String>,
    /// Payload.
    pub payload: Vec<u8>,
}

/// An outbox entry not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its sequence number (strictly increasing across commits and restarts).
    pub seq: u64,
    /// When its commit was applied (store clock, epoch ms).
    pub at: i64,
    /// The record.
    pub record: Outgoing,
}

/// Everything one processed batch changes, applied atomically.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    /// Thred writes.
    pub threds: Vec<ThredWrite>,
    /// Counter writes: pattern id, expected version, new value.
    pub counters: Vec<(String, u64, Counter)>,
    /// Records now applied: per (topic, partition), the highest offset applied.
    pub applied: Vec<(String, u32, u64)>,
    /// Bus records to append after the commit (kept until acknowledged).
    pub outbox: Vec<Outgoing>,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A thred or counter was not at the expected version: reload and retry the step.
    #[error("conflict: {0} changed since it was read")]
    Conflict(String),
    /// A newer lease of the resource exists: this holder must stop.
    #[error("fenced: lease token {token} of {resource} is older than {current}")]
    Fenced {
        /// The resource.
        resource: String,
        /// The token used.
        token: u64,
        /// The newest token granted.
        current: u64,
    },
    /// Stored data could not be decoded.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The adapter's backend failed.
    #[error("store backend: {0}")]
    Backend(String),
}

/// A connection of a participant, as the session registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Unique session id.
    pub id: String,
    /// The participant.
    pub participant: String,
    /// The session-service node holding the connection.
    pub node: String,
}

/// The pattern registry: the sources of the patterns the engines run, so that an engine told of a
/// reload runs exactly what the announcing engine loaded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registry {
    /// Raised by every registration (0 = nothing registered yet).
    pub version: u64,
    /// `(pattern id, pattern JSON)`, sorted by id.
    pub patterns: Vec<(String, String)>,
}

/// The thred store.
#[async_trait]
pub trait ThredStore: Send + Sync + 'static {
    /// The stored threds `ids` (in order; `None` where absent).
    async fn load(&self, ids: &[String]) -> Result<Vec<Option<Stored>>, Error>;

    /// Ids of every live thred.
    async fn thred_ids(&self) -> Result<Vec<String>, Error>;

    /// Ids of threds listening for unbound events, oldest first.
    async fn unbound_listeners(&self) -> Result<Vec<String>, Error>;

    /// The counters of `pattern_ids` (in order).
    async fn counters(&self, pattern_ids: &[String]) -> Result<Vec<StoredCounter>, Error>;

    /// The highest applied offset of a partition, if any record of it was applied.
    async fn applied(&self, topic: &str, partition: u32) -> Result<Option<u64>, Error>;

    /// Applies `commit` atomically, under `lease` when given (see the module guarantees); answers
    /// the sequence numbers given to its outbox entries, in order.
    async fn commit(&self, lease: Option<&Lease>, commit: Commit) -> Result<Vec<u64>, Error>;

    /// Unacknowledged outbox entries committed at or before `before` (store clock), oldest first,
    /// at most `limit` — for the relay that republishes what a crash left unpublished.
    async fn outbox(&self, before: i64, limit: usize) -> Result<Vec<Pending>, Error>;

    /// Acknowledges (deletes) outbox entries once their records are on the bus.
    async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), Error>;

    /// Timers of `partition` due at or before `now`, earliest first (at most `limit`).
    async fn due_timers(&self, partition: u32, now: i64, limit: usize)
        -> Result<Vec<Timer>, Error>;

    /// Grants or renews `resource` to `owner` for `ttl`; `None` while another owner holds it.
    async fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error>;

    /// Gives a lease up early (no effect if it lapsed or was taken over).
    async fn release(&self, lease: &Lease) -> Result<(), Error>;

    /// Records a session of a participant.
    async fn add_session(&self, session: Session) -> Result<(), Error>;

    /// Forgets a session.
    async fn remove_session(&self, session_id: &str) -> Result<(), Error>;

    /// The sessions of `participant`.
    async fn sessions_of(&self, participant: &str) -> Result<Vec<Session>, Error>;

    /// Every participant that ever had a session (for `$all`).
    async fn participants(&self) -> Result<Vec<String>, Error>;

    /// Replaces the registered patterns with `patterns` (`(id, JSON)`) in one step; answers the
    /// registry's new version.
    async fn register_patterns(&self, patterns: Vec<(String, String)>) -> Result<u64, Error>;

    /// The registered patterns.
    async fn registered_patterns(&self) -> Result<Registry, Error>;

    /// Round trips to the backend so far, when the adapter counts them (for metrics).
    fn round_trips(&self) -> Option<u64> {
        None
    }
}
