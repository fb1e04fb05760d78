//! Redlock under contention: engines (each its own store, its own connections) fight over two
//! partition leases on three `redis-server` masters, renewing, releasing, letting leases lapse
//! and writing under them, while one master is SIGKILLed mid-run.
//!
//! Checked: no two owners ever hold overlapping valid leases of a resource; tokens of a resource
//! strictly increase with the order of grants and are never given to two owners; a commit under
//! a lapsed lease is refused `Fenced`; a commit with a stale version is refused `Conflict`; every
//! commit under a valid lease is applied, and none is lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use threds_patterns::thred::ThredState;
use threds_runtime::store::redis::{Config, RedisStore};
use threds_runtime::store::{Commit, Error, Lease, Leases, ThredWrite, Threds};
use threds_testkit::redis::{available, RedisServer};

/// The resources fought over.
const RESOURCES: [&str; 2] = ["events/0", "events/1"];

/// Lease time to live.
const TTL: Duration = Duration::from_millis(200);

/// How many engines fight.
const ENGINES: usize = 6;

/// How long they fight.
const RUN: Duration = Duration::from_secs(4);

/// When the third master is killed.
const KILL_AFTER: Duration = Duration::from_millis(1500);

/// The system clock, epoch ms (the stores use the same).
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The thred written under the lease of `resource`.
fn thred_of(resource: &str) -> String {
    format!("owned-by-{resource}")
}

/// Its state at `step`.
fn state(id: &str, step: i64) -> ThredState {
    ThredState::bare(id, "p", step)
}

/// A save of the resource's thred expecting `expected`.
fn step(resource: &str, expected: Option<u64>) -> Commit {
    let id = thred_of(resource);
    let step = expected.map_or(0, |v| i64::try_from(v).unwrap_or(0));
    Commit {
        threds: vec![ThredWrite::Save {
            state: state(&id, step),
            expected,
            partition: 0,
            timer: None,
            listens_unbound: false,
        }],
        ..Commit::default()
    }
}

/// A time during which one owner held one token of a resource.
#[derive(Debug, Clone)]
struct Held {
    /// The owner.
    owner: String,
    /// The token.
    token: u64,
    /// When the grant was in hand (epoch ms).
    from: i64,
    /// Until when it was valid: its last expiry, or when its holder started releasing it.
    to: i64,
}

/// What the engines saw.
#[derive(Debug, Default)]
struct Log {
    /// Per resource, per token.
    held: BTreeMap<(String, u64), Held>,
    /// Applied commits per resource.
    applied: BTreeMap<String, u64>,
    /// Commits refused `Fenced` under lapsed leases.
    fenced: u64,
    /// Commits refused `Conflict` for a stale version.
    conflicts: u64,
    /// Renewals that kept the token.
    renewals: u64,
    /// Grants (new tokens) after the kill.
    grants_after_kill: u64,
    /// `acquire` calls that failed with an error (too few masters answered in time: expected to
    /// stay 0 with two of three masters up, but a loaded machine may delay answers).
    errors: u64,
}

/// The shared log and the instant of the kill.
struct Shared {
    log: Mutex<Log>,
    killed_at: Mutex<Option<i64>>,
}

