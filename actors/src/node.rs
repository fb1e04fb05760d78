//! One Threds process: the roles it runs (engine, session service, persistence agent) over the
//! ports it is given, its HTTP server (`/livez` and `/readyz` always; `/ws` and `POST /events` on a
//! session node) and its orderly shutdown. `threds dev` runs every role on embedded adapters;
//! `threds engine|session|persistence` run one role each on the configured backends.

use crate::agent::persistence::{self, Identity};
use crate::auth::Secret;
use crate::engine::service::{self as engine_service, EngineOptions};
use crate::session::feed::Feed;
use crate::session::http::{routes, SessionState};
use crate::session::hub::Hub;
use crate::session::intake::Intake;
use crate::supervisor::{self, Consumption, Supervisor};
use actix::Actor;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use futures_util::FutureExt;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::machine::Machine;
use threds_runtime::bus::driver::Fatal;
use threds_runtime::bus::{driver, Bus};
use threds_runtime::config::Config;
use threds_runtime::documents::Documents;
use threds_runtime::engine::admin::{Admin, Reload};
use threds_runtime::engine::control::{self, Announcement, Announcer};
use threds_runtime::engine::partition::{self, LeaseSpec};
use threds_runtime::engine::{MachineHandle, Processor};
use threds_runtime::history::History;
use threds_runtime::store::{PatternRegistry, Stores, Threds};
use threds_runtime::topology::{collections, Topology, PERSISTENCE_AGENT};
use tokio_util::sync::CancellationToken;

/// The adapters a process runs on.
#[derive(Clone)]
pub struct Ports {
    /// The event bus.
    pub bus: Arc<dyn Bus>,
    /// The store ports (thred state, leases, session directory, pattern registry).
    pub stores: Stores,
    /// History and persistence-agent documents.
    pub documents: Arc<dyn Documents>,
}

/// Which roles a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Engine workers for the events topic's partitions (with their timers).
    pub engine: bool,
    /// The session service: `/ws`, `POST /events`, delivery to local connections.
    pub sessions: bool,
    /// The persistence agent.
    pub persistence: bool,
}

impl Roles {
    /// Every role (`threds dev`).
    pub const ALL: Roles = Roles {
        engine: true,
        sessions: true,
        persistence: true,
    };

    /// An engine process.
    pub const ENGINE: Roles = Roles {
        engine: true,
        sessions: false,
        persistence: false,
    };

    /// A session process.
    pub const SESSIONS: Roles = Roles {
        engine: false,
        sessions: true,
        persistence: false,
    };

    /// A persistence-agent process.
    pub const PERSISTENCE: Roles = Roles {
        engine: false,
        sessions: false,
        persistence: true,
    };

