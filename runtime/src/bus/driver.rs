//! The one consumer loop: poll a batch, hand it to a [`Handler`], commit what the handler reports
//! handled. Every reader of a topic (the engine, the persistence agent, the session feed, the
//! control listener) runs on it, so polling, committing, backoff, cancellation and their telemetry
//! behave the same everywhere.
//!
//! Guarantees:
//! - an offset is committed only after the handler reported the records below it handled
//!   (at least once: a crash between handling and committing redelivers them);
//! - a partition's committed offset never goes backwards; a commit that failed at once is retried
//!   with the next one, and one sent without waiting that fails later is covered by the next
//!   commit of its partition (until then its records may be delivered again);
//! - nothing of a revoked partition is committed by this member any more;
//! - a failed poll is retried after a backoff that doubles up to a limit and resets on success;
//! - cancellation stops polling at once; the handler then drains its work in flight, what it
//!   handled is committed, and the member leaves its group.

use super::{Consumer, Position, Record};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A partition of a topic.
pub type TopicPartition = (String, u32);

/// What a consumer does with its records.
#[async_trait(?Send)]
pub trait Handler {
    /// Partitions given to this member (before their records are handed over).
    fn assigned(&mut self, _partitions: &[TopicPartition]) {}

    /// Partitions taken from this member: their work is abandoned (their positions are no
    /// longer committed).
    fn revoked(&mut self, _partitions: &[TopicPartition]) {}

    /// Takes records (in offset order per partition); answers the positions now handled — for
    /// each partition, the offset of the next record to read. A handler that runs work
    /// concurrently may answer nothing here and report it from [`Handler::progress`].
    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal>;

    /// Waits until more work is handled and answers its positions. Must be cancel-safe: the
    /// driver drops it whenever a poll answers first. The default never answers.
    async fn progress(&mut self) -> Result<Vec<Position>, Fatal> {
        std::future::pending().await
    }

    /// Whether to poll now; `false` pauses polling while too much is taken and not handled.
    fn wants_records(&self) -> bool {
        true
    }

    /// Whether records taken are still being handled (their positions not yet answered): the
    /// driver then commits at most once per [`Options::commit_every`]. The default is never.
    fn busy(&self) -> bool {
        false
    }

    /// On shutdown: finishes the work in flight and answers its positions.
    async fn drain(&mut self) -> Vec<Position> {
        Vec::new()
    }
}

