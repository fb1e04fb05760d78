//! The pattern registry on Redis: the document in `P patterns:registry` and its version in
//! `P patterns:version`, read together in one `MULTI`/`EXEC` and replaced by a script that checks
//! the version first (`lua/registry_store.lua`).

use super::RedisStore;
use crate::store::{Error, PatternRegistry, Registry};
use async_trait::async_trait;

#[async_trait]
impl PatternRegistry for RedisStore {
    async fn registry(&self) -> Result<Registry, Error> {
        let keys = self.keys();
        let mut pipe = deadpool_redis::redis::pipe();
        pipe.atomic()
            .cmd("GET")
            .arg(keys.patterns_version())
            .cmd("GET")
            .arg(keys.patterns());
        let (version, document): (Option<u64>, Option<String>) = self.state.pipe(&pipe).await?;
        let mut registry = match document {
            Some(json) => serde_json::from_str(&json).map_err(|e| Error::Corrupt {
                key: keys.patterns(),
                reason: e.to_string(),
            })?,
            None => Registry::default(),
        };
        registry.version = version.unwrap_or(0);
        Ok(registry)
    }

    async fn store_registry(&self, expected: u64, registry: &Registry) -> Result<u64, Error> {
        let keys = self.keys();
        let document =
            serde_json::to_string(registry).map_err(|e| Error::Backend(e.to_string()))?;
        let mut invocation = self.scripts.registry_store.prepare_invoke();
        invocation
            .key(keys.patterns())
            .key(keys.patterns_version())
            .arg(expected)
            .arg(document);
        let version: i64 = self.state.script(&invocation).await?;
        u64::try_from(version).map_err(|_| {
            Error::Conflict(format!(
                "the pattern registry (changed since version {expected} was read)"
            ))
        })
    }
}
