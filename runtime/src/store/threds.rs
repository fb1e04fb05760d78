//! The thred state port: thred states, pattern counters, applied-offset watermarks, per-partition
//! expiry timers, the unbound-listener index and the transactional outbox — one port because one
//! atomic [`Commit`] writes them all.
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::threds` and,
//! for commits under a lease, `threds_testkit::contract::store::fencing`):
//! - a [`Commit`] is all-or-nothing: thred states, counters, timers, index entries, applied
//!   offsets and outbox entries change together or not at all;
//! - a commit is refused ([`Error::Conflict`]) when any thred or counter it expects at a version is
//!   at another version — two engines can never both advance the same thred from the same state;
//! - a commit under a [`Lease`] is refused ([`Error::Fenced`]) when a newer lease of that resource
//!   was granted since by the same adapter's [`Leases`](super::Leases) port (or the lease expired
//!   or was released); every stored thred records the fencing token of the lease it was written
//!   under;
//! - outbox entries are written by the same atomic commit as the state they belong to, keep their
//!   order, and survive until acknowledged;
//! - the participant index ([`Threds::threds_of`]) and the ordered id list
//!   ([`Threds::thred_page`]) change with the thred writes of the same commit.

use super::{Error, Lease};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
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
    /// The partition, when the record is addressed to one (a session node's delivery slot);
    /// `None`: the key's partition.
    pub partition: Option<u32>,
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

impl ThredWrite {
    /// The thred written.
    pub fn id(&self) -> &str {
        match self {
            ThredWrite::Save { state, .. } => &state.id,
            ThredWrite::Remove { id, .. } => id,
        }
    }

    /// The version the write expects.
    fn expected(&self) -> Option<u64> {
        match self {
            ThredWrite::Save { expected, .. } | ThredWrite::Remove { expected, .. } => *expected,
        }
    }

    /// The version the write expects, to change.
    fn expected_mut(&mut self) -> &mut Option<u64> {
        match self {
            ThredWrite::Save { expected, .. } | ThredWrite::Remove { expected, .. } => expected,
        }
    }
}

impl Commit {
    /// Keeps one write per thred and one per counter: the last, expecting the version the first
    /// expected — what applying them in order leaves, at the cost of one write (a batch's steps
    /// of one thred write it once). A thred the commit also removes keeps every write: a removal
    /// drops index entries that a later save of the same id must not inherit.
    pub fn coalesce(&mut self) {
        let removed: HashSet<String> = self
            .threds
            .iter()
            .filter(|w| matches!(w, ThredWrite::Remove { .. }))
            .map(|w| w.id().to_owned())
            .collect();
        keep_last(
            &mut self.threds,
            |w| (!removed.contains(w.id())).then(|| w.id()),
            |w| w.expected(),
            |w, v| *w.expected_mut() = v,
        );
        keep_last(
            &mut self.counters,
            |(id, _, _)| Some(id.as_str()),
            |(_, expected, _)| *expected,
            |(_, expected, _), v| *expected = v,
        );
    }
}

/// Of the entries sharing a key (`None`: left as they are), keeps the last, expecting the version
/// the first of them expected.
fn keep_last<T, V: Copy>(
    entries: &mut Vec<T>,
    key: impl Fn(&T) -> Option<&str>,
    expected: impl Fn(&T) -> V,
    set_expected: impl Fn(&mut T, V),
) {
    // Per key: the first entry's expected version and the last entry's index.
    let mut groups: HashMap<&str, (V, usize)> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let Some(k) = key(e) {
            groups
                .entry(k)
                .and_modify(|g| g.1 = i)
                .or_insert((expected(e), i));
        }
    }
    // Per entry: `None` to leave it, else the version to expect and whether it is kept.
    let plan: Vec<Option<(V, bool)>> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (v, last) = *groups.get(key(e)?)?;
            Some((v, last == i))
        })
        .collect();
    let mut plan = plan.into_iter();
    entries.retain_mut(|e| match plan.next().flatten() {
        Some((v, true)) => {
            set_expected(e, v);
            true
        }
        Some((_, false)) => false,
        None => true,
    });
}

/// The thred state of a deployment, with its timers and outbox.
#[async_trait]
pub trait Threds: Send + Sync + 'static {
    /// The stored threds `ids` (in order; `None` where absent).
    async fn load(&self, ids: &[String]) -> Result<Vec<Option<Stored>>, Error>;

    /// Ids of every live thred, sorted by bytes.
    async fn thred_ids(&self) -> Result<Vec<String>, Error>;

    /// At most `limit` ids of live threds, sorted by bytes, after `after` (from the first when
    /// `None`): a page of the live threds that costs the page, not the whole set.
    async fn thred_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, Error>;

    /// Ids of the live threds `participant` takes part in (its `participantIds`), sorted by bytes:
    /// a read that costs that participant's threds, not every thred.
    async fn threds_of(&self, participant: &str) -> Result<Vec<String>, Error>;

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

    /// How many timers of `partition` are set, due or not (for metrics).
    async fn pending_timers(&self, partition: u32) -> Result<u64, Error>;

    /// Round trips to the backend so far, when the adapter counts them (for metrics).
    fn round_trips(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(id: &str, step: i64, expected: Option<u64>) -> ThredWrite {
        ThredWrite::Save {
            state: ThredState::bare(id, "p", step),
            expected,
            partition: 0,
            timer: None,
            listens_unbound: false,
        }
    }

    fn counter(n: u64) -> Counter {
        Counter {
            instances: n,
            last_start: None,
        }
    }

    #[test]
    fn coalescing_keeps_the_last_write_of_each_thred_and_counter_expecting_the_first_version() {
        let mut commit = Commit {
            threds: vec![
                save("a", 1, None),
                save("b", 1, Some(4)),
                save("a", 2, Some(1)),
                save("a", 3, Some(2)),
            ],
            counters: vec![
                ("p".into(), 7, counter(1)),
                ("q".into(), 0, counter(5)),
                ("p".into(), 8, counter(2)),
            ],
            ..Commit::default()
        };
        commit.coalesce();
        assert_eq!(
            commit.threds,
            vec![save("b", 1, Some(4)), save("a", 3, None)]
        );
        assert_eq!(
            commit.counters,
            vec![("q".into(), 0, counter(5)), ("p".into(), 7, counter(2))]
        );
    }

    #[test]
    fn a_thred_the_commit_removes_keeps_every_write() {
        let remove = ThredWrite::Remove {
            id: "a".into(),
            expected: Some(2),
            partition: 0,
        };
        let writes = vec![
            save("a", 1, Some(1)),
            remove,
            save("a", 3, None),
            save("b", 1, None),
        ];
        let mut commit = Commit {
            threds: writes.clone(),
            ..Commit::default()
        };
        commit.coalesce();
        assert_eq!(commit.threds, writes);
    }
}
