//! The simulator behind `threds simulate` and `threds test` (contract: `SIMULATE.md`): the pure
//! machine over an in-memory store with a virtual clock and deterministic ids.
//!
//! The store keeps only the serialized form the engine would write (thred state JSON, counters,
//! timers); decoded threds are a cache that `{"$restart": true}` throws away, so a restart rebuilds
//! every thred and timer from its persisted form.

pub mod matching;
mod store;

use crate::machine::{Env, Input, Machine, Message, Outcome, Record};
use crate::model::Event;
use crate::pattern::Pattern;
use serde_json::{json, Value};
use store::Store;

/// One line of simulator output.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// An outbound message `{"to": [...], "event": {...}}`.
    Message(Message),
    /// `{"threds": [...]}`.
    Threds(Vec<Value>),
    /// `{"mark": ...}`.
    Mark(Value),
    /// `{"history": [...]}` (extension: the history records since the last `$history`).
    History(Vec<Record>),
}

impl Output {
    /// The output line as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Output::Message(m) => json!({"to": m.to, "event": m.event}),
            Output::Threds(t) => json!({ "threds": t }),
            Output::Mark(m) => json!({ "mark": m }),
            Output::History(h) => json!({ "history": h }),
        }
    }
}

/// A problem with one input line; the run goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct InputError {
    /// 1-based input line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Deterministic ids: thred N is `<patternId>_<N>`, generated event N is `evt_<N>`.
#[derive(Debug, Default)]
struct Ids {
    threds: u64,
    events: u64,
    clock: i64,
    /// Thred ids in creation order (`$thred:N`).
    created: Vec<String>,
}

impl Env for Ids {
    fn now(&self) -> i64 {
        self.clock
    }
    fn thred_id(&mut self, pattern: &Pattern) -> String {
        self.threds += 1;
        let id = format!("{}_{}", pattern.id, self.threds);
        self.created.push(id.clone());
        id
    }
    fn event_id(&mut self) -> String {
        self.events += 1;
        format!("evt_{}", self.events)
    }
}

/// The simulator.
pub struct Simulator {
    engine: Machine,
    ids: Ids,
    store: Store,
    /// Event ids of printed messages (`$out:K`).
    printed: Vec<String>,
    history: Vec<Record>,
    diagnostics: Vec<String>,
    line: usize,
}

