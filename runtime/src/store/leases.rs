//! The lease port: exclusive, expiring claims on resources (partitions of the events topic), each
//! grant with a fencing token that commits of the [`Threds`](super::Threds) port check.
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::leases`, and
//! with commits by `threds_testkit::contract::store::fencing`):
//! - while a lease of a resource is unexpired and not released, no other owner is granted one;
//! - the holder acquiring again before expiry renews its lease: same token, later expiry;
//! - lease tokens of a resource strictly increase across grants, holders and restarts (any grant
//!   but a renewal takes a new token); a lease is valid while `now < expires_at` on the store
//!   clock.

use super::Error;
use async_trait::async_trait;
use std::time::Duration;

/// An exclusive, expiring claim on a resource (e.g. a partition of the events topic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// What is claimed, e.g. an events partition (`topology::Topology::partition_lease`).
    pub resource: String,
    /// Who holds it.
    pub owner: String,
    /// Strictly increasing per resource.
    pub token: u64,
    /// When it lapses unless renewed, epoch ms (store clock).
    pub expires_at: i64,
}

/// Grants, renews and releases leases.
#[async_trait]
pub trait Leases: Send + Sync + 'static {
    /// Grants or renews `resource` to `owner` for `ttl`; `None` while another owner holds it.
    async fn acquire(
        &self,
        resource: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, Error>;

    /// Gives a lease up early (no effect if it lapsed or was taken over).
    async fn release(&self, lease: &Lease) -> Result<(), Error>;
}
