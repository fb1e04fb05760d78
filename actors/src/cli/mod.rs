//! Subcommands of the `threds` tool.

mod client;
mod config;
mod dev;
mod eval;
mod patterns;
mod ports;
mod serve;
mod simulate;
mod test;
mod token;
mod topics;
mod validate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Threds: event-driven workflows (patterns) run as threds.
#[derive(Debug, Parser)]
#[command(name = "threds", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole system in one process on embedded storage (engine, sessions, persistence agent).
    Dev(dev::Args),
    /// Run an engine process (workers for its share of the events partitions, with their timers).
    Engine(config::NodeArgs),
    /// Run a session process (WebSocket `/ws` and `POST /events`, delivery to its connections).
    Session(config::NodeArgs),
    /// Run a persistence-agent process (answers `org.wt.persistence` tasks from documents).
    Persistence(config::NodeArgs),
    /// Print the effective settings (file, `THREDS_*` variables, flags) as TOML, secrets masked.
    Config(config::Args),
    /// Check pattern files (and optionally a sessions model and resolver config); exit 0 if all are valid, 2 otherwise.
    Validate(validate::Args),
    /// Run patterns against JSON-lines events from stdin with a virtual clock; messages go to stdout.
    Simulate(simulate::Args),
    /// Run scenario files (events in, expected messages out); exit 0 when all pass.
    Test(test::Args),
    /// Evaluate one JSONata expression with the pattern engine's compiler.
    Eval(eval::Args),
    /// Mint a bearer token for a participant.
    Token(token::Args),
    /// Send events (a file or stdin) to a running Threds as the token's participant.
    Publish(client::PublishArgs),
    /// Print the token's participant's messages as JSON lines.
    Tail(client::TailArgs),
    /// Pattern versions of a running Threds: push (with checks), list, show, diff, activate, rollback, migrate.
    Patterns(patterns::Args),
    /// Create the deployment's Kafka topics with a replication factor (idempotent).
    Topics(topics::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Engine(args) => serve::run_process(args, crate::node::Roles::ENGINE),
        Command::Session(args) => serve::run_process(args, crate::node::Roles::SESSIONS),
        Command::Persistence(args) => serve::run_process(args, crate::node::Roles::PERSISTENCE),
        Command::Config(args) => config::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Test(args) => test::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Token(args) => token::run(args),
        Command::Publish(args) => client::publish(args),
        Command::Tail(args) => client::tail(args),
        Command::Topics(args) => topics::run(args),
        Command::Patterns(args) => patterns::run(args),
    }
}

/// The pattern, sessions and resolver options shared by `simulate` and `dev`.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// A `*.pattern.json` file or a directory of them (repeatable).
    #[arg(long = "patterns", value_name = "PATH", required = true)]
    pub patterns: Vec<PathBuf>,
    /// Sessions model (groups of participants).
    #[arg(long, value_name = "FILE")]
    pub sessions: Option<PathBuf>,
    /// Resolver config (agents and their service addresses).
    #[arg(long, value_name = "FILE")]
    pub resolver: Option<PathBuf>,
}
