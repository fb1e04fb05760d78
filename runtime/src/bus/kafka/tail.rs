//! A reader of one partition outside any group ([`crate::bus::Bus::tail`]) on Kafka: a consumer
//! that never joins its group, assigned the partition at the end offset it had when opened.

use super::consumer::record_of;
use super::outage::{Admin, Outage, Watched};
use super::{backend, blocking, lock, KafkaConfig, REQUEST_TIMEOUT};
use crate::bus::tail::PartitionReader;
use crate::bus::{Error, Record};
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest single wait inside librdkafka's poll, so that an abandoned poll ends soon.
const STEP: Duration = Duration::from_millis(5);

/// What the polls of one tail share: the consumer, records fetched but not returned yet (a poll
/// whose future was dropped leaves them for the next), and a turn that keeps them in order.
struct Shared {
    consumer: BaseConsumer<Watched>,
    topics: [String; 1],
    fetched: Mutex<VecDeque<Record>>,
    turn: Mutex<()>,
}

/// A tail reader on a [`super::KafkaBus`].
pub(super) struct KafkaTail {
    shared: Arc<Shared>,
    config: KafkaConfig,
    admin: Admin,
    topic: String,
    partition: u32,
    /// The offset after the last record read, if any was.
    next: Option<i64>,
}

impl KafkaTail {
    /// A reader of `topic`/`partition` from its end offset now (asked of the partition's leader).
    pub(super) async fn open(
        config: &KafkaConfig,
        admin: Admin,
        topic: &str,
        partition: u32,
    ) -> Result<KafkaTail, Error> {
        let shared = connect(config, admin.clone(), topic, partition, None).await?;
        Ok(KafkaTail {
            shared,
            config: config.clone(),
            admin,
            topic: topic.to_owned(),
            partition,
            next: None,
        })
    }
}

/// A consumer of `topic`/`partition` from `from` if the partition still has it (it survived an
/// outage), else from its end offset now.
async fn connect(
    config: &KafkaConfig,
    admin: Admin,
    topic: &str,
    partition: u32,
    from: Option<i64>,
) -> Result<Arc<Shared>, Error> {
    let index = i32::try_from(partition).map_err(backend)?;
    let mut settings = config.client(&format!("{}-tail-{topic}-{partition}", config.client_id));
    settings
        // Never joined: a consumer needs a group only to subscribe or commit.
        .set("group.id", format!("{}-tail", config.client_id))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "latest")
        .set("fetch.wait.max.ms", "100")
        .set("queued.max.messages.kbytes", "16384");
    config.finish(&mut settings, true);
    let consumer: BaseConsumer<Watched> = settings
        .create_with_context(Watched {
            outage: Outage::new(admin),
        })
        .map_err(backend)?;
    let topic_name = topic.to_owned();
    let consumer = blocking(move || -> Result<BaseConsumer<Watched>, Error> {
        let (low, end) = consumer
            .fetch_watermarks(&topic_name, index, REQUEST_TIMEOUT)
            .map_err(|e| {
                Error::unavailable(format!("reading {topic_name}/{index}'s end offset"), e)
            })?;
        let start = from.filter(|n| (low..=end).contains(n)).unwrap_or(end);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic_name, index, Offset::Offset(start))
            .map_err(backend)?;
        consumer.assign(&tpl).map_err(backend)?;
        Ok(consumer)
    })
    .await??;
    Ok(Arc::new(Shared {
        consumer,
        topics: [topic.to_owned()],
        fetched: Mutex::new(VecDeque::new()),
        turn: Mutex::new(()),
    }))
}

/// Why a fetch stopped short.
enum Stop {
    /// The consumer outlived an outage of every broker and is to be replaced.
    Outage(Error),
    /// librdkafka failed fatally.
    Fatal(Error),
}

/// Fetches records into `shared` until it holds `max` or `timeout` passes; only fatal errors are
/// returned, others are logged (librdkafka recovers from them).
fn fetch(shared: &Shared, max: usize, timeout: Duration) -> Result<(), Stop> {
    let _turn = lock(&shared.turn);
    fetch_in_turn(shared, max, timeout)
}

/// Takes what librdkafka already holds (up to `max`) on the caller's thread, without waiting
/// (as the group consumer's `fetch_ready`): answers whether it took anything, or `None` when an
/// abandoned read still has the turn or an outage is being handled.
fn fetch_ready(shared: &Shared, max: usize) -> Option<Result<bool, Stop>> {
    let _turn = shared.turn.try_lock().ok()?;
    if !shared.consumer.context().outage.quiet() {
        return None;
    }
    let fetched = fetch_in_turn(shared, max, Duration::ZERO);
    Some(fetched.map(|()| !lock(&shared.fetched).is_empty()))
}

/// [`fetch`] once the turn is held: waits only while nothing was taken, then drains what is
/// ready.
fn fetch_in_turn(shared: &Shared, max: usize, timeout: Duration) -> Result<(), Stop> {
    let started = Instant::now();
    let mut have = lock(&shared.fetched).len();
    while have < max {
        let consumer = &shared.consumer;
        consumer
            .context()
            .outage
            .guard(consumer, &shared.topics)
            .map_err(Stop::Outage)?;
        let wait = if have == 0 {
            timeout.saturating_sub(started.elapsed()).min(STEP)
        } else {
            Duration::ZERO
        };
        match shared.consumer.poll(wait) {
            Some(Ok(message)) => {
                lock(&shared.fetched).push_back(record_of(&message));
                have += 1;
            }
            Some(Err(fatal @ KafkaError::MessageConsumptionFatal(_))) => {
                return Err(Stop::Fatal(Error::unavailable(
                    "polling a tail reader",
                    fatal,
                )))
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "kafka: tail reader error");
                if have > 0 {
                    break;
                }
            }
            None if have > 0 => break,
            None => {}
        }
        if have == 0 && started.elapsed() >= timeout {
            break;
        }
    }
    Ok(())
}

#[async_trait]
impl PartitionReader for KafkaTail {
    async fn read(&mut self, max: usize, timeout: Duration) -> Result<Vec<Record>, Error> {
        let shared = self.shared.clone();
        let fetched = match fetch_ready(&shared, max) {
            Some(Ok(true)) => Ok(()),
            Some(Err(stop)) => Err(stop),
            Some(Ok(false)) | None => blocking(move || fetch(&shared, max, timeout)).await?,
        };
        match fetched {
            Ok(()) => {}
            Err(Stop::Fatal(e)) => return Err(e),
            Err(Stop::Outage(e)) => {
                // Read on from where this reader was, if the partition still has it.
                tracing::warn!(error = %e, "kafka: replacing a tail reader after a broker outage");
                let admin = self.admin.clone();
                let fresh =
                    connect(&self.config, admin, &self.topic, self.partition, self.next).await?;
                let old = std::mem::replace(&mut self.shared, fresh);
                // Closing a consumer blocks (librdkafka waits for its threads): not here.
                drop(tokio::task::spawn_blocking(move || drop(old)));
                return Ok(Vec::new());
            }
        }
        let mut fetched = lock(&self.shared.fetched);
        let take = fetched.len().min(max);
        let records: Vec<Record> = fetched.drain(..take).collect();
        if let Some(last) = records.last() {
            self.next = i64::try_from(last.position.offset).ok().map(|o| o + 1);
        }
        Ok(records)
    }
}
