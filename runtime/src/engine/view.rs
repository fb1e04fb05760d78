//! A [`StateView`] over state prefetched from the thred store, which records what it was asked for
//! but did not have, so the caller can load it and run the (pure, repeatable) step again.

use crate::store::{Stored, StoredCounter};
use std::cell::RefCell;
use std::collections::HashMap;
use threds_patterns::machine::{Counter, StateView};
use threds_patterns::thred::ThredState;

/// Prefetched state for one input.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// Threds by id; `None` = known to be absent.
    pub threds: HashMap<String, Option<Stored>>,
    /// Counters by pattern id.
    pub counters: HashMap<String, StoredCounter>,
    /// Threds listening for unbound events.
    pub unbound: Vec<String>,
    /// Participants known to the session registry (`None` = not loaded).
    pub participants: Option<Vec<String>>,
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

    /// The version a thred was read at (`None` when absent).
    pub fn version(&self, id: &str) -> Option<u64> {
        self.threds
            .get(id)
            .and_then(|t| t.as_ref().map(|s| s.version))
    }

    /// The version a counter was read at.
    pub fn counter_version(&self, pattern_id: &str) -> u64 {
        self.counters.get(pattern_id).map_or(0, |c| c.version)
    }
}

impl StateView for Prefetched {
    fn thred(&self, id: &str) -> Option<ThredState> {
        match self.threds.get(id) {
            Some(stored) => stored.as_ref().map(|s| s.state.clone()),
            None => {
                self.misses.borrow_mut().push(Miss::Thred(id.to_string()));
                None
            }
        }
    }

    fn unbound_listeners(&self) -> Vec<String> {
        self.unbound.clone()
    }

    fn counter(&self, pattern_id: &str) -> Counter {
        match self.counters.get(pattern_id) {
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
