//! A member of a consumer group on Kafka: one librdkafka consumer, its rebalance callbacks
//! captured in a [`Tracker`], blocking librdkafka calls run on tokio's blocking threads.

use super::outage::{Admin, Outage};
use super::tracker::{Tp, Tracker};
use super::{backend, blocking, lock, KafkaConfig, REQUEST_TIMEOUT};
use crate::bus::{Consumer, Error, Polled, Position, Record};
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::{ClientContext, Message as _, Offset, TopicPartitionList};
use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest single wait inside librdkafka's poll (longer polls wait in steps of this): a poll
/// whose future was dropped notices it within a step and gives its turn to the next poll.
const STEP: Duration = Duration::from_millis(5);

/// How long leaving may wait for the revocation of the member's partitions.
const LEAVE_LIMIT: Duration = Duration::from_secs(10);

/// How long a static member keeps serving its consumer after its partitions were revoked, so
/// that the LeaveGroup request goes out before the close (which suppresses it for static members).
const LEAVE_GRACE: Duration = Duration::from_millis(300);

/// A consumer poll timeout too large to sleep for is this.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// The librdkafka consumer of a member.
pub(super) type Member = BaseConsumer<Context>;

/// What the threads polling one consumer share: its rebalance callbacks, the records fetched but
/// not returned yet (a poll whose future is dropped leaves them for the next one), and a turn,
/// so that one librdkafka poll loop runs at a time and records stay in order.
#[derive(Debug)]
pub(super) struct Context {
    tracker: Mutex<Tracker>,
    /// Each with the tracker's change count when it was fetched (see `Tracker::deliverable`).
    fetched: Mutex<VecDeque<(u64, Record)>>,
    turn: Mutex<()>,
    /// The topics subscribed to, and what an outage of every broker paused.
    topics: Vec<String>,
    outage: Outage,
    /// The group, as failures of commits sent without waiting are reported.
    group: String,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        self.outage.error(&error, reason);
    }

    /// librdkafka's periodic statistics (`statistics.interval.ms`): the lag of each partition this
    /// consumer reads (`threds_consumer_lag`).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let m = crate::metrics::metrics();
        for (name, topic) in &statistics.topics {
            for (p, partition) in &topic.partitions {
                // -1: not assigned here (or not known yet); the internal partition -1 is skipped.
                if let (Ok(p), true) = (u32::try_from(*p), partition.consumer_lag >= 0) {
                    m.lag(name, p, partition.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    /// The answer to a commit: a failure of one sent without waiting ([`Consumer::commit_soon`])
    /// is reported here, its offsets covered by the next commit.
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            crate::metrics::metrics()
                .consumer_failures
                .get_or_create(&crate::metrics::ConsumerFailureLabels {
                    consumer: self.group.clone(),
                    stage: "commit".to_owned(),
                })
                .inc();
            tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, group = %self.group, error = %e, "offset commit failed; records may be redelivered");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut tracker = lock(&self.tracker);
        match rebalance {
            Rebalance::Assign(tpl) => tracker.assign(partitions_of(tpl)),
            Rebalance::Revoke(tpl) => {
                let revoked = partitions_of(tpl);
                for (topic, partition) in &revoked {
                    crate::metrics::metrics().forget_lag(topic, *partition);
                }
                tracker.revoke(revoked)
            }
            Rebalance::Error(e) => {
                tracing::warn!(error = %e, "kafka: rebalance failed; treating every partition as revoked");
                tracker.revoke_all();
            }
        }
    }
}

/// The topic-partitions of a list.
fn partitions_of(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .filter_map(|e| Some((e.topic().to_owned(), u32::try_from(e.partition()).ok()?)))
        .collect()
}

/// Where a handle's consumer lives; empty once the handle was replaced, left or dropped.
#[derive(Default)]
pub(super) struct Slot {
    consumer: Mutex<Option<Arc<Member>>>,
}

impl Slot {
    /// The consumer, unless the handle lost it.
    fn current(&self) -> Option<Arc<Member>> {
        lock(&self.consumer).clone()
    }

    /// Takes the consumer away from the handle (which then reports everything revoked).
    pub(super) fn fence(&self) -> Option<Arc<Member>> {
        lock(&self.consumer).take()
    }
}

/// Leaves the group: unsubscribes, serves the revocation, and lets the LeaveGroup go out. The
/// consumer closes when its last reference drops (call this on a blocking thread).
pub(super) fn depart(consumer: &Member, static_member: bool) {
    let ctx = consumer.context();
    let _turn = lock(&ctx.turn);
    consumer.unsubscribe();
    let give_up = Instant::now() + LEAVE_LIMIT;
    while !lock(&ctx.tracker).is_empty() && Instant::now() < give_up {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    if static_member {
        let until = Instant::now() + LEAVE_GRACE;
        while Instant::now() < until {
            let _ = consumer.poll(Duration::from_millis(50));
        }
    }
}

/// A member of a consumer group on a [`super::KafkaBus`].
pub struct KafkaConsumer {
    slot: Arc<Slot>,
    ctx: Arc<Context>,
    static_member: bool,
    /// The partitions the caller was told it holds.
    reported: BTreeSet<Tp>,
    /// Whether the loss of the consumer (replacement, fencing) was reported.
    fence_reported: bool,
    /// How to make the librdkafka consumer again.
    recipe: Recipe,
}

impl fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("assignment", &self.reported)
            .field("static_member", &self.static_member)
            .finish_non_exhaustive()
    }
}

