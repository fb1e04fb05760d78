//! Agents hosted by Threds.

pub mod persistence;

use crate::supervisor::{self, Consumption, Reading, Supervised};
use std::sync::Arc;
use threds_runtime::bus::{driver, Bus};
use threds_runtime::documents::Documents;
use threds_runtime::history::sink::Sink;
use threds_runtime::topology::{Topology, PERSISTENCE_AGENT};
use tokio_util::sync::CancellationToken;

/// What the persistence-agent role runs on.
pub struct Role<'a> {
    /// Who the agent is.
    pub identity: persistence::Identity,
    /// Where its tasks run.
    pub documents: Arc<dyn Documents>,
    /// The bus (its topic in, replies out).
    pub bus: Arc<dyn Bus>,
    /// The deployment's names.
    pub topology: &'a Topology,
    /// This process's name.
    pub node: &'a str,
    /// Now, epoch ms.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Stops the agent.
    pub shutdown: CancellationToken,
}

/// Starts the history sink on the history topic, supervised: the history the engines commit
/// goes to the documents store (part of the persistence role).
pub fn start_history_sink(role: &Role<'_>) -> Supervised {
    let (documents, bus, topology) = (
        role.documents.clone(),
        role.bus.clone(),
        role.topology.clone(),
    );
    let (clock, stop) = (role.clock.clone(), role.shutdown.clone());
    supervisor::consume(
        Consumption {
            bus: role.bus.clone(),
            group: role.topology.history_group(),
            topics: vec![role.topology.history().to_owned()],
            member: role.node.to_owned(),
            options: driver::Options::new("history").max_records(256),
            shutdown: role.shutdown.clone(),
            reading: Reading::Group,
        },
        move || {
            Sink::new(
                documents.clone(),
                bus.clone(),
                topology.clone(),
                clock.clone(),
                stop.clone(),
            )
        },
    )
}

/// Starts the persistence agent on its topic, supervised.
pub fn start_persistence(role: Role<'_>) -> Supervised {
    let Role {
        identity,
        documents,
        bus,
        topology,
        node,
        clock,
        shutdown,
    } = role;
    let events = topology.events().to_owned();
    let stop = shutdown.clone();
    let replies = bus.clone();
    supervisor::consume(
        Consumption {
            bus,
            group: topology.agent_group(PERSISTENCE_AGENT),
            topics: vec![topology.agent(PERSISTENCE_AGENT)],
            member: node.to_owned(),
            options: driver::Options::new("persistence"),
            shutdown,
            reading: Reading::Group,
        },
        move || persistence::Agent {
            documents: documents.clone(),
            bus: replies.clone(),
            events_topic: events.clone(),
            me: identity.clone(),
            clock: clock.clone(),
            shutdown: stop.clone(),
        },
    )
}
