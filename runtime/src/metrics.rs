//! The process's Prometheus metrics: one registry, its families, and the OpenMetrics text.
//!
//! Metrics are process-wide (as a process is what Prometheus scrapes): adapters and actors record
//! into [`metrics()`] wherever the thing counted happens, without handles threaded through every
//! constructor. Names and units follow the Prometheus conventions (`_total` counters, base units:
//! seconds, records); `docs/operations.md` lists them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::OnceLock;

/// Label: a topic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// The topic.
    pub topic: String,
}

/// Labels: a topic partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

/// Label: a pattern.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PatternLabel {
    /// The pattern id.
    pub pattern: String,
}

/// Labels: what a step did for a pattern.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// The pattern id (empty when no pattern took the event).
    pub pattern: String,
    /// The outcome.
    pub outcome: StepOutcome,
}

/// What one step did at one thred or pattern.
#[derive(
    Debug, Clone, Copy, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelValue,
)]
#[allow(non_camel_case_types)]
pub enum StepOutcome {
    /// A reaction matched (a thred started or moved on).
    matched,
    /// No reaction, thred or pattern took the event.
    no_match,
    /// A thred start was vetoed (`maxInstances`, `instanceInterval`).
    vetoed,
    /// The record was refused before any pattern saw it (not an event, or dead-lettered).
    refused,
    /// The step failed and had no effect (its sender was told).
    error,
    /// A reaction's timer expired.
    expired,
}

impl StepOutcome {
    /// Its label value.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::matched => "matched",
            StepOutcome::no_match => "no_match",
            StepOutcome::vetoed => "vetoed",
            StepOutcome::refused => "refused",
            StepOutcome::error => "error",
            StepOutcome::expired => "expired",
        }
    }
}

/// Labels: a consumer and the step of its loop that failed.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerFailureLabels {
    /// The consumer's name.
    pub consumer: String,
    /// `poll`, `commit` or `leave`.
    pub stage: String,
}

/// Every metric the runtime records.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Records read from the bus, per topic.
    pub events_consumed: Family<TopicLabel, Counter>,
    /// Records appended to the bus, per topic.
    pub messages_published: Family<TopicLabel, Counter>,
    /// Time from the start of a step's batch to its commit and publish.
    pub step_duration: Histogram,
    /// Steps per pattern and outcome.
    pub steps: Family<StepLabels, Counter>,
    /// Live threds of each pattern, as of this engine's last step of the pattern.
    pub live_threds: Family<PatternLabel, Gauge>,
    /// Timers not yet fired in the partitions this engine owns.
    pub timers_pending: Family<PartitionLabels, Gauge>,
    /// Timers fired.
    pub timers_fired: Counter,
    /// How late timers fired, after their due time.
    pub timer_lateness: Histogram,
    /// Partition leases granted (new or renewed).
    pub lease_grants: Counter,
    /// Writes refused because a newer lease of the partition exists (fencing).
    pub fencing_refusals: Counter,
    /// Engine commits refused because another commit changed what they read (run again).
    pub commit_conflicts: Counter,
    /// Records per engine batch.
    pub batch_records: Histogram,
    /// Records of a partition not yet read by this process's consumer.
    pub consumer_lag: Family<PartitionLabels, Gauge>,
    /// Consumer loop failures per consumer and stage.
    pub consumer_failures: Family<ConsumerFailureLabels, Counter>,
    /// Records appended to a dead-letter topic, per original topic.
    pub dead_letters: Family<TopicLabel, Counter>,
    /// Committed messages the outbox relay found unpublished past their grace period.
    pub outbox_backlog: Gauge,
    /// History documents the history sink wrote to the documents store (a redelivered one counts
    /// again).
    pub history_documents_written: Counter,
    /// Bulk writes of the history sink that failed (and were tried again after a backoff).
    pub history_write_failures: Counter,
    /// Message recipients dropped by the engine because they had no connection on a live session
    /// node (as SrvThreds drops them).
    pub messages_undeliverable: Counter,
    /// Open WebSocket connections.
    pub websocket_connections: Gauge,
    /// Connections closed because their client did not keep up with its messages.
    pub slow_clients_disconnected: Counter,
    /// Client frames and requests refused by a rate limit, a connection's or a participant's
    /// (error 4290).
    pub rate_limited_frames: Counter,
    /// `POST /events` requests refused because `[server] max_requests_in_flight` were in flight
    /// (error 4293).
    pub busy_requests: Counter,
    /// Client events that waited because the engines lagged on their partition.
    pub backpressure_delayed: Counter,
    /// Client events refused because the engines still lagged after the longest wait (4293).
    pub backpressure_refused: Counter,
    /// Client events admitted without a participant rate check because the store was unreachable.
    pub rate_budget_unavailable: Counter,
    /// Times a topic's publish breaker opened (an append stalled past the timeout).
    pub publish_breaker_opened: Counter,
}

