//! Validation and compilation of a [`PatternModel`] into a [`Pattern`]: every problem is reported
//! with the JSON path where it is, and every expression is compiled exactly once.

use super::{
    id_from_name, Condition, ConditionKind, DataSource, Directives, Expiry, Pattern, Publish,
    Reaction, SourceRule, Spawn, Target, Template, Transform, Transition,
};
use crate::expr::{self, Expression};
use crate::model::{
    ConditionModel, ConditionType, InputKind, PatternModel, SpawnModel, TransformModel,
    TransitionModel,
};
use serde_json::Value;
use std::collections::HashMap;

/// One problem in a pattern, at a JSON path such as `reactions[1].condition.xpr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Where: a JSON path from the pattern's root.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Validates `model` and compiles it; on failure returns every problem found.
pub fn compile(model: PatternModel) -> Result<Pattern, Vec<CompileError>> {
    let mut c = Compiler { errors: Vec::new() };
    let pattern = c.pattern(model);
    if c.errors.is_empty() {
        if let Some(p) = pattern {
            return Ok(p);
        }
    }
    Err(c.errors)
}

/// Compiles a transition for `pattern` outside of any reaction (admin `transitionThred`).
pub fn compile_transition(
    pattern: &Pattern,
    model: &TransitionModel,
) -> Result<Transition, String> {
    let mut c = Compiler { errors: Vec::new() };
    match c.transition(model, "transition", &pattern.by_name) {
        Some(t) if c.errors.is_empty() => Ok(t),
        _ => Err(c
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

/// Renders an expression error as a reason: message, position and official code.
pub(crate) fn expr_reason(e: &expr::Error) -> String {
    match e.position {
        Some(pos) => format!("{} at {} ({})", e.message, pos, e.code),
        None => format!("{} ({})", e.message, e.code),
    }
}

/// `None` → `Some(None)` (absent), `Some(Some(x))` → `Some(Some(x))`, `Some(None)` (failed) → `None`.
fn settle<T>(compiled: Option<Option<T>>) -> Option<Option<T>> {
    match compiled {
        None => Some(None),
        Some(inner) => inner.map(Some),
    }
}

struct Compiler {
    errors: Vec<CompileError>,
}

const NEXT: &str = "$next";
const TERMINATE: &str = "$terminate";
const NO_TRANSITION: &str = "$noTransition";

impl Compiler {
    fn error(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(CompileError {
            path: path.into(),
            reason: reason.into(),
        });
    }

    fn pattern(&mut self, model: PatternModel) -> Option<Pattern> {
        if model.name.trim().is_empty() {
            self.error("name", "must be a non-empty string");
        }
        let id = match &model.id {
            Some(id) if id.trim().is_empty() => {
                self.error("id", "must be a non-empty string when given");
                id.clone()
            }
            Some(id) => id.clone(),
            None => id_from_name(&model.name),
        };
        let reserved = [
            (crate::machine::quota::PARTICIPANT_KEY_PREFIX, "participant"),
            (crate::machine::quota::VERSION_KEY_PREFIX, "version"),
        ];
        for (prefix, what) in reserved {
            if id.starts_with(prefix) {
                self.error(
                    "id",
                    format!("'{id}' may not start with '{prefix}' (reserved for the engine's {what} counters)"),
                );
            }
        }
        let instance_interval = self.non_negative("instanceInterval", model.instance_interval);
        let max_instances = self.non_negative("maxInstances", model.max_instances);
        if model.reactions.is_empty() {
            self.error("reactions", "a pattern needs at least one reaction");
        }

        // Reaction names first: transitions may point forward.
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let names: Vec<String> = model
            .reactions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.name
                    .clone()
                    .unwrap_or_else(|| format!("{}_{}", model.name, i))
            })
            .collect();
        for (i, name) in names.iter().enumerate() {
            if name.is_empty() {
                self.error(format!("reactions[{i}].name"), "must be a non-empty string");
            }
            if let Some(&first) = by_name.get(name) {
                self.error(
                    format!("reactions[{i}].name"),
                    format!("duplicate reaction name '{name}' (also reactions[{first}])"),
                );
            } else {
                by_name.insert(name.clone(), i);
            }
        }

        let mut reactions = Vec::with_capacity(model.reactions.len());
        for (i, (r, name)) in model.reactions.iter().zip(names).enumerate() {
            let at = format!("reactions[{i}]");
            let mut allowed_sources = Vec::new();
            if let Some(sources) = &r.allowed_sources {
                for (j, entry) in sources.to_vec().iter().enumerate() {
                    match SourceRule::parse(entry) {
                        Ok(rule) => allowed_sources.push(rule),
                        Err(reason) => self.error(format!("{at}.allowedSources[{j}]"), reason),
                    }
                }
            }
            let mut slots = 0usize;
            let condition = self.condition(
                &r.condition,
                &format!("{at}.condition"),
                &by_name,
                &mut slots,
            );
            let expiry = r.expiry.as_ref().and_then(|e| {
                let interval =
                    self.non_negative(&format!("{at}.expiry.interval"), Some(e.interval));
                let transition = match &e.transition {
                    Some(t) => self.transition(t, &format!("{at}.expiry.transition"), &by_name)?,
                    None => Transition::next(),
                };
                Some(Expiry {
                    interval,
                    transition,
                })
            });
            let Some(condition) = condition else { continue };
            reactions.push(Reaction {
                name,
                condition,
                allowed_sources,
                allow_unbound_events: r.allow_unbound_events == Some(true),
                expiry,
            });
        }

        Some(Pattern {
            id,
            name: model.name.clone(),
            instance_interval,
            max_instances: u64::try_from(max_instances).unwrap_or(0),
            broadcast_allowed: model.broadcast_allowed == Some(Value::Bool(true)),
            echo_responses: model.echo_responses == Some(Value::Bool(true)),
            reactions,
            by_name,
            model,
            version: 0,
        })
    }

    fn non_negative(&mut self, path: &str, value: Option<f64>) -> i64 {
        match value {
            None => 0,
            Some(v) if (0.0..=9.0e15).contains(&v) => v as i64,
            Some(v) => {
                self.error(
                    path,
                    format!("must be a non-negative number of milliseconds, got {v}"),
                );
                0
            }
        }
    }

    fn expression(&mut self, path: &str, source: &str) -> Option<Expression> {
        match Expression::compile(source) {
            Ok(e) => Some(e),
            Err(e) => {
                self.error(path, expr_reason(&e));
                None
            }
        }
    }

    fn template(&mut self, path: &str, value: &Value) -> Option<Template> {
        match Template::compile(value) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(format!("{path}{}", e.path), expr_reason(&e.error));
                None
            }
        }
    }

    fn condition(
        &mut self,
        model: &ConditionModel,
        at: &str,
        names: &HashMap<String, usize>,
        slots: &mut usize,
    ) -> Option<Condition> {
        let slot = slots.to_string();
        *slots += 1;
        let kind = match model.condition_type {
            ConditionType::Filter => {
                if model.operands.is_some() {
                    self.error(
                        format!("{at}.operands"),
                        "a filter condition has no operands (use type 'and' or 'or')",
                    );
                }
                match &model.xpr {
                    Some(src) => self
                        .expression(&format!("{at}.xpr"), src)
                        .map(ConditionKind::Filter),
                    None => {
                        self.error(
                            format!("{at}.xpr"),
                            "a filter condition needs an expression",
                        );
                        None
                    }
                }
            }
            ConditionType::And | ConditionType::Or => {
                if model.xpr.is_some() {
                    self.error(
                        format!("{at}.xpr"),
                        "only filter conditions have an expression",
                    );
                }
                let operands = model.operands.as_deref().unwrap_or_default();
                if operands.is_empty() {
                    self.error(
                        format!("{at}.operands"),
                        "an 'and'/'or' condition needs at least one operand",
                    );
                }
                let compiled: Vec<Option<Condition>> = operands
                    .iter()
                    .enumerate()
                    .map(|(i, op)| self.condition(op, &format!("{at}.operands[{i}]"), names, slots))
                    .collect();
                let compiled: Option<Vec<Condition>> = compiled.into_iter().collect();
                compiled.map(|ops| {
                    if model.condition_type == ConditionType::And {
                        ConditionKind::And(ops)
                    } else {
                        ConditionKind::Or(ops)
                    }
                })
            }
        };
        let on_true = model
            .on_true
            .as_ref()
            .map(|c| self.expression(&format!("{at}.onTrue.xpr"), &c.xpr));
        let transform = model
            .transform
            .as_ref()
            .map(|t| self.transform(t, &format!("{at}.transform")));
        let publish = model.publish.as_ref().map(|p| {
            let path = format!("{at}.publish");
            if !matches!(p.to, Value::String(_) | Value::Array(_)) {
                self.error(
                    format!("{path}.to"),
                    "must be an address string or an array of addresses",
                );
            }
            let to = self.template(&format!("{path}.to"), &p.to);
            let on_publish = p
                .on_publish
                .as_ref()
                .map(|c| self.expression(&format!("{path}.onPublish.xpr"), &c.xpr));
            Some(Publish {
                to: to?,
                name: p.name.clone(),
                on_publish: settle(on_publish)?,
            })
        });
        let transition = model
            .transition
            .as_ref()
            .map(|t| self.transition(t, &format!("{at}.transition"), names));
        let spawn = model
            .spawn
            .as_ref()
            .map(|s| self.spawn(s, &format!("{at}.spawn")));
        Some(Condition {
            slot,
            kind: kind?,
            on_true: settle(on_true)?,
            directives: Directives {
                transform: settle(transform)?,
                publish: settle(publish)?,
                transition: settle(transition)?,
                spawn: settle(spawn)?,
            },
        })
    }

    fn transform(&mut self, model: &TransformModel, at: &str) -> Option<Transform> {
        let data = match (&model.event_data_template, &model.template_xpr) {
            (Some(t), _) => {
                DataSource::Template(self.template(&format!("{at}.eventDataTemplate"), t)?)
            }
            (None, Some(x)) => {
                DataSource::Expression(self.expression(&format!("{at}.templateXpr"), x)?)
            }
            (None, None) => {
                self.error(
                    at,
                    "a transform needs an eventDataTemplate or a templateXpr",
                );
                return None;
            }
        };
        let re = match model.meta.as_ref().and_then(|m| m.re_xpr.as_ref()) {
            Some(x) => Some(self.expression(&format!("{at}.meta.reXpr"), x)?),
            None => None,
        };
        Some(Transform { data, re })
    }

    fn transition(
        &mut self,
        model: &TransitionModel,
        at: &str,
        names: &HashMap<String, usize>,
    ) -> Option<Transition> {
        let target = match model.name.as_str() {
            NEXT => Target::Next,
            TERMINATE => Target::Terminate,
            NO_TRANSITION => Target::Stay,
            name => match names.get(name) {
                Some(&i) => Target::Reaction(i),
                None => {
                    let mut known: Vec<&str> = names.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    self.error(
                        format!("{at}.name"),
                        format!(
                            "unknown transition target '{name}' (reactions: {}; or $next, $terminate, $noTransition)",
                            known.join(", ")
                        ),
                    );
                    return None;
                }
            },
        };
        let input = model.input.unwrap_or_default();
        if input == InputKind::Local && model.local_name.is_none() {
            self.error(format!("{at}.localName"), "input 'local' needs a localName");
            return None;
        }
        Some(Transition {
            name: model.name.clone(),
            target,
            input,
            local_name: model.local_name.clone(),
        })
    }

    fn spawn(&mut self, model: &SpawnModel, at: &str) -> Option<Spawn> {
        if model.names.is_empty() {
            self.error(format!("{at}.names"), "names at least one pattern to spawn");
        }
        let input = model.input.unwrap_or_default();
        if input == InputKind::Local && model.local_name.is_none() {
            self.error(format!("{at}.localName"), "input 'local' needs a localName");
            return None;
        }
        Some(Spawn {
            names: model.names.clone(),
            input,
            spawn_type: model.spawn_type.unwrap_or_default(),
            local_name: model.local_name.clone(),
            context: model.context == Some(true),
        })
    }
}
