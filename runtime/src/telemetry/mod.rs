//! What the process tells its operators besides the metrics themselves ([`crate::metrics`]): the
//! metered consume loops and bus, log lines and traces ([`traces`] installs them; [`spans`] are
//! the spans of an event's trace, exported over OTLP when an endpoint is configured).

pub mod spans;
pub mod traces;

use crate::metrics::metrics;

use crate::bus::driver::{Observer, Stage};
use crate::bus::{self, Append, Bus, Consumer, Position, Record};
use crate::metrics::ConsumerFailureLabels;

/// The consume loops' observer: counts records read per topic and failures per stage.
#[derive(Debug, Default, Clone, Copy)]
pub struct Metered;

impl Observer for Metered {
    fn polled(&self, _consumer: &str, records: &[Record]) {
        let mut records = records.iter().peekable();
        while let Some(first) = records.next() {
            // Polls answer runs of one topic: count each run with one lookup.
            let mut n = 1;
            while records
                .next_if(|r| r.position.topic == first.position.topic)
                .is_some()
            {
                n += 1;
            }
            metrics().consumed(&first.position.topic).inc_by(n);
        }
    }

    fn failed(&self, consumer: &str, stage: Stage, _error: &crate::bus::Error) {
        let stage = match stage {
            Stage::Poll => "poll",
            Stage::Commit => "commit",
            Stage::Leave => "leave",
        };
        metrics()
            .consumer_failures
            .get_or_create(&ConsumerFailureLabels {
                consumer: consumer.to_owned(),
                stage: stage.to_owned(),
            })
            .inc();
    }
}

/// A bus that counts the records appended to each topic (`threds_messages_published_total`).
pub struct MeteredBus(pub std::sync::Arc<dyn Bus>);

#[async_trait::async_trait]
impl Bus for MeteredBus {
    async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), bus::Error> {
        self.0.create_topic(topic, partitions).await
    }

    async fn partitions(&self, topic: &str) -> Result<u32, bus::Error> {
        self.0.partitions(topic).await
    }

    async fn topic_ready(&self, topic: &str) -> Result<(), bus::Error> {
        self.0.topic_ready(topic).await
    }

    async fn lag(&self, group: &str, topic: &str) -> Result<Vec<bus::Lag>, bus::Error> {
        self.0.lag(group, topic).await
    }

    async fn append(
        &self,
        topic: &str,
        partition: Option<u32>,
        key: Option<&str>,
        payload: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<Position, bus::Error> {
        let position = self
            .0
            .append(topic, partition, key, payload, headers)
            .await?;
        metrics().published(topic).inc();
        Ok(position)
    }

    async fn append_all(&self, records: Vec<Append>) -> Vec<Result<Position, bus::Error>> {
        let results = self.0.append_all(records).await;
        let mut landed = results.iter().flatten().peekable();
        while let Some(first) = landed.next() {
            let mut n = 1;
            while landed.next_if(|p| p.topic == first.topic).is_some() {
                n += 1;
            }
            metrics().published(&first.topic).inc_by(n);
        }
        results
    }

    async fn join(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, bus::Error> {
        self.0.join(group, topics, member).await
    }

    async fn join_from_end(
        &self,
        group: &str,
        topics: &[&str],
        member: &str,
    ) -> Result<Box<dyn Consumer>, bus::Error> {
        self.0.join_from_end(group, topics, member).await
    }

    async fn tail(&self, topic: &str, partition: u32) -> Result<Box<dyn Consumer>, bus::Error> {
        self.0.tail(topic, partition).await
    }
}
