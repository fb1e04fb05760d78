//! Resident memory across 1,000,000 evaluations of the benchmark filter:
//! `cargo bench -p threds-patterns --bench memory`. Prints RSS at checkpoints; flat means no
//! per-evaluation growth (no leaks, no arenas that only grow).

#![allow(clippy::unwrap_used, missing_docs)]

#[path = "support/event_host.rs"]
mod event_host;
use event_host::EventHost;
use serde_json::json;
use threds_patterns::expr::Expression;

/// Resident set size in KiB (Linux), or 0 where unknown.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

fn main() {
    let filter =
        Expression::compile("$event.type = 'org.wt.echo' and $valueNamed('count') > 10").unwrap();
    let host = EventHost {
        event: json!({"id": "e1", "type": "org.wt.echo", "source": {"id": "p1"}, "data": {"content": {"values": {"count": 42}}}}),
    };
    let total = 1_000_000u32;
    let mut matched = 0u32;
    let mut samples = Vec::new();
    for i in 0..total {
        if filter.evaluate_truthy(&host).unwrap() {
            matched += 1;
        }
        if i % 100_000 == 0 {
            samples.push((i, rss_kib()));
        }
    }
    samples.push((total, rss_kib()));
    assert_eq!(matched, total);
    println!("evaluations  rss_kib");
    for (i, rss) in &samples {
        println!("{i:>11}  {rss}");
    }
    let first = samples[1].1;
    let last = samples[samples.len() - 1].1;
    println!(
        "growth after the first 100,000 evaluations: {} KiB",
        last as i64 - first as i64
    );
}
