//! Leases by Redlock over N independent Redis masters, with fencing tokens.
//!
//! The algorithm is the published one (antirez, "Distributed locks with Redis"): a client locks
//! the resource on every master, with a short per-master timeout; it has the lock if a majority
//! (N/2 + 1) granted it and time is left: `validity = ttl - elapsed - drift`, with
//! `drift = ttl * 1% + 2 ms`. Otherwise it unlocks everywhere and, if no majority was refused
//! outright, tries again after a random pause. The holder extends its lease by acquiring again:
//! each master extends a lock it holds.
//!
//! Two changes follow from the store port. Expiry is by the store clock: every step is given
//! `now` and each lock record keeps its expiry time (`exp`), instead of the master's own key
//! timer (a `PEXPIRE` is still set, well after `exp`, only to remove dead records). So engines
//! must keep their clocks within the drift; when they do not, fencing (below) keeps the state
//! safe and only liveness suffers. And every grant gets a fencing token:
//!
//! 1. each master keeps a token counter per resource (`lock-token:{resource}`); a new grant reads
//!    the counters of every master that answered and proposes `max + 1`;
//! 2. the state server (the first URL) records the grant in `fence:{resource}`, taking
//!    `max(proposal, newest + 1)`; it refuses while another owner holds an unexpired grant there;
//! 3. the token is written back to the counters of the masters that locked; a majority must take
//!    it before the lease is returned.
//!
//! Why tokens strictly increase: the fence record is a single Lua-atomic register that only
//! accepts a new token above the newest it holds, and commits check against it, so the tokens
//! commits can use rise as long as the state server keeps its data. Independently of it, a grant
//! G returned only after its token T reached the counters of a majority M; any later grant G'
//! could lock only after G's locks lapsed or were released (every master of M∩M' refused it
//! while G held), so it read the counters of a majority M' that intersects M after T was written
//! there, and proposes at least T + 1.
//!
//! Renewal: when a majority answers that `owner` already holds the lock with the same token T,
//! and the fence record still shows T held by `owner`, unexpired, the lease is extended with T.
//! Any other outcome is a new grant (a new token), or no lease. A renewal that fails leaves the
//! lease as the fence record has it: valid until its old expiry, unless a newer grant fences it
//! (and the fence record refuses other owners until then).
//!
//! A failed attempt unlocks its records on every master; if it had already recorded a new token
//! on the state server, it forgets that grant's holder there (the token stays used).

use super::link::Link;
use super::scripts::LockScripts;
use crate::store::memory::Clock;
use crate::store::{Error, Lease};
use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Redlock parameters: the `[store.redis.lock]` section of `threds.toml` (durations in
/// milliseconds there, as `<name>_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockSettings {
    /// Time allowed for one master to answer one step (far below a lease's ttl).
    #[serde(rename = "master_timeout_ms", with = "crate::millis")]
    pub master_timeout: Duration,
    /// Further attempts after one that got no majority without being refused by one.
    pub retries: u32,
    /// The longest random pause before such an attempt.
    #[serde(rename = "retry_jitter_ms", with = "crate::millis")]
    pub retry_jitter: Duration,
    /// How long after its expiry a lock record is removed by the server (housekeeping only).
    #[serde(rename = "record_grace_ms", with = "crate::millis")]
    pub record_grace: Duration,
}

impl Default for LockSettings {
    fn default() -> Self {
        LockSettings {
            master_timeout: Duration::from_millis(250),
            retries: 3,
            retry_jitter: Duration::from_millis(50),
            record_grace: Duration::from_secs(60),
        }
    }
}

/// The lease manager: Redlock over the store's servers, fenced on the state server.
pub struct Redlock {
    /// The masters; the first is the state server, which keeps the fence records.
    masters: Vec<Arc<Link>>,
    /// The key prefix.
    prefix: String,
    /// The store clock.
    clock: Clock,
    /// The scripts.
    scripts: LockScripts,
    /// Parameters.
    settings: LockSettings,
}

impl std::fmt::Debug for Redlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.masters.iter().map(|m| m.name()).collect();
        f.debug_struct("Redlock")
            .field("masters", &names)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// One master's answer to the lock step.
#[derive(Debug, Clone, Copy)]
struct Vote {
    /// 0 = held by another owner, 1 = already held by this owner with `token`, 2 = locked anew.
    status: i64,
    /// The token in the master's lock record.
    token: u64,
    /// The master's token counter.
    counter: u64,
}

/// How one attempt ended.
#[derive(Debug)]
enum Attempt {
    /// The lease.
    Granted(Lease),
    /// Another owner holds the resource.
    Held,
    /// No majority (split vote, masters unreachable or too slow); `Some` says why when masters
    /// could not be reached.
    Retry(Option<String>),
}

