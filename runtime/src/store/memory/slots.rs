//! The delivery slots of the embedded store: which node holds which slot until when, in memory
//! only (a restart of the process that holds the store ends its session nodes' connections too),
//! on the store clock.

use crate::store::SlotClaim;
use std::collections::HashMap;

/// Slots by number and the slot each node holds or held last.
#[derive(Debug, Default)]
pub(super) struct Slots {
    /// Holder and expiry (epoch ms) of each slot ever granted.
    holders: HashMap<u32, (String, i64)>,
    /// The slot each node was granted last.
    last: HashMap<String, u32>,
}

impl Slots {
    /// The node holding `slot` at `now`, if any.
    fn holder(&self, slot: u32, now: i64) -> Option<&str> {
        self.holders
            .get(&slot)
            .filter(|(_, expires)| *expires > now)
            .map(|(node, _)| node.as_str())
    }

    /// Grants `node` a slot among `0..slots` at `now` for `ttl_ms` (see the port).
    pub fn claim(&mut self, node: &str, slots: u32, now: i64, ttl_ms: i64) -> Option<SlotClaim> {
        let last = self.last.get(node).copied().filter(|s| *s < slots);
        let pick = match last.map(|s| (s, self.holder(s, now))) {
            Some((s, Some(holder))) if holder == node => Some((s, true)),
            Some((s, None)) => Some((s, false)),
            _ => (0..slots)
                .find(|s| self.holder(*s, now).is_none())
                .map(|s| (s, false)),
        };
        let (slot, renewed) = pick?;
        self.holders
            .insert(slot, (node.to_owned(), now.saturating_add(ttl_ms)));
        self.last.insert(node.to_owned(), slot);
        Some(SlotClaim { slot, renewed })
    }

    /// Frees the slot `node` holds, if it holds one.
    pub fn release(&mut self, node: &str) {
        if let Some(slot) = self.last.get(node) {
            if self
                .holders
                .get(slot)
                .is_some_and(|(holder, _)| holder == node)
            {
                self.holders.remove(slot);
            }
        }
    }

    /// The slot `node` holds at `now`, if any.
    pub fn live_slot(&self, node: &str, now: i64) -> Option<u32> {
        let slot = *self.last.get(node)?;
        (self.holder(slot, now) == Some(node)).then_some(slot)
    }
}
