//! The rate budgets on Redis: one hash per bucket, `P rate:{name}`, each take by one script
//! (`lua/rate_take.lua`) on the server's clock, with a TTL so idle buckets vanish.

use super::RedisStore;
use crate::store::{Error, Grant, Rate, RateBudgets};
use async_trait::async_trait;
use std::time::Duration;

/// The most tokens one take asks for: the scripts count in doubles, exact up to 2^53.
const MOST: u64 = 1 << 53;

#[async_trait]
impl RateBudgets for RedisStore {
    async fn take(&self, bucket: &str, rate: Rate, asked: u64) -> Result<Grant, Error> {
        let rate = Rate::new(rate.per_sec.min(MOST), rate.burst.min(MOST));
        let asked = asked.min(MOST);
        let mut invocation = self.scripts.rate_take.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(bucket)
            .arg(rate.per_sec)
            .arg(rate.burst)
            .arg(asked);
        let (granted, wait_us): (u64, u64) = self.state.script(&invocation).await?;
        Ok(Grant {
            granted: granted.min(asked),
            retry_after: Duration::from_micros(wait_us),
        })
    }
}