impl Redlock {
    /// Requests sent to the masters other than the state server (which the store counts).
    pub(super) fn other_requests(&self) -> u64 {
        self.masters.iter().skip(1).map(|m| m.requests()).sum()
    }

    /// Redlock over `masters` (the first is the state server).
    pub(super) fn new(
        masters: Vec<Arc<Link>>,
        prefix: &str,
        clock: Clock,
        settings: LockSettings,
    ) -> Redlock {
        Redlock {
            masters,
            prefix: prefix.to_string(),
            clock,
            scripts: LockScripts::new(),
            settings,
        }
    }

    /// How many masters make a majority.
    pub fn quorum(&self) -> usize {
        self.masters.len() / 2 + 1
    }

    /// The clock drift allowed for a lease of `ttl`: 1% of it plus 2 ms.
    pub fn drift(ttl: Duration) -> Duration {
        ttl / 100 + Duration::from_millis(2)
    }

    /// Grants or renews `resource` to `owner` for `ttl`; `None` while another owner holds it (or
    /// when no majority could be had after the retries). An error when too few masters answer.
    pub async fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error> {
        let mut tries = 0;
        loop {
            match self.attempt(resource, owner, ttl).await {
                Attempt::Granted(lease) => return Ok(Some(lease)),
                Attempt::Held => return Ok(None),
                Attempt::Retry(why) if tries >= self.settings.retries => {
                    return match why {
                        Some(why) => Err(Error::Backend(format!(
                            "lease {resource}: no majority of {} masters: {why}",
                            self.masters.len()
                        ))),
                        None => Ok(None),
                    };
                }
                Attempt::Retry(_) => {
                    tries += 1;
                    tokio::time::sleep(jitter(self.settings.retry_jitter)).await;
                }
            }
        }
    }

    /// Gives `lease` up: the fence record forgets its holder, and every master its lock.
    pub async fn release(&self, lease: &Lease) -> Result<(), Error> {
        let fenced = self
            .fence_release(&lease.resource, &lease.owner, lease.token)
            .await;
        self.unlock_all(&lease.resource, &lease.owner, lease.token, lease.token)
            .await;
        fenced
    }

