//! A consumer's guard over a broker outage: while every broker is down its partitions are paused;
//! once the broker answers with every topic the consumer reads, the consumer is replaced rather
//! than resumed (a group member by a new member under the same name, a tail reader by a new reader
//! from its last offset: `consumer.rs`, `tail.rs`).
//!
//! Why: a broker that comes back without its topics (in-memory storage, a wiped volume), or
//! with topics made again under new ids, answers the fetches of partitions the consumer still
//! holds with errors that carry a `CurrentLeader` of -1, and librdkafka 2.12 builds a metadata
//! update from them that it then reads past (upstream issue confluentinc/librdkafka#5280): the
//! process dies with SIGSEGV. A paused partition is not fetched, and a new consumer knows only
//! the topics as they are now. Whether the topics are back is asked through the bus's admin
//! client: a consumer's own metadata request answers from what it knew.

use super::lock;
use crate::bus::Error;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a paused consumer asks the broker whether its topics are back.
const CHECK_EVERY: Duration = Duration::from_millis(500);

/// How long one such question may wait.
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// The bus's admin client.
pub(super) type Admin = Arc<AdminClient<DefaultClientContext>>;

/// The outage state of one consumer.
pub(super) struct Outage {
    /// Asked whether the topics are back.
    admin: Admin,
    /// Set by librdkafka's error callback when every broker is down.
    down: AtomicBool,
    /// Whether the consumer's partitions are paused, and when the topics were last looked for.
    paused: Mutex<Option<Instant>>,
    /// Set once the outage is over: the consumer is not to be used again.
    over: AtomicBool,
}

impl std::fmt::Debug for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outage")
            .field("down", &self.down)
            .field("paused", &self.paused)
            .finish_non_exhaustive()
    }
}

impl Outage {
    /// No outage yet; `admin` will be asked about the topics after one.
    pub(super) fn new(admin: Admin) -> Outage {
        Outage {
            admin,
            down: AtomicBool::new(false),
            paused: Mutex::new(None),
            over: AtomicBool::new(false),
        }
    }

    /// Whether no outage is noted, paused for or over: [`Outage::guard`] then answers at once.
    pub(super) fn quiet(&self) -> bool {
        !self.over.load(Ordering::Relaxed)
            && !self.down.load(Ordering::Relaxed)
            && lock(&self.paused).is_none()
    }

    /// librdkafka's error callback: notes an outage of every broker, logs the rest.
    pub(super) fn error(&self, error: &KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.down.store(true, Ordering::Relaxed);
        }
        tracing::warn!(error = %error, reason, "kafka: client error");
    }

    /// Called between polls: pauses the consumer's partitions once every broker is down, and
    /// answers an error once the broker has every one of `topics` again (and from then on): the
    /// consumer is to be closed and a new one opened.
    pub(super) fn guard<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topics: &[String],
    ) -> Result<(), Error> {
        if self.over.load(Ordering::Relaxed) {
            return Err(over());
        }
        let mut paused = lock(&self.paused);
        if paused.is_none() {
            if !self.down.swap(false, Ordering::Relaxed) {
                return Ok(());
            }
            if let Ok(assigned) = consumer.assignment() {
                if let Err(e) = consumer.pause(&assigned) {
                    tracing::warn!(error = %e, "kafka: pausing partitions during a broker outage failed");
                }
            }
            tracing::warn!(
                ?topics,
                "kafka: every broker is down; partitions paused until the broker has the topics again"
            );
            *paused = Some(Instant::now());
            return Ok(());
        }
        if paused.is_some_and(|at| at.elapsed() < CHECK_EVERY) {
            return Ok(());
        }
        *paused = Some(Instant::now());
        if !topics.iter().all(|t| exists(&self.admin, t)) {
            return Ok(());
        }
        tracing::warn!(
            ?topics,
            "kafka: the broker has the topics again; the consumer paused during the outage is replaced"
        );
        self.over.store(true, Ordering::Relaxed);
        Err(over())
    }
}

/// The error of a consumer given up after an outage.
fn over() -> Error {
    Error::Backend(
        "the consumer was paused while every broker was down and is replaced now that the topics are back".into(),
    )
}

/// Whether the broker answers that `topic` exists with at least one partition.
fn exists(admin: &Admin, topic: &str) -> bool {
    match admin.inner().fetch_metadata(Some(topic), CHECK_TIMEOUT) {
        Ok(metadata) => metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()),
        Err(_) => false,
    }
}

/// The context of a consumer with nothing to track but outages (a tail reader).
#[derive(Debug)]
pub(super) struct Watched {
    /// Its outage state.
    pub(super) outage: Outage,
}

impl ClientContext for Watched {
    fn error(&self, error: KafkaError, reason: &str) {
        self.outage.error(&error, reason);
    }
}

impl ConsumerContext for Watched {}
