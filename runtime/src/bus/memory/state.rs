//! The bus's shared state: topics with their logs (or, when durable, just their end offsets) and
//! consumer groups with their members, assignments and committed offsets.

use super::assign::{self, Tp};
use crate::bus::{Error, Position, Record};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The largest partition count a topic may have here (a dev tool; keeps allocations bounded).
pub(super) const MAX_PARTITIONS: u32 = 4096;

/// Locks the state, recovering from a poisoned lock (the state stays consistent at every step).
pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stored record, compact: boxed slices carry no spare capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The key it was appended with.
    pub key: Option<Box<str>>,
    /// The payload.
    pub payload: Box<[u8]>,
    /// Headers.
    pub headers: Box<[(String, String)]>,
    /// Append time, epoch ms.
    pub timestamp: i64,
}

impl Entry {
    /// What the entry holds, in bytes: payload, key, headers and a fixed overhead.
    pub fn size(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum();
        let key = self.key.as_ref().map_or(0, |k| k.len());
        (self.payload.len() + key + headers + std::mem::size_of::<Entry>()) as u64
    }

    /// The record this entry is at `offset` of `topic`/`partition`.
    pub fn to_record(&self, topic: &str, partition: u32, offset: u64) -> Record {
        Record {
            position: Position {
                topic: topic.to_owned(),
                partition,
                offset,
            },
            key: self.key.as_deref().map(str::to_owned),
            payload: self.payload.to_vec(),
            headers: self.headers.to_vec(),
            timestamp: self.timestamp,
        }
    }

    /// Like [`Entry::to_record`], without copying (for entries read from disk).
    pub fn into_record(self, topic: &str, partition: u32, offset: u64) -> Record {
        Record {
            position: Position {
                topic: topic.to_owned(),
                partition,
                offset,
            },
            key: self.key.map(String::from),
            payload: self.payload.into_vec(),
            headers: self.headers.into_vec(),
            timestamp: self.timestamp,
        }
    }
}

/// One partition: its start and end offsets and, in memory mode, its records.
#[derive(Debug, Default)]
pub(super) struct PartitionLog {
    /// Offset of the oldest record kept (records below it were removed by retention).
    pub start: u64,
    /// Offset of the next record; records below it are visible to consumers.
    pub end: u64,
    /// The records from `start` (memory mode only; the durable mode reads them from disk).
    pub entries: VecDeque<Entry>,
    /// Bytes of the kept entries (memory mode), as [`Entry::size`] counts them.
    pub bytes: u64,
}

impl PartitionLog {
    /// Appends a record (memory mode), dropping the oldest beyond `retain` (records and bytes;
    /// the newest record is always kept); answers its offset.
    pub fn push(&mut self, entry: Entry, retain: Retention) -> u64 {
        let offset = self.end;
        self.bytes += entry.size();
        self.entries.push_back(entry);
        self.end += 1;
        while self.entries.len() > 1
            && (retain
                .records
                .is_some_and(|r| self.entries.len() as u64 > r)
                || retain.bytes.is_some_and(|b| self.bytes > b))
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes = self.bytes.saturating_sub(old.size());
            }
            self.start += 1;
        }
        offset
    }

    /// Bytes of the kept entries from offset `from` to the end (memory mode).
    pub fn bytes_from(&self, from: u64) -> u64 {
        let skip = usize::try_from(from.saturating_sub(self.start)).unwrap_or(usize::MAX);
        if skip <= self.entries.len() / 2 {
            let before: u64 = self.entries.iter().take(skip).map(Entry::size).sum();
            self.bytes.saturating_sub(before)
        } else {
            self.entries.iter().skip(skip).map(Entry::size).sum()
        }
    }

    /// The entries at `from..from + count`, if all of them are kept.
    pub fn slice(&self, from: u64, count: u64) -> Option<impl Iterator<Item = &Entry>> {
        let skip = usize::try_from(from.checked_sub(self.start)?).ok()?;
        let take = usize::try_from(count).ok()?;
        (skip.checked_add(take)? <= self.entries.len())
            .then(|| self.entries.iter().skip(skip).take(take))
    }
}

