//! The pattern registry on Redis: `P patterns` and `P patterns:version`, replaced together in one
//! `MULTI`/`EXEC`.

use super::RedisStore;
use crate::store::{Error, PatternRegistry, Registry};
use async_trait::async_trait;

#[async_trait]
impl PatternRegistry for RedisStore {
    async fn register_patterns(&self, patterns: Vec<(String, String)>) -> Result<u64, Error> {
        // MULTI/EXEC: readers see the old set or the new one, never a mix.
        let key = self.keys().patterns();
        let mut pipe = deadpool_redis::redis::pipe();
        pipe.atomic().cmd("DEL").arg(&key).ignore();
        if !patterns.is_empty() {
            let hset = pipe.cmd("HSET").arg(&key);
            for (id, source) in &patterns {
                hset.arg(id).arg(source);
            }
            hset.ignore();
        }
        pipe.cmd("INCR").arg(self.keys().patterns_version());
        let (version,): (u64,) = self.state.pipe(&pipe).await?;
        Ok(version)
    }

    async fn registered_patterns(&self) -> Result<Registry, Error> {
        let mut pipe = deadpool_redis::redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(self.keys().patterns_version())
            .cmd("HGETALL")
            .arg(self.keys().patterns());
        let (version, patterns): (Option<u64>, std::collections::BTreeMap<String, String>) =
            self.state.pipe(&pipe).await?;
        Ok(Registry {
            version: version.unwrap_or(0),
            patterns: patterns.into_iter().collect(),
        })
    }
}