/// What a member's librdkafka consumer is made from, kept to make it again after an outage.
struct Recipe {
    config: KafkaConfig,
    admin: Admin,
    group: String,
    topics: Vec<String>,
    member: String,
    from_end: bool,
}

impl Recipe {
    /// A new librdkafka consumer in the group, subscribed to the topics.
    fn consumer(&self) -> Result<Member, Error> {
        let config = &self.config;
        let session = config.session_timeout.as_millis().clamp(1, 3_600_000);
        let heartbeat = (session / 5).clamp(1, 3_000);
        let mut settings = config.client(&format!("{}-{}", config.client_id, self.member));
        settings
            .set("group.id", &self.group)
            .set(
                "partition.assignment.strategy",
                config.assignment_strategy.as_str(),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                if self.from_end { "latest" } else { "earliest" },
            )
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", heartbeat.to_string())
            // How long a broker may hold a fetch that finds nothing new. Kafka answers as soon as
            // a record arrives; librdkafka's mock cluster always waits this long, so local runs on
            // it set 5 ms (`[bus] properties`).
            .set("fetch.wait.max.ms", "100")
            // The prefetch queue, bounded in bytes (librdkafka's default is 64 MiB).
            .set("queued.max.messages.kbytes", "16384")
            // How often librdkafka reports partition lag (`threds_consumer_lag`).
            .set("statistics.interval.ms", "5000");
        if config.static_membership {
            settings.set("group.instance.id", &self.member);
        }
        config.finish(&mut settings, true);
        let consumer: Member = settings
            .create_with_context(Context {
                tracker: Mutex::default(),
                fetched: Mutex::default(),
                turn: Mutex::default(),
                topics: self.topics.clone(),
                outage: Outage::new(self.admin.clone()),
                group: self.group.clone(),
            })
            .map_err(backend)?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(backend)?;
        Ok(consumer)
    }
}

impl KafkaConsumer {
    /// What committing `offsets` takes: the consumer and the list (`None` when there is nothing
    /// to commit); a partition not assigned to this member is refused.
    fn commit_list(
        &self,
        offsets: &[Position],
    ) -> Result<Option<(Arc<Member>, TopicPartitionList, Position)>, Error> {
        let Some(first) = offsets.first() else {
            return Ok(None);
        };
        if let Some(foreign) = offsets
            .iter()
            .find(|p| !self.reported.contains(&(p.topic.clone(), p.partition)))
        {
            return Err(Error::NotAssigned {
                topic: foreign.topic.clone(),
                partition: foreign.partition,
            });
        }
        let Some(consumer) = self.slot.current() else {
            return Err(Error::NotAssigned {
                topic: first.topic.clone(),
                partition: first.partition,
            });
        };
        let mut tpl = TopicPartitionList::new();
        for p in offsets {
            let partition = i32::try_from(p.partition).map_err(backend)?;
            let offset = i64::try_from(p.offset).map_err(backend)?;
            tpl.add_partition_offset(&p.topic, partition, Offset::Offset(offset))
                .map_err(backend)?;
        }
        Ok(Some((consumer, tpl, first.clone())))
    }

    /// Opens a consumer in `group` as `member` and subscribes it to `topics`; `from_end`:
    /// partitions the group has committed nothing on start at their end; `admin` is asked whether
    /// the topics are back after an outage.
    pub(super) fn open(
        config: &KafkaConfig,
        admin: Admin,
        group: &str,
        topics: &[&str],
        member: &str,
        from_end: bool,
    ) -> Result<Self, Error> {
        let recipe = Recipe {
            config: config.clone(),
            admin,
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            member: member.to_owned(),
            from_end,
        };
        let consumer = recipe.consumer()?;
        let ctx = consumer.context().clone();
        Ok(KafkaConsumer {
            slot: Arc::new(Slot {
                consumer: Mutex::new(Some(Arc::new(consumer))),
            }),
            ctx,
            static_member: config.static_membership,
            reported: BTreeSet::new(),
            fence_reported: false,
            recipe,
        })
    }

