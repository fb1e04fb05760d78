//! Agents hosted by Threds.

pub mod persistence;

use crate::supervisor::{self, Consumption, Supervised};
use std::sync::Arc;
use threds_runtime::bus::{driver, Bus};
use threds_runtime::documents::Documents;
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
            from_end: false,
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
