//! The Redis store, implementing every store port: every structure of the ports in Redis, each
//! change made by one Lua script so it is atomic, and partition leases by Redlock with fencing
//! tokens.
//!
//! Configured with one or more Redis URLs ([`Config::urls`]). The first server holds the state;
//! leases are granted by [`Redlock`] over all of them, as independent masters (one URL = the same
//! algorithm with one master). Every key starts with [`Config::prefix`] (default `threds:`).
//!
//! Key layout (`P` = prefix), on the state server:
//! - `P thred:{id}` hash: `s` state JSON, `v` version, `t` token, `p` partition, and while the
//!   thred has a timer `d` its due time (ms) and `m` the timer JSON;
//! - `P thred:{id}` also `n`: how many participants of the thred are in the participant index;
//! - `P live` sorted set of live thred ids, every score 0 (so ordered by id, for paging);
//! - `P participant:{participant}` set of the live threds it takes part in;
//! - `P timers:{partition}` sorted set: thred id scored by due time (ties by id);
//! - `P unbound` sorted set: unbound listeners scored by when they started listening, numbered by
//!   `P seq:unbound`;
//! - `P counter:{pattern}` hash: `v` version, `c` counter JSON (also `counter:@{participant}`:
//!   the live threds a participant started);
//! - `P applied` hash: `{partition}:{topic}` → highest applied offset (decimal);
//! - `P outbox` sorted set of unacknowledged seqs; `P outbox:{seq}` hash `at`, `topic`, `key`
//!   (absent for `None`), `payload` (bytes as given); `P seq:outbox` the highest seq ever given;
//! - `P session:{id}` hash `participant`, `node`, `seq`; `P sessions:{participant}` sorted set of
//!   its session ids by `seq` (from `P seq:session`); `P participants` sorted set by first-seen
//!   order (from `P seq:participant`);
//! - `P fence:{resource}` hash: `token` newest token granted, and while held `owner`, `exp`;
//! - `P rate:{bucket}` hash: `h` tokens held, `t` when (server time, µs), expiring once the
//!   bucket would be full again (the participants' buckets are `rate:events:{participant}` and
//!   `rate:bytes:{participant}`);
//!
//! and on every lock master (the state server included): `P lock:{resource}` hash `owner`,
//! `token`, `exp` (the Redlock lock) and `P lock-token:{resource}` (the highest token it saw).
//!
//! The store clock (an injected [`Clock`], the system clock by default) gives `now` to every
//! script: lease expiry and outbox commit times follow it, not the servers' clocks. Rate buckets
//! are the exception: they run on the state server's `TIME`, so that session nodes with skewed
//! clocks share one budget.

mod commit;
mod link;
mod patterns;
mod rates;
mod read;
mod redlock;
mod scripts;
mod sessions;

pub use self::redlock::{LockSettings, Redlock};

use self::link::{Link, LinkSettings};
use self::scripts::Scripts;
use super::memory::{system_clock, Clock};
use super::{Commit, Error, Lease, Leases, Pending, Stored, StoredCounter, Threds};
use crate::topology::StoreKeys;
use async_trait::async_trait;
use deadpool_redis::redis::{cmd, Pipeline};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::thred::Timer;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = crate::topology::STORE_PREFIX;

/// Settings of a [`RedisStore`]: the `[store.redis]` section of `threds.toml` (durations in
/// milliseconds there, as `<name>_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Redis URLs (`redis://host:port/db`): the first holds the state; with more than one, leases
    /// use Redlock over all of them, which must be independent masters (not replicas).
    pub urls: Vec<String>,
    /// The prefix of every key.
    pub prefix: String,
    /// Connections per server pool (requests share one multiplexed connection; the pool replaces
    /// it when it breaks).
    pub pool_size: usize,
    /// Time allowed to open a connection.
    #[serde(rename = "connect_timeout_ms", with = "crate::millis")]
    pub connect_timeout: Duration,
    /// Time allowed for one reply of the state server.
    #[serde(rename = "response_timeout_ms", with = "crate::millis")]
    pub response_timeout: Duration,
    /// Redlock parameters (`[store.redis.lock]`).
    pub lock: LockSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            urls: vec!["redis://127.0.0.1:6379".into()],
            prefix: DEFAULT_PREFIX.to_string(),
            pool_size: 4,
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            lock: LockSettings::default(),
        }
    }
}

impl Config {
    /// The defaults with these `urls`.
    pub fn new(urls: Vec<String>) -> Config {
        Config {
            urls,
            ..Config::default()
        }
    }

    /// The same with another key prefix.
    pub fn with_prefix(mut self, prefix: &str) -> Config {
        self.prefix = prefix.to_string();
        self
    }
}

/// The store on Redis (every store port).
pub struct RedisStore {
    /// The state server.
    state: Arc<Link>,
    /// The key prefix.
    prefix: String,
    /// Where `now` comes from.
    clock: Clock,
    /// The scripts.
    scripts: Scripts,
    /// Leases.
    redlock: Redlock,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("state", &self.state.name())
            .field("prefix", &self.prefix)
            .field("redlock", &self.redlock)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on the system clock (no I/O until first used; see [`RedisStore::ping`]).
    pub fn new(config: Config) -> Result<RedisStore, Error> {
        RedisStore::with_clock(config, system_clock())
    }

