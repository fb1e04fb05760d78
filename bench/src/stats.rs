//! Counts of Redis work: the engine's own count of round trips (its `/metrics`) and what Redis
//! counted (`INFO commandstats`).

use std::collections::BTreeMap;
use threds_testkit::http;
use threds_testkit::redis::RedisServer;

/// Redis work at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Calls {
    /// Commands executed, including those run inside scripts.
    pub commands: u64,
    /// Script calls (EVALSHA, EVAL).
    pub scripts: u64,
    /// Calls of each command, by its lower-case name.
    pub by_command: BTreeMap<String, u64>,
}

/// The engine's counts at one moment, from its `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    /// Redis round trips.
    pub round_trips: u64,
    /// Engine batches.
    pub batches: u64,
    /// Records in those batches.
    pub batched: u64,
    /// Commits refused for a conflict (and run again).
    pub conflicts: u64,
}

/// The engine's counts, read from its `/metrics` at `addr`.
pub fn engine(addr: &str) -> Option<Engine> {
    let body = http::get(addr, "/metrics").ok()?.body;
    let read = |name: &str| -> Option<u64> {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
    };
    Some(Engine {
        round_trips: read("threds_store_round_trips_total")?,
        batches: read("threds_batch_records_count").unwrap_or(0),
        batched: read("threds_batch_records_sum").unwrap_or(0),
        conflicts: read("threds_commit_conflicts_total").unwrap_or(0),
    })
}

/// What `redis` has executed so far (`INFO commandstats`, less the `INFO` calls themselves).
pub fn redis_calls(redis: &RedisServer) -> Option<Calls> {
    let stats = redis.command("INFO commandstats").ok()?;
    Some(commandstats(&stats))
}

/// Sums `INFO commandstats` lines.
fn commandstats(stats: &str) -> Calls {
    let mut calls = Calls::default();
    for line in stats.lines() {
        let Some((name, rest)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let n: u64 = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if name == "info" {
            continue;
        }
        calls.commands += n;
        calls.by_command.insert(name.to_owned(), n);
        if name == "evalsha" || name == "eval" {
            calls.scripts += n;
        }
    }
    calls
}

/// Per-event Redis work between `before` and `after` over `events` events, as a report line.
pub fn per_event(
    before: (Option<Calls>, Option<Engine>),
    after: (Option<Calls>, Option<Engine>),
    events: f64,
) -> Option<String> {
    let (Some(c0), Some(c1)) = (&before.0, &after.0) else {
        return None;
    };
    let events = events.max(1.0);
    let (trips, batch) = match (before.1, after.1) {
        (Some(e0), Some(e1)) => (
            format!(
                "{:.3}",
                e1.round_trips.saturating_sub(e0.round_trips) as f64 / events
            ),
            format!(
                "{:.1} records per batch, {} conflicts",
                e1.batched.saturating_sub(e0.batched) as f64
                    / e1.batches.saturating_sub(e0.batches).max(1) as f64,
                e1.conflicts.saturating_sub(e0.conflicts)
            ),
        ),
        _ => ("?".into(), "?".into()),
    };
    let mut top: Vec<(u64, &str)> = c1
        .by_command
        .iter()
        .map(|(name, n)| {
            let was = c0.by_command.get(name).copied().unwrap_or(0);
            (n.saturating_sub(was), name.as_str())
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    top.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let top: Vec<String> = top
        .iter()
        .take(6)
        .map(|(n, name)| format!("{name} {:.2}", *n as f64 / events))
        .collect();
    Some(format!(
        "redis per event: {trips} round trips (engine's count; {batch}), {:.3} script calls (EVALSHA), {:.2} commands in all (INFO commandstats, including those inside scripts; most: {})",
        c1.scripts.saturating_sub(c0.scripts) as f64 / events,
        c1.commands.saturating_sub(c0.commands) as f64 / events,
        top.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::{commandstats, Calls};

    #[test]
    fn commandstats_sum_commands_and_scripts_but_not_info() {
        let stats = "# Commandstats\r\ncmdstat_evalsha:calls=3,usec=9\r\ncmdstat_hset:calls=10,usec=1\r\ncmdstat_info:calls=7,usec=1\r\n";
        assert_eq!(
            commandstats(stats),
            Calls {
                commands: 13,
                scripts: 3,
                by_command: [("evalsha".to_owned(), 3), ("hset".to_owned(), 10)].into()
            }
        );
    }
}
