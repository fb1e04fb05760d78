//! `threds dev`: the whole system in one process on embedded adapters — engine, timers, sessions
//! over WebSocket and HTTP, the persistence agent — from the files in `config/`.

use crate::agent::persistence::{self, Identity};
use crate::auth::{Secret, SecretSource};
use crate::engine::service::{self as engine_service, EngineOptions};
use crate::session::feed;
use crate::session::http::{routes, SessionState};
use crate::session::hub::Hub;
use crate::session::intake::Intake;
use actix::Actor;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use threds_runtime::bus::memory::MemoryBus;
use threds_runtime::bus::Bus;
use threds_runtime::config::Config;
use threds_runtime::documents::memory::MemoryDocuments;
use threds_runtime::documents::Documents;
use threds_runtime::engine::admin::{Admin, Reload};
use threds_runtime::engine::{agent_topic, EngineHandle, Processor, Topics};
use threds_runtime::history::History;
use threds_runtime::store::memory::MemoryStore;
use threds_runtime::store::ThredStore;
use tokio_util::sync::CancellationToken;

/// Arguments of `threds dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file.
    #[arg(long, default_value = "config/threds.toml")]
    config: PathBuf,
    /// Pattern file or directory (overrides the config).
    #[arg(long, value_name = "DIR")]
    patterns: Option<PathBuf>,
    /// Sessions model (overrides the config).
    #[arg(long, value_name = "FILE")]
    sessions: Option<PathBuf>,
    /// Resolver config (overrides the config).
    #[arg(long, value_name = "FILE")]
    resolver: Option<PathBuf>,
    /// `host:port` to listen on (overrides the config).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Keep state, timers, offsets, history and documents in DIR across restarts.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// The persistence agent's service address.
