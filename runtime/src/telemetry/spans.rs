//! The spans of an event's trace, one constructor each, with OpenTelemetry messaging
//! semantic-convention attributes: `send` where a session appends a client's event, `process`
//! where the engine steps it (with `threds.store.commit` and one `send` per message it
//! publishes), `process` where a session delivers a message over a WebSocket or an agent runs a
//! task. Each continues the trace of the `traceparent` it is given, and the context a span
//! passes on is read back with [`traceparent`].
//!
//! Every constructor answers [`Span::none`] when this process does not export spans
//! ([`exporting`]) or the trace is not sampled ([`sampled`]), so callers create them
//! unconditionally; a context passed on without a span is [`root`] or the parent's, its sampled
//! flag telling the next hop what was decided.

use super::traces::{exporting, sampled, TARGET};
use crate::bus::Position;
use crate::trace::TraceParent;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use std::sync::OnceLock;
use tracing::field::{display, Empty};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

static SYSTEM: OnceLock<&'static str> = OnceLock::new();

/// Names the bus in `messaging.system` (`kafka`, or `threds` for the embedded bus); set once at
/// start-up, before the first span.
pub fn set_messaging_system(system: &'static str) {
    let _ = SYSTEM.set(system);
}

fn system() -> &'static str {
    SYSTEM.get().copied().unwrap_or("kafka")
}

/// A producer span (child of `$parent`: a span, or `None` for a new trace) appending to `$topic`
/// with key `$key`, with the messaging attributes every producer span has, then `$fields`.
macro_rules! producer_span {
    ($parent:expr, $topic:expr, $key:expr, $($fields:tt)*) => {
        tracing::info_span!(
            target: TARGET,
            parent: $parent,
            "send",
            otel.name = format!("send {}", $topic),
            otel.kind = "producer",
            messaging.system = system(),
            messaging.operation.type = "send",
            messaging.operation.name = "send",
            messaging.destination.name = $topic,
            messaging.kafka.message.key = $key,
            $($fields)*
        )
    };
}

/// A consumer span named `$name` processing the record at `$position` (message `$id`, operation
/// `$op`), with the messaging attributes every consumer span has, then `$fields`.
macro_rules! consumer_span {
    ($name:literal, $op:literal, $position:expr, $id:expr, $($fields:tt)*) => {
        tracing::info_span!(
            target: TARGET,
            $name,
            otel.name = format!("process {}", $position.topic),
            otel.kind = "consumer",
            messaging.system = system(),
            messaging.operation.type = "process",
            messaging.operation.name = $op,
            messaging.destination.name = $position.topic.as_str(),
            messaging.destination.partition.id = $position.partition.to_string(),
            messaging.kafka.offset = $position.offset,
            messaging.message.id = $id,
            trace_id = Empty,
            $($fields)*
        )
    };
}

/// A session appending a client's event (`channel`: `websocket` or `http`) to `topic`.
pub fn send_event(
    topic: &str,
    key: &str,
    event_id: &str,
    channel: &'static str,
    parent: Option<TraceParent>,
) -> Span {
    if !sampled(parent) {
        return Span::none();
    }
    let span = producer_span!(
        None,
        topic,
        key,
        messaging.message.id = event_id,
        threds.channel = channel,
        trace_id = Empty,
    );
    adopt(&span, parent);
    span
}

/// The engine stepping the event `event_id` of the record at `position`, consumed by `group`.
/// The step fills in `threds.pattern`, `threds.reaction`, `threds.thred_id` and
/// `threds.outcome` ([`record_step`]).
pub fn process_event(
    position: &Position,
    group: &str,
    event_id: &str,
    parent: Option<TraceParent>,
) -> Span {
    if !sampled(parent) {
        return Span::none();
    }
    let span = consumer_span!(
        "process",
        "process",
        position,
        event_id,
        messaging.consumer.group.name = group,
        threds.pattern = Empty,
        threds.reaction = Empty,
        threds.thred_id = Empty,
        threds.outcome = Empty,
    );
    adopt(&span, parent);
    span
}

