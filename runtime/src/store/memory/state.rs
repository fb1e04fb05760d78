//! The embedded store's in-memory image: every thred, counter, watermark, lease, session and
//! unacknowledged outbox entry, with the timer sets and the unbound-listener index derived from the
//! thred entries.
//!
//! Reads are served from here. Writes are first validated into a [`Plan`] (which changes nothing),
//! then made durable, then applied here with [`State::apply`], which cannot fail.

use super::lease::LeaseRecord;
use super::sessions::Sessions;
use crate::store::{Pending, Stored, StoredCounter};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use threds_patterns::machine::Counter;
use threds_patterns::thred::{ThredState, Timer};

/// One live thred with everything stored alongside it (this is also its durable record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// The state.
    pub state: ThredState,
    /// Its version (1 for a new thred).
    pub version: u64,
    /// The fencing token of the lease of its last write (0 without a lease).
    pub token: u64,
    /// The partition whose timer set holds its timer.
    pub partition: u32,
    /// Its pending expiry timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<Timer>,
    /// Its position in the unbound-listener index, while it listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unbound_seq: Option<u64>,
}

/// The validated effect of a commit: the final record of every key it touches.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Thred entries by id; `None` deletes the thred.
    pub threds: BTreeMap<String, Option<Entry>>,
    /// Counter records by pattern id.
    pub counters: BTreeMap<String, CounterRecord>,
    /// Raised watermarks by (topic, partition).
    pub applied: BTreeMap<(String, u32), u64>,
    /// The unbound sequence number after this commit's new listeners.
    pub next_unbound_seq: u64,
    /// The commit's outbox entries, numbered, in order.
    pub outbox: Vec<Pending>,
}

impl Entry {
    /// The port's view of this entry.
    fn stored(&self) -> Stored {
        Stored {
            state: self.state.clone(),
            version: self.version,
            token: self.token,
        }
    }
}

/// A pattern counter with its version (also its durable record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) struct CounterRecord {
    /// The counter.
    pub counter: Counter,
    /// Its version (0 = never written).
    pub version: u64,
}

/// The whole store, in memory.
#[derive(Debug, Default)]
pub(super) struct State {
    /// Live threds by id (ordered: admins page through them by id).
    threds: BTreeMap<String, Entry>,
    /// Live threds by participant (those in their `participantIds`).
    by_participant: HashMap<String, BTreeSet<String>>,
    /// Per partition, the pending timers as (due, thred id); the timer itself is in the entry.
    timers: HashMap<u32, BTreeSet<(i64, String)>>,
    /// Unbound listeners by the sequence number they got when they started listening.
    unbound: BTreeMap<u64, String>,
    /// The sequence number the next new listener gets.
    next_unbound_seq: u64,
    /// Counters by pattern id.
    counters: HashMap<String, CounterRecord>,
    /// Applied watermarks by (topic, partition).
    applied: HashMap<(String, u32), u64>,
    /// Leases by resource.
    pub leases: HashMap<String, LeaseRecord>,
    /// The session directory.
    pub sessions: Sessions,
    /// Unacknowledged outbox entries by sequence number.
    outbox: BTreeMap<u64, Pending>,
    /// The highest outbox sequence number ever given (0 = none); never decreases.
    last_outbox_seq: u64,
}

impl State {
    /// The entry of thred `id`.
    pub fn thred(&self, id: &str) -> Option<&Entry> {
        self.threds.get(id)
    }

    /// The stored threds `ids`, in order.
    pub fn load(&self, ids: &[String]) -> Vec<Option<Stored>> {
        ids.iter()
            .map(|id| self.threds.get(id).map(Entry::stored))
            .collect()
    }

    /// Every live thred id, sorted.
    pub fn thred_ids(&self) -> Vec<String> {
        self.threds.keys().cloned().collect()
    }

