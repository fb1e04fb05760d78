//! Accepting events from authenticated clients: stamp the source, append to the events topic.

use serde_json::{json, Map, Value};
use std::sync::Arc;
use threds_patterns::model::Event;
use threds_runtime::bus::{self, Bus};

/// Appends client events to the events topic.
#[derive(Clone)]
pub struct Intake {
    bus: Arc<dyn Bus>,
    topic: String,
}

impl Intake {
    /// Intake into `topic` of `bus`.
    pub fn new(bus: Arc<dyn Bus>, topic: String) -> Intake {
        Intake { bus, topic }
    }

    /// Stamps `event` as coming from `participant` (with `roles`), whatever the client claimed, and
    /// appends it keyed by its thred (bound) or its source (unbound).
    pub async fn submit(
        &self,
        event: Event,
        participant: &str,
        roles: &[String],
    ) -> Result<Event, bus::Error> {
        let event = stamp(event, participant, roles);
        let key = event.thred_id().unwrap_or(participant).to_string();
        let payload =
            serde_json::to_vec(event.as_value()).map_err(|e| bus::Error::Backend(e.to_string()))?;
        self.bus
            .append(&self.topic, None, Some(&key), payload, Vec::new())
            .await?;
        Ok(event)
    }
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
