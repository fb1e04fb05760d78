//! `threds dev`: the whole system in one process — engine, timers, sessions over WebSocket and
//! HTTP, the persistence agent — on embedded adapters (unless configured otherwise), from the
//! files in `config/`.

use super::config::configure;
use super::ports::{self, Profile};
use super::serve::{init_telemetry, load_model};
use crate::auth::{SecretSource, Verifier};
use crate::node::{self, Roles, Setup};
use std::process::ExitCode;
use threds_runtime::config::Backend;

/// Arguments of `threds dev`.
pub type Args = super::config::DevArgs;

/// Starts everything and runs until SIGINT/SIGTERM; exit 2 on invalid configuration.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut flags = args.node.overrides();
    flags.data_dir = args.data_dir;
    let mut config = configure(&args.node, flags)?;
    if matches!(config.bus.backend, None | Some(Backend::Memory)) {
        // The embedded bus is read by this process alone: one session node, one delivery slot.
        config.server.session_slots = 1;
    }
    let node_name = config.node.name.clone().unwrap_or_else(|| "dev".into());
    let _telemetry = init_telemetry(&config, "threds-dev", &node_name, Roles::ALL)?;
    let Some(engine) = load_model(&config) else {
        return Ok(ExitCode::from(2));
    };
    let verifier = Verifier::resolve(&config, true)?;
    if verifier
        .secret()
        .is_some_and(|s| s.source == SecretSource::DevelopmentDefault)
    {
        tracing::warn!("!!! no THREDS_JWT_SECRET or [auth] jwt_secret: using the DEVELOPMENT secret; mint tokens with `threds token` !!!");
    }
    actix_web::rt::System::new().block_on(async move {
        let listener = node::bind(&config.server.listen)?;
        let stop = node::stop_on_signal();
        let Some((ports, storage)) = ports::build(&config, Roles::ALL, Profile::Dev, &stop).await?
        else {
            return Ok(());
        };
        let setup = Setup {
            node: node_name,
            config,
            engine,
            verifier,
            roles: Roles::ALL,
            storage,
            dev: true,
        };
        node::serve(setup, ports, listener).await
    })?;
    Ok(ExitCode::SUCCESS)
}
