//! Accepting events from authenticated clients: stamp the source, wait while the engines lag on
//! its partition ([`super::pressure`]), append to the events topic.

use super::pressure::{Busy, Pressure};
use super::protocol;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use threds_patterns::model::Event;
use threds_runtime::bus::{self, Append, Bus};
use threds_runtime::telemetry::spans;
use threds_runtime::topology;
use threds_runtime::trace::TraceParent;
use tracing::Span;

/// Why an event was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The engines lag on its partition (code 4293).
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The bus failed (code 5000).
    #[error("the event could not be accepted: {0}")]
    Bus(#[from] bus::Error),
}

impl Refused {
    /// The error code the client gets.
    pub fn code(&self) -> u16 {
        match self {
            Refused::Busy(_) => protocol::ERR_BUSY,
            Refused::Bus(_) => protocol::ERR_UNAVAILABLE,
        }
    }
}

/// Appends client events to the events topic.
#[derive(Clone)]
pub struct Intake {
    bus: Arc<dyn Bus>,
    topic: String,
    pressure: Option<Arc<Pressure>>,
}

impl Intake {
    /// Intake into `topic` of `bus`, without backpressure.
    pub fn new(bus: Arc<dyn Bus>, topic: String) -> Intake {
        Intake {
            bus,
            topic,
            pressure: None,
        }
    }

    /// The same intake, slowed down by `pressure`.
    pub fn with_pressure(self, pressure: Pressure) -> Intake {
        Intake {
            pressure: Some(Arc::new(pressure)),
            ..self
        }
    }

    /// Stamps `event` as coming from `participant` (with `roles`), whatever the client claimed, and
    /// appends it keyed by its thred (bound) or its source (unbound), with a `traceparent`: a new
    /// span in the client's trace when `parent` is given, else a new trace. `channel` (`websocket`
    /// or `http`) names how it came, on the span exported for it.
    pub async fn submit(
        &self,
        event: Event,
        participant: &str,
        roles: &[String],
        parent: Option<TraceParent>,
        channel: &'static str,
    ) -> Result<Event, Refused> {
        let ready = self
            .prepare(event, participant, roles, parent, channel)
            .await?;
        let Append {
            topic,
            partition,
            key,
            payload,
            headers,
        } = ready.append;
        let appended = self
            .bus
            .append(&topic, partition, key.as_deref(), payload, headers)
            .await;
        if let Err(e) = &appended {
            spans::fail(&ready.span, e);
        }
        appended?;
        Ok(ready.event)
    }

    /// Submits one connection's events in the order given, as [`Intake::submit`] does each
    /// (without a caller's trace): they are stamped and admitted one after the other, then
    /// appended together, pipelined, so that a client with many events in flight waits for one
    /// round trip to the bus rather than one per event. Answers each event's outcome, in order.
    pub async fn submit_all(
        &self,
        events: Vec<Event>,
        participant: &str,
        roles: &[String],
        channel: &'static str,
    ) -> Vec<Result<Event, Refused>> {
        let mut outcomes: Vec<Option<Result<Event, Refused>>> = Vec::with_capacity(events.len());
        let (mut ready, mut appends) = (Vec::new(), Vec::new());
        for event in events {
            match self.prepare(event, participant, roles, None, channel).await {
                Ok(r) => {
                    ready.push((outcomes.len(), r.event, r.span));
                    appends.push(r.append);
                    outcomes.push(None);
                }
                Err(refused) => outcomes.push(Some(Err(refused))),
            }
        }
        let answers = self.bus.append_all(appends).await;
        for ((at, event, span), answer) in ready.into_iter().zip(answers) {
            outcomes[at] = Some(match answer {
                Ok(_) => Ok(event),
                Err(e) => {
                    spans::fail(&span, &e);
                    Err(Refused::Bus(e))
                }
            });
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(Refused::Bus(bus::Error::Closed))))
            .collect()
    }

    /// Stamps `event`, waits for its partition's backpressure, and builds its record.
    async fn prepare(
        &self,
        event: Event,
        participant: &str,
        roles: &[String],
        parent: Option<TraceParent>,
        channel: &'static str,
    ) -> Result<Ready, Refused> {
        let event = stamp(event, participant, roles);
        let key = topology::event_key(event.thred_id(), participant).to_owned();
        let payload =
            serde_json::to_vec(event.as_value()).map_err(|e| bus::Error::Backend(e.to_string()))?;
        if let Some(pressure) = &self.pressure {
            pressure.admit(&key, payload.len()).await?;
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = format!("{participant}/{}/{nanos}", event.id());
        let span = spans::send_event(&self.topic, &key, event.id(), channel, parent);
        let trace = spans::traceparent(&span).unwrap_or_else(|| match parent {
            Some(parent) => parent.child(&seed),
            None => spans::root(&seed),
        });
        Ok(Ready {
            event,
            append: Append {
                topic: self.topic.clone(),
                partition: None,
                key: Some(key),
                payload,
                headers: vec![trace.to_header()],
            },
            span,
        })
    }
}

/// An event stamped and admitted, with its record and the span of its sending.
struct Ready {
    event: Event,
    append: Append,
    span: Span,
}

/// The event with `source = {id: participant, roles?}`.
pub fn stamp(event: Event, participant: &str, roles: &[String]) -> Event {
    let mut source = Map::new();
    source.insert("id".into(), Value::String(participant.to_string()));
    if !roles.is_empty() {
        source.insert("roles".into(), json!(roles));
    }
    event.with_source(source)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;
    use threds_runtime::bus::memory::MemoryBus;
    use threds_runtime::topology::Topology;

    #[actix_rt::test]
    async fn every_event_goes_out_with_a_trace_context_continuing_the_callers() {
        let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
        let events = Topology::default().events();
        bus.create_topic(events, 1).await.unwrap();
        let intake = Intake::new(bus.clone(), events.into());
        let event = |id: &str| {
            Event::from_value(json!({"id": id, "type": "t", "source": {"id": "x"}})).unwrap()
        };
        let caller =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        intake
            .submit(event("e1"), "alice", &[], Some(caller), "http")
            .await
            .unwrap();
        intake
            .submit(event("e2"), "alice", &[], None, "websocket")
            .await
            .unwrap();
        let mut reader = bus.join("r", &[events], "r").await.unwrap();
        let mut records = Vec::new();
        while records.len() < 2 {
            records.extend(
                reader
                    .poll(10, Duration::from_millis(50))
                    .await
                    .unwrap()
                    .records,
            );
        }
        let traces: Vec<TraceParent> = records
            .iter()
            .map(|r| TraceParent::of_headers(&r.headers).unwrap())
            .collect();
        assert_eq!(traces[0].trace_id, caller.trace_id, "the caller's trace");
        assert_ne!(traces[0].span_id, caller.span_id, "a span of its own");
        assert_ne!(traces[1].trace_id, caller.trace_id, "a new trace");
    }
}
