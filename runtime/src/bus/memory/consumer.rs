//! A member of a consumer group on the embedded bus: polls its partitions, reports assignment
//! changes before records, commits offsets, and leaves the group when left or dropped.

use super::assign::Tp;
use super::state::{lock, Member, Status};
use super::Shared;
use crate::bus::{Consumer, Error, Polled, Position, Record};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A poll timeout too large to add to "now" waits this long instead.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A group member on a [`super::MemoryBus`].
#[derive(Debug)]
pub(super) struct MemoryConsumer {
    id: Identity,
    progress: Progress,
}

/// Who the member is (fixed for the handle's life).
#[derive(Debug)]
struct Identity {
    shared: Arc<Shared>,
    group: String,
    member: String,
    topics: Vec<String>,
    incarnation: u64,
    notify: Arc<Notify>,
}

/// Where the member is: the partitions it holds with its next offset in each.
#[derive(Debug, Default)]
struct Progress {
    positions: BTreeMap<Tp, u64>,
    /// Rotates the partition read first, so that no partition starves the others.
    cursor: usize,
    /// Whether the loss of membership to a newer handle was already reported.
    fenced: bool,
}

/// A read to perform: `count` records of a partition from offset `from`.
struct Read {
    tp: Tp,
    from: u64,
    count: u64,
}

/// What one look at the state gave.
enum Step {
    /// Something to return.
    Ready(Polled),
    /// Records to read from disk, outside the lock.
    Fetch(Vec<Read>),
    /// Nothing yet; look again when notified or at the given instant (a member may expire).
    Idle(Option<Instant>),
}

impl MemoryConsumer {
    /// Joins `group` as `member` on `topics` (which must exist) and returns the handle; with
    /// `from_end`, partitions the group has committed nothing on start at their end.
    pub(super) fn join(
        shared: Arc<Shared>,
        group: &str,
        topics: &[&str],
        member: &str,
        from_end: bool,
    ) -> Result<Self, Error> {
        let notify = Arc::new(Notify::new());
        let topics: Vec<String> = topics
            .iter()
            .map(|t| (*t).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let incarnation = {
            let mut guard = lock(&shared.state);
            for topic in &topics {
                guard.topic(topic)?;
            }
            let incarnation = guard.incarnation();
            let state = &mut *guard;
            let entry = state.groups.entry(group.to_owned()).or_default();
            if from_end {
                // Partitions without a commit start where they end now: what is appended from
                // here on is read, whenever the partition gets assigned.
                for topic in &topics {
                    let Some(t) = state.topics.get(topic) else {
                        continue;
                    };
                    for (p, log) in t.partitions.iter().enumerate() {
                        let tp = (topic.clone(), u32::try_from(p).unwrap_or(u32::MAX));
                        entry.committed.entry(tp).or_insert(log.end);
                    }
                }
            }
            entry.evict_expired(Instant::now(), state.session_timeout, &state.topics);
            let fresh = Member::new(incarnation, topics.clone(), notify.clone());
            entry.join(member, fresh, &state.topics);
            incarnation
        };
        Ok(MemoryConsumer {
            id: Identity {
                shared,
                group: group.to_owned(),
                member: member.to_owned(),
                topics,
                incarnation,
                notify,
            },
            progress: Progress::default(),
        })
    }
}

impl Identity {
    /// Marks a poll as started or finished (both count as signs of life).
    fn mark(&self, polling: bool) {
        let mut state = lock(&self.shared.state);
        if let Some(member) = state
            .groups
            .get_mut(&self.group)
            .and_then(|g| g.members.get_mut(&self.member))
            .filter(|m| m.incarnation == self.incarnation)
        {
            member.polling = polling;
            member.last_seen = Instant::now();
        }
    }

    /// Leaves the group if this handle is still the member's current one.
    fn leave(&self) {
        let mut guard = lock(&self.shared.state);
        let state = &mut *guard;
        if let Some(group) = state.groups.get_mut(&self.group) {
            group.remove(&self.member, self.incarnation, &state.topics);
        }
    }

