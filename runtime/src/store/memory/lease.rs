//! Leases of the embedded store: one record per resource holding the newest token ever granted
//! and the current holder, if any.
//!
//! A renewal (the holder acquiring again before expiry) keeps the token and extends the expiry;
//! any other grant (first, after expiry, after release) takes the next token.

use crate::store::{Error, Lease};
use serde::{Deserialize, Serialize};

/// The lease state of one resource (also its durable record).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(super) struct LeaseRecord {
    /// The newest token granted (0 = never granted); never decreases.
    pub last_token: u64,
    /// Who holds the lease of `last_token`, until when (`None` once released).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<Holder>,
}

/// The holder of a resource's newest lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Holder {
    /// Who holds it.
    pub owner: String,
    /// When it lapses, epoch ms.
    pub expires_at: i64,
}

impl LeaseRecord {
    /// The lease `owner` would get at `now` for `ttl_ms`, with the record after granting it;
    /// `None` while another owner holds an unexpired lease.
    pub fn acquire(
        &self,
        resource: &str,
        owner: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Option<(LeaseRecord, Lease)> {
        let token = match self.live_holder(now) {
            Some(holder) if holder.owner != owner => return None,
            Some(_) => self.last_token,
            None => self.last_token.saturating_add(1),
        };
        let expires_at = now.saturating_add(ttl_ms);
        let record = LeaseRecord {
            last_token: token,
            holder: Some(Holder {
                owner: owner.to_string(),
                expires_at,
            }),
        };
        let lease = Lease {
            resource: resource.to_string(),
            owner: owner.to_string(),
            token,
            expires_at,
        };
        Some((record, lease))
    }

    /// The record after `lease` is given up, or `None` if it is not the current one.
    pub fn release(&self, lease: &Lease) -> Option<LeaseRecord> {
        self.is_current(lease).then_some(LeaseRecord {
            last_token: self.last_token,
            holder: None,
        })
    }

    /// Whether `lease` is still valid at `now`: the newest granted, held, and unexpired.
    pub fn check(record: Option<&LeaseRecord>, lease: &Lease, now: i64) -> Result<(), Error> {
        match record {
            Some(r) if r.is_current(lease) && r.live_holder(now).is_some() => Ok(()),
            _ => Err(Error::Fenced {
                resource: lease.resource.clone(),
                token: lease.token,
                current: record.map_or(0, |r| r.last_token),
            }),
        }
    }

    /// The holder, if its lease has not lapsed at `now`.
    fn live_holder(&self, now: i64) -> Option<&Holder> {
        self.holder.as_ref().filter(|h| now < h.expires_at)
    }

    /// Whether `lease` is the one this record's holder holds.
    fn is_current(&self, lease: &Lease) -> bool {
        lease.token == self.last_token
            && self.holder.as_ref().is_some_and(|h| h.owner == lease.owner)
    }
}
