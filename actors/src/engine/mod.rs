//! The engine role: the engine service over the events topic (its consumer, supervised, with one
//! worker actor per owned partition) and the control listener that applies other engines'
//! announcements.

pub mod service;
pub mod worker;

#[cfg(test)]
mod tests;

use crate::supervisor::{self, Consumption, Reading, Supervised, Supervisor};
use futures_util::FutureExt;
use service::EngineOptions;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::machine::Machine;
use threds_runtime::bus::driver::{self, Fatal};
use threds_runtime::bus::Bus;
use threds_runtime::config::Config;
use threds_runtime::documents::Documents;
use threds_runtime::engine::admin::{Admin, Reload};
use threds_runtime::engine::control::{self, Announcement, Announcer};
use threds_runtime::engine::partition::{self, LeaseSpec};
use threds_runtime::engine::{reload, MachineHandle, Processor};
use threds_runtime::history::History;
use threds_runtime::store::Stores;
use threds_runtime::topology::Topology;
use tokio_util::sync::CancellationToken;

/// What the engine role runs on.
pub struct Role<'a> {
    /// The settings.
    pub config: &'a Config,
    /// The loaded patterns, sessions model and resolver.
    pub machine: Machine,
    /// The bus.
    pub bus: Arc<dyn Bus>,
    /// The store ports.
    pub stores: &'a Stores,
    /// History and admin queries.
    pub documents: Arc<dyn Documents>,
    /// The deployment's names.
    pub topology: Topology,
    /// This process's name (group member, lease owner).
    pub node: String,
    /// Now, epoch ms.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Stops the role.
    pub shutdown: CancellationToken,
}

/// A started engine role.
pub struct Started {
    /// Its supervised services: the engine consumer and the control listener.
    pub services: Vec<Supervised>,
    /// Set once partitions are assigned.
    pub ready: Arc<AtomicBool>,
    /// Partition workers started again after a failure.
    pub partition_restarts: Arc<AtomicU64>,
    /// The arbiters the partition workers run on (stopped last).
    pub arbiters: Vec<actix::Arbiter>,
}

/// Starts the engine role.
pub async fn start(role: Role<'_>) -> Started {
    let Role {
        config,
        machine,
        bus,
        stores,
        documents,
        topology,
        node,
        clock,
        shutdown,
    } = role;
    let mut processor = Processor::new(
        MachineHandle::new(machine.with_quotas(config.engine.quotas())),
        stores.threds.clone(),
        stores.sessions.clone(),
        bus.clone(),
        topology.clone(),
        clock,
    )
    .with_slot_routing()
    .with_max_event_bytes(config.engine.max_event_bytes)
    .with_registry(stores.patterns.clone())
    .with_publish_breakers(
        Duration::from_millis(config.engine.publish_timeout_ms.max(1)),
        Duration::from_millis(config.engine.breaker_open_ms),
    );
    if config.engine.history {
        let history = History::new(documents.clone()).following(
            bus.clone(),
            &topology,
            threds_runtime::history::CATCH_UP_WAIT,
        );
        processor = processor.with_history(history);
    }
    let processor = Arc::new(processor);
    reload::start(
        stores.patterns.as_ref(),
        stores.threds.as_ref(),
        &config.model,
        processor.engine(),
        config.engine.pattern_versions_kept,
        processor.now(),
    )
    .await;
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let arbiters: Vec<actix::Arbiter> = (0..workers).map(|_| actix::Arbiter::new()).collect();
    let admin = Arc::new(
        Admin::new(
            processor.clone(),
            stores.patterns.clone(),
            documents,
            reloader(config),
        )
        .with_versions_kept(config.engine.pattern_versions_kept)
        .with_announcer(Announcer::new(bus.clone(), node.clone())),
    );
    let mut services = Vec::new();
    // What other engines announce (pattern reloads), in a consumer group of this engine's own.
    let (registry, handle) = (stores.patterns.clone(), processor.engine().clone());
    let watchers = processor.watchers().clone();
    let listener_node = node.clone();
    services.push(supervisor::consume(
        Consumption {
            bus: bus.clone(),
            group: topology.control_group(&node),
            topics: vec![topology.control().to_owned()],
            member: node.clone(),
            options: driver::Options::new("control"),
            shutdown: shutdown.clone(),
            reading: Reading::Group,
        },
        move || {
            let (registry, handle, watchers) = (registry.clone(), handle.clone(), watchers.clone());
            control::Listener::new(listener_node.clone(), move |announcement| {
                let (registry, handle, watchers) =
                    (registry.clone(), handle.clone(), watchers.clone());
                async move {
                    match announcement {
                        Announcement::Reload { version, .. } => {
                            reload::from_registry(registry.as_ref(), &handle, version).await
                        }
                        Announcement::Watch {
                            participant,
                            re,
                            directive,
                            at,
                            ..
                        } => {
                            watchers.apply(&participant, &re, &directive, at);
                            Ok(())
                        }
                    }
                }
            })
        },
    ));
    let ready = Arc::new(AtomicBool::new(false));
    let shared = partition::Shared {
        processor,
        admin,
        leases: stores.leases.clone(),
        bus: bus.clone(),
        max_attempts: config.engine.max_attempts,
        lease: LeaseSpec {
            owner: node.clone(),
            ttl: Duration::from_millis(config.engine.lease_ms),
        },
    };
    let partition_restarts = Arc::new(AtomicU64::new(0));
    let arbiter_handles: Vec<_> = arbiters.iter().map(actix::Arbiter::handle).collect();
    let (engine_ready, restarts) = (ready.clone(), partition_restarts.clone());
    let (group, events) = (topology.engine_group(), topology.events().to_owned());
    let batch = config.engine.batch;
    services.push(Supervisor::spawn(
        "engine",
        Box::new(move || {
            let options = EngineOptions {
                shared: shared.clone(),
                batch,
                arbiters: arbiter_handles.clone(),
                ready: engine_ready.clone(),
                restarts: restarts.clone(),
            };
            let (bus, group, events, member, stop) = (
                bus.clone(),
                group.clone(),
                events.clone(),
                node.clone(),
                shutdown.clone(),
            );
            async move {
                let consumer = bus
                    .join(&group, &[events.as_str()], &member)
                    .await
                    .map_err(|e| Fatal::caused(format!("joining {group} on {events}"), e))?;
                service::run(consumer, options, stop).await
            }
            .boxed_local()
        }),
    ));
    Started {
        services,
        ready,
        partition_restarts,
        arbiters,
    }
}

/// Pattern reloads re-read the configured files; a reload with problems keeps the running patterns.
fn reloader(config: &Config) -> Reload {
    let model = config.model.clone();
    Arc::new(move |id: Option<&str>| reload::read_files(&model, id))
}
