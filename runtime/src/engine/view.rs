//! A [`StateView`] over state prefetched from the thred store, which records what it was asked for
//! but did not have, so the caller can load it and run the (pure, repeatable) step again.
//!
//! Steps of a batch run one after the other on the same view: each step's changes are laid over
//! what was read ([`Prefetched::apply`]), so a later step sees an earlier one's writes, and the
//! versions it expects are those the earlier writes produce in the batch's single commit.

use crate::store::{Stored, StoredCounter};
use std::cell::RefCell;
use std::collections::HashMap;
use threds_patterns::machine::{Counter, Outcome, StateView, ThredChange};
use threds_patterns::thred::ThredState;

/// Prefetched state for a batch of inputs, with the changes of the steps run so far laid over it.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// Threds by id, as read from the store; `None` = known to be absent.
    pub threds: HashMap<String, Option<Stored>>,
    /// Counters by pattern id, as read.
    pub counters: HashMap<String, StoredCounter>,
    /// Threds listening for unbound events, as read.
    pub unbound: Vec<String>,
    /// Participants known to the session directory (`None` = not loaded).
    pub participants: Option<Vec<String>>,
    written: HashMap<String, Option<Stored>>,
    written_counters: HashMap<String, StoredCounter>,
    written_unbound: Option<Vec<String>>,
    misses: RefCell<Vec<Miss>>,
}

/// Something a step asked for that was not prefetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// A thred.
    Thred(String),
    /// A pattern counter.
    Counter(String),
    /// The participant list (`$all`).
    Participants,
}

impl Prefetched {
    /// What the step asked for that was not prefetched.
    pub fn take_misses(&self) -> Vec<Miss> {
        std::mem::take(&mut *self.misses.borrow_mut())
    }

    /// A thred as the next step sees it: written by an earlier step, else as read (`None` when
    /// neither knows it; `Some(None)` when it is known to be absent).
    fn current(&self, id: &str) -> Option<&Option<Stored>> {
        self.written.get(id).or_else(|| self.threds.get(id))
    }

    /// Whether the thred's state (or its absence) is known, so it need not be loaded.
    pub fn knows(&self, id: &str) -> bool {
        self.current(id).is_some()
    }

    /// The version the next step's write of a thred expects (`None` when absent).
    pub fn version(&self, id: &str) -> Option<u64> {
        self.current(id).and_then(|t| t.as_ref().map(|s| s.version))
    }

    /// The version the next step's write of a counter expects.
    pub fn counter_version(&self, pattern_id: &str) -> u64 {
        self.written_counters
            .get(pattern_id)
            .or_else(|| self.counters.get(pattern_id))
            .map_or(0, |c| c.version)
    }

    /// Lays a step's changes over the view, as the batch's commit will apply them: each write of
    /// a thred or counter raises its version by one.
    pub fn apply(&mut self, outcome: &Outcome) {
        for change in &outcome.threds {
            match change {
                ThredChange::Saved {
                    state,
                    listens_unbound,
                    ..
                } => {
                    let version = self.version(&state.id).map_or(1, |v| v + 1);
                    self.listen(&state.id, *listens_unbound);
                    let stored = Stored {
                        state: state.clone(),
                        version,
                        token: 0,
                    };
                    self.written.insert(state.id.clone(), Some(stored));
                }
                ThredChange::Removed { state } => {
                    self.listen(&state.id, false);
                    self.written.insert(state.id.clone(), None);
                }
            }
        }
        for (pattern_id, counter) in &outcome.counters {
            let version = self.counter_version(pattern_id) + 1;
            let stored = StoredCounter {
                counter: *counter,
                version,
            };
            self.written_counters.insert(pattern_id.clone(), stored);
        }
    }

    /// Forgets every step's changes (the batch starts over).
    pub fn forget_writes(&mut self) {
        self.written.clear();
        self.written_counters.clear();
        self.written_unbound = None;
    }

    fn listen(&mut self, id: &str, listens: bool) {
        let unbound = self
            .written_unbound
            .get_or_insert_with(|| self.unbound.clone());
        let at = unbound.iter().position(|u| u == id);
        match (listens, at) {
            (true, None) => unbound.push(id.to_string()),
            (false, Some(i)) => {
                unbound.remove(i);
            }
            _ => {}
        }
    }
}

impl StateView for Prefetched {
    fn thred(&self, id: &str) -> Option<ThredState> {
        match self.current(id) {
            Some(stored) => stored.as_ref().map(|s| s.state.clone()),
            None => {
                self.misses.borrow_mut().push(Miss::Thred(id.to_string()));
                None
            }
        }
    }

    fn unbound_listeners(&self) -> Vec<String> {
        self.written_unbound
            .as_ref()
            .unwrap_or(&self.unbound)
            .clone()
    }

    fn counter(&self, pattern_id: &str) -> Counter {
        let current = self
            .written_counters
            .get(pattern_id)
            .or_else(|| self.counters.get(pattern_id));
        match current {
            Some(c) => c.counter,
            None => {
                self.misses
                    .borrow_mut()
                    .push(Miss::Counter(pattern_id.to_string()));
                Counter::default()
            }
        }
    }

    fn participants(&self) -> Vec<String> {
        match &self.participants {
            Some(p) => p.clone(),
            None => {
                self.misses.borrow_mut().push(Miss::Participants);
                Vec::new()
            }
        }
    }
}
