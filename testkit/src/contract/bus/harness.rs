//! Tools for the bus contract cases: failures, unique names, and a crew of group members that
//! polls them, tracks what each holds, and checks the port's invariants on every poll.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use threds_runtime::bus::{Bus, Consumer, Error, Polled, Position, Record};
use tokio::time::Instant;

/// A topic-partition.
pub(super) type Tp = (String, u32);

/// How long one poll of a settling crew waits.
pub(super) const TICK: Duration = Duration::from_millis(20);

/// How long a condition may take to come true before the case fails (generous: a networked
/// adapter rebalances in seconds; the embedded one in milliseconds).
pub(super) const PATIENCE: Duration = Duration::from_secs(30);

/// Why a case failed.
#[derive(Debug)]
pub(super) struct Failure(pub(super) String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(format!("unexpected bus error: {e}"))
    }
}

/// What a case returns.
pub(super) type Outcome = Result<(), Failure>;

/// Fails the case with a message unless the condition holds.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::contract::bus::harness::Failure(format!($($msg)+)));
        }
    };
}
pub(super) use check;

/// A name no other case (nor another run against a shared backend) uses.
pub(super) fn unique(prefix: &str) -> String {
    static RUN: OnceLock<u128> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let run = RUN.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("contract-{prefix}-{}-{run}-{n}", std::process::id())
}

/// Appends a record with a text payload and one header naming it.
pub(super) async fn put(
    bus: &dyn Bus,
    topic: &str,
    partition: Option<u32>,
    key: Option<&str>,
    payload: &str,
) -> Result<Position, Failure> {
    let headers = vec![("contract".to_owned(), payload.to_owned())];
    Ok(bus
        .append(topic, partition, key, payload.as_bytes().to_vec(), headers)
        .await?)
}

/// Every partition of `topic`.
pub(super) fn all(topic: &str, partitions: u32) -> BTreeSet<Tp> {
    (0..partitions).map(|p| (topic.to_owned(), p)).collect()
}

/// The topic-partition of a record.
pub(super) fn tp_of(record: &Record) -> Tp {
    (record.position.topic.clone(), record.position.partition)
}

/// One member of a crew, with what the crew saw it get.
pub(super) struct Seat {
    /// The member name.
    pub name: String,
    /// The consumer.
    pub consumer: Box<dyn Consumer>,
    /// Partitions it holds, as its polls reported them.
    pub owned: BTreeSet<Tp>,
    /// Every record it received, in order.
    pub received: Vec<Record>,
    /// Per held partition, the first offset received since it was assigned, and the last.
    spans: BTreeMap<Tp, (u64, u64)>,
}

impl Seat {
    /// Offsets received from `tp`, in order.
    pub fn offsets_of(&self, tp: &Tp) -> Vec<u64> {
        self.received
            .iter()
            .filter(|r| &tp_of(r) == tp)
            .map(|r| r.position.offset)
            .collect()
    }

    /// The first offset received from `tp` since it was last assigned.
    pub fn first_since_assigned(&self, tp: &Tp) -> Option<u64> {
        self.spans.get(tp).map(|s| s.0)
    }
}

/// Members of one group, polled together so that rebalances can complete.
pub(super) struct Crew {
    bus: std::sync::Arc<dyn Bus>,
    group: String,
    topics: Vec<String>,
    /// The members.
    pub seats: Vec<Seat>,
}

impl Crew {
    /// An empty crew for `group` on `topics`.
    pub fn new(bus: std::sync::Arc<dyn Bus>, group: &str, topics: &[&str]) -> Self {
        Crew {
            bus,
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            seats: Vec::new(),
        }
    }

    /// Joins a member; returns its seat index.
    pub async fn join(&mut self, name: &str) -> Result<usize, Failure> {
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        let consumer = self.bus.join(&self.group, &topics, name).await?;
        self.seats.push(Seat {
            name: name.to_owned(),
            consumer,
            owned: BTreeSet::new(),
            received: Vec::new(),
            spans: BTreeMap::new(),
        });
        Ok(self.seats.len() - 1)
    }

