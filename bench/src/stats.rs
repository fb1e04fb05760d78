//! Counts of Redis work: the engine's own count of round trips (its `/metrics`) and what Redis
//! counted (`INFO commandstats`).

use threds_testkit::http;
use threds_testkit::redis::RedisServer;

/// Redis work at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    /// Commands executed, including those run inside scripts.
    pub commands: u64,
    /// Script calls (EVALSHA, EVAL).
    pub scripts: u64,
}

/// The engine's count of Redis round trips, read from its `/metrics` at `addr`.
pub fn round_trips(addr: &str) -> Option<u64> {
    http::get(addr, "/metrics")
        .ok()?
        .body
        .lines()
        .find_map(|l| l.strip_prefix("threds_store_round_trips_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// What `redis` has executed so far (`INFO commandstats`, less the `INFO` calls themselves).
pub fn redis_calls(redis: &RedisServer) -> Option<Calls> {
    let stats = redis.command("INFO commandstats").ok()?;
    Some(commandstats(&stats))
}

/// Sums `INFO commandstats` lines.
fn commandstats(stats: &str) -> Calls {
    let mut calls = Calls {
        commands: 0,
        scripts: 0,
    };
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
        if name == "evalsha" || name == "eval" {
            calls.scripts += n;
        }
    }
    calls
}

/// Per-event Redis work between `before` and `after` over `events` events, as a report line.
pub fn per_event(
    before: (Option<Calls>, Option<u64>),
    after: (Option<Calls>, Option<u64>),
    events: f64,
) -> Option<String> {
    let (Some(c0), Some(c1)) = (before.0, after.0) else {
        return None;
    };
    let events = events.max(1.0);
    let trips = match (before.1, after.1) {
        (Some(t0), Some(t1)) => format!("{:.3}", t1.saturating_sub(t0) as f64 / events),
        _ => "?".into(),
    };
    Some(format!(
        "redis per event: {trips} round trips (engine's count), {:.3} script calls (EVALSHA), {:.2} commands in all (INFO commandstats, including those inside scripts)",
        c1.scripts.saturating_sub(c0.scripts) as f64 / events,
        c1.commands.saturating_sub(c0.commands) as f64 / events
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
                scripts: 3
            }
        );
    }
}
