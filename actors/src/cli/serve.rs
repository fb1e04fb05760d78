//! The long-running commands: `threds dev` (every role, embedded adapters by default) and the
//! production processes `threds engine`, `threds session` and `threds persistence` (one role each,
//! on Kafka, Redis and MongoDB unless the configuration selects otherwise).

use super::config::{configure, NodeArgs};
use crate::auth::{Secret, SecretSource};
use crate::node::{self, Roles, Setup};
use anyhow::Context;
use std::process::ExitCode;
use threds_patterns::machine::Machine;
use threds_runtime::config::Config;

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

/// Logs to stderr, filtered by `THREDS_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("THREDS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
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
    init_logging();
    let config = configure(&args, args.overrides())?;
    let Some(engine) = load_model(&config) else {
        return Ok(ExitCode::from(2));
    };
    let secret = Secret::resolve(&config, false)
        .context("a production process needs THREDS_JWT_SECRET (or [auth] jwt_secret)")?;
    debug_assert_ne!(secret.source, SecretSource::DevelopmentDefault);
    let node = config.node.name.clone().unwrap_or_else(host_name);
    actix_web::rt::System::new().block_on(async move {
        let (ports, storage) = super::ports::build(&config, super::ports::Profile::Production)
            .await
            .context("connecting to the backends")?;
        let setup = Setup {
            config,
            engine,
            secret,
            node,
            roles,
            storage,
        };
        node::serve(setup, ports).await
    })?;
    Ok(ExitCode::SUCCESS)
}