impl Shared {
    /// Runs `f` on the log.
    fn log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        f(&mut self.log.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records a lease in hand: a new token, or a renewal extending the same one.
    fn granted(&self, lease: &Lease) {
        let killed = *self.killed_at.lock().unwrap_or_else(|e| e.into_inner());
        let from = now();
        self.log(|log| {
            let key = (lease.resource.clone(), lease.token);
            match log.held.get_mut(&key) {
                Some(held) => {
                    assert_eq!(held.owner, lease.owner, "token {key:?} given to two owners");
                    held.to = held.to.max(lease.expires_at);
                    log.renewals += 1;
                }
                None => {
                    log.held.insert(
                        key,
                        Held {
                            owner: lease.owner.clone(),
                            token: lease.token,
                            from,
                            to: lease.expires_at,
                        },
                    );
                    if killed.is_some_and(|k| from > k) {
                        log.grants_after_kill += 1;
                    }
                }
            }
        });
    }

    /// Records that the holder stops using `lease` now (about to release it).
    fn ends(&self, lease: &Lease) {
        let at = now();
        self.log(|log| {
            if let Some(held) = log.held.get_mut(&(lease.resource.clone(), lease.token)) {
                held.to = held.to.min(at);
            }
        });
    }
}

/// Loads the version of the resource's thred.
async fn version(store: &RedisStore, resource: &str) -> Option<u64> {
    let found = store.load(&[thred_of(resource)]).await.expect("load");
    found.into_iter().next().flatten().map(|s| s.version)
}

/// One engine: acquire, work and renew, then release, lapse or write stale, until `deadline`.
async fn engine(
    me: String,
    store: RedisStore,
    shared: Arc<Shared>,
    deadline: Instant,
    seed: usize,
) {
    let mut round = seed;
    while Instant::now() < deadline {
        round += 1;
        let resource = RESOURCES[round % RESOURCES.len()];
        let mut lease = match store.acquire(resource, &me, TTL).await {
            Ok(Some(lease)) => lease,
            Ok(None) => {
                tokio::time::sleep(Duration::from_millis(5 + (round % 7) as u64)).await;
                continue;
            }
            Err(e) => {
                eprintln!("{me}: acquire {resource}: {e}");
                shared.log(|log| log.errors += 1);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        assert_eq!(
            (lease.resource.as_str(), lease.owner.as_str()),
            (resource, me.as_str())
        );
        shared.granted(&lease);
        for _ in 0..3 {
            // Write while the lease has clearly not lapsed: the commit must be applied.
            if now() + 30 < lease.expires_at {
                let current = version(&store, resource).await;
                match store.commit(Some(&lease), step(resource, current)).await {
                    Ok(_) => {
                        shared.log(|log| *log.applied.entry(resource.into()).or_default() += 1)
                    }
                    Err(e) => panic!("{me}: commit under a valid lease {lease:?}: {e}"),
                }
            }
            tokio::time::sleep(TTL / 4).await;
            match store.acquire(resource, &me, TTL).await {
                Ok(Some(renewed)) => {
                    shared.granted(&renewed);
                    lease = renewed;
                }
                // Not renewed: the lease stays valid until its expiry, then lapses.
                Ok(None) | Err(_) => break,
            }
        }
        match round % 3 {
            0 => {
                shared.ends(&lease);
                store.release(&lease).await.expect("release");
            }
            1 => {
                // The holder stalls past its expiry, then writes: refused.
                let wait = lease.expires_at - now() + 10;
                tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
                let current = version(&store, resource).await;
                match store.commit(Some(&lease), step(resource, current)).await {
                    Err(Error::Fenced { token, current, .. }) => {
                        assert_eq!(token, lease.token);
                        assert!(current >= lease.token);
                        shared.log(|log| log.fenced += 1);
                    }
                    other => panic!("{me}: commit under a lapsed lease {lease:?}: {other:?}"),
                }
            }
            _ => {
                // A write from a stale read, under a valid lease: refused, nothing changes.
                if now() + 30 < lease.expires_at {
                    let current = version(&store, resource).await.unwrap_or(1);
                    let stale = Some(current.saturating_sub(1));
                    match store.commit(Some(&lease), step(resource, stale)).await {
                        Err(Error::Conflict(_)) => shared.log(|log| log.conflicts += 1),
                        other => panic!("{me}: stale write under {lease:?}: {other:?}"),
                    }
                    assert_eq!(version(&store, resource).await, Some(current));
                }
                shared.ends(&lease);
                store.release(&lease).await.expect("release");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redlock_never_grants_a_lease_twice_while_a_master_dies() {
    if !available("redlock") {
        return;
    }
    let mut servers: Vec<RedisServer> = (0..3)
        .map(|_| RedisServer::start().unwrap_or_else(|e| panic!("redis-server: {e}")))
        .collect();
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let open = || {
        RedisStore::new(Config::new(urls.clone()).with_prefix("redlock:"))
            .unwrap_or_else(|e| panic!("store: {e}"))
    };
    let setup = open();
    for resource in RESOURCES {
        setup
            .commit(None, step(resource, None))
            .await
            .expect("create the threds");
    }

    let shared = Arc::new(Shared {
        log: Mutex::new(Log::default()),
        killed_at: Mutex::new(None),
    });
    let deadline = Instant::now() + RUN;
    let engines: Vec<_> = (0..ENGINES)
        .map(|i| {
            tokio::spawn(engine(
                format!("engine-{i}"),
                open(),
                Arc::clone(&shared),
                deadline,
                i,
            ))
        })
        .collect();
    tokio::time::sleep(KILL_AFTER).await;
    servers[2].kill();
    *shared.killed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(now());
    for engine in engines {
        engine.await.expect("engine task");
    }

    let log = shared.log(std::mem::take);
    for resource in RESOURCES {
        let held: Vec<&Held> = log
            .held
            .iter()
            .filter(|((r, _), _)| r == resource)
            .map(|(_, h)| h)
            .collect();
        // No two owners ever held overlapping valid leases.
        for (i, a) in held.iter().enumerate() {
            for b in &held[i + 1..] {
                if a.owner != b.owner {
                    assert!(
                        a.to <= b.from || b.to <= a.from,
                        "{resource}: overlapping leases {a:?} and {b:?}"
                    );
                }
            }
        }
        // Tokens rise with the order of grants.
        let mut by_time = held.clone();
        by_time.sort_by_key(|h| (h.from, h.token));
        for pair in by_time.windows(2) {
            assert!(
                pair[0].token < pair[1].token,
                "{resource}: token {} granted after {}",
                pair[1].token,
                pair[0].token
            );
        }
        // Every applied commit is there: the version counts them (plus the creation).
        let applied = log.applied.get(resource).copied().unwrap_or(0);
        assert_eq!(
            version(&setup, resource).await,
            Some(applied + 1),
            "{resource}: no commit lost"
        );
    }
    let grants = log.held.len();
    eprintln!(
        "redlock: {grants} grants, {} renewals, {} grants after the kill, {} commits applied, \
         {} fenced (lapsed), {} conflicts (stale), {} acquire errors",
        log.renewals,
        log.grants_after_kill,
        log.applied.values().sum::<u64>(),
        log.fenced,
        log.conflicts,
        log.errors
    );
    assert!(grants >= 10, "enough grants to mean something: {grants}");
    assert!(
        log.grants_after_kill > 0,
        "leases are granted with one master dead"
    );
    assert!(log.fenced > 0, "lapsed holders tried to write");
    assert!(log.conflicts > 0, "stale writes were tried");
}