    /// One look at the state: membership, assignment changes, then records.
    fn step(&self, progress: &mut Progress, max: usize) -> Result<Step, Error> {
        let mut guard = lock(&self.shared.state);
        let state = &mut *guard;
        let timeout = state.session_timeout;
        let group = state.groups.entry(self.group.clone()).or_default();
        group.evict_expired(Instant::now(), timeout, &state.topics);
        match group.status(&self.member, self.incarnation) {
            Status::Active => {}
            Status::Replaced if progress.fenced => return Ok(Step::Idle(None)),
            Status::Replaced => {
                progress.fenced = true;
                return Ok(Step::Ready(Polled {
                    revoked: progress.release_all(),
                    ..Polled::default()
                }));
            }
            Status::Absent => {
                // Evicted while away: rejoin; what it held is gone already.
                let mut member =
                    Member::new(self.incarnation, self.topics.clone(), self.notify.clone());
                member.polling = true;
                group.join(&self.member, member, &state.topics);
                let revoked = progress.release_all();
                if !revoked.is_empty() {
                    return Ok(Step::Ready(Polled {
                        revoked,
                        ..Polled::default()
                    }));
                }
            }
        }
        let (revoked, assigned) = group.sync(&self.member);
        for tp in &revoked {
            progress.positions.remove(tp);
            crate::metrics::metrics().forget_lag(&tp.0, tp.1);
        }
        for tp in &assigned {
            let start = group.committed.get(tp).copied().unwrap_or(0);
            progress.positions.insert(tp.clone(), start);
        }
        if !revoked.is_empty() || !assigned.is_empty() {
            return Ok(Step::Ready(Polled {
                revoked,
                assigned,
                records: Vec::new(),
            }));
        }
        let log_of = |(topic, partition): &Tp| {
            state
                .topics
                .get(topic)
                .and_then(|t| t.partitions.get(*partition as usize))
        };
        progress.skip_removed(|tp| log_of(tp).map_or(0, |log| log.start), &self.group);
        let metrics = crate::metrics::metrics();
        for (tp, position) in &progress.positions {
            let end = log_of(tp).map_or(0, |log| log.end);
            metrics.lag(
                &tp.0,
                tp.1,
                i64::try_from(end.saturating_sub(*position)).unwrap_or(i64::MAX),
            );
        }
        let plan = progress.plan(|tp| log_of(tp).map_or(0, |log| log.end), max);
        if plan.is_empty() {
            return Ok(Step::Idle(group.next_expiry(&self.member, timeout)));
        }
        if self.shared.durable.is_some() {
            return Ok(Step::Fetch(plan));
        }
        let mut records = Vec::new();
        for read in plan {
            let (topic, partition) = &read.tp;
            let log = state
                .topics
                .get(topic)
                .and_then(|t| t.partitions.get(*partition as usize));
            let entries = log.and_then(|log| log.slice(read.from, read.count));
            let Some(entries) = entries else {
                return Err(missing(&read));
            };
            records.extend(
                (read.from..)
                    .zip(entries)
                    .map(|(offset, e)| e.to_record(topic, *partition, offset)),
            );
        }
        progress.advance(&records);
        Ok(Step::Ready(Polled {
            records,
            ..Polled::default()
        }))
    }

    /// Reads a plan from the durable log (no lock held).
    fn fetch(&self, progress: &mut Progress, plan: Vec<Read>) -> Result<Polled, Error> {
        let Some(durable) = &self.shared.durable else {
            return Ok(Polled::default());
        };
        let mut records = Vec::new();
        for read in plan {
            let got = durable.read(&read.tp.0, read.tp.1, read.from, read.count)?;
            if got.first().map(|r| r.position.offset) != Some(read.from) {
                return Err(missing(&read));
            }
            records.extend(got);
        }
        progress.advance(&records);
        Ok(Polled {
            records,
            ..Polled::default()
        })
    }
}

fn missing(read: &Read) -> Error {
    Error::Backend(format!(
        "records of {}/{} from offset {} are missing",
        read.tp.0, read.tp.1, read.from
    ))
}

impl Progress {
    /// Forgets every held partition, returning them.
    fn release_all(&mut self) -> Vec<Tp> {
        std::mem::take(&mut self.positions).into_keys().collect()
    }

    /// Moves positions that fell behind the oldest kept record (retention removed what they
    /// pointed at) up to it, warning: those records are lost to this group.
    fn skip_removed(&mut self, start: impl Fn(&Tp) -> u64, group: &str) {
        for (tp, position) in &mut self.positions {
            let start = start(tp);
            if *position < start {
                tracing::warn!(
                    group,
                    topic = %tp.0,
                    partition = tp.1,
                    from = *position,
                    to = start,
                    "bus retention removed records this group had not read; skipping ahead"
                );
                *position = start;
            }
        }
    }