const PERSISTENCE: &str = "org.wt.persistence";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Starts everything and runs until SIGINT/SIGTERM; exit 2 on invalid configuration.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let mut config = if args.config.exists() {
        Config::load(&args.config)?
    } else {
        Config::default()
    };
    config = config.with_env(|k| std::env::var(k).ok())?;
    if let Some(p) = args.patterns {
        config.model.patterns = p;
    }
    if let Some(s) = args.sessions {
        config.model.sessions = Some(s);
    }
    if let Some(r) = args.resolver {
        config.model.resolver = Some(r);
    }
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    if let Some(d) = args.data_dir {
        config.storage.data_dir = Some(d);
    }
    let engine = match super::load_engine(
        std::slice::from_ref(&config.model.patterns),
        config.model.sessions.as_deref(),
        config.model.resolver.as_deref(),
    ) {
        Ok(engine) => engine,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let secret = Secret::resolve(&config, |k| std::env::var(k).ok(), true)?;
    if secret.source == SecretSource::DevelopmentDefault {
        tracing::warn!("!!! no THREDS_JWT_SECRET or [auth] jwt_secret: using the DEVELOPMENT secret; mint tokens with `threds token` !!!");
    }
    actix_web::rt::System::new().block_on(serve(config, engine, secret))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("THREDS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(
    config: Config,
    engine: threds_patterns::machine::Engine,
    secret: Secret,
) -> anyhow::Result<()> {
    let (bus, store, documents): (Arc<dyn Bus>, Arc<dyn ThredStore>, Arc<dyn Documents>) =
        match &config.storage.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating the data directory {}", dir.display()))?;
                (
                    Arc::new(
                        MemoryBus::open(dir)
                            .context("opening the bus log")?
                            .with_retention(config.storage.bus_retention),
                    ),
                    Arc::new(MemoryStore::open(dir).context("opening the thred store")?),
                    Arc::new(MemoryDocuments::open(dir).context("opening the documents store")?),
                )
            }
            None => (
                Arc::new(MemoryBus::new().with_retention(config.storage.bus_retention)),
                Arc::new(MemoryStore::new()),
                Arc::new(
                    MemoryDocuments::new()
                        .capped(
                            threds_runtime::history::EVENTS,
                            config.storage.history_retention,
                        )
                        .capped(
                            threds_runtime::history::THRED_LOG,
                            config.storage.history_retention,
                        ),
                ),
            ),
        };
    let topics = Topics::default();
    let partitions = config.engine.partitions;
    let persistence_topic = agent_topic(PERSISTENCE);
    bus.create_topic(&topics.events, partitions).await?;
    bus.create_topic(&topics.sessions, 1).await?;
    bus.create_topic(&persistence_topic, 1).await?;
    for topic in [&topics.events, &topics.sessions, &persistence_topic] {
        bus.create_topic(&crate::engine::worker::dead_letter_topic(topic), 1)
            .await?;
    }
    let me = persistence_identity(&engine);
    let patterns = engine.patterns().len();
    let sessions_model = Arc::new(engine.sessions().clone());
    let clock: Arc<dyn Fn() -> i64 + Send + Sync> = Arc::new(now_ms);
    let processor = Arc::new(
        Processor::new(
            EngineHandle::new(engine),
            store.clone(),
            bus.clone(),
            topics.clone(),
            partitions,
            clock.clone(),
        )
        .with_history(History::new(documents.clone())),
    );

    let shutdown = CancellationToken::new();
    let ready = Arc::new(AtomicBool::new(false));
    let node = "dev".to_string();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let arbiters: Vec<actix::Arbiter> = (0..workers).map(|_| actix::Arbiter::new()).collect();

    let consumer = bus
        .join("threds-engine", &[topics.events.as_str()], "engine-dev")
        .await?;
    let admin = Arc::new(Admin::new(
        processor.clone(),
        store.clone(),
        documents.clone(),
        reloader(&config, processor.engine().clone()),
    ));
    let options = EngineOptions {
        processor: processor.clone(),
        admin,
        store: store.clone(),
        bus: bus.clone(),
        max_attempts: config.engine.max_attempts,
        batch: config.engine.batch,
        arbiters: arbiters.iter().map(actix::Arbiter::handle).collect(),
        ready: ready.clone(),
    };
    let engine_task =
        actix_web::rt::spawn(engine_service::run(consumer, options, shutdown.clone()));

    let hub = Hub::new(node.clone(), store.clone()).start();
    let feed_consumer = bus
        .join(
            &format!("threds-sessions-{node}"),
            &[topics.sessions.as_str()],
            &node,
        )
        .await?;
    let feed_task = actix_web::rt::spawn(feed::run(feed_consumer, hub.clone(), shutdown.clone()));

    let agent_consumer = bus
        .join(
            "threds-agent-persistence",
            &[persistence_topic.as_str()],
            "persistence-dev",
        )
        .await?;
    let agent_task = actix_web::rt::spawn(persistence::run(
        agent_consumer,
        documents.clone(),
        bus.clone(),
        topics.events.clone(),
        me,
        clock,
        shutdown.clone(),
    ));

    let state = SessionState {
        secret,
        sessions: sessions_model,
        hub,
        intake: Intake::new(bus.clone(), topics.events.clone()),
        max_frame_bytes: config.server.max_frame_bytes,
        connection_queue: config.server.connection_queue,
        shutdown: shutdown.clone(),
        ready,
    };
    let limit = config.server.max_frame_bytes;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(state.clone()))
            .app_data(web::PayloadConfig::new(limit))
            .configure(routes)
    })
    // Acks and messages are small frames written back to back: without this, Nagle holds the
    // second one until the client's delayed ACK (observed: +1 send period of latency).
    .tcp_nodelay(true)
    .shutdown_signal(shutdown.clone().cancelled_owned())
    .shutdown_timeout(5)
    .bind(&config.server.listen)
    .with_context(|| format!("listening on {}", config.server.listen))?;
    let addresses = server.addrs();
    let storage = match &config.storage.data_dir {
        Some(dir) => format!("data in {}", dir.display()),
        None => "in memory (use --data-dir to keep data)".into(),
    };
    for a in &addresses {
        tracing::info!("threds dev listening on http://{a} (ws://{a}/ws), {patterns} pattern(s), {partitions} partition(s), {storage}");
    }
    let signals = shutdown.clone();
    actix_web::rt::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: stopping intake, finishing in-flight steps");
        signals.cancel();
    });
    server.run().await.context("running the HTTP server")?;
    shutdown.cancel();
    let _ = engine_task.await;
    let _ = feed_task.await;
    let _ = agent_task.await;
    for arbiter in arbiters {
        arbiter.stop();
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Pattern reloads re-read the configured files; a reload with problems keeps the running patterns.
fn reloader(config: &Config, handle: EngineHandle) -> Reload {
    let model = config.model.clone();
    Arc::new(move |id: Option<&str>| {
        let engine = super::load_engine(
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
        let n = engine.patterns().len();
        handle.replace(engine);
        tracing::info!(patterns = n, "patterns reloaded");
        Ok(n)
    })
}

/// The persistence agent's identity from the resolver config (defaults when absent).
fn persistence_identity(engine: &threds_patterns::machine::Engine) -> Identity {
    match engine.resolver().agent(PERSISTENCE) {
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
            node_id: PERSISTENCE.into(),
            node_type: PERSISTENCE.into(),
            name: "Persistence Agent".into(),
        },
    }
}

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
