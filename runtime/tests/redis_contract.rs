//! The store contract (every suite), unchanged, against the Redis adapter on real `redis-server`
//! processes: one master, three masters (leases by Redlock), reopening on a running server, and
//! reopening after the server was SIGKILLed and restarted from its append-only file. Also counts
//! the server-side commands of a commit, and shares a rate bucket between clients with skewed
//! clocks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use threds_patterns::thred::{ThredContext, ThredState};
use threds_runtime::store::redis::{Config, RedisStore};
use threds_runtime::store::{Commit, Rate, RateBudgets, Stores, ThredWrite, Threds};
use threds_runtime::topology::{self, StoreKeys};
use threds_testkit::contract::store::{run_all, run_durability, ManualClock};
use threds_testkit::redis::{available, RedisServer};

/// Numbers key prefixes so every case gets an empty store on a shared server.
static CASE: AtomicUsize = AtomicUsize::new(0);

/// The ports of a store on `urls` with a prefix no other case uses, on `clock`.
fn fresh(urls: Vec<String>, clock: ManualClock) -> Stores {
    let prefix = format!("test{}:", CASE.fetch_add(1, Ordering::Relaxed));
    Stores::of(store(urls, &prefix, clock))
}

/// A store on `urls` under `prefix`, on `clock`.
fn store(urls: Vec<String>, prefix: &str, clock: ManualClock) -> RedisStore {
    let config = Config::new(urls).with_prefix(prefix);
    let store = RedisStore::with_clock(config, Arc::new(move || clock.now()));
    store.unwrap_or_else(|e| panic!("redis store: {e}"))
}