    fn names(self) -> Vec<&'static str> {
        [
            (self.engine, "engine"),
            (self.sessions, "sessions"),
            (self.persistence, "persistence"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Everything a process needs besides its ports.
pub struct Setup {
    /// The configuration (model files, server, engine, storage).
    pub config: Config,
    /// The loaded patterns, sessions model and resolver.
    pub engine: Machine,
    /// Token verification (session nodes).
    pub secret: Secret,
    /// This process's name: consumer-group member name (static membership) and lease owner.
    pub node: String,
    /// What the process runs.
    pub roles: Roles,
    /// A line describing where data lives, for the start-up log.
    pub storage: String,
}

/// Now, epoch ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Readiness: every started role has what it needs (partitions assigned) and the backends answer.
#[derive(Clone)]
struct Health {
    flags: Vec<(&'static str, Arc<AtomicBool>)>,
    threds: Arc<dyn Threds>,
    documents: Arc<dyn Documents>,
    /// Restarts of each supervised service.
    restarts: Vec<(String, Arc<AtomicU64>)>,
}

impl Health {
    /// `None` when ready, else what is missing.
    async fn missing(&self) -> Option<String> {
        for (name, flag) in &self.flags {
            if !flag.load(Ordering::Acquire) {
                return Some(format!("{name}: waiting for partition assignment"));
            }
        }
        let probe = Duration::from_secs(2);
        let (topic, partition) = Topology::default().probe();
        match tokio::time::timeout(probe, self.threds.applied(topic, partition)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Some(format!("thred store: {e}")),
            Err(_) => return Some("thred store: no answer within 2 s".into()),
        }
        let ping = json!({"op": "get", "params": {"type": collections::HEALTH, "matcher": {"id": "ping"}}});
        match tokio::time::timeout(probe, self.documents.run(&ping, now_ms())).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("documents: {e}")),
            Err(_) => Some("documents: no answer within 2 s".into()),
        }
    }
}

async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /metrics`: Prometheus text of the counters this process keeps.
async fn metrics(health: web::Data<Health>) -> HttpResponse {
    let mut out = String::new();
    if let Some(n) = health.threds.round_trips() {
        out.push_str(
            "# HELP threds_store_round_trips_total Requests sent to the thred store's backend.\n",
        );
        out.push_str("# TYPE threds_store_round_trips_total counter\n");
        out.push_str(&format!("threds_store_round_trips_total {n}\n"));
    }
    if !health.restarts.is_empty() {
        out.push_str("# HELP threds_service_restarts_total Restarts of a supervised service after it failed.\n");
        out.push_str("# TYPE threds_service_restarts_total counter\n");
        for (service, n) in &health.restarts {
            let n = n.load(Ordering::Relaxed);
            out.push_str(&format!(
                "threds_service_restarts_total{{service=\"{service}\"}} {n}\n"
            ));
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}

async fn readyz(health: web::Data<Health>) -> HttpResponse {
    match health.missing().await {
        None => HttpResponse::Ok().json(json!({"status": "ready"})),
        Some(why) => {
            HttpResponse::ServiceUnavailable().json(json!({"status": "not ready", "reason": why}))
        }
    }
}

/// Creates the topics this deployment uses (idempotent; a partition-count mismatch is an error).
pub async fn create_topics(bus: &dyn Bus, topology: &Topology) -> anyhow::Result<()> {
    for topic in topology.topics() {
        bus.create_topic(&topic.name, topic.partitions)
            .await
            .with_context(|| {
                format!(
                    "creating topic {} with {} partition(s)",
                    topic.name, topic.partitions
                )
            })?;
    }
    Ok(())
}

/// Starts the roles of `setup` on `ports` and runs until SIGINT/SIGTERM; then stops intake,
/// finishes in-flight steps, commits and leaves the consumer groups.
pub async fn serve(setup: Setup, ports: Ports) -> anyhow::Result<()> {
    let Setup {
        config,
        engine,
        secret,
        node,
        roles,
        storage,
    } = setup;
    let Ports {
        bus,
        stores,
        documents,
    } = ports;
    let topology = Topology::new(config.engine.partitions);
    let partitions = topology.partitions();
    create_topics(bus.as_ref(), &topology).await?;
    let me = persistence_identity(&engine);
    let patterns = engine.patterns().len();
    let sessions_model = Arc::new(engine.sessions().clone());
    let clock: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(now_ms);
    let shutdown = CancellationToken::new();
    let mut flags = Vec::new();
    let mut services = Vec::new();
    let mut restarts = Vec::new();
    let mut arbiters: Vec<actix::Arbiter> = Vec::new();

    if roles.engine {
        let mut processor = Processor::new(
            MachineHandle::new(engine),
            stores.threds.clone(),
            stores.sessions.clone(),
            bus.clone(),
            topology.clone(),
            clock.clone(),
        );
        if config.engine.history {
            processor = processor.with_history(History::new(documents.clone()).in_background());
        }
        let processor = Arc::new(processor);
        seed_registry(stores.patterns.as_ref(), &config).await;
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        arbiters = (0..workers).map(|_| actix::Arbiter::new()).collect();
        let reload = reloader(&config, processor.engine().clone());
        let admin = Arc::new(
            Admin::new(
                processor.clone(),
                stores.patterns.clone(),
                documents.clone(),
                reload,
            )
            .with_announcer(Announcer::new(bus.clone(), node.clone())),
        );
        // What other engines announce (pattern reloads), in a consumer group of this engine's own.
        let (registry, handle) = (stores.patterns.clone(), processor.engine().clone());
        let listener_node = node.clone();
        services.push(supervisor::consume(
            Consumption {
                bus: bus.clone(),
                group: topology.control_group(&node),
                topics: vec![topology.control().to_owned()],
                member: node.clone(),
                options: driver::Options::new("control"),
                shutdown: shutdown.clone(),
            },
            move || {
                let (registry, handle) = (registry.clone(), handle.clone());
                control::Listener::new(listener_node.clone(), move |announcement| {
                    let (registry, handle) = (registry.clone(), handle.clone());
                    async move {
                        match announcement {
                            Announcement::Reload { version, .. } => {
                                load_registered(registry.as_ref(), &handle, version).await
                            }
                        }
                    }
                })
            },
        ));
        let ready = Arc::new(AtomicBool::new(false));
        flags.push(("engine", ready.clone()));
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
        restarts.push(("partition".to_owned(), partition_restarts.clone()));
        let arbiter_handles: Vec<_> = arbiters.iter().map(actix::Arbiter::handle).collect();
        let (engine_bus, group, member, stop) = (
            bus.clone(),
            topology.engine_group(),
            node.clone(),
            shutdown.clone(),
        );
        let batch = config.engine.batch;
        services.push(Supervisor::spawn(
            "engine",
            Box::new(move || {
                let options = EngineOptions {
                    shared: shared.clone(),
                    batch,
                    arbiters: arbiter_handles.clone(),
                    ready: ready.clone(),
                    restarts: partition_restarts.clone(),
                };
                let (bus, group, member, stop) = (
                    engine_bus.clone(),
                    group.clone(),
                    member.clone(),
                    stop.clone(),
                );
                async move {
                    let events = Topology::default().events();
                    let consumer = bus
                        .join(&group, &[events], &member)
                        .await
                        .map_err(|e| Fatal::caused(format!("joining {group} on {events}"), e))?;
                    engine_service::run(consumer, options, stop).await
                }
                .boxed_local()
            }),
        ));
    }

    if roles.persistence {
        let (documents, bus, events) =
            (documents.clone(), bus.clone(), topology.events().to_owned());
        let stop = shutdown.clone();
        services.push(supervisor::consume(
            Consumption {
                bus: bus.clone(),
                group: topology.agent_group(PERSISTENCE_AGENT),
                topics: vec![topology.agent(PERSISTENCE_AGENT)],
                member: node.clone(),
                options: driver::Options::new("persistence"),
                shutdown: shutdown.clone(),
            },
            move || persistence::Agent {
                documents: documents.clone(),
                bus: bus.clone(),
                events_topic: events.clone(),
                me: me.clone(),
                clock: clock.clone(),
                shutdown: stop.clone(),
            },
        ));
    }

    let mut session_state = None;
    if roles.sessions {
        let hub = Hub::new(node.clone(), stores.sessions.clone()).start();
        let feed_hub = hub.clone();
        services.push(supervisor::consume(
            Consumption {
                bus: bus.clone(),
                group: topology.sessions_group(&node),
                topics: vec![topology.sessions().to_owned()],
                member: node.clone(),
                options: driver::Options::new("sessions").max_records(512),
                shutdown: shutdown.clone(),
            },
            move || Feed::new(feed_hub.clone()),
        ));
        session_state = Some(SessionState {
            secret,
            sessions: sessions_model,
            hub,
            intake: Intake::new(bus.clone(), topology.events().to_owned()),
            max_frame_bytes: config.server.max_frame_bytes,
            connection_queue: config.server.connection_queue,
            shutdown: shutdown.clone(),
        });
    }

    let health = Health {
        flags,
        threds: stores.threds,
        documents,
        restarts: services
            .iter()
            .map(|s: &supervisor::Supervised| (s.name.clone(), s.restarts.clone()))
            .chain(restarts)
            .collect(),
    };
    let limit = config.server.max_frame_bytes;
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(web::Data::new(health.clone()))
            .route("/livez", web::get().to(livez))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics));
        if let Some(state) = &session_state {
            app = app
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(limit))
                .configure(routes);
        }
        app
    })
    // Acks and messages are small frames written back to back: without this, Nagle holds the
    // second one until the client's delayed ACK (observed: +1 send period of latency).
    .tcp_nodelay(true)
    .shutdown_signal(shutdown.clone().cancelled_owned())
    .shutdown_timeout(5)
    .bind(&config.server.listen)
    .with_context(|| format!("listening on {}", config.server.listen))?;
    let roles_text = roles.names().join(", ");
    for a in server.addrs() {
        tracing::info!("threds {node} ({roles_text}) listening on http://{a} (ws://{a}/ws), {patterns} pattern(s), {partitions} partition(s), {storage}");
    }
    let signals = shutdown.clone();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: stopping intake, finishing in-flight steps");
        signals.cancel();
    });
    server.run().await.context("running the HTTP server")?;
    shutdown.cancel();
    for service in services {
        let _ = service.stopped.await;
    }
    for arbiter in arbiters {
        arbiter.stop();
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Pattern reloads re-read the configured files; a reload with problems keeps the running patterns.
fn reloader(config: &Config, handle: MachineHandle) -> Reload {
    let model = config.model.clone();
    Arc::new(move |id: Option<&str>| {
        let engine = threds_runtime::files::load_machine(
            std::slice::from_ref(&model.patterns),
            model.sessions.as_deref(),
            model.resolver.as_deref(),
        )
        .map_err(|problems| problems.join("; "))?;
        if let Some(id) = id {
            if engine.patterns().get(id).is_none() {
                return Err(format!(
                    "pattern {id} is not in {}",
                    model.patterns.display()
                ));
            }
        }
        let sources = threds_runtime::files::pattern_sources(std::slice::from_ref(&model.patterns))
            .map_err(|errors| joined(&errors))?;
        handle.replace(engine);
        tracing::info!(patterns = sources.len(), "patterns reloaded");
        Ok(sources)
    })
}

/// File problems on one line.
fn joined(errors: &[threds_runtime::files::Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Registers the pattern files when the registry is empty (the first engine of a deployment), so
/// that it holds what the engines run from the start.
async fn seed_registry(registry: &dyn PatternRegistry, config: &Config) {
    match registry.registered_patterns().await {
        Ok(registry) if registry.version > 0 => {}
        Ok(_) => {
            let paths = std::slice::from_ref(&config.model.patterns);
            match threds_runtime::files::pattern_sources(paths) {
                Ok(sources) => {
                    if let Err(e) = registry.register_patterns(sources).await {
                        tracing::warn!(error = %e, "could not register the patterns");
                    }
                }
                Err(errors) => {
                    tracing::warn!(problems = errors.len(), "pattern files not registered")
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the pattern registry"),
    }
}

/// Runs the patterns of the registry (at least at `version`) with the running engine's sessions
/// model and resolver: what another engine announced it reloaded.
async fn load_registered(
    patterns: &dyn PatternRegistry,
    handle: &MachineHandle,
    version: u64,
) -> Result<(), String> {
    let registry = patterns
        .registered_patterns()
        .await
        .map_err(|e| format!("reading the pattern registry: {e}"))?;
    if registry.version < version {
        return Err(format!(
            "the pattern registry is at version {}, older than the announced {version}",
            registry.version
        ));
    }
    let set = threds_runtime::files::registered_set(&registry.patterns).map_err(|e| joined(&e))?;
    let running = handle.current();
    let n = set.len();
    handle.replace(Machine::new(
        set,
        running.sessions().clone(),
        running.resolver().clone(),
    ));
    tracing::info!(
        patterns = n,
        version = registry.version,
        "patterns loaded from the registry"
    );
    Ok(())
}

/// The persistence agent's identity from the resolver config (defaults when absent).
fn persistence_identity(engine: &Machine) -> Identity {
    match engine.resolver().agent(PERSISTENCE_AGENT) {
        Some(a) => Identity {
            node_id: a.node_id.clone().unwrap_or_else(|| a.node_type.clone()),
            node_type: a.node_type.clone(),
            name: if a.name.is_empty() {
                "Persistence Agent".into()
            } else {
                a.name.clone()
            },
        },
        None => Identity {
            node_id: PERSISTENCE_AGENT.into(),
            node_type: PERSISTENCE_AGENT.into(),
            name: "Persistence Agent".into(),
        },
    }
}

/// Waits for SIGTERM or SIGINT.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
