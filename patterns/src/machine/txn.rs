//! One input's working set: a read-through overlay over the host's [`StateView`], with atomic units.

use super::failure::{Code, Failure, Scope};
use super::history::{LogKind, Record};
use super::quota;
use super::{Counter, Env, Machine, Message, Outcome, StateView, ThredChange};
use crate::model::event::{Source, TELL};
use crate::model::Event;
use crate::pattern::Pattern;
use crate::thred::{Status, ThredState, Timer};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::sync::Arc;

/// A thred in the overlay: changed, or removed.
#[derive(Clone)]
pub(super) enum Slot {
    Live(ThredState),
    Removed(ThredState),
}

/// What a unit can roll back to.
struct Checkpoint {
    threds: Vec<(String, Slot)>,
    counters: Vec<(String, Counter)>,
    messages: usize,
    history: usize,
    created: usize,
}

/// The working set of one input.
pub(super) struct Txn<'a> {
    pub(super) engine: &'a Machine,
    view: &'a dyn StateView,
    pub(super) env: &'a mut dyn Env,
    pub(super) now: i64,
    threds: Vec<(String, Slot)>,
    counters: Vec<(String, Counter)>,
    pub(super) messages: Vec<Message>,
    pub(super) history: Vec<Record>,
    failures: Vec<Failure>,
    pub(super) logs: RefCell<Vec<String>>,
    /// Threds created while processing this input (they do not see the same unbound event again).
    pub(super) created: Vec<String>,
    pub(super) spawn_depth: usize,
}

impl<'a> Txn<'a> {
    pub(super) fn new(engine: &'a Machine, view: &'a dyn StateView, env: &'a mut dyn Env) -> Self {
        let now = env.now();
        Txn {
            engine,
            view,
            env,
            now,
            threds: Vec::new(),
            counters: Vec::new(),
            messages: Vec::new(),
            history: Vec::new(),
            failures: Vec::new(),
            logs: RefCell::new(Vec::new()),
            created: Vec::new(),
            spawn_depth: 0,
        }
    }

    /// Runs `f` as one atomic unit: on failure every change it made is undone. True if it succeeded.
    pub(super) fn unit(&mut self, f: impl FnOnce(&mut Self) -> Result<(), Failure>) -> bool {
        let checkpoint = Checkpoint {
            threds: self.threds.clone(),
            counters: self.counters.clone(),
            messages: self.messages.len(),
            history: self.history.len(),
            created: self.created.len(),
        };
        if let Err(failure) = f(self) {
            self.threds = checkpoint.threds;
            self.counters = checkpoint.counters;
            self.messages.truncate(checkpoint.messages);
            self.history.truncate(checkpoint.history);
            self.created.truncate(checkpoint.created);
            self.failures.push(failure);
            return false;
        }
        true
    }

    /// The current state of thred `id` (overlay first).
    pub(super) fn load(&self, id: &str) -> Option<ThredState> {
        match self.threds.iter().find(|(k, _)| k == id) {
            Some((_, Slot::Live(s))) => Some(s.clone()),
            Some((_, Slot::Removed(_))) => None,
            None => self.view.thred(id),
        }
    }

    fn set(&mut self, id: String, slot: Slot) {
        match self.threds.iter_mut().find(|(k, _)| *k == id) {
            Some((_, s)) => *s = slot,
            None => self.threds.push((id, slot)),
        }
    }

    /// The current counter of `pattern_id` (overlay first).
    pub(super) fn counter(&self, pattern_id: &str) -> Counter {
        match self.counters.iter().find(|(k, _)| k == pattern_id) {
            Some((_, c)) => *c,
            None => self.view.counter(pattern_id),
        }
    }

    pub(super) fn set_counter(&mut self, pattern_id: &str, counter: Counter) {
        match self.counters.iter_mut().find(|(k, _)| k == pattern_id) {
            Some((_, c)) => *c = counter,
            None => self.counters.push((pattern_id.to_string(), counter)),
        }
    }

    /// Every participant the host knows (for `$all`).
    pub(super) fn all_participants(&self) -> Vec<String> {
        self.view.participants()
    }

    /// The pattern a stored thred runs.
    pub(super) fn pattern_of(&self, state: &ThredState) -> Result<Arc<Pattern>, Failure> {
        self.engine.pattern_of(state).cloned().ok_or_else(|| {
            let which = match state.pattern_version {
                Some(v) => format!("Version {v} of pattern {}", state.pattern_id),
                None => format!("Pattern {}", state.pattern_id),
            };
            Failure::client(
                Code::ObjectNotFound,
                format!("{which} of thred {} is not loaded", state.id),
            )
            .in_thred(&state.id)
        })
    }

    /// Why starting a thred of `pattern` now is vetoed (spec §4.4), if it is.
    pub(super) fn veto(&self, pattern: &Pattern) -> Option<String> {
        let counter = self.counter(&pattern.id);
        if pattern.max_instances > 0 && counter.instances >= pattern.max_instances {
            return Some(format!(
                "maxInstances {} of pattern {} reached ({} live)",
                pattern.max_instances, pattern.id, counter.instances
            ));
        }
        if let Some(last) = counter.last_start {
            let since = self.now.saturating_sub(last);
            if pattern.instance_interval > 0 && since < pattern.instance_interval {
                return Some(format!(
                    "instanceInterval {} ms of pattern {} not elapsed ({since} ms since the last start)",
                    pattern.instance_interval, pattern.id
                ));
            }
        }
        None
    }

