//! The session directory port: which session-service node holds each connection of a
//! participant, and every participant ever connected (for `$all`).
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::sessions`):
//! - a participant's sessions are listed in the order they were added, removed ones left out;
//! - every participant that ever had a session stays listed, in first-seen order, after its
//!   sessions are gone;
//! - a delivery slot is held by at most one node at a time, until it expires (store clock) or is
//!   released; a node claiming again before expiry renews the slot it holds;
//! - [`SessionDirectory::slots_of`] answers only the slots of sessions whose node holds a live slot.
//!
//! Delivery slots are the partitions of the sessions topic: each session node holds one and reads
//! only it, and the engines address a participant's messages to the slots of its sessions' nodes
//! (ADR 0008).

use super::Error;
use async_trait::async_trait;
use std::time::Duration;

/// A delivery slot granted to a node by [`SessionDirectory::claim_slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotClaim {
    /// The slot (a partition of the sessions topic).
    pub slot: u32,
    /// Whether the node already held it (a renewal) rather than getting it now.
    pub renewed: bool,
}

/// A connection of a participant, as the session directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Unique session id.
    pub id: String,
    /// The participant.
    pub participant: String,
    /// The session-service node holding the connection.
    pub node: String,
}

/// Where the sessions of each participant are.
#[async_trait]
pub trait SessionDirectory: Send + Sync + 'static {
    /// Records a session of a participant.
    async fn add_session(&self, session: Session) -> Result<(), Error>;

    /// Forgets a session.
    async fn remove_session(&self, session_id: &str) -> Result<(), Error>;

    /// The sessions of `participant`.
    async fn sessions_of(&self, participant: &str) -> Result<Vec<Session>, Error>;

    /// Every participant that ever had a session (for `$all`).
    async fn participants(&self) -> Result<Vec<String>, Error>;

    /// Grants `node` a delivery slot among `0..slots` for `ttl`: the one it holds (renewed),
    /// else the one it held last if free, else the lowest free one; `None` when every slot is
    /// held by another node.
    async fn claim_slot(
        &self,
        node: &str,
        slots: u32,
        ttl: Duration,
    ) -> Result<Option<SlotClaim>, Error>;

    /// Gives up `node`'s slot early (no effect if it holds none).
    async fn release_slot(&self, node: &str) -> Result<(), Error>;

    /// For each of `participants` (same order), the slots of the nodes holding its sessions,
    /// ascending and without repeats; sessions whose node holds no live slot are left out (and
    /// may be forgotten).
    async fn slots_of(&self, participants: &[String]) -> Result<Vec<Vec<u32>>, Error>;
}
