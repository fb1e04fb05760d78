//! The five store ports of one adapter, bundled for the composition root, which hands each
//! consumer only the port(s) it uses.

use super::{Leases, PatternRegistry, RateBudgets, SessionDirectory, Threds};
use std::sync::Arc;

/// One adapter seen through each store port.
#[derive(Clone)]
pub struct Stores {
    /// Thred state, timers and outbox.
    pub threds: Arc<dyn Threds>,
    /// Partition leases (whose tokens `threds` checks: both must be the same adapter).
    pub leases: Arc<dyn Leases>,
    /// The session directory.
    pub sessions: Arc<dyn SessionDirectory>,
    /// The pattern registry.
    pub patterns: Arc<dyn PatternRegistry>,
    /// The rate budgets (participants' rate limits across session nodes).
    pub rates: Arc<dyn RateBudgets>,
}

impl Stores {
    /// Every port of `adapter`.
    pub fn of<A>(adapter: A) -> Stores
    where
        A: Threds + Leases + SessionDirectory + PatternRegistry + RateBudgets,
    {
        Stores::shared(Arc::new(adapter))
    }

    /// Every port of a shared `adapter` (the caller may keep its own handle).
    pub fn shared<A>(adapter: Arc<A>) -> Stores
    where
        A: Threds + Leases + SessionDirectory + PatternRegistry + RateBudgets,
    {
        Stores {
            threds: adapter.clone(),
            leases: adapter.clone(),
            sessions: adapter.clone(),
            patterns: adapter.clone(),
            rates: adapter,
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}