    /// Refuses a start the deployment quotas do not allow: the pattern's live threds when it sets
    /// no `maxInstances` of its own, and the live threds `starter` started.
    pub(super) fn check_quotas(
        &self,
        pattern: &Pattern,
        starter: Option<&str>,
    ) -> Result<(), Failure> {
        let quotas = self.engine.quotas();
        let live = self.counter(&pattern.id).instances;
        if pattern.max_instances == 0
            && quotas.default_max_instances > 0
            && live >= quotas.default_max_instances
        {
            return Err(Failure::client(
                Code::QuotaExceeded,
                format!(
                    "pattern {} has {live} live threds, the most allowed ([engine] default_max_instances = {}; the pattern sets no maxInstances)",
                    pattern.id, quotas.default_max_instances
                ),
            ));
        }
        if let (Some(who), max) = (starter, quotas.max_threds_per_participant) {
            let started = self.counter(&quota::participant_key(who)).instances;
            if max > 0 && started >= max {
                return Err(Failure::client(
                    Code::QuotaExceeded,
                    format!(
                        "participant {who} has started {started} live threds, the most allowed ([engine] max_threds_per_participant = {max})"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Records a vetoed start.
    pub(super) fn record_veto(&mut self, pattern: &Pattern, event_id: &str, detail: String) {
        self.history.push(Record::Log {
            kind: LogKind::Veto,
            event_id: Some(event_id.to_string()),
            thred_id: None,
            pattern_id: Some(pattern.id.clone()),
            from_reaction: None,
            to_reaction: None,
            detail: Some(detail),
            timestamp: self.now,
        });
    }

    /// Counts a new thred of `pattern` (spec §4.4: `ni + 1`, `li = now`), and of `starter`.
    pub(super) fn count_start(&mut self, pattern: &Pattern, starter: Option<&str>) {
        self.add_to_counter(&pattern.id, 1);
        if pattern.version > 0 {
            self.add_to_counter(&quota::version_key(&pattern.id, pattern.version), 1);
        }
        if let Some(who) = starter {
            self.add_to_counter(&quota::participant_key(who), 1);
        }
    }

    /// Moves a thred's count from version `from` of its pattern to version `to` (a migration).
    pub(super) fn count_migration(&mut self, pattern_id: &str, from: Option<u32>, to: u32) {
        if let Some(from) = from {
            self.add_to_counter(&quota::version_key(pattern_id, from), -1);
        }
        // Not a start: the version's last start time stays as it was.
        let key = quota::version_key(pattern_id, to);
        let c = self.counter(&key);
        self.set_counter(
            &key,
            Counter {
                instances: c.instances + 1,
                ..c
            },
        );
    }

    fn add_to_counter(&mut self, key: &str, delta: i8) {
        let c = self.counter(key);
        let counter = match delta {
            1.. => Counter {
                instances: c.instances + 1,
                last_start: Some(self.now),
            },
            _ => Counter {
                instances: c.instances.saturating_sub(1),
                ..c
            },
        };
        self.set_counter(key, counter);
    }

    /// Stores `state`: a terminated thred is removed (with its children), others are saved
    /// unless their state outgrew the deployment's `max_state_bytes`.
    pub(super) fn put(&mut self, state: ThredState) -> Result<(), Failure> {
        if state.status == Status::Terminated {
            self.remove(state);
            return Ok(());
        }
        let max = self.engine.quotas().max_state_bytes;
        if max > 0 {
            let size = quota::json_size(&state);
            if size > max {
                return Err(Failure::client(
                    Code::QuotaExceeded,
                    format!(
                        "thred {} would store {size} bytes of state, more than allowed ([engine] max_state_bytes = {max}); the step was not applied",
                        state.id
                    ),
                )
                .in_thred(&state.id));
            }
        }
        self.set(state.id.clone(), Slot::Live(state));
        Ok(())
    }

    /// Removes a terminated thred: cascades to its live children, decrements its pattern's count.
    fn remove(&mut self, state: ThredState) {
        for child_id in &state.child_thred_ids {
            if let Some(mut child) = self.load(child_id) {
                if child.spawn_type == Some(crate::model::SpawnType::Child)
                    && child.status != Status::Terminated
                {
                    child.status = Status::Terminated;
                    child.end_time = Some(self.now);
                    child.last_update_time = self.now;
                    child.reaction_store = None;
                    self.remove(child);
                }
            }
        }
        self.add_to_counter(&state.pattern_id, -1);
        if let Some(version) = state.pattern_version {
            self.add_to_counter(&quota::version_key(&state.pattern_id, version), -1);
        }
        if let Some(who) = &state.started_by {
            self.add_to_counter(&quota::participant_key(who), -1);
        }
        self.set(state.id.clone(), Slot::Removed(state));
    }

    /// A new engine-generated event of `event_type` for `thred_id`.
    pub(super) fn new_event(
        &mut self,
        event_type: &str,
        thred_id: Option<&str>,
        re: Option<&str>,
        data: Value,
    ) -> Event {
        let id = self.env.event_id();
        build_event(id, self.now, event_type, thred_id, re, data)
    }

    /// Sends the error notification for this input's failures (spec §4.10).
    pub(super) fn notify(&mut self, inbound: Option<&Event>, timer_thred: Option<&str>) {
        let failure = match self.failures.len() {
            0 => return,
            1 => self.failures[0].clone(),
            _ => Failure::many(self.failures.clone()),
        };
        let resolver = self.engine.resolver();
        let mut to: Vec<String> = match (
            failure.scope,
            failure.thred_id.as_deref().and_then(|id| self.load(id)),
        ) {
            (Scope::Thred, Some(state)) => state.thred_context.participant_ids.clone(),
            _ => inbound
                .map(|e| vec![e.source_id().to_string()])
                .unwrap_or_default(),
        };
        to.retain(|a| !resolver.is_service(a));
        self.history.push(Record::Log {
            kind: LogKind::Error,
            event_id: inbound.map(|e| e.id().to_string()),
            thred_id: failure
                .thred_id
                .clone()
                .or_else(|| timer_thred.map(str::to_string)),
            pattern_id: None,
            from_reaction: None,
            to_reaction: None,
            detail: Some(failure.detail.clone()),
            timestamp: self.now,
        });
        if to.is_empty() {
            return;
        }
        let title = match (inbound, timer_thred) {
            (Some(e), _) => format!(
                "Failure processing Event {} : {}",
                e.id(),
                failure.message()
            ),
            (None, Some(t)) => format!(
                "Failure processing expiry of thred {} : {}",
                t,
                failure.message()
            ),
            (None, None) => format!("Failure : {}", failure.message()),
        };
        let thred_id = inbound
            .and_then(Event::thred_id)
            .or(timer_thred)
            .map(str::to_string);
        let event = self.new_event(
            TELL,
            thred_id.as_deref(),
            inbound.map(Event::id),
            json!({"title": title, "content": {"error": failure.error}}),
        );
        self.messages.push(Message { to, event });
    }

    /// The outcome: final changes, in order of first change.
    pub(super) fn finish(self) -> Outcome {
        let engine = self.engine;
        let threds = self
            .threds
            .into_iter()
            .map(|(_, slot)| match slot {
                Slot::Live(state) => {
                    let (timer, listens_unbound) = engine.derived(&state);
                    ThredChange::Saved {
                        state,
                        listens_unbound,
                        timer,
                    }
                }
                Slot::Removed(state) => ThredChange::Removed { state },
            })
            .collect();
        Outcome {
            messages: self.messages,
            threds,
            counters: self.counters,
            history: self.history,
            failures: self.failures,
            logs: self.logs.into_inner(),
        }
    }

    /// The ids of threds listening for unbound events now (view, corrected by the overlay).
    pub(super) fn unbound_listeners(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .view
            .unbound_listeners()
            .into_iter()
            .filter(|id| !self.threds.iter().any(|(k, _)| k == id))
            .collect();
        for (id, slot) in &self.threds {
            if let Slot::Live(state) = slot {
                if self.engine.derived(state).1 {
                    ids.push(id.clone());
                }
            }
        }
        ids.retain(|id| !self.created.contains(id));
        ids
    }

    /// Processes a fired expiry timer.
    pub(super) fn timer(&mut self, timer: &Timer) {
        let Some(state) = self.load(&timer.thred_id) else {
            return;
        };
        let current = state.reaction_store.as_ref();
        let still_due = state.status == Status::Active
            && current.is_some_and(|r| {
                r.reaction_name == timer.reaction_name && r.start_time == timer.entered_at
            });
        if !still_due {
            return; // stale: the thred moved on since the timer was armed
        }
        self.unit(|t| {
            let pattern = t.pattern_of(&state)?;
            let mut state = state;
            t.expire(&pattern, &mut state)?;
            t.put(state)
        });
        self.notify(None, Some(&timer.thred_id));
    }
}

/// An engine event: `{id, type, source: SYSTEM, thredId?, re?, time, data?}`.
pub(super) fn build_event(
    id: String,
    now: i64,
    event_type: &str,
    thred_id: Option<&str>,
    re: Option<&str>,
    data: Value,
) -> Event {
    let mut obj = serde_json::Map::new();
    obj.insert("id".into(), Value::String(id));
    obj.insert("type".into(), json!(event_type));
    obj.insert("source".into(), system_source().clone());
    if let Some(t) = thred_id {
        obj.insert("thredId".into(), json!(t));
    }
    if let Some(re) = re {
        obj.insert("re".into(), json!(re));
    }
    obj.insert("time".into(), json!(now));
    if !data.is_null() {
        obj.insert("data".into(), data);
    }
    Event::from_trusted(Value::Object(obj))
}

/// `{"id": "SYSTEM", "name": "Workthreds Bot"}`, built once.
fn system_source() -> &'static Value {
    static SOURCE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| json!(Source::system()))
}