    /// A store on `clock` (epoch ms), used for leases and outbox commit times.
    pub fn with_clock(config: Config, clock: Clock) -> Result<RedisStore, Error> {
        if config.urls.is_empty() {
            return Err(Error::Backend("redis store: no URL configured".into()));
        }
        let settings = LinkSettings {
            pool_size: config.pool_size,
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
        };
        let links = config
            .urls
            .iter()
            .map(|url| Link::new(url, settings).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let state = Arc::clone(&links[0]);
        let redlock = Redlock::new(links, &config.prefix, Arc::clone(&clock), config.lock);
        Ok(RedisStore {
            state,
            prefix: config.prefix,
            clock,
            scripts: Scripts::new(),
            redlock,
        })
    }

    /// Checks that the state server answers.
    pub async fn ping(&self) -> Result<(), Error> {
        let _: String = self.state.query(&cmd("PING")).await?;
        Ok(())
    }

    /// Round trips to Redis so far (state server and lock masters).
    pub fn requests(&self) -> u64 {
        self.state.requests() + self.redlock.other_requests()
    }

    /// The lease manager.
    pub fn redlock(&self) -> &Redlock {
        &self.redlock
    }

    /// The key layout under this store's prefix.
    fn keys(&self) -> StoreKeys {
        StoreKeys::new(&self.prefix)
    }
}

#[async_trait]
impl Threds for RedisStore {
    fn round_trips(&self) -> Option<u64> {
        Some(self.requests())
    }

    async fn load(&self, ids: &[String]) -> Result<Vec<Option<Stored>>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = Pipeline::with_capacity(ids.len());
        pipe.atomic();
        for id in ids {
            pipe.cmd("HMGET")
                .arg(self.keys().thred(id))
                .arg(&["s", "v", "t"]);
        }
        let rows: Vec<read::ThredRow> = self.state.pipe(&pipe).await?;
        ids.iter()
            .zip(rows)
            .map(|(id, row)| read::stored(id, row))
            .collect()
    }

    async fn thred_ids(&self) -> Result<Vec<String>, Error> {
        self.state
            .query(cmd("ZRANGE").arg(self.keys().live()).arg(0).arg(-1))
            .await
    }

    async fn thred_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let from = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        self.state
            .query(
                cmd("ZRANGE")
                    .arg(self.keys().live())
                    .arg(from)
                    .arg("+")
                    .arg("BYLEX")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit),
            )
            .await
    }

    async fn threds_of(&self, participant: &str) -> Result<Vec<String>, Error> {
        let mut ids: Vec<String> = self
            .state
            .query(cmd("SMEMBERS").arg(self.keys().participant_threds(participant)))
            .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    async fn unbound_listeners(&self) -> Result<Vec<String>, Error> {
        self.state
            .query(cmd("ZRANGE").arg(self.keys().unbound()).arg(0).arg(-1))
            .await
    }

    async fn counters(&self, pattern_ids: &[String]) -> Result<Vec<StoredCounter>, Error> {
        if pattern_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = Pipeline::with_capacity(pattern_ids.len());
        pipe.atomic();
        for id in pattern_ids {
            pipe.cmd("HMGET")
                .arg(self.keys().counter(id))
                .arg(&["v", "c"]);
        }
        let rows: Vec<read::CounterRow> = self.state.pipe(&pipe).await?;
        pattern_ids
            .iter()
            .zip(rows)
            .map(|(id, row)| read::counter(id, row))
            .collect()
    }

    async fn applied(&self, topic: &str, partition: u32) -> Result<Option<u64>, Error> {
        let field = format!("{partition}:{topic}");
        let offset: Option<String> = self
            .state
            .query(cmd("HGET").arg(self.keys().applied()).arg(&field))
            .await?;
        offset
            .map(|o| {
                o.parse().map_err(|e| Error::Corrupt {
                    key: format!("{}applied {field}", self.prefix),
                    reason: format!("offset {o:?}: {e}"),
                })
            })
            .transpose()
    }

    async fn commit(&self, lease: Option<&Lease>, commit: Commit) -> Result<Vec<u64>, Error> {
        let now = (self.clock)();
        let mut invocation = self.scripts.commit.prepare_invoke();
        commit::arguments(&mut invocation, &self.prefix, now, lease, &commit)?;
        let reply = self.state.script(&invocation).await?;
        commit::outcome(reply, lease)
    }

    async fn outbox(&self, before: i64, limit: usize) -> Result<Vec<Pending>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.outbox.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(before)
            .arg(u64::try_from(limit).unwrap_or(u64::MAX));
        let rows = self.state.script(&invocation).await?;
        read::pending(&self.prefix, rows)
    }

    async fn ack_outbox(&self, seqs: &[u64]) -> Result<(), Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut pipe = Pipeline::with_capacity(2);
        pipe.atomic();
        pipe.cmd("ZREM")
            .arg(self.keys().outbox())
            .arg(seqs)
            .ignore();
        let entries: Vec<String> = seqs.iter().map(|s| self.keys().outbox_entry(*s)).collect();
        pipe.cmd("DEL").arg(entries).ignore();
        let () = self.state.pipe(&pipe).await?;
        Ok(())
    }

    async fn due_timers(
        &self,
        partition: u32,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Timer>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.due.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(partition)
            .arg(now)
            .arg(i64::try_from(limit).unwrap_or(i64::MAX));
        let timers: Vec<Vec<u8>> = self.state.script(&invocation).await?;
        timers
            .iter()
            .map(|json| {
                serde_json::from_slice(json).map_err(|e| Error::Corrupt {
                    key: format!("{}timers:{partition}", self.prefix),
                    reason: format!("timer: {e}"),
                })
            })
            .collect()
    }

    async fn pending_timers(&self, partition: u32) -> Result<u64, Error> {
        self.state
            .query(cmd("ZCARD").arg(self.keys().timers(partition)))
            .await
    }
}

#[async_trait]
impl Leases for RedisStore {
    async fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        self.redlock.acquire(resource, owner, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<(), Error> {
        self.redlock.release(lease).await
    }
}
