//! The node's delivery slot (ADR 0008): a partition of the sessions topic this node alone reads,
//! claimed in the session directory and renewed every third of its ttl. Engines address each
//! participant's messages to the slots of the nodes holding its sessions, so a node reads only its
//! own traffic.
//!
//! While every slot is held by other nodes, the node waits (not ready) and tries again. A node
//! whose slot lapsed (the store was unreachable for its ttl) gets it back if it is still free and
//! records its sessions again; if another node took it, it moves to a free one.

use super::hub::{Hub, Rerecord};
use actix::Addr;
use std::sync::Arc;
use std::time::Duration;
use threds_runtime::bus::Bus;
use threds_runtime::store::SessionDirectory;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How the node keeps its slot.
pub struct Keeper {
    /// Where slots are claimed.
    pub directory: Arc<dyn SessionDirectory>,
    /// The bus (the sessions topic's partition count is the number of slots).
    pub bus: Arc<dyn Bus>,
    /// The sessions topic.
    pub topic: String,
    /// This node's name.
    pub node: String,
    /// How long a claim lasts unless renewed.
    pub ttl: Duration,
    /// The hub, told to record its sessions again after a lapse.
    pub hub: Addr<Hub>,
    /// Ends the keeping; the slot is released then.
    pub shutdown: CancellationToken,
}

/// First wait after a failed attempt to read the slot count; it doubles up to the renewal period.
const FIRST_RETRY: Duration = Duration::from_millis(100);

impl Keeper {
    /// Starts keeping a slot on the current runtime; the receiver names the slot held now.
    pub fn start(self) -> watch::Receiver<Option<u32>> {
        let (tx, rx) = watch::channel(None);
        actix_web::rt::spawn(self.run(tx));
        rx
    }

    async fn run(self, held: watch::Sender<Option<u32>>) {
        let period = (self.ttl / 3).max(Duration::from_millis(100));
        let Some(slots) = self.slot_count(period).await else {
            return;
        };
        let mut complained = false;
        loop {
            let current = *held.borrow();
            match self.directory.claim_slot(&self.node, slots, self.ttl).await {
                Ok(Some(claim)) => {
                    complained = false;
                    match current {
                        Some(slot) if slot == claim.slot && claim.renewed => {}
                        Some(slot) if slot == claim.slot => {
                            tracing::warn!(slot, "the delivery slot had lapsed and is held again; recording this node's sessions again");
                            self.hub.do_send(Rerecord);
                        }
                        Some(slot) => {
                            tracing::warn!(lost = slot, slot = claim.slot, "the delivery slot had lapsed and was taken by another node; reading another one (messages sent meanwhile are lost)");
                            self.hub.do_send(Rerecord);
                            let _ = held.send(Some(claim.slot));
                        }
                        None => {
                            tracing::info!(slot = claim.slot, slots, topic = %self.topic, "holding a delivery slot");
                            // Sessions opened before (or while no slot was held) may have been
                            // forgotten by the directory as those of a node without a slot.
                            self.hub.do_send(Rerecord);
                            let _ = held.send(Some(claim.slot));
                        }
                    }
                }
                Ok(None) => {
                    if current.is_some() {
                        let _ = held.send(None);
                    }
                    if !complained {
                        complained = true;
                        tracing::error!(code = threds_runtime::codes::NO_SLOT, slots, "every delivery slot is held by another session node: this node waits (not ready); raise [server] session_slots (the partitions of {}) or run fewer session nodes", self.topic);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the delivery slot; trying again")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = self.shutdown.cancelled() => break,
            }
        }
        let _ = held.send(None);
        if let Err(e) = self.directory.release_slot(&self.node).await {
            tracing::warn!(error = %e, "could not release the delivery slot (it lapses by itself)");
        }
    }

    /// The partition count of the sessions topic, tried until it answers; `None` on shutdown.
    async fn slot_count(&self, longest: Duration) -> Option<u32> {
        let mut wait = FIRST_RETRY;
        loop {
            match self.bus.partitions(&self.topic).await {
                Ok(count) => return Some(count),
                Err(e) => {
                    tracing::warn!(error = %e, topic = %self.topic, "could not read the number of delivery slots; trying again")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.shutdown.cancelled() => return None,
            }
            wait = (wait * 2).min(longest);
        }
    }
}
