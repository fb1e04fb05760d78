//! The `threds` command-line tool.

mod agent;
mod auth;
mod cli;
mod engine;
mod node;
mod session;
mod supervisor;

use clap::Parser;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: the engine allocates and frees many small JSON
/// values per step on several threads, where glibc's malloc spent more time than the steps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Before any HTTPS client is built (the key set's, the OTLP exporter's).
    auth::jwks::install_tls_provider();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            let bad_configuration = e
                .chain()
                .any(|cause| cause.is::<threds_runtime::config::Error>());
            if bad_configuration {
                eprintln!("error[{}]: {e:#}", threds_runtime::codes::BAD_CONFIGURATION);
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}
