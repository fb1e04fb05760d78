//! `threds-bench memory`: resident memory of `threds dev` under the worst-case steady load —
//! events of the largest size a frame allows, from one participant, as fast as the server takes
//! them ([`threds_testkit::flood`]) — with the byte bounds of the defaults, and with only the
//! record-count bounds (as before byte bounds existed) for comparison.

use threds_runtime::config::Config;
use threds_testkit::rig::Launcher;

/// Arguments of `threds-bench memory`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events to send in each run.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Skip the run with record-count bounds only (it may take gigabytes).
    #[arg(long)]
    bounded_only: bool,
}

/// Settings that leave only the record-count bounds: byte retentions, connection queue bytes and
/// backpressure as good as off.
fn counts_only() -> Vec<(&'static str, String)> {
    let huge = (1u64 << 40).to_string();
    vec![
        ("THREDS_STORAGE_BUS_RETENTION_BYTES", huge.clone()),
        ("THREDS_STORAGE_HISTORY_RETENTION_BYTES", huge.clone()),
        ("THREDS_SERVER_CONNECTION_QUEUE_BYTES", huge),
        ("THREDS_SERVER_BACKPRESSURE_LAG_RECORDS", "0".to_owned()),
        ("THREDS_SERVER_BACKPRESSURE_LAG_BYTES", "0".to_owned()),
    ]
}

/// Runs the load against a fresh server with `env` on top of the benchmark's; prints and answers
/// the peak RSS in KiB.
fn run_one(
    launcher: &Launcher,
    label: &str,
    env: &[(&'static str, String)],
    events: usize,
) -> anyhow::Result<u64> {
    let mut all = crate::unlimited();
    all.extend(env.iter().cloned());
    let server = launcher.start("dev", &["--patterns", "config/patterns"], &all)?;
    let idle = server.peak_rss_kib().unwrap_or(0);
    let bytes = Config::default().server.max_frame_bytes - 1024;
    let flooded = crate::runtime()?.block_on(threds_testkit::flood::max_size_echoes(
        &server, events, bytes,
    ));
    let peak = server.peak_rss_kib().unwrap_or(0);
    let load = crate::report::load_average();
    match flooded {
        Ok(flooded) => {
            #[allow(clippy::cast_precision_loss)]
            let rate = events as f64 / flooded.elapsed.as_secs_f64();
            println!(
                "{label}: {events} events of {} KiB in {:.1} s ({rate:.0}/s): peak RSS {peak} KiB (idle {idle} KiB), load average {load}",
                bytes / 1024,
                flooded.elapsed.as_secs_f64(),
            );
        }
        // Without backpressure the bus drops records the engines had not read yet (they skip
        // ahead): their messages never come and the load stalls; what it cost until then is still
        // worth reporting.
        Err(e) => println!(
            "{label}: the load stopped ({e}): peak RSS {peak} KiB until then (idle {idle} KiB), load average {load}"
        ),
    }
    Ok(peak)
}

/// Runs both configurations and prints the ratio.
pub fn run(launcher: &Launcher, args: &Args) -> anyhow::Result<()> {
    let bound = Config::default().memory_bound(2) / 1024;
    println!("threds-bench memory: the default settings' bound for 2 connections is {bound} KiB");
    let bounded = run_one(launcher, "byte bounds (defaults)", &[], args.events)?;
    if !args.bounded_only {
        let counts = run_one(launcher, "record counts only", &counts_only(), args.events)?;
        #[allow(clippy::cast_precision_loss)]
        let ratio = counts as f64 / bounded.max(1) as f64;
        println!("peak RSS with record counts only / with byte bounds: {ratio:.1}");
    }
    Ok(())
}
