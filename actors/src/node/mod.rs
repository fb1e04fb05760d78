//! One Threds process: the roles it runs (engine, session service, persistence agent) over the
//! ports it is given, its HTTP server (`/livez` and `/readyz` always; `/ws` and `POST /events` on a
//! session node) and its orderly shutdown. `threds dev` runs every role on embedded adapters;
//! `threds engine|session|persistence` run one role each on the configured backends.

mod health;

use crate::agent::persistence::Identity;
use crate::auth::Verifier;
use crate::session::http::routes;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use health::Health;
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::machine::Machine;
use threds_runtime::bus::Bus;
use threds_runtime::config::Config;
use threds_runtime::documents::Documents;
use threds_runtime::store::Stores;
use threds_runtime::topology::{Topology, PERSISTENCE_AGENT};
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

    /// The topics these roles read or write (readiness checks that they exist).
    pub fn topics(self, topology: &Topology) -> Vec<String> {
        let mut topics = Vec::new();
        let mut add = |topic: &str| {
            if !topics.iter().any(|t| t == topic) {
                topics.push(topic.to_owned());
            }
        };
        if self.engine {
            for topic in [
                topology.events(),
                topology.sessions(),
                topology.control(),
                topology.history(),
            ] {
                add(topic);
            }
        }
        if self.sessions {
            add(topology.sessions());
            add(topology.events());
        }
        if self.persistence {
            add(&topology.agent(threds_runtime::topology::PERSISTENCE_AGENT));
            add(topology.history());
            add(topology.events());
        }
        topics
    }

    /// The names of the roles it runs.
    pub fn names(self) -> Vec<&'static str> {
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
    pub verifier: Verifier,
    /// This process's name: consumer-group member name (static membership) and lease owner.
    pub node: String,
    /// What the process runs.
    pub roles: Roles,
    /// A line describing where data lives, for the start-up log.
    pub storage: String,
    /// `threds dev`: the console mints tokens for the sessions model's participants.
    pub dev: bool,
}

/// Now, epoch ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

/// Binds the HTTP listener at `listen` (before the backends are reached, so the address stays the
/// same while the process waits for them and after).
pub fn bind(listen: &str) -> anyhow::Result<std::net::TcpListener> {
    let listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("listening on {listen}"))?;
    Ok(listener)
}

/// Serves `/livez` (200) and `/readyz` (503, "waiting for the backends") on `listener` while the
/// process waits for its backends; stop it before [`serve`] takes the listener over.
pub fn waiting(
    listener: &std::net::TcpListener,
    node: &str,
) -> anyhow::Result<actix_web::dev::Server> {
    let listener = listener.try_clone().context("sharing the HTTP listener")?;
    let server = HttpServer::new(|| {
        App::new()
            .route("/livez", web::get().to(health::livez))
            .route("/readyz", web::get().to(health::waiting))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(0)
    .listen(listener)
    .context("serving health while waiting")?;
    for a in server.addrs() {
        tracing::info!(
            "threds {node} waiting for its backends; health on http://{a} (/livez, /readyz)"
        );
    }
    Ok(server.run())
}

/// Cancelled by SIGINT/SIGTERM (from a task of its own).
pub fn stop_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        cancel.cancel();
    });
    stop
}

/// Starts the roles of `setup` on `ports` and runs until SIGINT/SIGTERM; then stops intake,
/// finishes in-flight steps, commits and leaves the consumer groups.
pub async fn serve(
    setup: Setup,
    ports: Ports,
    listener: std::net::TcpListener,
) -> anyhow::Result<()> {
    let Setup {
        config,
        engine,
        verifier,
        node,
        roles,
        storage,
        dev,
    } = setup;
    let Ports {
        bus,
        stores,
        documents,
    } = ports;
    let topology = config.topology();
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
        let started = crate::engine::start(crate::engine::Role {
            config: &config,
            machine: engine,
            bus: bus.clone(),
            stores: &stores,
            documents: documents.clone(),
            topology: topology.clone(),
            node: node.clone(),
            clock: clock.clone(),
            shutdown: shutdown.clone(),
        })
        .await;
        flags.push(("engine", started.ready));
        restarts.push(("partition".to_owned(), started.partition_restarts));
        services.extend(started.services);
        arbiters = started.arbiters;
    }

    if roles.persistence {
        let role = crate::agent::Role {
            identity: me,
            documents: documents.clone(),
            bus: bus.clone(),
            topology: &topology,
            node: &node,
            clock,
            shutdown: shutdown.clone(),
        };
        services.push(crate::agent::start_history_sink(&role));
        services.push(crate::agent::start_persistence(role));
    }

    let mut session_state = None;
    if roles.sessions {
        let (feed, holds, state) = crate::session::start(crate::session::Role {
            verifier,
            model: sessions_model,
            bus: bus.clone(),
            directory: stores.sessions.clone(),
            rates: stores.rates.clone(),
            topology: &topology,
            node: &node,
            server: &config.server,
            shutdown: shutdown.clone(),
            minting: crate::session::http::Minting(dev),
        });
        services.push(feed);
        flags.push(("sessions feed", holds));
        session_state = Some(state);
    }

    let health = Health {
        flags,
        threds: stores.threds,
        documents,
        bus: bus.clone(),
        topics: roles.topics(&topology),
        restarts: services
            .iter()
            .map(|s: &crate::supervisor::Supervised| (s.name.clone(), s.restarts.clone()))
            .chain(restarts)
            .collect(),
    };
    let limit = config.server.max_frame_bytes;
    let server_config = &config.server;
    open_files_for(server_config.max_connections);
    // actix counts connections per worker thread: share the total among them.
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let per_worker = server_config.max_connections.div_ceil(workers).max(1);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(web::Data::new(health.clone()))
            .route("/livez", web::get().to(health::livez))
            .route("/readyz", web::get().to(health::readyz))
            .route("/metrics", web::get().to(health::metrics));
        if let Some(state) = &session_state {
            app = app
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(limit))
                .configure(routes)
                .configure(crate::session::console::routes);
        }
        app
    })
    // Acks and messages are small frames written back to back: without this, Nagle holds the
    // second one until the client's delayed ACK (observed: +1 send period of latency).
    .tcp_nodelay(true)
    .workers(workers)
    .max_connections(per_worker)
    .client_request_timeout(Duration::from_millis(server_config.header_timeout_ms))
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(Duration::from_secs(server_config.keep_alive_secs))
    .shutdown_signal(shutdown.clone().cancelled_owned())
    .shutdown_timeout(5)
    .listen(listener)
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

/// Files the process keeps open besides its connections (stores, bus, logs, data files).
const FILES_RESERVE: u64 = 256;

/// Raises the process's soft limit of open files towards its hard limit, so `max_connections`
/// sockets fit (many systems start processes with a soft limit of 1024); warns when even the hard
/// limit is too low for them.
fn open_files_for(max_connections: usize) {
    let wanted = (max_connections as u64).saturating_add(FILES_RESERVE);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            max_connections,
            "the process may open only {limit} files, fewer than [server] max_connections = {max_connections} needs; raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower max_connections"
        ),
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "could not read or raise the open files limit"),
    }
}