    /// One try of the algorithm.
    async fn attempt(&self, resource: &str, owner: &str, ttl: Duration) -> Attempt {
        let now = (self.clock)();
        let started = Instant::now();
        let ttl_ms = millis(ttl);
        let exp = now.saturating_add(ttl_ms);
        let gc_ms = ttl_ms
            .saturating_add(millis(self.settings.record_grace))
            .max(1);
        let in_time = || started.elapsed() + Redlock::drift(ttl) < ttl;

        let votes = join_all(
            self.masters
                .iter()
                .map(|m| self.timed(m, self.lock_on(m, resource, owner, now, exp, gc_ms))),
        )
        .await;
        let quorum = self.quorum();
        let (mut granted, mut refused, mut counter) = (Vec::new(), 0, 0);
        let mut held: HashMap<u64, usize> = HashMap::new();
        let mut failures = Vec::new();
        for (i, vote) in votes.into_iter().enumerate() {
            match vote {
                Ok(vote) => {
                    counter = counter.max(vote.counter);
                    match vote.status {
                        0 => refused += 1,
                        1 => {
                            granted.push(i);
                            *held.entry(vote.token).or_default() += 1;
                        }
                        _ => granted.push(i),
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        // The token this owner already holds, if a majority says so.
        let renewal = held
            .iter()
            .max_by_key(|(_, n)| **n)
            .filter(|(_, n)| **n >= quorum)
            .map(|(token, _)| *token);
        let mine = held.keys().copied().max().unwrap_or(0);

        if granted.len() < quorum || !in_time() {
            if !granted.is_empty() {
                self.abandon(resource, owner, mine, None).await;
            }
            if refused >= quorum {
                return Attempt::Held;
            }
            let unreachable = granted.len() + refused < quorum;
            return Attempt::Retry(unreachable.then(|| failures.join("; ")));
        }

        if let Some(token) = renewal {
            // A failed renewal leaves the lease as it was on the state server: valid until its
            // old expiry unless a newer grant fences it.
            let renewed = self
                .fence_grant(resource, owner, now, exp, true, token)
                .await;
            let outcome = match renewed {
                Ok(Some(_)) if in_time() => {
                    return Attempt::Granted(lease(resource, owner, token, exp))
                }
                Ok(Some(_)) => Attempt::Retry(None),
                Ok(None) => Attempt::Held,
                Err(e) => Attempt::Retry(Some(e.to_string())),
            };
            self.abandon(resource, owner, token, None).await;
            return outcome;
        }

        let proposal = counter.saturating_add(1);
        let token = match self
            .fence_grant(resource, owner, now, exp, false, proposal)
            .await
        {
            Ok(Some(token)) => token,
            Ok(None) => {
                self.abandon(resource, owner, mine, None).await;
                return Attempt::Held;
            }
            Err(e) => {
                self.abandon(resource, owner, mine, None).await;
                return Attempt::Retry(Some(e.to_string()));
            }
        };
        let written = join_all(granted.iter().map(|&i| {
            let m = &self.masters[i];
            self.timed(m, self.lock_token_on(m, resource, owner, token, now))
        }))
        .await;
        let written = written
            .into_iter()
            .filter(|w| matches!(w, Ok(true)))
            .count();
        if written < quorum || !in_time() {
            self.abandon(resource, owner, mine, Some(token)).await;
            return Attempt::Retry(None);
        }
        Attempt::Granted(lease(resource, owner, token, exp))
    }

    /// Undoes a failed attempt: unlocks on every master the records of `owner` (pending, with
    /// `held` or with `granted`) and forgets the holder of `granted`, a token this attempt got
    /// from the state server but will not hand out (errors are ignored: records lapse anyway).
    async fn abandon(&self, resource: &str, owner: &str, held: u64, granted: Option<u64>) {
        if let Some(token) = granted {
            let _ = self.fence_release(resource, owner, token).await;
        }
        self.unlock_all(resource, owner, held, granted.unwrap_or(held))
            .await;
    }

    /// Unlocks on every master (best effort).
    async fn unlock_all(&self, resource: &str, owner: &str, token: u64, other: u64) {
        join_all(self.masters.iter().map(|m| {
            self.timed(m, async move {
                let mut call = self.scripts.unlock.prepare_invoke();
                call.arg(&self.prefix)
                    .arg(resource)
                    .arg(owner)
                    .arg(token)
                    .arg(other);
                m.script::<i64>(&call).await
            })
        }))
        .await;
    }

    /// The lock step on one master.
    async fn lock_on(
        &self,
        master: &Link,
        resource: &str,
        owner: &str,
        now: i64,
        exp: i64,
        gc_ms: i64,
    ) -> Result<Vote, Error> {
        let mut call = self.scripts.lock.prepare_invoke();
        call.arg(&self.prefix)
            .arg(resource)
            .arg(owner)
            .arg(now)
            .arg(exp)
            .arg(gc_ms);
        let (status, token, counter): (i64, u64, u64) = master.script(&call).await?;
        Ok(Vote {
            status,
            token,
            counter,
        })
    }

    /// Writes a new grant's token on one master; whether its lock record was still the owner's.
    async fn lock_token_on(
        &self,
        master: &Link,
        resource: &str,
        owner: &str,
        token: u64,
        now: i64,
    ) -> Result<bool, Error> {
        let mut call = self.scripts.lock_token.prepare_invoke();
        call.arg(&self.prefix)
            .arg(resource)
            .arg(owner)
            .arg(token)
            .arg(now);
        let kept: i64 = master.script(&call).await?;
        Ok(kept == 1)
    }

    /// Records a grant (`renew` = extend `token`; otherwise a new token, at least `token`) on the
    /// state server; the token granted, or `None` if refused.
    async fn fence_grant(
        &self,
        resource: &str,
        owner: &str,
        now: i64,
        exp: i64,
        renew: bool,
        token: u64,
    ) -> Result<Option<u64>, Error> {
        let state = &self.masters[0];
        let mut call = self.scripts.fence_grant.prepare_invoke();
        call.arg(&self.prefix)
            .arg(resource)
            .arg(owner)
            .arg(now)
            .arg(exp)
            .arg(if renew { "renew" } else { "new" })
            .arg(token);
        let (granted, token): (i64, u64) = self.timed(state, state.script(&call)).await?;
        Ok((granted == 1).then_some(token))
    }

    /// Forgets the holder of `token` on the state server.
    async fn fence_release(&self, resource: &str, owner: &str, token: u64) -> Result<(), Error> {
        let state = &self.masters[0];
        let mut call = self.scripts.fence_release.prepare_invoke();
        call.arg(&self.prefix).arg(resource).arg(owner).arg(token);
        let _: i64 = self.timed(state, state.script(&call)).await?;
        Ok(())
    }

    /// `step` on `master`, given up after the per-master timeout.
    async fn timed<T>(
        &self,
        master: &Link,
        step: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let limit = self.settings.master_timeout;
        tokio::time::timeout(limit, step).await.unwrap_or_else(|_| {
            Err(Error::Backend(format!(
                "redis {}: no answer within {limit:?}",
                master.name()
            )))
        })
    }
}

/// The lease handed out.
fn lease(resource: &str, owner: &str, token: u64, expires_at: i64) -> Lease {
    Lease {
        resource: resource.to_string(),
        owner: owner.to_string(),
        token,
        expires_at,
    }
}

/// A duration in ms, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A random pause up to `max`.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX).max(1);
    let random = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    Duration::from_nanos(random % nanos)
}
