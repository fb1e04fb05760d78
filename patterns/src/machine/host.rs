//! The expression environment of patterns (spec §3): the input document `{event, context}`, the
//! bindings `$event`, `$thredId`, `$data`, `$advice`, `$content`, `$values`, `$outboundEvent`, and the
//! functions `$valueNamed`, `$local`, `$setLocal`, `$isResponseFor`, `$log`.

use crate::expr::{Host, HostValue, Limits};
use crate::model::event::value_named;
use crate::model::Event;
use serde_json::{json, Map, Value};
use std::cell::{OnceCell, RefCell};

/// Prefix of the locals that remember published event ids (`$isResponseFor`).
pub const OUT_ID_PREFIX: &str = "out_id_";

/// The host of one evaluation within a step.
pub(crate) struct PatternHost<'a> {
    event: &'a Event,
    thred_id: Option<Value>,
    scope: &'a RefCell<Map<String, Value>>,
    participants: &'a [String],
    outbound: Option<&'a Value>,
    now: i64,
    limits: Limits,
    input: OnceCell<Value>,
    logs: &'a RefCell<Vec<String>>,
}

impl<'a> PatternHost<'a> {
    /// A host for `event` in a thred (or a probe, when `thred_id` is `None`).
    pub(crate) fn new(
        event: &'a Event,
        thred_id: Option<&str>,
        scope: &'a RefCell<Map<String, Value>>,
        participants: &'a [String],
        now: i64,
        logs: &'a RefCell<Vec<String>>,
    ) -> Self {
        let thred_id = event
            .thred_id()
            .filter(|t| !t.is_empty())
            .or(thred_id)
            .map(|t| Value::String(t.to_string()));
        PatternHost {
            event,
            thred_id,
            scope,
            participants,
            outbound: None,
            now,
            limits: Limits::default(),
            input: OnceCell::new(),
            logs,
        }
    }

    /// Evaluates under `limits` (the deployment's expression budgets).
    pub(crate) fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Binds `$outboundEvent` (for `onPublish`).
    pub(crate) fn with_outbound(mut self, outbound: Option<&'a Value>) -> Self {
        self.outbound = outbound;
        self
    }

    fn local(&self, name: &str) -> Option<Value> {
        self.scope.borrow().get(name).cloned()
    }
}

fn arg_str<'v>(args: &[Option<&'v Value>], i: usize) -> Option<&'v str> {
    args.get(i).copied().flatten().and_then(Value::as_str)
}

impl Host for PatternHost<'_> {
    fn input(&self) -> Option<&Value> {
        Some(self.input.get_or_init(|| {
            json!({
                "event": self.event.as_value(),
                "context": {
                    "thredId": self.thred_id,
                    "scope": *self.scope.borrow(),
                    "participantIds": self.participants,
                }
            })
        }))
    }

    fn variable(&self, name: &str) -> Option<&Value> {
        match name {
            "event" => Some(self.event.as_value()),
            "thredId" => self.thred_id.as_ref(),
            "data" => self.event.data(),
            "advice" => self.event.data().and_then(|d| d.get("advice")),
            "content" => self.event.content(),
            "values" => self.event.values(),
            "outboundEvent" => self.outbound,
            _ => None,
        }
    }

    fn call(&self, name: &str, args: &[Option<&Value>]) -> Option<Result<HostValue<'_>, String>> {
        Some(Ok(match name {
            "valueNamed" => {
                let Some(key) = arg_str(args, 0) else {
                    return Some(Err("$valueNamed(name, [event]) needs a string name".into()));
                };
                match args.get(1).copied().flatten() {
                    Some(other) => match other
                        .get("data")
                        .and_then(|d| d.get("content"))
                        .and_then(|c| c.get("values"))
                        .and_then(|v| value_named(v, key))
                    {
                        Some(v) => HostValue::Owned(v.clone()),
                        None => HostValue::Undefined,
                    },
                    None => match self.event.value_named(key) {
                        Some(v) => HostValue::Borrowed(v),
                        None => HostValue::Undefined,
                    },
                }
            }
            "local" => {
                let Some(key) = arg_str(args, 0) else {
                    return Some(Err("$local(name) needs a string name".into()));
                };
                self.local(key)
                    .map_or(HostValue::Undefined, HostValue::Owned)
            }
            "setLocal" => {
                let Some(key) = arg_str(args, 0) else {
                    return Some(Err("$setLocal(name, value) needs a string name".into()));
                };
                let mut scope = self.scope.borrow_mut();
                match args.get(1).copied().flatten() {
                    Some(v) => {
                        scope.insert(key.to_string(), v.clone());
                    }
                    None => {
                        scope.shift_remove(key);
                    }
                }
                HostValue::Undefined
            }
            "isResponseFor" => {
                let Some(key) = arg_str(args, 0) else {
                    return Some(Err("$isResponseFor(publishName) needs a string name".into()));
                };
                let scope = self.scope.borrow();
                let published = scope.get(&format!("{OUT_ID_PREFIX}{key}"));
                let hit = matches!((published, self.event.re()), (Some(Value::String(id)), Some(re)) if id == re);
                HostValue::Owned(Value::Bool(hit))
            }
            "log" => {
                let text = match args.first().copied().flatten() {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => "undefined".into(),
                };
                self.logs.borrow_mut().push(text);
                HostValue::Undefined
            }
            _ => return None,
        }))
    }

    fn has_function(&self, name: &str) -> bool {
        matches!(
            name,
            "valueNamed" | "local" | "setLocal" | "isResponseFor" | "log"
        )
    }

    fn now_millis(&self) -> i64 {
        self.now
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}
