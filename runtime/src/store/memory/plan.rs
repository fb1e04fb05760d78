//! Commit validation: turns a [`Commit`] into the final records it writes, or refuses it, without
//! changing anything. Writes in one commit apply in order, so a later write to the same thred or
//! counter expects the version an earlier one produced. Outbox entries get their sequence numbers
//! only once every check has passed; they take effect when the plan is applied.

use super::lease::LeaseRecord;
use super::state::{CounterRecord, Entry, Plan, State};
use crate::store::{Commit, Error, Lease, Pending, ThredWrite};

impl Plan {
    /// Checks `commit` (under `lease`, at `now`) against `state` and computes its records.
    pub fn new(
        state: &State,
        lease: Option<&Lease>,
        commit: Commit,
        now: i64,
    ) -> Result<Plan, Error> {
        if let Some(lease) = lease {
            LeaseRecord::check(state.leases.get(&lease.resource), lease, now)?;
        }
        let token = lease.map_or(0, |l| l.token);
        let mut plan = Plan {
            next_unbound_seq: state.next_unbound_seq(),
            ..Plan::default()
        };
        for write in commit.threds {
            plan.thred(state, write, token)?;
        }
        for (pattern_id, expected, counter) in commit.counters {
            let current = plan
                .counters
                .get(&pattern_id)
                .copied()
                .unwrap_or_else(|| state.counter(&pattern_id));
            if current.version != expected {
                return Err(Error::Conflict(format!("counter {pattern_id}")));
            }
            let version = expected.saturating_add(1);
            plan.counters
                .insert(pattern_id, CounterRecord { counter, version });
        }
        for (topic, partition, offset) in commit.applied {
            let current = state.applied(&topic, partition);
            let key = (topic, partition);
            let planned = plan.applied.get(&key).copied();
            if current.max(planned).is_none_or(|c| c < offset) {
                plan.applied.insert(key, offset);
            }
        }
        // Every check passed: number the outbox entries after the last sequence number given.
        let mut seq = state.last_outbox_seq();
        plan.outbox = commit
            .outbox
            .into_iter()
            .map(|record| {
                seq = seq.saturating_add(1);
                Pending {
                    seq,
                    at: now,
                    record,
                }
            })
            .collect();
        Ok(plan)
    }

    /// The sequence numbers of the commit's outbox entries, in order.
    pub fn outbox_seqs(&self) -> Vec<u64> {
        self.outbox.iter().map(|p| p.seq).collect()
    }

    /// Adds one thred write, checking its expected version.
    fn thred(&mut self, state: &State, write: ThredWrite, token: u64) -> Result<(), Error> {
        match write {
            ThredWrite::Save {
                state: thred,
                expected,
                partition,
                timer,
                listens_unbound,
            } => {
                let current = self.current(state, &thred.id);
                let version = current.map(|e| e.version);
                let listening_since = current.and_then(|e| e.unbound_seq);
                if version != expected {
                    return Err(Error::Conflict(format!("thred {}", thred.id)));
                }
                let unbound_seq = if listens_unbound {
                    Some(listening_since.unwrap_or_else(|| self.take_unbound_seq()))
                } else {
                    None
                };
                let entry = Entry {
                    version: version.map_or(1, |v| v.saturating_add(1)),
                    token,
                    partition,
                    timer,
                    unbound_seq,
                    state: thred,
                };
                self.threds.insert(entry.state.id.clone(), Some(entry));
            }
            ThredWrite::Remove { id, expected, .. } => {
                let version = self.current(state, &id).map(|e| e.version);
                if version != expected {
                    return Err(Error::Conflict(format!("thred {id}")));
                }
                if version.is_some() {
                    self.threds.insert(id, None);
                }
            }
        }
        Ok(())
    }

    /// A sequence number for a thred that starts listening for unbound events.
    fn take_unbound_seq(&mut self) -> u64 {
        let seq = self.next_unbound_seq;
        self.next_unbound_seq = seq.saturating_add(1);
        seq
    }

    /// The entry of thred `id` as of the writes planned so far.
    fn current<'a>(&'a self, state: &'a State, id: &str) -> Option<&'a Entry> {
        match self.threds.get(id) {
            Some(planned) => planned.as_ref(),
            None => state.thred(id),
        }
    }
}
