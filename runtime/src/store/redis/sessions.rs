//! The session directory on Redis: `P session:{id}`, `P sessions:{participant}` and
//! `P participants`, each change by one script; delivery slots in `P slot:{k}` and
//! `P node-slot:{node}`, expiring by the store clock.

use super::RedisStore;
use crate::store::{Error, Session, SessionDirectory, SlotClaim};
use async_trait::async_trait;
use deadpool_redis::redis::cmd;
use std::time::Duration;

/// How long after a slot lapses its records stay on the server; a node silent for its slot's ttl
/// and this long is gone, and its sessions are forgotten at the next lookup.
const SLOT_GRACE: Duration = Duration::from_secs(60);

/// Milliseconds of `d`, for script arguments.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionDirectory for RedisStore {
    async fn add_session(&self, session: Session) -> Result<(), Error> {
        let mut invocation = self.scripts.session_add.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(&session.id)
            .arg(&session.participant)
            .arg(&session.node);
        let _: i64 = self.state.script(&invocation).await?;
        Ok(())
    }

    async fn remove_session(&self, session_id: &str) -> Result<(), Error> {
        let mut invocation = self.scripts.session_remove.prepare_invoke();
        invocation.arg(&self.prefix).arg(session_id);
        let _: i64 = self.state.script(&invocation).await?;
        Ok(())
    }

    async fn sessions_of(&self, participant: &str) -> Result<Vec<Session>, Error> {
        let mut invocation = self.scripts.sessions_of.prepare_invoke();
        invocation.arg(&self.prefix).arg(participant);
        let flat: Vec<String> = self.state.script(&invocation).await?;
        Ok(flat
            .chunks_exact(2)
            .map(|pair| Session {
                id: pair[0].clone(),
                participant: participant.to_string(),
                node: pair[1].clone(),
            })
            .collect())
    }

    async fn participants(&self) -> Result<Vec<String>, Error> {
        self.state
            .query(cmd("ZRANGE").arg(self.keys().participants()).arg(0).arg(-1))
            .await
    }

    async fn claim_slot(
        &self,
        node: &str,
        slots: u32,
        ttl: Duration,
    ) -> Result<Option<SlotClaim>, Error> {
        let mut invocation = self.scripts.slot_claim.prepare_invoke();
        invocation
            .arg(&self.prefix)
            .arg(node)
            .arg(slots)
            .arg((self.clock)())
            .arg(millis(ttl).max(1))
            .arg(millis(SLOT_GRACE));
        let (slot, renewed): (i64, i64) = self.state.script(&invocation).await?;
        Ok(u32::try_from(slot).ok().map(|slot| SlotClaim {
            slot,
            renewed: renewed == 1,
        }))
    }

    async fn release_slot(&self, node: &str) -> Result<(), Error> {
        let mut invocation = self.scripts.slot_release.prepare_invoke();
        invocation.arg(&self.prefix).arg(node);
        let _: i64 = self.state.script(&invocation).await?;
        Ok(())
    }

    async fn slots_of(&self, participants: &[String]) -> Result<Vec<Vec<u32>>, Error> {
        if participants.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.scripts.slots_of.prepare_invoke();
        invocation.arg(&self.prefix).arg((self.clock)());
        for p in participants {
            invocation.arg(p);
        }
        self.state.script(&invocation).await
    }
}