    /// Takes a member out of the crew (to leave, drop or keep it aside).
    pub fn take(&mut self, seat: usize) -> Result<Seat, Failure> {
        check!(seat < self.seats.len(), "no seat {seat}");
        Ok(self.seats.remove(seat))
    }

    /// Polls one member once and checks what it got against what the crew knows.
    pub async fn poll(&mut self, seat: usize, timeout: Duration) -> Result<Polled, Failure> {
        check!(seat < self.seats.len(), "no seat {seat}");
        let polled = self.seats[seat].consumer.poll(100, timeout).await?;
        let others: BTreeSet<Tp> = (0..self.seats.len())
            .filter(|&i| i != seat)
            .flat_map(|i| self.seats[i].owned.iter().cloned())
            .collect();
        let me = &mut self.seats[seat];
        for tp in &polled.revoked {
            check!(
                me.owned.remove(tp),
                "{} was revoked {tp:?}, which it did not hold",
                me.name
            );
            me.spans.remove(tp);
        }
        for tp in &polled.assigned {
            check!(
                !others.contains(tp),
                "{} was assigned {tp:?} while another member still holds it",
                me.name
            );
            check!(
                me.owned.insert(tp.clone()),
                "{} was assigned {tp:?} twice",
                me.name
            );
        }
        for record in &polled.records {
            let tp = tp_of(record);
            let offset = record.position.offset;
            check!(
                me.owned.contains(&tp),
                "{} received offset {offset} of {tp:?} without holding it",
                me.name
            );
            match me.spans.get_mut(&tp) {
                Some(span) => {
                    check!(
                        offset == span.1 + 1,
                        "{} received offset {offset} of {tp:?} after {}",
                        me.name,
                        span.1
                    );
                    span.1 = offset;
                }
                None => {
                    me.spans.insert(tp, (offset, offset));
                }
            }
        }
        me.received.extend(polled.records.iter().cloned());
        let assignment: BTreeSet<Tp> = me.consumer.assignment().into_iter().collect();
        check!(
            assignment == me.owned,
            "{}: assignment() says {assignment:?}, polls said {:?}",
            me.name,
            me.owned
        );
        Ok(polled)
    }

    /// Polls every member once, in joining order.
    pub async fn round(&mut self) -> Outcome {
        self.round_in(false).await
    }

    async fn round_in(&mut self, reversed: bool) -> Outcome {
        let mut order: Vec<usize> = (0..self.seats.len()).collect();
        if reversed {
            order.reverse();
        }
        for seat in order {
            self.poll(seat, TICK).await?;
        }
        Ok(())
    }

    /// Polls every member until `done` holds (or fails after [`PATIENCE`], naming `what`).
    pub async fn settle(&mut self, what: &str, done: impl Fn(&Crew) -> bool) -> Outcome {
        let give_up = Instant::now() + PATIENCE;
        // Newest members first, then alternating: a newcomer polls before the members it takes
        // partitions from have released them, which must not give it those partitions yet.
        let mut reversed = true;
        loop {
            self.round_in(reversed).await?;
            reversed = !reversed;
            if done(self) {
                return Ok(());
            }
            check!(Instant::now() < give_up, "gave up waiting until {what}");
        }
    }

    /// Whether the members hold exactly `partitions` together, each at least one.
    pub fn split(&self, partitions: &BTreeSet<Tp>) -> bool {
        let held: BTreeSet<Tp> = self
            .seats
            .iter()
            .flat_map(|s| s.owned.iter().cloned())
            .collect();
        &held == partitions && self.seats.iter().all(|s| !s.owned.is_empty())
    }

    /// How many records the members received in all.
    pub fn received(&self) -> usize {
        self.seats.iter().map(|s| s.received.len()).sum()
    }
}
