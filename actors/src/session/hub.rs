//! The hub: which participants have connections on this node, and delivery to each of them.
//!
//! Delivery never waits for a client: each connection has a queue bounded in messages and bytes
//! ([`super::queue`]); when it is full the
//! connection is told to close (code 4408) and the message is dropped for it alone.

pub use super::queue::Outgoing;
use super::queue::{Queue, Refused};
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use threds_runtime::bus::Position;
use threds_runtime::metrics::metrics;
use threds_runtime::store::{Session, SessionDirectory};
use threds_runtime::telemetry::spans;
use threds_runtime::trace::TraceParent;
use tokio_util::sync::CancellationToken;

struct Conn {
    id: u64,
    tx: Queue,
    kick: CancellationToken,
}

/// The connections of this node.
pub struct Hub {
    node: String,
    directory: Arc<dyn SessionDirectory>,
    connections: HashMap<String, Vec<Conn>>,
    next: u64,
}

impl Hub {
    /// A hub for session node `node`, recording its sessions in `directory`.
    pub fn new(node: String, directory: Arc<dyn SessionDirectory>) -> Hub {
        Hub {
            node,
            directory,
            connections: HashMap::new(),
            next: 0,
        }
    }

    fn session_id(&self, id: u64) -> String {
        format!("{}-{id}", self.node)
    }
}

impl Actor for Hub {
    type Context = Context<Self>;
}

/// Registers a connection; answers its id.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct Connect {
    /// The authenticated participant.
    pub participant: String,
    /// The connection's outbound queue.
    pub tx: Queue,
    /// Cancelled to make the connection close as a slow consumer.
    pub kick: CancellationToken,
}

/// Unregisters a connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    /// The participant.
    pub participant: String,
    /// The connection id.
    pub id: u64,
}

/// Delivers one frame to every local connection of each recipient; answers how many got it.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Deliver {
    /// Recipients.
    pub to: Vec<String>,
    /// The frame text.
    pub frame: Arc<str>,
    /// Where the message came from, when spans are exported (each delivery gets one).
    pub origin: Option<Origin>,
}

/// The record a delivered message came from, for its delivery spans.
pub struct Origin {
    /// The record's position.
    pub position: Position,
    /// The message id.
    pub id: String,
    /// The record's trace context.
    pub parent: Option<TraceParent>,
}

/// Counts connections (for metrics and tests).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct CountConnections;

impl Handler<Connect> for Hub {
    type Result = ResponseActFuture<Self, u64>;

    /// Answers once the session is recorded (or recording it failed), so that the connection
    /// reads its client's first event only when replies can find it.
    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) -> Self::Result {
        self.next += 1;
        let id = self.next;
        let session = Session {
            id: self.session_id(id),
            participant: msg.participant.clone(),
            node: self.node.clone(),
        };
        metrics().websocket_connections.inc();
        self.connections
            .entry(msg.participant)
            .or_default()
            .push(Conn {
                id,
                tx: msg.tx,
                kick: msg.kick,
            });
        let directory = self.directory.clone();
        Box::pin(
            async move {
                if let Err(e) = directory.add_session(session).await {
                    tracing::warn!(error = %e, "could not record a session");
                }
            }
            .into_actor(self)
            .map(move |(), _, _| id),
        )
    }
}

/// Records every session of this node again (after its delivery slot lapsed, its sessions may
/// have been forgotten).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Rerecord;

impl Handler<Rerecord> for Hub {
    type Result = ();

    fn handle(&mut self, _: Rerecord, ctx: &mut Context<Self>) {
        let sessions: Vec<Session> = self
            .connections
            .iter()
            .flat_map(|(participant, list)| {
                list.iter().map(|c| Session {
                    id: self.session_id(c.id),
                    participant: participant.clone(),
                    node: self.node.clone(),
                })
            })
            .collect();
        let directory = self.directory.clone();
        ctx.spawn(
            async move {
                for session in sessions {
                    if let Err(e) = directory.add_session(session).await {
                        tracing::warn!(error = %e, "could not record a session again");
                    }
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, ctx: &mut Context<Self>) {
        if let Some(list) = self.connections.get_mut(&msg.participant) {
            let before = list.len();
            list.retain(|c| c.id != msg.id);
            if list.len() < before {
                metrics().websocket_connections.dec();
            }
            if list.is_empty() {
                self.connections.remove(&msg.participant);
            }
        }
        let directory = self.directory.clone();
        let session = self.session_id(msg.id);
        ctx.spawn(
            async move {
                if let Err(e) = directory.remove_session(&session).await {
                    tracing::warn!(error = %e, "could not remove a session");
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<Deliver> for Hub {
    type Result = usize;

    fn handle(&mut self, msg: Deliver, _: &mut Context<Self>) -> usize {
        let mut delivered = 0;
        for participant in &msg.to {
            let Some(list) = self.connections.get(participant) else {
                continue;
            };
            let _span = msg
                .origin
                .as_ref()
                .map(|o| spans::deliver(&o.position, &o.id, participant, list.len(), o.parent));
            for conn in list {
                match conn.tx.try_send(Outgoing::Text(msg.frame.clone())) {
                    Ok(()) => delivered += 1,
                    Err(Refused::Full) => {
                        tracing::warn!(
                            participant,
                            connection = conn.id,
                            "slow consumer: closing its connection"
                        );
                        if !conn.kick.is_cancelled() {
                            metrics().slow_clients_disconnected.inc();
                        }
                        conn.kick.cancel();
                    }
                    Err(Refused::Closed) => {}
                }
            }
        }
        delivered
    }
}

impl Handler<CountConnections> for Hub {
    type Result = usize;

    fn handle(&mut self, _: CountConnections, _: &mut Context<Self>) -> usize {
        self.connections.values().map(Vec::len).sum()
    }
}
