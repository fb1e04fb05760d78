//! The session service: WebSocket and HTTP clients, authenticated, sending events and receiving
//! their messages.

pub mod addresses;
pub mod budget;
pub mod connection;
pub mod console;
pub mod feed;
pub mod gate;
pub mod http;
pub mod hub;
pub mod intake;
pub mod limit;
pub mod pressure;
pub mod protocol;
pub mod queue;
pub mod slot;

use crate::auth::Verifier;
use crate::supervisor::{self, Consumption, Reading, Supervised};
use actix::Actor;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use threds_patterns::model::SessionsModel;
use threds_runtime::bus::{driver, Bus};
use threds_runtime::config::ServerConfig;
use threds_runtime::store::{RateBudgets, SessionDirectory};
use threds_runtime::topology::Topology;
use tokio_util::sync::CancellationToken;

/// What the session role runs on.
pub struct Role<'a> {
    /// Token verification (its key set, if any, is fetched by a task this role starts).
    pub verifier: Verifier,
    /// Roles of participants.
    pub model: Arc<SessionsModel>,
    /// The bus (client events in, messages out).
    pub bus: Arc<dyn Bus>,
    /// Where sessions are recorded.
    pub directory: Arc<dyn SessionDirectory>,
    /// Where the participants' rate budgets are held (shared by every session node).
    pub rates: Arc<dyn RateBudgets>,
    /// The deployment's names.
    pub topology: &'a Topology,
    /// This process's name.
    pub node: &'a str,
    /// Frame and queue limits.
    pub server: &'a ServerConfig,
    /// Closes connections and stops the feed.
    pub shutdown: CancellationToken,
    /// Whether the console mints tokens (`threds dev`).
    pub minting: http::Minting,
}

/// Starts the session role: the hub, the node's delivery slot, and the feed of that slot into the
/// hub (supervised). Answers the feed, whether it holds its slot (the node's readiness), and what
/// the HTTP routes need.
pub fn start(role: Role<'_>) -> (Supervised, Arc<AtomicBool>, http::SessionState) {
    let hub = hub::Hub::new(role.node.to_owned(), role.directory.clone()).start();
    let slot = slot::Keeper {
        directory: role.directory,
        bus: role.bus.clone(),
        topic: role.topology.sessions().to_owned(),
        node: role.node.to_owned(),
        ttl: std::time::Duration::from_millis(role.server.session_slot_ttl_ms),
        hub: hub.clone(),
        shutdown: role.shutdown.clone(),
    }
    .start();
    let feed_hub = hub.clone();
    let holds = Arc::new(AtomicBool::new(false));
    let feed_holds = holds.clone();
    let feed = supervisor::consume(
        Consumption {
            bus: role.bus.clone(),
            group: format!("delivery slot of {}", role.node),
            topics: vec![role.topology.sessions().to_owned()],
            member: role.node.to_owned(),
            options: driver::Options::new("sessions").max_records(512),
            shutdown: role.shutdown.clone(),
            reading: Reading::Tail(slot),
        },
        move || feed::Feed::new(feed_hub.clone(), feed_holds.clone()),
    );
    if let Some(keys) = role.verifier.key_set() {
        tracing::info!(
            url = keys.url(),
            "verifying RS256/ES256 tokens against the key set"
        );
        actix_web::rt::spawn(keys.clone().run(role.shutdown.clone()));
    }
    let state = http::SessionState {
        verifier: role.verifier,
        sessions: role.model,
        hub,
        intake: intake::Intake::new(role.bus.clone(), role.topology.events().to_owned())
            .with_pressure(pressure::Pressure::new(
                role.bus,
                vec![pressure::Watched {
                    group: role.topology.engine_group(),
                    topic: role.topology.events().to_owned(),
                    keyed: true,
                }],
                role.server,
            )),
        server: role.server.clone(),
        budget: Arc::new(budget::ParticipantBudget::new(
            role.rates,
            role.server.participant_events_per_sec,
            role.server.participant_events_burst,
            role.server.participant_bytes_per_sec,
        )),
        addresses: addresses::PerAddress::new(role.server.max_connections_per_address),
        in_flight: gate::Gate::new(role.server.max_requests_in_flight),
        shutdown: role.shutdown,
        minting: role.minting,
    };
    (feed, holds, state)
}
