//! The store ports, split by concern, and their adapters.
//!
//! - [`Threds`] ([`threds`]): thred states, pattern counters, applied offsets, durable timers, the
//!   unbound-listener index and the transactional outbox, all written by one atomic [`Commit`];
//! - [`Leases`] ([`leases`]): partition leases with fencing tokens, which commits check;
//! - [`SessionDirectory`] ([`sessions`]): which node holds each session of a participant;
//! - [`PatternRegistry`] ([`patterns`]): the pattern sources the engines run;
//! - [`RateBudgets`] ([`rates`]): token buckets shared by every node (participants' rate limits).
//!
//! Each port's module lists the guarantees its adapters MUST keep. Both adapters ([`memory`] and
//! [`redis`]) implement every port; [`Stores`] bundles one adapter's five ports for the
//! composition root. [`Threds`] and [`Leases`] work together (a commit under a lease is fenced by
//! the grants of the same adapter), so they must come from one adapter.

pub mod leases;
pub mod memory;
pub mod patterns;
pub mod rates;
pub mod redis;
pub mod sessions;
mod stores;
pub mod threds;

pub use self::leases::{Lease, Leases};
pub use self::patterns::{
    Activation, PatternRegistry, PatternVersion, Pushed, RegisteredPattern, Registry,
};
pub use self::rates::{Grant, Rate, RateBudgets};
pub use self::sessions::{Session, SessionDirectory, SlotClaim};
pub use self::stores::Stores;
pub use self::threds::{Commit, Outgoing, Pending, Stored, StoredCounter, ThredWrite, Threds};

/// Store errors (of every store port).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A thred or counter was not at the expected version: reload and retry the step.
    #[error("conflict: {0} changed since it was read")]
    Conflict(String),
    /// A newer lease of the resource exists: this holder must stop.
    #[error("fenced: lease token {token} of {resource} is older than {current}")]
    Fenced {
        /// The resource.
        resource: String,
        /// The token used.
        token: u64,
        /// The newest token granted.
        current: u64,
    },
    /// Stored data could not be decoded.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The adapter's backend failed.
    #[error("store backend: {0}")]
    Backend(String),
    /// The adapter's backend did not answer or failed (with its error).
    #[error("{what}")]
    Unavailable {
        /// What was being done, and where.
        what: String,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// The backend `what` failed with `source`.
    pub fn unavailable(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Unavailable {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// The stable code of this failure (see `docs/errors.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Fenced { .. } => crate::codes::FENCED,
            _ => crate::codes::BACKEND_UNAVAILABLE,
        }
    }
}
