//! The settings of a command: `threds.toml` (when it exists), then `THREDS_*` variables, then the
//! command-line flags ([`NodeArgs`]), all applied here; and `threds config`, which prints them.

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use threds_runtime::config::Config;

/// Options every serving command takes.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Configuration file (optional; `THREDS_*` variables override it, flags override both).
    #[arg(long, default_value = "config/threds.toml")]
    pub config: PathBuf,
    /// Pattern file or directory.
    #[arg(long, value_name = "DIR")]
    pub patterns: Option<PathBuf>,
    /// Sessions model.
    #[arg(long, value_name = "FILE")]
    pub sessions: Option<PathBuf>,
    /// Resolver config.
    #[arg(long, value_name = "FILE")]
    pub resolver: Option<PathBuf>,
    /// `host:port` of this process's HTTP server (`/livez`, `/readyz`; `/ws` and `/events` on
    /// session nodes).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// This process's name (consumer-group member, lease owner); default: `THREDS_NODE`, else
    /// the host name.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

impl NodeArgs {
    /// The settings these flags give.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            patterns: self.patterns.clone(),
            sessions: self.sessions.clone(),
            resolver: self.resolver.clone(),
            listen: self.listen.clone(),
            node: self.node.clone(),
            data_dir: None,
        }
    }
}

/// The configuration: file, then environment, then `flags`.
pub fn configure(args: &NodeArgs, flags: Overrides) -> anyhow::Result<Config> {
    super::config::load(&args.config, flags, |k| std::env::var(k).ok())
}

/// Settings given as flags (`None`: not given).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--patterns`: `[model] patterns`.
    pub patterns: Option<PathBuf>,
    /// `--sessions`: `[model] sessions`.
    pub sessions: Option<PathBuf>,
    /// `--resolver`: `[model] resolver`.
    pub resolver: Option<PathBuf>,
    /// `--listen`: `[server] listen`.
    pub listen: Option<String>,
    /// `--node`: `[node] name`.
    pub node: Option<String>,
    /// `--data-dir` (`threds dev`): `[storage] data_dir`.
    pub data_dir: Option<PathBuf>,
}

impl Overrides {
    /// Writes the given flags into `config`.
    fn apply(self, config: &mut Config) {
        let Overrides {
            patterns,
            sessions,
            resolver,
            listen,
            node,
            data_dir,
        } = self;
        if let Some(p) = patterns {
            config.model.patterns = p;
        }
        if sessions.is_some() {
            config.model.sessions = sessions;
        }
        if resolver.is_some() {
            config.model.resolver = resolver;
        }
        if let Some(l) = listen {
            config.server.listen = l;
        }
        if node.is_some() {
            config.node.name = node;
        }
        if data_dir.is_some() {
            config.storage.data_dir = data_dir;
        }
    }
}

/// The settings: the file at `path` (defaults when there is none), the variables `var` knows,
/// then `flags`; checked.
pub fn load(
    path: &Path,
    flags: Overrides,
    var: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Config> {
    let file = if path.exists() {
        Config::load(path)?
    } else {
        Config::default()
    };
    let mut config = file
        .with_env(var)
        .context("reading THREDS_* environment variables")?;
    flags.apply(&mut config);
    config.check()?;
    Ok(config)
}

/// Arguments of `threds dev`, and of `threds config`, which shows the settings `dev` would run with.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The settings' file and the flags every process takes.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Keep state, timers, offsets, history and documents in DIR across restarts.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Arguments of `threds config`.
pub type Args = DevArgs;

/// Prints the effective settings as `threds.toml` text, secrets masked.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    print!("{}", render(args, |k| std::env::var(k).ok())?);
    Ok(ExitCode::SUCCESS)
}

/// What `threds config` prints.
fn render(args: Args, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<String> {
    let mut flags = args.node.overrides();
    flags.data_dir = args.data_dir;
    let config = load(&args.node.config, flags, var)?;
    let text = config
        .to_masked_toml()
        .context("writing the settings as TOML")?;
    Ok(format!(
        "# Effective settings: {} (file), THREDS_* variables, flags; secrets masked.\n{text}",
        args.node.config.display()
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn prints_file_env_and_flags_with_secrets_masked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("threds.toml");
        std::fs::write(
            &file,
            "[auth]\njwt_secret = \"file-secret\"\n[server]\nlisten = \"0.0.0.0:1\"\n\
             [store.redis]\nurls = [\"redis://:pw-in-file@r:6379\"]\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "threds-config",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "0.0.0.0:3",
            "--data-dir",
            "/var/threds",
        ]);
        let env = |k: &str| match k {
            "THREDS_JWT_SECRET" => Some("env-secret".to_string()),
            "THREDS_SERVER_LISTEN" => Some("0.0.0.0:2".to_string()),
            "THREDS_MONGODB_URI" => Some("mongodb://u:pw-in-env@m".to_string()),
            "THREDS_KAFKA_PROPERTIES" => Some("sasl.password=pw-prop".to_string()),
            "THREDS_ENGINE_BATCH" => Some("7".to_string()),
            _ => None,
        };
        let text = render(cli.args, env).unwrap();
        for secret in [
            "file-secret",
            "env-secret",
            "pw-in-file",
            "pw-in-env",
            "pw-prop",
        ] {
            assert!(!text.contains(secret), "{secret} printed:\n{text}");
        }
        for shown in [
            "jwt_secret = \"********\"",
            "listen = \"0.0.0.0:3\"",
            "batch = 7",
            "data_dir = \"/var/threds\"",
            "redis://:********@r:6379",
            "mongodb://u:********@m",
        ] {
            assert!(text.contains(shown), "{shown} missing:\n{text}");
        }
    }

    #[test]
    fn a_bad_variable_is_an_error_naming_it() {
        let cli = Cli::parse_from(["threds-config", "--config", "/nonexistent/threds.toml"]);
        let env = |k: &str| (k == "THREDS_STORE_REDIS_POOL_SIZE").then(|| "lots".to_string());
        let err = format!("{:#}", render(cli.args, env).unwrap_err());
        assert!(
            err.contains("THREDS_STORE_REDIS_POOL_SIZE") && err.contains("store.redis.pool_size"),
            "{err}"
        );
    }
}
