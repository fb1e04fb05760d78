//! `threds token --participant ID [--role ROLE]...`: mints a bearer token.

use crate::auth::{Secret, SecretSource};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `threds token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The participant the token names.
    #[arg(long)]
    participant: String,
    /// A role to grant (repeatable), e.g. `admin`.
    #[arg(long = "role")]
    roles: Vec<String>,
    /// Lifetime in seconds (default: `[auth] token_ttl_secs`).
    #[arg(long)]
    ttl: Option<u64>,
    /// Configuration file (for `[auth] jwt_secret`).
    #[arg(long, default_value = "config/threds.toml")]
    config: PathBuf,
}

/// Prints the token on stdout. The secret resolves as the server's does: `THREDS_JWT_SECRET`, the
/// config file, else the development secret that only `threds dev` accepts.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !crate::auth::valid_participant(&args.participant) {
        eprintln!(
            "--participant {:?}: not a valid participant id (1 to {} ASCII letters, digits or . _ - @ : +; not starting with $; not SYSTEM)",
            args.participant,
            crate::auth::MAX_PARTICIPANT_ID
        );
        return Ok(ExitCode::from(2));
    }
    let config = super::config::load(&args.config, Default::default(), |k| std::env::var(k).ok())?;
    let secret = Secret::resolve(&config, true)?;
    if secret.source == SecretSource::DevelopmentDefault {
        eprintln!("note: no THREDS_JWT_SECRET or [auth] jwt_secret; minted with the development secret (accepted by `threds dev` only)");
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let token = secret.mint(
        &args.participant,
        &args.roles,
        now,
        args.ttl.unwrap_or(config.auth.token_ttl_secs),
    )?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