impl Metrics {
    /// A fresh registry with every family registered.
    fn new() -> Metrics {
        let seconds = || Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        let mut m = Metrics {
            registry: Registry::default(),
            events_consumed: Family::default(),
            messages_published: Family::default(),
            step_duration: seconds(),
            steps: Family::default(),
            live_threds: Family::default(),
            timers_pending: Family::default(),
            timers_fired: Counter::default(),
            timer_lateness: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            lease_grants: Counter::default(),
            fencing_refusals: Counter::default(),
            commit_conflicts: Counter::default(),
            batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 12)),
            consumer_lag: Family::default(),
            consumer_failures: Family::default(),
            dead_letters: Family::default(),
            outbox_backlog: Gauge::default(),
            history_documents_written: Counter::default(),
            history_write_failures: Counter::default(),
            websocket_connections: Gauge::default(),
            slow_clients_disconnected: Counter::default(),
            messages_undeliverable: Counter::default(),
            rate_limited_frames: Counter::default(),
            busy_requests: Counter::default(),
            backpressure_delayed: Counter::default(),
            backpressure_refused: Counter::default(),
            rate_budget_unavailable: Counter::default(),
            publish_breaker_opened: Counter::default(),
        };
        let r = &mut m.registry;
        let p = "threds";
        let mut sub = r.sub_registry_with_prefix(p);
        let r = &mut sub;
        r.register(
            "events_consumed",
            "Records read from the bus, per topic",
            m.events_consumed.clone(),
        );
        r.register(
            "messages_published",
            "Records appended to the bus, per topic",
            m.messages_published.clone(),
        );
        r.register_with_unit(
            "step_duration",
            "Time from the start of a step's batch to its commit and publish",
            Unit::Seconds,
            m.step_duration.clone(),
        );
        r.register("steps", "Steps per pattern and outcome", m.steps.clone());
        r.register(
            "live_threds",
            "Live threds of each pattern, as of this engine's last step of the pattern",
            m.live_threds.clone(),
        );
        r.register(
            "timers_pending",
            "Timers not yet fired in the partitions this engine owns",
            m.timers_pending.clone(),
        );
        r.register("timers_fired", "Timers fired", m.timers_fired.clone());
        r.register_with_unit(
            "timer_lateness",
            "How late timers fired, after their due time",
            Unit::Seconds,
            m.timer_lateness.clone(),
        );
        r.register(
            "lease_grants",
            "Partition leases granted (new or renewed)",
            m.lease_grants.clone(),
        );
        r.register(
            "fencing_refusals",
            "Writes refused because a newer lease of the partition exists",
            m.fencing_refusals.clone(),
        );
        r.register(
            "commit_conflicts",
            "Engine commits refused because another commit changed what they read (run again)",
            m.commit_conflicts.clone(),
        );
        r.register(
            "batch_records",
            "Records per engine batch",
            m.batch_records.clone(),
        );
        r.register(
            "consumer_lag",
            "Records of a partition not yet read by this process's consumer",
            m.consumer_lag.clone(),
        );
        r.register(
            "consumer_failures",
            "Consumer loop failures per consumer and stage",
            m.consumer_failures.clone(),
        );
        r.register(
            "dead_letters",
            "Records appended to a dead-letter topic, per original topic",
            m.dead_letters.clone(),
        );
        r.register(
            "outbox_backlog",
            "Committed messages the outbox relay found unpublished past their grace period",
            m.outbox_backlog.clone(),
        );
        r.register(
            "history_documents_written",
            "History documents the history sink wrote to the documents store",
            m.history_documents_written.clone(),
        );
        r.register(
            "history_write_failures",
            "Bulk writes of the history sink that failed and were tried again after a backoff",
            m.history_write_failures.clone(),
        );
        r.register(
            "messages_undeliverable",
            "Message recipients dropped because they had no connection on a live session node",
            m.messages_undeliverable.clone(),
        );
        r.register(
            "websocket_connections",
            "Open WebSocket connections",
            m.websocket_connections.clone(),
        );
        r.register(
            "slow_clients_disconnected",
            "Connections closed because their client did not keep up with its messages",
            m.slow_clients_disconnected.clone(),
        );
        r.register(
            "rate_limited_frames",
            "Client frames and requests refused by a rate limit, a connection's or a participant's (error 4290)",
            m.rate_limited_frames.clone(),
        );
        r.register(
            "busy_requests",
            "POST /events requests refused with 503 because [server] max_requests_in_flight were in flight (error 4293)",
            m.busy_requests.clone(),
        );
        r.register(
            "backpressure_delayed",
            "Client events that waited because the engines lagged on their partition",
            m.backpressure_delayed.clone(),
        );
        r.register(
            "backpressure_refused",
            "Client events refused because the engines still lagged after [server] backpressure_max_wait_ms (error 4293)",
            m.backpressure_refused.clone(),
        );
        r.register(
            "rate_budget_unavailable",
            "Client events admitted without a participant rate check: the store was unreachable",
            m.rate_budget_unavailable.clone(),
        );
        r.register(
            "publish_breaker_opened",
            "Times a topic's publish breaker opened: an append stalled past [engine] publish_timeout_ms, and the topic is left alone for breaker_open_ms (its records wait in the outbox)",
            m.publish_breaker_opened.clone(),
        );
        m
    }

    /// The counter of records read from `topic`.
    pub fn consumed(&self, topic: &str) -> Counter {
        self.events_consumed
            .get_or_create(&TopicLabel {
                topic: topic.to_owned(),
            })
            .clone()
    }

    /// The counter of records appended to `topic`.
    pub fn published(&self, topic: &str) -> Counter {
        self.messages_published
            .get_or_create(&TopicLabel {
                topic: topic.to_owned(),
            })
            .clone()
    }

    /// Counts one step of `pattern` that ended in `outcome`.
    pub fn step(&self, pattern: &str, outcome: StepOutcome) {
        self.steps
            .get_or_create(&StepLabels {
                pattern: pattern.to_owned(),
                outcome,
            })
            .inc();
    }

    /// Sets the lag of a topic partition.
    pub fn lag(&self, topic: &str, partition: u32, records: i64) {
        self.consumer_lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_owned(),
                partition,
            })
            .set(records);
    }

    /// Forgets the lag of partitions this process no longer reads.
    pub fn forget_lag(&self, topic: &str, partition: u32) {
        self.consumer_lag.remove(&PartitionLabels {
            topic: topic.to_owned(),
            partition,
        });
    }

    /// The registry, as OpenMetrics text (without the final `# EOF`: see [`encode`]).
    pub fn encode_into(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Encodes the process's metrics followed by `extra` (a registry of the caller's own) as one
/// OpenMetrics text.
pub fn encode(extra: Option<&Registry>) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    metrics().encode_into(&mut out)?;
    if let Some(extra) = extra {
        prometheus_client::encoding::text::encode_registry(&mut out, extra)?;
    }
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let m = Metrics::new();
        m.events_consumed
            .get_or_create(&TopicLabel {
                topic: "orders".into(),
            })
            .inc_by(3);
        m.step_duration.observe(0.002);
        m.steps
            .get_or_create(&StepLabels {
                pattern: "echo".into(),
                outcome: StepOutcome::no_match,
            })
            .inc();
        m.live_threds
            .get_or_create(&PatternLabel {
                pattern: "echo".into(),
            })
            .set(2);
        let mut text = String::new();
        m.encode_into(&mut text).unwrap();
        assert!(text.contains("threds_events_consumed_total{topic=\"orders\"} 3"));
        assert!(text.contains("# TYPE threds_step_duration_seconds histogram"));
        assert!(text.contains("threds_steps_total{pattern=\"echo\",outcome=\"no_match\"} 1"));
        assert!(text.contains("# TYPE threds_live_threds gauge"));
        assert!(text.contains("threds_live_threds{pattern=\"echo\"} 2"));
    }
}
