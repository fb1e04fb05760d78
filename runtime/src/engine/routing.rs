//! Where outbound messages go: agents (local services) to their own topic, everyone else
//! (participants and remote services) to the sessions topic — to the delivery slot of each session
//! node holding a recipient's connection when the engine routes by slot (ADR 0008), else to the
//! partition of the first recipient.

use crate::topology::Topology;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use threds_patterns::machine::{Machine, Message};

/// One record to append: topic, partition or key, payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Topic.
    pub topic: String,
    /// Key (the first recipient, for partitioning when `partition` is `None`).
    pub key: Option<String>,
    /// The partition it is addressed to (a session node's delivery slot), if any.
    pub partition: Option<u32>,
    /// `{"id", "to", "event"}` as JSON.
    pub payload: Vec<u8>,
}

/// The delivery slots of each participant with a live session (see
/// `SessionDirectory::slots_of`); a participant missing here has none.
pub type Slots = HashMap<String, Vec<u32>>;

/// A message split by route: one record per agent and per slot (or one for every participant),
/// and how many participant recipients had no slot (dropped).
#[derive(Debug, Default)]
pub struct Split {
    /// The records.
    pub records: Vec<Routed>,
    /// Recipients dropped for want of a live session.
    pub undeliverable: u64,
}

/// The recipients of `message` delivered through session nodes (not local agents).
pub fn participants<'m>(
    engine: &'m Machine,
    message: &'m Message,
) -> impl Iterator<Item = &'m String> {
    let resolver = engine.resolver();
    message.to.iter().filter(move |address| {
        !matches!(resolver.agent(address), Some(agent) if agent.remote != Some(true))
    })
}

/// Splits a message into one record per agent and, for its participants, one record per slot
/// holding some of them (`slots`), or one for all of them when `slots` is `None` (spec §6.4;
/// message ids `<event id>_agent_<i>` and `<event id>_0`, the latter shared by every slot's
/// record, since each session node sees only its own).
pub fn route(
    engine: &Machine,
    message: &Message,
    topology: &Topology,
    slots: Option<&Slots>,
    cause: Option<&str>,
) -> Split {
    let resolver = engine.resolver();
    let event_id = message.event.id();
    let mut split = Split::default();
    let mut participants = Vec::new();
    let mut agents = 0usize;
    for address in &message.to {
        match resolver.agent(address) {
            Some(agent) if agent.remote != Some(true) => {
                let payload = json!({"id": format!("{event_id}_agent_{agents}"), "to": [address], "event": message.event});
                agents += 1;
                split.records.push(Routed {
                    topic: topology.agent(&agent.node_type),
                    key: message.event.thred_id().map(str::to_string),
                    partition: None,
                    payload: payload.to_string().into_bytes(),
                });
            }
            _ => participants.push(address.clone()),
        }
    }
    if participants.is_empty() {
        return split;
    }
    let id = format!("{event_id}_0");
    let record = |to: Vec<String>, partition: Option<u32>| Routed {
        topic: topology.sessions().to_owned(),
        key: to.first().cloned(),
        partition,
        payload: match cause {
            Some(cause) => json!({"id": id, "to": to, "event": message.event, "cause": cause}),
            None => json!({"id": id, "to": to, "event": message.event}),
        }
        .to_string()
        .into_bytes(),
    };
    let Some(slots) = slots else {
        split.records.push(record(participants, None));
        return split;
    };
    let mut by_slot: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for participant in participants {
        match slots.get(&participant).filter(|s| !s.is_empty()) {
            Some(held) => {
                for slot in held {
                    let to = by_slot.entry(*slot).or_default();
                    if !to.contains(&participant) {
                        to.push(participant.clone());
                    }
                }
            }
            None => split.undeliverable += 1,
        }
    }
    split
        .records
        .extend(by_slot.into_iter().map(|(slot, to)| record(to, Some(slot))));
    split
}