/// A failure the handler cannot recover from: the driver stops (committing what was handled,
/// leaving the group) and returns it, for a supervisor to restart the consumer.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct Fatal {
    /// What failed.
    pub what: String,
    /// Why.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Fatal {
    /// A failure described by `what`.
    pub fn new(what: impl Into<String>) -> Fatal {
        Fatal {
            what: what.into(),
            source: None,
        }
    }

    /// A failure described by `what`, caused by `source`.
    pub fn caused(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Fatal {
        Fatal {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// How a driver polls and backs off.
#[derive(Debug, Clone)]
pub struct Options {
    /// The consumer's name in logs and metrics (`engine`, `persistence`, ...).
    pub name: String,
    /// Most records per poll.
    pub max_records: usize,
    /// Longest wait of one poll for records.
    pub poll_wait: Duration,
    /// Wait after the first failed poll; doubled after each further failure.
    pub backoff: Duration,
    /// Longest wait between failed polls.
    pub max_backoff: Duration,
    /// Shortest time between two offset commits while the handler is [busy](Handler::busy)
    /// (zero: after every poll or progress that handled something). What is handled meanwhile is
    /// committed together once it has passed; once the handler has nothing in hand, and on
    /// shutdown, what it handled is committed at once. Commits while running are sent without
    /// waiting for the coordinator ([`Consumer::commit_soon`]); the last one waits.
    pub commit_every: Duration,
}

impl Options {
    /// Defaults for a consumer called `name`: 64 records, 200 ms polls, backoff 200 ms to 5 s,
    /// commits after everything handled.
    pub fn new(name: impl Into<String>) -> Options {
        Options {
            name: name.into(),
            max_records: 64,
            poll_wait: Duration::from_millis(200),
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            commit_every: Duration::ZERO,
        }
    }

    /// The same committing at most once per `every`.
    pub fn commit_every(mut self, every: Duration) -> Options {
        self.commit_every = every;
        self
    }

    /// The same with at most `n` records per poll.
    pub fn max_records(mut self, n: usize) -> Options {
        self.max_records = n.max(1);
        self
    }
}

/// What a driver reports as it goes (metrics hook). Every method defaults to doing nothing.
pub trait Observer: Send + Sync {
    /// A poll answered `records`.
    fn polled(&self, _consumer: &str, _records: &[Record]) {}
    /// Offsets of `partitions` partitions were committed.
    fn committed(&self, _consumer: &str, _partitions: usize) {}
    /// A poll, a commit or leaving the group failed.
    fn failed(&self, _consumer: &str, _stage: Stage, _error: &super::Error) {}
}

/// The step of the loop that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Polling.
    Poll,
    /// Committing offsets.
    Commit,
    /// Leaving the group.
    Leave,
}

/// An observer that observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// Offsets handled and not yet committed, per partition (the highest wins).
#[derive(Debug, Default)]
struct Pending(BTreeMap<TopicPartition, u64>);

impl Pending {
    fn add(&mut self, positions: Vec<Position>) {
        for p in positions {
            let next = self.0.entry((p.topic, p.partition)).or_insert(p.offset);
            *next = (*next).max(p.offset);
        }
    }

    fn forget(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.0.remove(tp);
        }
    }

    fn positions(&self) -> Vec<Position> {
        self.0
            .iter()
            .map(|((topic, partition), offset)| Position {
                topic: topic.clone(),
                partition: *partition,
                offset: *offset,
            })
            .collect()
    }
}

/// What woke the loop.
enum Woke {
    /// The handler finished work.
    Progress(Result<Vec<Position>, Fatal>),
    /// A poll answered.
    Polled(Result<super::Polled, super::Error>),
}

/// Runs `consumer` with `handler` until `shutdown` is cancelled (answering `Ok`) or the handler
/// fails (answering its [`Fatal`] after committing what was handled and leaving the group).
pub async fn run<H: Handler>(
    mut consumer: Box<dyn Consumer>,
    handler: &mut H,
    options: &Options,
    observer: &dyn Observer,
    shutdown: &CancellationToken,
) -> Result<(), Fatal> {
    let name = options.name.as_str();
    let mut pending = Pending::default();
    let mut backoff = options.backoff;
    let mut committed_at = Instant::now();
    let outcome = loop {
        if shutdown.is_cancelled() {
            break Ok(());
        }
        // A poll ends by the time handled offsets are due for their commit (a poll is not
        // dropped for it: a group member must keep polling to stay in its group).
        let poll_wait = match pending.0.is_empty() {
            true => options.poll_wait,
            false => (committed_at + options.commit_every)
                .saturating_duration_since(Instant::now())
                .min(options.poll_wait),
        };
        let woke = tokio::select! {
            biased;
            () = shutdown.cancelled() => break Ok(()),
            progress = handler.progress() => Woke::Progress(progress),
            polled = consumer.poll(options.max_records, poll_wait), if handler.wants_records() => Woke::Polled(polled),
        };
        let handled = match woke {
            Woke::Progress(progress) => progress,
            Woke::Polled(Ok(polled)) => {
                backoff = options.backoff;
                observer.polled(name, &polled.records);
                if !polled.revoked.is_empty() {
                    pending.forget(&polled.revoked);
                    handler.revoked(&polled.revoked);
                }
                if !polled.assigned.is_empty() {
                    handler.assigned(&polled.assigned);
                }
                if polled.records.is_empty() {
                    Ok(Vec::new())
                } else {
                    handler.handle(polled.records).await
                }
            }
            Woke::Polled(Err(e)) => {
                observer.failed(name, Stage::Poll, &e);
                tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, consumer = name, error = %e, retry_in = ?backoff, "poll failed");
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(options.max_backoff);
                Ok(Vec::new())
            }
        };
        match handled {
            Ok(positions) => pending.add(positions),
            Err(fatal) => break Err(fatal),
        }
        let due = !handler.busy() || committed_at.elapsed() >= options.commit_every;
        if !pending.0.is_empty() && due {
            commit(consumer.as_mut(), &mut pending, Wait::No, name, observer).await;
            committed_at = Instant::now();
        }
    };
    pending.add(handler.drain().await);
    commit(consumer.as_mut(), &mut pending, Wait::Yes, name, observer).await;
    if let Err(e) = consumer.leave().await {
        observer.failed(name, Stage::Leave, &e);
        tracing::warn!(consumer = name, error = %e, "leaving the group failed");
    }
    outcome
}

/// Whether a commit waits for the group coordinator's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// It does (the last commit, before leaving).
    Yes,
    /// It does not where the consumer can help it ([`Consumer::commit_soon`]).
    No,
}

/// Commits what is pending; on a failure known at once keeps it for the next commit.
async fn commit(
    consumer: &mut dyn Consumer,
    pending: &mut Pending,
    wait: Wait,
    name: &str,
    observer: &dyn Observer,
) {
    if pending.0.is_empty() {
        return;
    }
    let positions = pending.positions();
    let committed = match wait {
        Wait::Yes => consumer.commit(&positions).await,
        Wait::No => consumer.commit_soon(&positions).await,
    };
    match committed {
        Ok(()) => {
            observer.committed(name, positions.len());
            pending.0.clear();
        }
        Err(e) => {
            observer.failed(name, Stage::Commit, &e);
            tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, consumer = name, error = %e, "offset commit failed; records may be redelivered");
            // A partition that moved away is not committed again.
            let owned = consumer.assignment();
            pending.0.retain(|tp, _| owned.contains(tp));
        }
    }
}

#[cfg(test)]
mod tests;
