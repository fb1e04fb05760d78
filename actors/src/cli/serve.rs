//! The long-running commands: `threds dev` (every role, embedded adapters by default) and the
//! production processes `threds engine`, `threds session` and `threds persistence` (one role each,
//! on Kafka, Redis and MongoDB unless the configuration selects otherwise).

use super::config::{configure, NodeArgs};
use crate::auth::{SecretSource, Verifier};
use crate::node::{self, Roles, Setup};
use anyhow::Context;
use std::process::ExitCode;
use threds_patterns::machine::Machine;
use threds_runtime::config::{Backend, Config};
use threds_runtime::telemetry::spans;
use threds_runtime::telemetry::traces::{self, Telemetry};

/// Loads the model files; `None` (problems printed) when any is invalid.
pub fn load_model(config: &Config) -> Option<Machine> {
    match threds_runtime::files::load_machine(
        std::slice::from_ref(&config.model.patterns),
        config.model.sessions.as_deref(),
        config.model.resolver.as_deref(),
    ) {
        Ok(engine) => Some(engine),
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            None
        }
    }
}

/// Logs to stderr (filtered by `THREDS_LOG`, default `info`, in `[telemetry] log_format`) and
/// exports spans when the `OTEL_*` variables configure an endpoint; `service` is the default
/// `service.name`. Keep the answer until the process ends (dropping it flushes the spans).
pub fn init_telemetry(
    config: &Config,
    service: &str,
    node: &str,
    roles: Roles,
) -> anyhow::Result<Telemetry> {
    let kafka = match config.bus.backend {
        Some(backend) => backend == Backend::Kafka,
        None => service != "threds-dev",
    };
    spans::set_messaging_system(if kafka { "kafka" } else { "threds" });
    let service = traces::Service {
        name: service.to_owned(),
        instance: node.to_owned(),
        roles: roles.names().join(","),
    };
    let telemetry = traces::init(&service, config.telemetry.log_format)?;
    if telemetry.exporting() {
        tracing::info!(service = service.name, "exporting spans over OTLP");
    }
    Ok(telemetry)
}

/// This host's name, for a default node name.
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| format!("threds-{}", std::process::id()))
}

/// Runs a production process with `roles` until SIGINT/SIGTERM; exit 2 on invalid configuration.
pub fn run_process(args: NodeArgs, roles: Roles) -> anyhow::Result<ExitCode> {
    let config = configure(&args, args.overrides())?;
    let node = config.node.name.clone().unwrap_or_else(host_name);
    let service = match roles.names().as_slice() {
        [one] => format!("threds-{one}"),
        _ => "threds".to_owned(),
    };
    let _telemetry = init_telemetry(&config, &service, &node, roles)?;
    let Some(engine) = load_model(&config) else {
        return Ok(ExitCode::from(2));
    };
    let verifier = Verifier::resolve(&config, false).context(
        "a production process needs [auth] jwks_url (THREDS_AUTH_JWKS_URL) or THREDS_JWT_SECRET",
    )?;
    debug_assert!(verifier
        .secret()
        .is_none_or(|s| s.source != SecretSource::DevelopmentDefault));
    actix_web::rt::System::new().block_on(async move {
        // The health endpoints answer from the start: live, and not ready until the backends do.
        let listener = node::bind(&config.server.listen)?;
        let waiting = node::waiting(&listener, &node)?;
        let health = waiting.handle();
        actix_web::rt::spawn(waiting);
        let stop = node::stop_on_signal();
        let built =
            super::ports::build(&config, roles, super::ports::Profile::Production, &stop).await;
        health.stop(false).await;
        let Some((ports, storage)) = built.context("connecting to the backends")? else {
            tracing::info!("stopped before the backends answered");
            return Ok(());
        };
        let setup = Setup {
            config,
            engine,
            verifier,
            node,
            roles,
            storage,
            dev: false,
        };
        node::serve(setup, ports, listener).await
    })?;
    Ok(ExitCode::SUCCESS)
}