/// A topic: its partitions.
#[derive(Debug)]
pub(super) struct Topic {
    /// The partitions, indexed by partition number.
    pub partitions: Vec<PartitionLog>,
}

impl Topic {
    /// A topic with `count` empty partitions.
    pub fn new(count: u32) -> Self {
        Topic {
            partitions: (0..count).map(|_| PartitionLog::default()).collect(),
        }
    }

    /// The partition count.
    pub fn count(&self) -> u32 {
        u32::try_from(self.partitions.len()).unwrap_or(u32::MAX)
    }
}

/// What a consumer handle finds when it looks itself up in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// The handle is the group's current incarnation of its member.
    Active,
    /// Another handle joined with the same member name.
    Replaced,
    /// The member is gone (evicted after its session timed out).
    Absent,
}

/// One member of a group.
#[derive(Debug)]
pub(super) struct Member {
    /// Which handle this is (a rejoin under the same name gets a new one).
    pub incarnation: u64,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// What the assignor gives this member.
    pub target: BTreeSet<Tp>,
    /// What this member reads now (taken from `target` once no one else holds it).
    pub held: BTreeSet<Tp>,
    /// Wakes the member's poll.
    pub notify: Arc<Notify>,
    /// When the member last polled (or joined).
    pub last_seen: Instant,
    /// Whether a poll is in progress (a waiting member is alive).
    pub polling: bool,
}

impl Member {
    /// A fresh member that holds nothing yet.
    pub fn new(incarnation: u64, topics: Vec<String>, notify: Arc<Notify>) -> Self {
        Member {
            incarnation,
            topics,
            target: BTreeSet::new(),
            held: BTreeSet::new(),
            notify,
            last_seen: Instant::now(),
            polling: false,
        }
    }

    fn holds(&self, topic: &str, partition: u32) -> bool {
        self.held.iter().any(|(t, p)| t == topic && *p == partition)
    }
}

/// A consumer group.
#[derive(Debug, Default)]
pub(super) struct Group {
    /// Members by name.
    pub members: BTreeMap<String, Member>,
    /// Committed offsets (the next record to read).
    pub committed: HashMap<Tp, u64>,
}

impl Group {
    /// Where `name`'s handle `incarnation` stands.
    pub fn status(&self, name: &str, incarnation: u64) -> Status {
        match self.members.get(name) {
            Some(m) if m.incarnation == incarnation => Status::Active,
            Some(_) => Status::Replaced,
            None => Status::Absent,
        }
    }

    /// Adds (or replaces) a member and rebalances.
    pub fn join(&mut self, name: &str, member: Member, topics: &BTreeMap<String, Topic>) {
        self.members.insert(name.to_owned(), member);
        self.rebalance(topics);
    }

    /// Removes `name` if `incarnation` is still its handle, then rebalances. Returns whether it
    /// was removed.
    pub fn remove(
        &mut self,
        name: &str,
        incarnation: u64,
        topics: &BTreeMap<String, Topic>,
    ) -> bool {
        if self.status(name, incarnation) != Status::Active {
            return false;
        }
        self.members.remove(name);
        self.rebalance(topics);
        true
    }

    /// Evicts members that have not polled within `timeout`; rebalances if any was evicted.
    pub fn evict_expired(
        &mut self,
        now: Instant,
        timeout: Duration,
        topics: &BTreeMap<String, Topic>,
    ) {
        let before = self.members.len();
        self.members
            .retain(|_, m| m.polling || now.saturating_duration_since(m.last_seen) < timeout);
        if self.members.len() != before {
            self.rebalance(topics);
        }
    }

    /// When the next member other than `except` may expire, if any.
    pub fn next_expiry(&self, except: &str, timeout: Duration) -> Option<Instant> {
        self.members
            .iter()
            .filter(|(name, m)| name.as_str() != except && !m.polling)
            .filter_map(|(_, m)| m.last_seen.checked_add(timeout))
            .min()
    }