impl Simulator {
    /// A simulator over `engine` whose clock starts at `start_time` (epoch ms).
    pub fn new(engine: Machine, start_time: i64) -> Simulator {
        Simulator {
            engine,
            ids: Ids {
                clock: start_time,
                ..Ids::default()
            },
            store: Store::default(),
            printed: Vec::new(),
            history: Vec::new(),
            diagnostics: Vec::new(),
            line: 0,
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> i64 {
        self.ids.clock
    }

    /// Diagnostics (for stderr) produced since the last call.
    pub fn take_diagnostics(&mut self) -> Vec<String> {
        std::mem::take(&mut self.diagnostics)
    }

    /// The id `$thred:N` stands for.
    pub fn thred(&self, n: usize) -> Option<&str> {
        n.checked_sub(1)
            .and_then(|i| self.ids.created.get(i))
            .map(String::as_str)
    }

    /// The id `$out:K` stands for.
    pub fn out(&self, k: usize) -> Option<&str> {
        k.checked_sub(1)
            .and_then(|i| self.printed.get(i))
            .map(String::as_str)
    }

    /// Counts a blank input line (so line numbers in errors match the input).
    pub fn skip_line(&mut self) {
        self.line += 1;
    }

    /// Feeds one input line (JSON text); returns what it printed.
    pub fn input_line(&mut self, text: &str) -> Result<Vec<Output>, InputError> {
        self.line += 1;
        let line = self.line;
        let fail = |reason: String| InputError { line, reason };
        let value: Value =
            serde_json::from_str(text).map_err(|e| fail(format!("not JSON: {e}")))?;
        self.input(value).map_err(fail)
    }

    /// Feeds one input value (an event or a `$` directive); returns what it printed.
    pub fn input(&mut self, value: Value) -> Result<Vec<Output>, String> {
        let Value::Object(obj) = &value else {
            return Err("an input line must be a JSON object".into());
        };
        if let Some(ms) = obj.get("$advance") {
            let ms = ms
                .as_f64()
                .filter(|m| m.is_finite() && *m >= 0.0)
                .ok_or("$advance needs a non-negative number of milliseconds")?;
            return Ok(self.advance(ms as i64));
        }
        if obj.contains_key("$threds") {
            return Ok(vec![Output::Threds(self.threds())]);
        }
        if let Some(label) = obj.get("$mark") {
            return Ok(vec![Output::Mark(label.clone())]);
        }
        if obj.contains_key("$restart") {
            self.restart();
            return Ok(Vec::new());
        }
        if obj.contains_key("$history") {
            return Ok(vec![Output::History(std::mem::take(&mut self.history))]);
        }
        let value = self.substitute(value)?;
        let event = Event::from_value(value).map_err(|e| format!("invalid event: {e}"))?;
        let event = event.with_default_time(self.ids.clock);
        Ok(self.process(Input::Event(event)))
    }

    /// Moves the clock forward by `ms`, firing due timers in time order.
    pub fn advance(&mut self, ms: i64) -> Vec<Output> {
        let target = self.ids.clock.saturating_add(ms);
        let mut out = Vec::new();
        while let Some(timer) = self.store.next_timer(target) {
            self.ids.clock = self.ids.clock.max(timer.due);
            out.extend(self.process(Input::Timer(timer)));
        }
        self.ids.clock = target;
        out
    }

    /// Runs `engine` from now on (a reload or a newly activated pattern version), over the same
    /// storage.
    pub fn replace_engine(&mut self, engine: Machine) {
        self.engine = engine;
    }

    /// Acts as a new engine process over the same storage.
    pub fn restart(&mut self) {
        self.store.restart();
    }

    /// Every live thred in the reference's Thred JSON, in creation order.
    pub fn threds(&mut self) -> Vec<Value> {
        self.store
            .live()
            .iter()
            .map(|s| s.to_json(self.engine.pattern_of(s).map(|p| p.as_ref())))
            .collect()
    }

    /// Number of live threds.
    pub fn live_count(&mut self) -> usize {
        self.store.live().len()
    }

    /// The current reaction of thred `id`.
    pub fn reaction_of(&mut self, id: &str) -> Option<String> {
        self.store
            .thred(id)
            .and_then(|s| s.current_reaction().map(str::to_string))
    }

    fn process(&mut self, input: Input) -> Vec<Output> {
        let outcome: Outcome = self
            .engine
            .process(&self.store.view(), &input, &mut self.ids);
        for f in &outcome.failures {
            self.diagnostics.push(format!("error: {}", f.detail));
        }
        for l in &outcome.logs {
            self.diagnostics.push(format!("pattern log: {l}"));
        }
        for record in &outcome.history {
            if let Record::Log {
                kind: crate::machine::LogKind::Veto,
                detail: Some(d),
                ..
            } = record
            {
                self.diagnostics.push(format!("veto: {d}"));
            }
        }
        self.store.apply(&self.engine, &outcome);
        self.history.extend(outcome.history);
        outcome
            .messages
            .into_iter()
            .map(|m| {
                self.printed.push(m.event.id().to_string());
                Output::Message(m)
            })
            .collect()
    }

    /// Replaces `"$thred:N"` and `"$out:K"` strings with the ids they stand for.
    fn substitute(&self, value: Value) -> Result<Value, String> {
        matching::substitute(value, &|n| self.thred(n).map(str::to_string), &|k| {
            self.out(k).map(str::to_string)
        })
    }
}