    /// Plans reading up to `max` records from the held partitions, given each one's end offset.
    fn plan(&mut self, end: impl Fn(&Tp) -> u64, max: usize) -> Vec<Read> {
        let held = self.positions.len();
        if held == 0 {
            return Vec::new();
        }
        let first = self.cursor % held;
        self.cursor = self.cursor.wrapping_add(1);
        let mut remaining = u64::try_from(max).unwrap_or(u64::MAX);
        let mut plan = Vec::new();
        for (tp, &from) in self.positions.iter().cycle().skip(first).take(held) {
            if remaining == 0 {
                break;
            }
            let end = end(tp);
            if from < end {
                let count = (end - from).min(remaining);
                remaining -= count;
                plan.push(Read {
                    tp: tp.clone(),
                    from,
                    count,
                });
            }
        }
        plan
    }

    /// Moves positions past delivered records.
    fn advance(&mut self, records: &[Record]) {
        for record in records {
            let Position {
                topic,
                partition,
                offset,
            } = &record.position;
            if let Some(position) = self.positions.get_mut(&(topic.clone(), *partition)) {
                *position = offset.saturating_add(1);
            }
        }
    }
}

/// Marks the member as polling for as long as it lives (a waiting member is alive).
struct Polling<'a>(&'a Identity);

impl<'a> Polling<'a> {
    fn start(id: &'a Identity) -> Self {
        id.mark(true);
        Polling(id)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.mark(false);
    }
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, Error> {
        let max = max.max(1);
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .or_else(|| now.checked_add(FAR))
            .unwrap_or(now);
        let _polling = Polling::start(&self.id);
        loop {
            let wake = match self.id.step(&mut self.progress, max)? {
                Step::Ready(polled) => return Ok(polled),
                Step::Fetch(plan) => return self.id.fetch(&mut self.progress, plan),
                Step::Idle(wake) => wake,
            };
            if Instant::now() >= deadline {
                return Ok(Polled::default());
            }
            let until = wake.map_or(deadline, |w| w.min(deadline));
            tokio::select! {
                () = self.id.notify.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn commit(&mut self, offsets: &[Position]) -> Result<(), Error> {
        if offsets.is_empty() {
            return Ok(());
        }
        let list = {
            let mut guard = lock(&self.id.shared.state);
            let state = &mut *guard;
            for position in offsets {
                state.check(&position.topic, position.partition)?;
            }
            let owned = state
                .groups
                .get(&self.id.group)
                .and_then(|g| g.members.get(&self.id.member))
                .filter(|m| m.incarnation == self.id.incarnation)
                .map(|m| &m.held);
            for position in offsets {
                let tp = (position.topic.clone(), position.partition);
                if !owned.is_some_and(|held| held.contains(&tp)) {
                    return Err(Error::NotAssigned {
                        topic: tp.0,
                        partition: tp.1,
                    });
                }
            }
            let list: Vec<(String, u32, u64)> = offsets
                .iter()
                .map(|p| (p.topic.clone(), p.partition, p.offset))
                .collect();
            if self.id.shared.durable.is_none() {
                let group = state.groups.entry(self.id.group.clone()).or_default();
                for (topic, partition, offset) in list {
                    group.committed.insert((topic, partition), offset);
                }
                return Ok(());
            }
            list
        };
        match &self.id.shared.durable {
            Some(durable) => durable.commit(&self.id.group, list).await,
            None => Ok(()),
        }
    }

    async fn committed(&self, topic: &str, partition: u32) -> Result<Option<u64>, Error> {
        let state = lock(&self.id.shared.state);
        state.check(topic, partition)?;
        Ok(state
            .groups
            .get(&self.id.group)
            .and_then(|g| g.committed.get(&(topic.to_owned(), partition)).copied()))
    }

    fn assignment(&self) -> Vec<(String, u32)> {
        self.progress.positions.keys().cloned().collect()
    }

    async fn leave(self: Box<Self>) -> Result<(), Error> {
        self.id.leave();
        Ok(())
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        // Dropping a member without leaving still leaves: its partitions move on at once.
        self.id.leave();
    }
}