/// The engine firing a thred's timer due at `due` (epoch ms): a new trace.
pub fn fire_timer(thred_id: &str, due: i64) -> Span {
    if !sampled(None) {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "timer",
        otel.name = "threds.timer",
        threds.thred_id = thred_id,
        threds.timer.due = due,
        threds.pattern = Empty,
        threds.reaction = Empty,
        threds.outcome = Empty,
        trace_id = Empty,
    );
    adopt(&span, None);
    span
}

/// What a step did, on its span (from [`process_event`] or [`fire_timer`]).
pub fn record_step(
    span: &Span,
    pattern: &str,
    reaction: Option<&str>,
    thred_id: Option<&str>,
    outcome: &str,
) {
    if span.is_none() {
        return;
    }
    span.record("threds.pattern", pattern);
    if let Some(reaction) = reaction {
        span.record("threds.reaction", reaction);
    }
    if let Some(thred_id) = thred_id {
        span.record("threds.thred_id", thred_id);
    }
    span.record("threds.outcome", outcome);
}

/// The store commit of a batch of `steps` steps, as a child of one of them (each step's trace
/// gets its own).
pub fn commit(step: &Span, steps: usize) -> Span {
    if step.is_none() {
        return Span::none();
    }
    tracing::info_span!(
        target: TARGET,
        parent: step,
        "commit",
        otel.name = "threds.store.commit",
        otel.kind = "client",
        db.operation.name = "commit",
        threds.batch.steps = steps,
    )
}

/// A step publishing a message record to `topic`: the record's `traceparent` is this span's.
pub fn publish(step: &Span, topic: &str, key: Option<&str>) -> Span {
    if step.is_none() {
        return Span::none();
    }
    producer_span!(step, topic, key.unwrap_or(""),)
}

/// A session node handing message `message_id` of the record at `position` to the WebSocket
/// connections of `participant` it holds (`connections` of them).
pub fn deliver(
    position: &Position,
    message_id: &str,
    participant: &str,
    connections: usize,
    parent: Option<TraceParent>,
) -> Span {
    if !sampled(parent) {
        return Span::none();
    }
    let span = consumer_span!(
        "deliver",
        "deliver",
        position,
        message_id,
        network.protocol.name = "websocket",
        threds.participant = participant,
        threds.connections = connections,
    );
    adopt(&span, parent);
    span
}

/// An agent (`agent`, e.g. `org.wt.persistence`) running the task in message `message_id` of
/// the record at `position`.
pub fn agent_task(
    position: &Position,
    agent: &str,
    message_id: &str,
    parent: Option<TraceParent>,
) -> Span {
    if !sampled(parent) {
        return Span::none();
    }
    let span = consumer_span!(
        "task",
        "process",
        position,
        message_id,
        threds.agent = agent,
        otel.status_code = Empty,
    );
    adopt(&span, parent);
    span
}

/// A new trace's context when no span was created for it: derived from `seed`; sampled only when
/// this process does not export spans (so another tracer downstream records it), else unsampled
/// (this process decided not to record it, and the next hops follow).
pub fn root(seed: &str) -> TraceParent {
    let mut root = TraceParent::root(seed);
    if exporting() {
        root.flags &= !1;
    }
    root
}

/// Marks `span` failed with `error`.
pub fn fail(span: &Span, error: &dyn std::fmt::Display) {
    if span.is_none() {
        return;
    }
    span.record("otel.status_code", "ERROR");
    span.set_attribute("error.type", error.to_string());
}

/// The trace context `span` passes on (`None` for [`Span::none`]).
pub fn traceparent(span: &Span) -> Option<TraceParent> {
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| TraceParent {
        trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Makes `span` a child of the remote `parent` (a new trace without one) and records its trace
/// id in the `trace_id` field, so log lines inside it carry it.
fn adopt(span: &Span, parent: Option<TraceParent>) {
    if let Some(parent) = parent {
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id.to_be_bytes()),
            SpanId::from_bytes(parent.span_id.to_be_bytes()),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        );
        // Fails only when the span is disabled or already started; it is neither here.
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
    if let Some(own) = traceparent(span) {
        span.record("trace_id", display(format_args!("{:032x}", own.trace_id)));
    }
}
