//! The simulator's storage: serialized thred states, counters and timers, plus a decoded cache.

use crate::machine::{Counter, Machine, Outcome, StateView, ThredChange};
use crate::thred::{ThredState, Timer};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// What survives a restart: the serialized form an engine writes to its store.
#[derive(Debug, Default)]
struct Persisted {
    /// Thred id → state JSON, plus creation order.
    threds: BTreeMap<String, String>,
    order: Vec<String>,
    /// Pattern id → counter JSON.
    counters: BTreeMap<String, String>,
    /// Thred id → (arming sequence, timer JSON).
    timers: BTreeMap<String, (u64, String)>,
    timer_seq: u64,
    /// Participants seen as event sources (for `$all`).
    participants: Vec<String>,
    /// Thred ids listening for unbound events.
    unbound: Vec<String>,
}

/// Storage with a decoded cache (dropped by [`Store::restart`]).
#[derive(Debug, Default)]
pub(super) struct Store {
    persisted: Persisted,
    cache: RefCell<HashMap<String, ThredState>>,
}

impl Store {
    /// Forgets everything decoded; the next reads decode the persisted form again.
    pub(super) fn restart(&mut self) {
        self.cache.borrow_mut().clear();
    }

    /// The state of thred `id`.
    pub(super) fn thred(&self, id: &str) -> Option<ThredState> {
        if let Some(s) = self.cache.borrow().get(id) {
            return Some(s.clone());
        }
        let json = self.persisted.threds.get(id)?;
        // The store only holds JSON it serialized itself; a decode failure would be a bug here.
        let state: ThredState = serde_json::from_str(json).ok()?;
        self.cache
            .borrow_mut()
            .insert(id.to_string(), state.clone());
        Some(state)
    }

    /// Live threds in creation order.
    pub(super) fn live(&self) -> Vec<ThredState> {
        self.persisted
            .order
            .iter()
            .filter_map(|id| self.thred(id))
            .collect()
    }

    /// The earliest timer due at or before `until` (ties: earliest armed).
    pub(super) fn next_timer(&mut self, until: i64) -> Option<Timer> {
        let mut best: Option<(i64, u64, Timer)> = None;
        for (seq, json) in self.persisted.timers.values() {
            let Ok(timer) = serde_json::from_str::<Timer>(json) else {
                continue;
            };
            if timer.due > until {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(due, s, _)| (timer.due, *seq) < (*due, *s))
            {
                best = Some((timer.due, *seq, timer));
            }
        }
        let (_, _, timer) = best?;
        self.persisted.timers.remove(&timer.thred_id);
        Some(timer)
    }

    /// A view for one input.
    pub(super) fn view(&self) -> View<'_> {
        View { store: self }
    }

    /// Writes an outcome's changes.
    pub(super) fn apply(&mut self, _engine: &Machine, outcome: &Outcome) {
        for change in &outcome.threds {
            match change {
                ThredChange::Saved {
                    state,
                    listens_unbound,
                    timer,
                } => {
                    let id = state.id.clone();
                    if let Ok(json) = serde_json::to_string(state) {
                        self.persisted.threds.insert(id.clone(), json);
                    }
                    if !self.persisted.order.contains(&id) {
                        self.persisted.order.push(id.clone());
                    }
                    self.cache.borrow_mut().insert(id.clone(), state.clone());
                    self.persisted.unbound.retain(|u| *u != id);
                    if *listens_unbound {
                        self.persisted.unbound.push(id.clone());
                    }
                    self.set_timer(&id, timer.as_ref());
                }
                ThredChange::Removed { state } => {
                    let id = &state.id;
                    self.persisted.threds.remove(id);
                    self.persisted.order.retain(|o| o != id);
                    self.persisted.unbound.retain(|u| u != id);
                    self.cache.borrow_mut().remove(id);
                    self.set_timer(id, None);
                }
            }
        }
        for (pattern, counter) in &outcome.counters {
            if let Ok(json) = serde_json::to_string(counter) {
                self.persisted.counters.insert(pattern.clone(), json);
            }
        }
        for record in &outcome.history {
            if let crate::machine::Record::Event {
                event, to: None, ..
            } = record
            {
                let source = event.source_id().to_string();
                if !self.persisted.participants.contains(&source) {
                    self.persisted.participants.push(source);
                }
            }
        }
    }

    fn set_timer(&mut self, thred_id: &str, timer: Option<&Timer>) {
        let current = self
            .persisted
            .timers
            .get(thred_id)
            .and_then(|(_, j)| serde_json::from_str::<Timer>(j).ok());
        match timer {
            None => {
                self.persisted.timers.remove(thred_id);
            }
            Some(t) if current.as_ref() == Some(t) => {}
            Some(t) => {
                self.persisted.timer_seq += 1;
                if let Ok(json) = serde_json::to_string(t) {
                    self.persisted
                        .timers
                        .insert(thred_id.to_string(), (self.persisted.timer_seq, json));
                }
            }
        }
    }
}

/// The [`StateView`] of the simulator's store.
pub(super) struct View<'s> {
    store: &'s Store,
}

impl StateView for View<'_> {
    fn thred(&self, id: &str) -> Option<ThredState> {
        self.store.thred(id)
    }

    fn unbound_listeners(&self) -> Vec<String> {
        self.store.persisted.unbound.clone()
    }

    fn counter(&self, pattern_id: &str) -> Counter {
        self.store
            .persisted
            .counters
            .get(pattern_id)
            .and_then(|j| serde_json::from_str(j).ok())
            .unwrap_or_default()
    }

    fn participants(&self) -> Vec<String> {
        self.store.persisted.participants.clone()
    }
}
