//! `threds simulate`: JSON-lines events in, messages out, with a virtual clock (SIMULATE.md).

use super::ModelArgs;
use anyhow::Context;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use threds_patterns::sim::Simulator;

/// Arguments of `threds simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// The virtual clock's start, epoch ms.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    start_time: i64,
}

/// Runs the simulator over stdin; exit 2 when the patterns are invalid.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let engine = match threds_runtime::files::load_machine(
        &args.model.patterns,
        args.model.sessions.as_deref(),
        args.model.resolver.as_deref(),
    ) {
        Ok(engine) => engine,
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let mut sim = Simulator::new(engine, args.start_time);
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (i, line) in stdin.lock().lines().enumerate() {
        let line = line.with_context(|| format!("reading input line {}", i + 1))?;
        if line.trim().is_empty() {
            sim.skip_line();
            continue;
        }
        match sim.input_line(&line) {
            Ok(outputs) => {
                for o in outputs {
                    writeln!(out, "{}", o.to_json())?;
                }
            }
            Err(e) => eprintln!("{e}"),
        }
        for d in sim.take_diagnostics() {
            eprintln!("line {}: {d}", i + 1);
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
