//! The pattern registry port: the sources of the patterns the engines run, so that an engine told
//! of a reload runs exactly what the announcing engine loaded.
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::patterns`):
//! - the registry is replaced as a whole: a reader sees the old set or the new one, never a mix;
//! - each replacement raises its version (0 = nothing registered yet).

use super::Error;
use async_trait::async_trait;

/// The pattern registry's content: the sources of the patterns the engines run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Registry {
    /// Raised by every registration (0 = nothing registered yet).
    pub version: u64,
    /// `(pattern id, pattern JSON)`, sorted by id.
    pub patterns: Vec<(String, String)>,
}

/// Keeps the registered patterns of a deployment.
#[async_trait]
pub trait PatternRegistry: Send + Sync + 'static {
    /// Replaces the registered patterns with `patterns` (`(id, JSON)`) in one step; answers the
    /// registry's new version.
    async fn register_patterns(&self, patterns: Vec<(String, String)>) -> Result<u64, Error>;

    /// The registered patterns.
    async fn registered_patterns(&self) -> Result<Registry, Error>;
}
