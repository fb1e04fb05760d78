//! `threds-bench dev`: load-tests a `threds dev` it starts itself (on a free port, in memory)
//! with the echo pattern over WebSocket, and reports throughput, latency and resident memory.

use crate::load::{self, echo};
use crate::report::load_average;
use anyhow::bail;
use std::time::Duration;
use threds_testkit::rig::{Launcher, Process};

/// Arguments of `threds-bench dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    load: load::Args,
    /// Live threds for the memory test.
    #[arg(long, default_value_t = 10_000)]
    live_threds: usize,
    /// Open connections for the memory test.
    #[arg(long, default_value_t = 1_000)]
    connections: usize,
    /// Only the memory test.
    #[arg(long)]
    memory_only: bool,
}

/// Starts the server, runs the measurements, prints the report.
pub fn run(launcher: &Launcher, args: &Args) -> anyhow::Result<()> {
    let server = launcher.start(
        "dev",
        &["--patterns", "config/patterns"],
        &crate::unlimited(),
    )?;
    println!(
        "threds-bench dev: server {} (pid {}), idle RSS {} KiB, load average {}",
        server.addr(),
        server.pid(),
        rss(&server),
        load_average()
    );
    let runtime = crate::runtime()?;
    runtime.block_on(async {
        if !args.memory_only {
            load::measure(&server, &args.load, None).await?;
        }
        memory(&server, args).await
    })
}

/// Resident memory of `server`, KiB (0 when unknown).
fn rss(server: &Process) -> u64 {
    server.rss_kib().unwrap_or(0)
}

/// Memory with many live threds (each unbound echo starts one; echo never terminates), then with
/// many open connections.
async fn memory(server: &Process, args: &Args) -> anyhow::Result<()> {
    let mut filler = server.connect("filler", &[]).await?;
    for chunk in (0..args.live_threds).collect::<Vec<_>>().chunks(200) {
        for i in chunk {
            filler
                .submit(&echo(format!("fill-{i}"), "nobody", None, 0))
                .await?;
        }
        let mut acks = 0usize;
        while acks < chunk.len() {
            let Some(frame) = filler.next_frame().await? else {
                bail!("the filler's connection closed")
            };
            if frame.get("ack").is_some() {
                acks += 1;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "memory: {} live threds (plus the benchmark's): RSS {} KiB",
        args.live_threds,
        rss(server)
    );
    let mut open = Vec::with_capacity(args.connections);
    for i in 0..args.connections {
        open.push(server.connect(&format!("idle{i}"), &[]).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "memory: {} open connections added: RSS {} KiB",
        args.connections,
        rss(server)
    );
    Ok(())
}