    /// Recomputes every member's target and wakes them all to observe it.
    fn rebalance(&mut self, topics: &BTreeMap<String, Topic>) {
        let targets = assign::range(
            self.members
                .iter()
                .map(|(n, m)| (n.as_str(), m.topics.as_slice())),
            |t| topics.get(t).map_or(0, Topic::count),
        );
        for (name, target) in targets {
            if let Some(member) = self.members.get_mut(&name) {
                member.target = target;
            }
        }
        self.wake_all();
    }

    /// Wakes every member's poll.
    pub fn wake_all(&self) {
        for member in self.members.values() {
            member.notify.notify_one();
        }
    }

    /// Brings `name`'s holdings towards its target: drops what it lost, then takes what it gained
    /// and no one else still holds. Returns (revoked, assigned).
    pub fn sync(&mut self, name: &str) -> (Vec<Tp>, Vec<Tp>) {
        let Some(member) = self.members.get(name) else {
            return (Vec::new(), Vec::new());
        };
        let revoked: Vec<Tp> = member.held.difference(&member.target).cloned().collect();
        let wanted: Vec<Tp> = member.target.difference(&member.held).cloned().collect();
        let free: Vec<Tp> = wanted
            .into_iter()
            .filter(|tp| {
                !self
                    .members
                    .iter()
                    .any(|(n, m)| n != name && m.held.contains(tp))
            })
            .collect();
        if let Some(member) = self.members.get_mut(name) {
            for tp in &revoked {
                member.held.remove(tp);
            }
            member.held.extend(free.iter().cloned());
        }
        if !revoked.is_empty() {
            // Someone may be waiting for what was just released.
            self.wake_all();
        }
        (revoked, free)
    }

    /// Wakes the members that read `topic`/`partition` now.
    fn wake_holders(&self, topic: &str, partition: u32) {
        for member in self.members.values().filter(|m| m.holds(topic, partition)) {
            member.notify.notify_one();
        }
    }
}

/// How much of each partition the bus keeps: at most `records` records and (in memory) `bytes`
/// bytes, whichever is reached first (`None`: no bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Records kept per partition.
    pub records: Option<u64>,
    /// Bytes kept per partition (memory mode; the durable mode bounds records only).
    pub bytes: Option<u64>,
}

/// Everything the bus shares between appenders, consumers and (when durable) the writer.
#[derive(Debug)]
pub(super) struct State {
    /// Topics by name.
    pub topics: BTreeMap<String, Topic>,
    /// Groups by name.
    pub groups: HashMap<String, Group>,
    /// How long a member may go without polling before it is evicted.
    pub session_timeout: Duration,
    /// How much each partition keeps.
    pub retain: Retention,
    /// The readers outside groups ([`super::tail`]) of each partition, woken by appends.
    pub tails: HashMap<Tp, Vec<std::sync::Weak<Notify>>>,
    next_incarnation: u64,
}

impl State {
    /// An empty bus state.
    pub fn new() -> Self {
        State {
            topics: BTreeMap::new(),
            groups: HashMap::new(),
            session_timeout: Duration::from_secs(10),
            retain: Retention::default(),
            tails: HashMap::new(),
            next_incarnation: 0,
        }
    }

    /// A new, never used, member incarnation.
    pub fn incarnation(&mut self) -> u64 {
        self.next_incarnation += 1;
        self.next_incarnation
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Result<&Topic, Error> {
        self.topics
            .get(name)
            .ok_or_else(|| Error::UnknownTopic(name.to_owned()))
    }

    /// Checks that `topic` has partition `partition`.
    pub fn check(&self, topic: &str, partition: u32) -> Result<(), Error> {
        if partition < self.topic(topic)?.count() {
            Ok(())
        } else {
            Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            })
        }
    }

    /// Wakes the members of every group that read `topic`/`partition` now.
    pub fn wake_readers(&mut self, topic: &str, partition: u32) {
        for group in self.groups.values() {
            group.wake_holders(topic, partition);
        }
        let tp = (topic.to_owned(), partition);
        if let Some(tails) = self.tails.get_mut(&tp) {
            tails.retain(|tail| match tail.upgrade() {
                Some(notify) => {
                    notify.notify_one();
                    true
                }
                None => false,
            });
            if tails.is_empty() {
                self.tails.remove(&tp);
            }
        }
    }
}