    /// Replaces the librdkafka consumer after an outage of every broker (see
    /// [`super::outage`]): the old one closes, a new one joins the group, and every partition
    /// reported so far is reported revoked (records fetched and not handled are read again).
    fn replace(&mut self) -> Result<Polled, Error> {
        let fresh = Arc::new(self.recipe.consumer()?);
        let old = {
            let mut slot = lock(&self.slot.consumer);
            if slot.is_none() {
                // Fenced meanwhile: the handle stays without a consumer.
                return Ok(Polled::default());
            }
            slot.replace(fresh.clone())
        };
        if let Some(old) = old {
            close_later(old);
        }
        self.ctx = fresh.context().clone();
        Ok(Polled {
            revoked: std::mem::take(&mut self.reported).into_iter().collect(),
            ..Polled::default()
        })
    }

    /// The handle's slot (the bus keeps a weak reference to replace it on rejoin).
    pub(super) fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }

    /// A poll of a handle that lost its consumer: everything revoked once, then nothing.
    async fn fenced_poll(&mut self, timeout: Duration) -> Polled {
        if !self.fence_reported {
            self.fence_reported = true;
            return Polled {
                revoked: std::mem::take(&mut self.reported).into_iter().collect(),
                ..Polled::default()
            };
        }
        tokio::time::sleep(timeout.min(FAR)).await;
        Polled::default()
    }
}

/// Fetches records into the context until it holds `max`, `timeout` passes, a rebalance callback
/// runs or `cancel` is set (checked at least every [`STEP`]). Only fatal errors are returned;
/// others are logged (librdkafka recovers from them).
fn fetch(
    consumer: &Member,
    ctx: &Context,
    max: usize,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<(), Failure> {
    let _turn = lock(&ctx.turn);
    fetch_in_turn(consumer, ctx, max, timeout, cancel)
}

/// Takes what librdkafka already holds (up to `max`) without waiting, on the caller's thread:
/// most polls under load find records there, and skip the hop to a blocking thread and back.
/// Answers whether it took anything or saw a rebalance (the poll then answers that), or `None`
/// when it cannot run here: another poll's turn is running (an abandoned one finishing its
/// step), or an outage is being handled (its checks may wait on the broker).
fn fetch_ready(consumer: &Member, ctx: &Context, max: usize) -> Option<Result<bool, Failure>> {
    let _turn = ctx.turn.try_lock().ok()?;
    if !ctx.outage.quiet() {
        return None;
    }
    let before = lock(&ctx.tracker).changes();
    let fetched = fetch_in_turn(consumer, ctx, max, Duration::ZERO, &AtomicBool::new(false));
    Some(fetched.map(|()| !lock(&ctx.fetched).is_empty() || lock(&ctx.tracker).changes() != before))
}

/// [`fetch`] once the turn is held: waits only while nothing was taken, then drains what is
/// ready.
fn fetch_in_turn(
    consumer: &Member,
    ctx: &Context,
    max: usize,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<(), Failure> {
    let started = Instant::now();
    let before = lock(&ctx.tracker).changes();
    let mut have = lock(&ctx.fetched).len();
    while have < max {
        ctx.outage
            .guard(consumer, &ctx.topics)
            .map_err(Failure::Outage)?;
        let wait = if have == 0 {
            timeout.saturating_sub(started.elapsed()).min(STEP)
        } else {
            Duration::ZERO
        };
        let got = consumer.poll(wait);
        // Callbacks this poll served ran before the message it answers was taken.
        let now = lock(&ctx.tracker).changes();
        let rebalanced = now != before;
        match got {
            Some(Ok(message)) => {
                lock(&ctx.fetched).push_back((now, record_of(&message)));
                have += 1;
            }
            Some(Err(fatal @ KafkaError::MessageConsumptionFatal(_))) => {
                return Err(Failure::Kafka(fatal))
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "kafka: consumer error");
                if have > 0 {
                    break;
                }
            }
            None if have > 0 => break,
            None => {}
        }
        let waited_out = have == 0 && started.elapsed() >= timeout;
        if rebalanced || waited_out || cancel.load(Ordering::Relaxed) {
            break;
        }
    }
    Ok(())
}

/// Why a fetch stopped short.
enum Failure {
    /// librdkafka failed fatally.
    Kafka(KafkaError),
    /// The consumer outlived an outage of every broker and is to be replaced.
    Outage(Error),
}

/// Sets its flag when dropped: tells a blocking fetch that its poll is over (or was abandoned).
struct Cancel(Arc<AtomicBool>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A record of the port from a Kafka message.
pub(super) fn record_of(message: &BorrowedMessage<'_>) -> Record {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Record {
        position: Position {
            topic: message.topic().to_owned(),
            partition: u32::try_from(message.partition()).unwrap_or_default(),
            offset: u64::try_from(message.offset()).unwrap_or_default(),
        },
        key: message.key().map(text),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers: message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| (h.key.to_owned(), h.value.map(text).unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        timestamp: message.timestamp().to_millis().unwrap_or_default(),
    }
}

/// A commit failure as a port error: a member whose generation is gone no longer owns `at`.
fn commit_error(e: &KafkaError, at: &Position) -> Error {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
            | RDKafkaErrorCode::FencedInstanceId,
        ) => Error::NotAssigned {
            topic: at.topic.clone(),
            partition: at.partition,
        },
        _ => Error::unavailable("committing offsets", e.clone()),
    }
}