    /// At most `limit` live thred ids after `after`, sorted.
    pub fn thred_page(&self, after: Option<&str>, limit: usize) -> Vec<String> {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_string()));
        self.threds
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The live threds `participant` takes part in, sorted.
    pub fn threds_of(&self, participant: &str) -> Vec<String> {
        self.by_participant
            .get(participant)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Unbound listeners, oldest first.
    pub fn unbound_listeners(&self) -> Vec<String> {
        self.unbound.values().cloned().collect()
    }

    /// The sequence number the next new unbound listener gets.
    pub fn next_unbound_seq(&self) -> u64 {
        self.next_unbound_seq
    }

    /// The counter record of `pattern_id` (version 0 if never written).
    pub fn counter(&self, pattern_id: &str) -> CounterRecord {
        self.counters.get(pattern_id).copied().unwrap_or_default()
    }

    /// The counters of `pattern_ids`, in order.
    pub fn counters(&self, pattern_ids: &[String]) -> Vec<StoredCounter> {
        pattern_ids
            .iter()
            .map(|id| {
                let record = self.counter(id);
                StoredCounter {
                    counter: record.counter,
                    version: record.version,
                }
            })
            .collect()
    }

    /// The applied watermark of a partition.
    pub fn applied(&self, topic: &str, partition: u32) -> Option<u64> {
        // Keyed by an owned tuple, so look up with one; watermark reads are rare.
        self.applied.get(&(topic.to_string(), partition)).copied()
    }

    /// Timers of `partition` due at or before `now`, by (due, thred id), at most `limit`.
    pub fn due_timers(&self, partition: u32, now: i64, limit: usize) -> Vec<Timer> {
        let Some(set) = self.timers.get(&partition) else {
            return Vec::new();
        };
        set.iter()
            .take_while(|(due, _)| *due <= now)
            .filter_map(|(_, id)| self.threds.get(id).and_then(|e| e.timer.clone()))
            .take(limit)
            .collect()
    }

    /// How many timers of `partition` are set.
    pub fn pending_timers(&self, partition: u32) -> u64 {
        self.timers
            .get(&partition)
            .map_or(0, |set| u64::try_from(set.len()).unwrap_or(u64::MAX))
    }

    /// The highest outbox sequence number ever given (0 = none).
    pub fn last_outbox_seq(&self) -> u64 {
        self.last_outbox_seq
    }

    /// Unacknowledged outbox entries committed at or before `before`, by seq, at most `limit`.
    pub fn outbox(&self, before: i64, limit: usize) -> Vec<Pending> {
        self.outbox
            .values()
            .filter(|p| p.at <= before)
            .take(limit)
            .cloned()
            .collect()
    }

    /// Which of `seqs` are unacknowledged outbox entries (sorted, without duplicates).
    pub fn known_outbox(&self, seqs: &[u64]) -> Vec<u64> {
        let known: BTreeSet<u64> = seqs
            .iter()
            .copied()
            .filter(|seq| self.outbox.contains_key(seq))
            .collect();
        known.into_iter().collect()
    }

    /// Deletes outbox entries (acknowledged).
    pub fn ack_outbox(&mut self, seqs: &[u64]) {
        for seq in seqs {
            self.outbox.remove(seq);
        }
    }

    /// Adds an outbox entry (loading or applying), keeping the sequence counter past it.
    pub fn insert_outbox(&mut self, pending: Pending) {
        self.note_outbox_seq(pending.seq);
        self.outbox.insert(pending.seq, pending);
    }

    /// Records that outbox sequence numbers up to `seq` were given (loading or applying).
    pub fn note_outbox_seq(&mut self, seq: u64) {
        self.last_outbox_seq = self.last_outbox_seq.max(seq);
    }

    /// Applies a validated plan (infallible: everything was checked when it was made).
    pub fn apply(&mut self, plan: Plan) {
        for (id, entry) in plan.threds {
            self.remove_thred(&id);
            if let Some(entry) = entry {
                self.insert_thred(id, entry);
            }
        }
        self.next_unbound_seq = self.next_unbound_seq.max(plan.next_unbound_seq);
        self.counters.extend(plan.counters);
        self.applied.extend(plan.applied);
        for pending in plan.outbox {
            self.insert_outbox(pending);
        }
    }

    /// Adds a thred entry (loading or applying), indexing its timer and unbound position.
    pub fn insert_thred(&mut self, id: String, entry: Entry) {
        if let Some(timer) = &entry.timer {
            self.timers
                .entry(entry.partition)
                .or_default()
                .insert((timer.due, id.clone()));
        }
        if let Some(seq) = entry.unbound_seq {
            self.unbound.insert(seq, id.clone());
            self.next_unbound_seq = self.next_unbound_seq.max(seq.saturating_add(1));
        }
        for p in &entry.state.thred_context.participant_ids {
            self.by_participant
                .entry(p.clone())
                .or_default()
                .insert(id.clone());
        }
        self.threds.insert(id, entry);
    }

    /// Drops a thred with its timer and index entry.
    fn remove_thred(&mut self, id: &str) {
        let Some(old) = self.threds.remove(id) else {
            return;
        };
        if let Some(timer) = &old.timer {
            if let Some(set) = self.timers.get_mut(&old.partition) {
                set.remove(&(timer.due, id.to_string()));
                if set.is_empty() {
                    self.timers.remove(&old.partition);
                }
            }
        }
        if let Some(seq) = old.unbound_seq {
            self.unbound.remove(&seq);
        }
        for p in &old.state.thred_context.participant_ids {
            if let Some(ids) = self.by_participant.get_mut(p) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_participant.remove(p);
                }
            }
        }
    }

    /// Sets a counter (loading).
    pub fn insert_counter(&mut self, pattern_id: String, record: CounterRecord) {
        self.counters.insert(pattern_id, record);
    }

    /// Sets a watermark (loading).
    pub fn insert_applied(&mut self, topic: String, partition: u32, offset: u64) {
        self.applied.insert((topic, partition), offset);
    }
}
