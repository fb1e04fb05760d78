//! Routing an event (spec §4.3): bound events to their thred; unbound events to every pattern whose
//! initial reaction accepts them and to running threds that listen for unbound events.

use super::condition::test_reaction;
use super::failure::{Code, Failure};
use super::history::{LogKind, Record};
use super::txn::Txn;
use crate::model::Event;
use crate::pattern::Pattern;
use std::sync::Arc;

impl Txn<'_> {
    /// Processes one event.
    pub(super) fn event(&mut self, event: &Event) {
        let record = self.history.len();
        self.history.push(Record::Event {
            event: event.clone(),
            thred_id: event.thred_id().map(str::to_string),
            to: None,
            timestamp: self.now,
        });
        if event.is_system() {
            self.unit(|_| {
                Err(Failure::client(
                    Code::ArgumentValidation,
                    format!(
                        "{} events are handled by the engine's admin service, not by patterns",
                        event.event_type()
                    ),
                ))
            });
        } else {
            match event.thred_id() {
                Some(id) => {
                    self.unit(|t| t.bound(id, event));
                }
                None => {
                    // One record per event: an unbound event is filed under the first thred that took it.
                    let took = self.unbound(event);
                    if let Some(Record::Event { thred_id, .. }) = self.history.get_mut(record) {
                        *thred_id = took;
                    }
                }
            }
        }
        self.notify(Some(event), None);
    }

    /// An event the host refused: recorded, and its sender told why.
    pub(super) fn refused(&mut self, event: &Event, reason: &str) {
        self.history.push(Record::Event {
            event: event.clone(),
            thred_id: event.thred_id().map(str::to_string),
            to: None,
            timestamp: self.now,
        });
        self.unit(|_| Err(Failure::client(Code::QuotaExceeded, reason)));
        self.notify(Some(event), None);
    }

    fn bound(&mut self, thred_id: &str, event: &Event) -> Result<(), Failure> {
        let Some(mut state) = self.load(thred_id) else {
            self.log(LogKind::NoThred, event, Some(thred_id));
            return Err(Failure::client(
                Code::ThredDoesNotExist,
                format!(
                    "Thred {} does not, or no longer exists for event {} of type {}",
                    thred_id,
                    event.id(),
                    event.event_type()
                ),
            ));
        };
        let pattern = self.pattern_of(&state)?;
        if let Some(error) = event.error() {
            // An agent reports a failure: tell the thred's participants; the thred does not advance.
            return Err(Failure::reported(error.clone(), thred_id));
        }
        self.consider(&pattern, &mut state, event)
            .map_err(|f| f.in_thred(thred_id))?;
        self.put(state)
    }

    /// Offers an unbound event to every pattern and listening thred; answers the first thred that took it.
    fn unbound(&mut self, event: &Event) -> Option<String> {
        let mut matched = false;
        let mut took: Option<String> = None;
        let patterns: Vec<Arc<Pattern>> = self.engine.patterns().iter().cloned().collect();
        for pattern in patterns {
            let Some(initial) = pattern.initial() else {
                continue;
            };
            match test_reaction(self, initial, event, None) {
                Ok(true) => {
                    matched = true;
                    let before = self.created.len();
                    self.unit(|t| t.start(&pattern, event));
                    if took.is_none() {
                        took = self.created.get(before).cloned();
                    }
                }
                Ok(false) => {}
                Err(f) => {
                    self.unit(|_| Err(f));
                }
            }
        }
        for thred_id in self.unbound_listeners() {
            let Some(state) = self.load(&thred_id) else {
                continue;
            };
            let Ok(pattern) = self.pattern_of(&state) else {
                continue;
            };
            let Some(reaction) = state
                .current_reaction()
                .and_then(|name| pattern.reaction(name))
            else {
                continue;
            };
            match test_reaction(self, reaction, event, Some(&state)) {
                Ok(true) => {
                    matched = true;
                    let ok = self.unit(|t| {
                        if let Some(error) = event.error() {
                            return Err(Failure::reported(error.clone(), &thred_id));
                        }
                        let mut state = state;
                        t.consider(&pattern, &mut state, event)
                            .map_err(|f| f.in_thred(&thred_id))?;
                        t.put(state)
                    });
                    if ok && took.is_none() {
                        took = Some(thred_id.clone());
                    }
                }
                Ok(false) => {}
                Err(f) => {
                    self.unit(|_| Err(f.in_thred(&thred_id)));
                }
            }
        }
        if !matched {
            self.log(LogKind::NoPattern, event, None);
        }
        took
    }

    /// Starts a thred of `pattern` for `event`, unless vetoed (spec §4.4) or over a deployment
    /// quota (a failure: the sender is told).
    fn start(&mut self, pattern: &Arc<Pattern>, event: &Event) -> Result<(), Failure> {
        if let Some(reason) = self.veto(pattern) {
            self.record_veto(pattern, event.id(), reason);
            return Ok(());
        }
        let starter = Some(event.source_id()).filter(|s| *s != crate::model::event::SYSTEM);
        self.check_quotas(pattern, starter)?;
        let id = self.env.thred_id(pattern);
        self.created.push(id.clone());
        self.count_start(pattern, starter);
        let mut state = crate::thred::ThredState::new(pattern, id, self.now);
        state.started_by = starter.map(str::to_string);
        let bound = event.with_thred_id(&state.id);
        let id = state.id.clone();
        self.consider(pattern, &mut state, &bound)
            .map_err(|f| f.in_thred(&id))?;
        self.put(state)
    }

    /// Admin termination: the thred (and its child threds) end now; failures are reported in the
    /// outcome only (the admin service answers the requester).
    pub(super) fn terminate(&mut self, thred_id: &str) {
        self.unit(|t| {
            let mut state = t.load(thred_id).ok_or_else(|| missing_thred(thred_id))?;
            state.status = crate::thred::Status::Terminated;
            state.end_time = Some(t.now);
            state.last_update_time = t.now;
            state.reaction_store = None;
            t.put(state)
        });
    }

    /// Admin migration: the thred runs version `version` of its pattern from now on.
    pub(super) fn migrate(&mut self, thred_id: &str, version: u32) {
        self.unit(|t| {
            let mut state = t.load(thred_id).ok_or_else(|| missing_thred(thred_id))?;
            let pattern_id = state.pattern_id.clone();
            let target = t
                .engine
                .patterns()
                .version(&pattern_id, version)
                .cloned()
                .ok_or_else(|| {
                    Failure::client(
                        Code::ObjectNotFound,
                        format!("Version {version} of pattern {pattern_id} is not loaded"),
                    )
                })?;
            if let Some(current) = state.current_reaction() {
                if target.reaction(current).is_none() {
                    return Err(Failure::client(
                        Code::ArgumentValidation,
                        format!(
                            "thred {thred_id} is at reaction {current}, which version {version} of pattern {pattern_id} does not have; not migrated"
                        ),
                    ));
                }
            }
            if state.pattern_version != Some(version) {
                t.count_migration(&pattern_id, state.pattern_version, version);
            }
            state.pattern_version = Some(version);
            if let Some(store) = state.reaction_store.as_mut() {
                store.condition_state.clear();
            }
            state.last_update_time = t.now;
            t.put(state)
        });
    }

    /// Admin transition: applies `model` to the thred as its current reaction's transition would.
    pub(super) fn admin_transition(
        &mut self,
        thred_id: &str,
        model: &crate::model::TransitionModel,
    ) {
        self.unit(|t| {
            let mut state = t.load(thred_id).ok_or_else(|| missing_thred(thred_id))?;
            let pattern = t.pattern_of(&state)?;
            let transition = crate::pattern::compile_transition(&pattern, model)
                .map_err(|reason| Failure::client(Code::ArgumentValidation, reason))?;
            if let Some(event) = t.transition(&pattern, &mut state, &transition, None)? {
                t.consider(&pattern, &mut state, &event)?;
            }
            t.put(state)
        });
    }

    pub(super) fn log(&mut self, kind: LogKind, event: &Event, thred_id: Option<&str>) {
        self.history.push(Record::Log {
            kind,
            event_id: Some(event.id().to_string()),
            thred_id: thred_id.map(str::to_string),
            pattern_id: None,
            from_reaction: None,
            to_reaction: None,
            detail: None,
            timestamp: self.now,
        });
    }
}

fn missing_thred(thred_id: &str) -> Failure {
    Failure::client(
        Code::ThredDoesNotExist,
        format!("Thred {thred_id} does not, or no longer exists"),
    )
}
