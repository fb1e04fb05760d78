//! Where outbound messages go: agents (local services) to their own topic, everyone else (participants
//! and remote services) to the session topic, which every session node reads.

use crate::topology::Topology;
use serde_json::json;
use threds_patterns::machine::{Machine, Message};

/// One record to append: topic, key, payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Topic.
    pub topic: String,
    /// Key (the first recipient, for partitioning).
    pub key: Option<String>,
    /// `{"id", "to", "event"}` as JSON.
    pub payload: Vec<u8>,
}

/// Splits a message into one record per agent and one for all session recipients (spec §6.4,
/// message ids `<event id>_agent_<i>` and `<event id>_0`).
pub fn route(engine: &Machine, message: &Message, topology: &Topology) -> Vec<Routed> {
    let resolver = engine.resolver();
    let event_id = message.event.id();
    let mut out = Vec::new();
    let mut participants = Vec::new();
    let mut agents = 0usize;
    for address in &message.to {
        match resolver.agent(address) {
            Some(agent) if agent.remote != Some(true) => {
                let payload = json!({"id": format!("{event_id}_agent_{agents}"), "to": [address], "event": message.event});
                agents += 1;
                out.push(Routed {
                    topic: topology.agent(&agent.node_type),
                    key: message.event.thred_id().map(str::to_string),
                    payload: payload.to_string().into_bytes(),
                });
            }
            _ => participants.push(address.clone()),
        }
    }
    if !participants.is_empty() {
        let payload =
            json!({"id": format!("{event_id}_0"), "to": participants, "event": message.event});
        out.push(Routed {
            topic: topology.sessions().to_owned(),
            key: participants.first().cloned(),
            payload: payload.to_string().into_bytes(),
        });
    }
    out
}