/// A server, or `None` (skipped) when redis-server is missing.
fn server(test: &str, options: &[&str]) -> Option<RedisServer> {
    if !available(test) {
        return None;
    }
    Some(RedisServer::start_with(options).unwrap_or_else(|e| panic!("redis-server: {e}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_contract_holds_on_one_master() {
    let Some(server) = server("redis contract", &[]) else {
        return;
    };
    let url = server.url();
    run_all(|clock| {
        let url = url.clone();
        async move { fresh(vec![url], clock) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_contract_holds_with_redlock_over_three_masters() {
    let Some(state) = server("redis contract (3 masters)", &[]) else {
        return;
    };
    let others = [RedisServer::start(), RedisServer::start()];
    let others: Vec<RedisServer> = others
        .into_iter()
        .map(|s| s.unwrap_or_else(|e| panic!("redis-server: {e}")))
        .collect();
    let urls = vec![state.url(), others[0].url(), others[1].url()];
    run_all(|clock| {
        let urls = urls.clone();
        async move { fresh(urls, clock) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_reopening_the_store() {
    let Some(server) = server("redis durability", &[]) else {
        return;
    };
    let url = server.url();
    run_durability(|clock, name| {
        let prefix = format!("reopen-{name}:");
        let url = url.clone();
        async move { Stores::of(store(vec![url], &prefix, clock)) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_a_killed_server_with_an_fsynced_append_only_file() {
    let options = ["--appendonly", "yes", "--appendfsync", "always"];
    let Some(server) = server("redis crash durability", &options) else {
        return;
    };
    let url = server.url();
    let server = Mutex::new(server);
    let opened = AtomicUsize::new(0);
    run_durability(|clock, name| {
        // Every opening but the first follows a SIGKILL of the server and its restart.
        if opened.fetch_add(1, Ordering::SeqCst) > 0 {
            let mut server = server.lock().unwrap_or_else(|e| e.into_inner());
            server.kill();
            server
                .restart()
                .unwrap_or_else(|e| panic!("restart redis-server: {e}"));
        }
        let prefix = format!("crash-{name}:");
        let url = url.clone();
        async move { Stores::of(store(vec![url], &prefix, clock)) }
    })
    .await;
}

/// The calls of each command on the server so far (`INFO commandstats`; commands a script runs
/// count too), without `INFO` itself.
fn commands(server: &RedisServer) -> BTreeMap<String, u64> {
    let info = server
        .command("INFO commandstats")
        .unwrap_or_else(|e| panic!("INFO: {e}"));
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name.to_string(), calls.parse().ok()?))
        })
        .filter(|(name, _)| name != "info")
        .collect()
}

/// The calls of each command between two [`commands`] readings.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(name, calls)| (name.clone(), calls - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, calls)| *calls > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_one_round_trip() {
    let Some(server) = server("redis round trips", &[]) else {
        return;
    };
    let clock = ManualClock::new(1_000_000);
    let store = store(vec![server.url()], "trips:", clock);
    let state = |step: i64| ThredState {
        thred_context: ThredContext {
            thred_id: "t".into(),
            scope: serde_json::Map::new(),
            participant_ids: vec!["alice".into()],
        },
        ..ThredState::bare("t", "p", step)
    };
    let save = |step: i64, expected| Commit {
        threds: vec![ThredWrite::Save {
            state: state(step),
            expected,
            partition: 0,
            timer: None,
            listens_unbound: true,
        }],
        applied: vec![("events".into(), 0, u64::try_from(step).unwrap_or(0))],
        ..Commit::default()
    };
    // The first commit connects and loads the script (EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA).
    store
        .commit(None, save(1, None))
        .await
        .expect("first commit");
    let before = commands(&server);
    let commits: u64 = 50;
    for step in 2..2 + commits {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        let expected = u64::try_from(step - 1).ok();
        store
            .commit(None, save(step, expected))
            .await
            .expect("commit");
    }
    let calls = delta(&before, &commands(&server));
    let evalsha = calls.get("evalsha").copied().unwrap_or(0);
    let inside: u64 = calls.values().sum::<u64>() - evalsha;
    eprintln!(
        "redis round trips per commit: {} (EVALSHA {evalsha} for {commits} commits; \
         {} commands per commit run inside the script: {calls:?})",
        evalsha as f64 / commits as f64,
        inside as f64 / commits as f64,
    );
    assert_eq!(evalsha, commits, "one EVALSHA per commit");
    for client_only in [
        "ping",
        "unwatch",
        "multi",
        "exec",
        "eval",
        "script",
        "evalsha_ro",
    ] {
        assert!(
            !calls.contains_key(client_only),
            "a commit sends nothing but EVALSHA: {calls:?}"
        );
    }
}

/// Two store clients (two session nodes) whose clocks are an hour apart draw on one rate bucket:
/// it runs on the server's clock, so neither sees it refilled by its own skew; and its key expires
/// once the bucket would be full again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_with_skewed_clocks_share_a_rate_bucket_that_expires_when_full() {
    let Some(server) = server("redis rate budgets", &[]) else {
        return;
    };
    let a = store(vec![server.url()], "rates:", ManualClock::new(1_000_000));
    let b = store(
        vec![server.url()],
        "rates:",
        ManualClock::new(1_000_000 + 3_600_000),
    );
    let rate = Rate::new(1, 10);
    let bucket = topology::participant_events_bucket("alice");
    let mut granted = Vec::new();
    for _ in 0..10 {
        for node in [&a, &b] {
            let grant = node.take(&bucket, rate, 1).await.expect("take");
            granted.push(grant.granted);
        }
    }
    let total: u64 = granted.iter().sum();
    // The burst of 10, plus at most one token refilled while the takes ran.
    assert!((10..=11).contains(&total), "granted {total}: {granted:?}");
    let key = StoreKeys::new("rates:").rate(&bucket);
    let ttl = server
        .command(&format!("PTTL {key}"))
        .unwrap_or_else(|e| panic!("PTTL: {e}"));
    let ttl: i64 = ttl
        .trim()
        .trim_start_matches(':')
        .parse()
        .expect("PTTL reply");
    assert!(
        (9_000..=11_000).contains(&ttl),
        "{key} expires in {ttl} ms: when 10 tokens at 1/s are back, plus a second"
    );
}

/// The connections the server has open, without the one asking.
fn clients(server: &RedisServer) -> usize {
    let list = server
        .command("CLIENT LIST")
        .unwrap_or_else(|e| panic!("CLIENT LIST: {e}"));
    list.lines().filter(|l| l.contains("addr=")).count() - 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_thread_opens_its_own_connection_while_the_pool_has_room_then_threads_share() {
    let Some(server) = server("redis connections per thread", &[]) else {
        return;
    };
    let mut config = Config::new(vec![server.url()]).with_prefix("threads:");
    config.pool_size = 2;
    let store = Arc::new(RedisStore::new(config).unwrap_or_else(|e| panic!("store: {e}")));
    let threads = 4;
    // Every thread keeps its runtime (which drives the connection it opened) running until all
    // are done and counted.
    let done = Arc::new(tokio::sync::Barrier::new(threads + 1));
    let counted = Arc::new(tokio::sync::Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, done, counted) = (store.clone(), done.clone(), counted.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("runtime: {e}"));
                runtime.block_on(async {
                    let mut answered = 0;
                    for _ in 0..20 {
                        answered += usize::from(store.ping().await.is_ok());
                    }
                    done.wait().await;
                    counted.wait().await;
                    answered
                })
            })
        })
        .collect();
    done.wait().await;
    let open = clients(&server);
    counted.wait().await;
    let answered: usize = handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| panic!("a thread panicked")))
        .sum();
    assert_eq!(answered, threads * 20, "every request answered");
    assert_eq!(
        open, 2,
        "as many connections as the pool allows, shared beyond it"
    );
}