/// Closes a consumer off the async threads (closing serves the final rebalance and may wait for
/// the coordinator).
fn close_later(consumer: Arc<Member>) {
    // If no thread can be had, the closure (and with it the consumer) drops here, inline.
    let spawned = std::thread::Builder::new()
        .name("threds-kafka-close".to_owned())
        .spawn(move || drop(consumer));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "kafka: no thread to close a consumer on; closed inline");
    }
}

#[async_trait]
impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Polled, Error> {
        let Some(consumer) = self.slot.current() else {
            return Ok(self.fenced_poll(timeout).await);
        };
        let ctx = self.ctx.clone();
        let max = max.max(1);
        let fetched = match fetch_ready(&consumer, &ctx, max) {
            Some(Ok(true)) => Ok(()),
            Some(Err(failure)) => Err(failure),
            Some(Ok(false)) | None => {
                let cancel = Cancel(Arc::new(AtomicBool::new(false)));
                let flag = cancel.0.clone();
                blocking(move || fetch(&consumer, &ctx, max, timeout, &flag)).await?
            }
        };
        match fetched {
            Ok(()) => {}
            Err(Failure::Outage(e)) => {
                tracing::warn!(error = %e, "kafka: replacing the consumer after a broker outage");
                return self.replace();
            }
            Err(Failure::Kafka(e))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId) =>
            {
                // Another process joined under this member name (static membership).
                tracing::warn!("kafka: member fenced by a newer instance of it");
                lock(&self.ctx.fetched).clear();
                if let Some(consumer) = self.slot.fence() {
                    close_later(consumer);
                }
                return Ok(self.fenced_poll(Duration::ZERO).await);
            }
            Err(Failure::Kafka(e)) => return Err(Error::unavailable("polling", e)),
        }
        let mut tracker = lock(&self.ctx.tracker);
        let mut fetched = lock(&self.ctx.fetched);
        fetched.retain(|(at, r)| {
            tracker.deliverable(&(r.position.topic.clone(), r.position.partition), *at)
        });
        let take = fetched.len().min(max);
        let records = fetched.drain(..take).map(|(_, r)| r).collect();
        let report = tracker.report(&mut self.reported);
        Ok(Polled {
            revoked: report.revoked,
            assigned: report.assigned,
            records,
        })
    }

    async fn commit(&mut self, offsets: &[Position]) -> Result<(), Error> {
        let Some((consumer, tpl, first)) = self.commit_list(offsets)? else {
            return Ok(());
        };
        blocking(move || consumer.commit(&tpl, CommitMode::Sync))
            .await?
            .map_err(|e| commit_error(&e, &first))
    }

    async fn commit_soon(&mut self, offsets: &[Position]) -> Result<(), Error> {
        let Some((consumer, tpl, first)) = self.commit_list(offsets)? else {
            return Ok(());
        };
        // Queued to librdkafka's group handler: no wait here; the answer reaches
        // `Context::commit_callback`.
        consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| commit_error(&e, &first))
    }

    async fn committed(&self, topic: &str, partition: u32) -> Result<Option<u64>, Error> {
        let consumer = self.slot.current().ok_or(Error::Closed)?;
        let index = i32::try_from(partition).map_err(backend)?;
        let name = topic.to_owned();
        blocking(move || {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&name, index);
            let answer = consumer
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(|e| Error::unavailable("reading committed offsets", e))?;
            let Some(element) = answer.find_partition(&name, index) else {
                return Ok(None);
            };
            element.error().map_err(|e| {
                Error::unavailable(format!("committed offset of {name}/{index}"), e)
            })?;
            Ok(match element.offset() {
                Offset::Offset(n) => u64::try_from(n).ok(),
                _ => None,
            })
        })
        .await?
    }

    fn assignment(&self) -> Vec<(String, u32)> {
        self.reported.iter().cloned().collect()
    }

    async fn leave(self: Box<Self>) -> Result<(), Error> {
        let Some(consumer) = self.slot.fence() else {
            return Ok(());
        };
        let static_member = self.static_member;
        blocking(move || {
            depart(&consumer, static_member);
            drop(consumer);
        })
        .await
    }
}

impl Drop for KafkaConsumer {
    fn drop(&mut self) {
        if let Some(consumer) = self.slot.fence() {
            close_later(consumer);
        }
    }
}
