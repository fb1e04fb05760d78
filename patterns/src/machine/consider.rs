//! Thred processing (spec §4.5): apply the current reaction, run effects and the transition,
//! dispatch the message, spawn; repeat while a forward/local input continues the chain.

use super::condition::{apply, expr_failure};
use super::failure::{Code, Failure};
use super::history::{LogKind, Record};
use super::host::{PatternHost, OUT_ID_PREFIX};
use super::txn::{build_event, Txn};
use super::{address, Message};
use crate::model::event::{BROADCAST, CLIENT_BROADCAST, CLIENT_TELL, TELL};
use crate::model::{Event, InputKind, SpawnType};
use crate::pattern::{DataSource, Pattern, Spawn, Target, Transition};
use crate::thred::{ReactionStore, Status, ThredState};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Most reactions one input may run through a forward/local chain before it is stopped as a loop.
const MAX_CHAIN: usize = 256;
/// Deepest spawn nesting one input may cause.
const MAX_SPAWN_DEPTH: usize = 16;

/// What a matched reaction asks for.
struct Applied<'p> {
    transition: Option<&'p Transition>,
    spawn: Option<&'p Spawn>,
    outbound: Option<(Event, Vec<String>)>,
}

fn default_transition() -> &'static Transition {
    static NEXT: OnceLock<Transition> = OnceLock::new();
    NEXT.get_or_init(Transition::next)
}

fn stay() -> &'static Transition {
    static STAY: OnceLock<Transition> = OnceLock::new();
    STAY.get_or_init(|| Transition {
        name: "$noTransition".into(),
        target: Target::Stay,
        input: InputKind::Default,
        local_name: None,
    })
}

impl Txn<'_> {
    /// `Thred.consider`: processes `event` (and any chain it causes) in `state`.
    pub(super) fn consider(
        &mut self,
        pattern: &Pattern,
        state: &mut ThredState,
        event: &Event,
    ) -> Result<(), Failure> {
        // A reaction whose expiry is due expires before the event is applied, even if its timer
        // has not been delivered yet.
        if state.timer(pattern).is_some_and(|t| self.now >= t.due) {
            self.expire(pattern, state)?;
        }
        let from = state.current_reaction().map(str::to_string);
        let mut input: Option<Cow<'_, Event>> = Some(Cow::Borrowed(event));
        let mut steps = 0;
        while let Some(current) = input.take() {
            steps += 1;
            if steps > MAX_CHAIN {
                return Err(Failure::server(format!(
                    "thred {}: more than {MAX_CHAIN} reactions chained by forward/local inputs for event {}; stopped as a loop",
                    state.id,
                    event.id()
                )));
            }
            let applied = if current.event_type() == CLIENT_BROADCAST {
                Some(self.broadcast(pattern, state, &current)?)
            } else {
                self.apply_reaction(pattern, state, &current)?
            };
            let Some(applied) = applied else {
                self.history.push(Record::Log {
                    kind: LogKind::NoMatch,
                    event_id: Some(current.id().to_string()),
                    thred_id: Some(state.id.clone()),
                    pattern_id: None,
                    from_reaction: from.clone(),
                    to_reaction: None,
                    detail: None,
                    timestamp: self.now,
                });
                break;
            };
            if pattern.echo_responses && current.event_type() == CLIENT_TELL {
                self.echo(state, &current)?;
            }
            let transition: &Transition = match applied.transition {
                Some(t) => t,
                None => default_transition(),
            };
            let next = self.transition(pattern, state, transition, Some(&current))?;
            update_meta(pattern, state, &current);
            self.history.push(Record::Log {
                kind: LogKind::Match,
                event_id: Some(current.id().to_string()),
                thred_id: Some(state.id.clone()),
                pattern_id: None,
                from_reaction: from.clone(),
                to_reaction: state.current_reaction().map(str::to_string),
                detail: None,
                timestamp: self.now,
            });
            if let Some((outbound, to)) = applied.outbound {
                self.dispatch(state, outbound, &to, event);
            }
            if let Some(spawn) = applied.spawn {
                self.spawn(state, spawn, event)?;
            }
            input = next.map(Cow::Owned);
        }
        Ok(())
    }

    /// Expires the current reaction: its expiry transition, then any local input it names.
    pub(super) fn expire(
        &mut self,
        pattern: &Pattern,
        state: &mut ThredState,
    ) -> Result<(), Failure> {
        let Some(name) = state.current_reaction().map(str::to_string) else {
            return Ok(());
        };
        let Some(expiry) = pattern.reaction(&name).and_then(|r| r.expiry.clone()) else {
            return Ok(());
        };
        let next = self.transition(pattern, state, &expiry.transition, None)?;
        self.history.push(Record::Log {
            kind: LogKind::Expired,
            event_id: None,
            thred_id: Some(state.id.clone()),
            pattern_id: None,
            from_reaction: Some(name),
            to_reaction: state.current_reaction().map(str::to_string),
            detail: None,
            timestamp: self.now,
        });
        match next {
            Some(event) => self.consider(pattern, state, &event),
            None => Ok(()),
        }
    }

    /// Applies the current reaction: allowedSources, the condition, then transform and publish.
    fn apply_reaction<'p>(
        &mut self,
        pattern: &'p Pattern,
        state: &mut ThredState,
        event: &Event,
    ) -> Result<Option<Applied<'p>>, Failure> {
        let Some(name) = state.current_reaction() else {
            return Ok(None);
        };
        let Some(reaction) = pattern.reaction(name) else {
            return Err(Failure::server(format!(
                "thred {} is in reaction '{}', which pattern {} does not have",
                state.id, name, pattern.id
            )));
        };
        if !crate::pattern::sources::allowed(
            &reaction.allowed_sources,
            event.source_id(),
            self.engine.sessions(),
        ) {
            return Ok(None);
        }
        let scope = RefCell::new(std::mem::take(&mut state.thred_context.scope));
        let result = self.evaluate_reaction(reaction, state, event, &scope);
        state.thred_context.scope = scope.into_inner();
        result
    }

    fn evaluate_reaction<'p>(
        &mut self,
        reaction: &'p crate::pattern::Reaction,
        state: &mut ThredState,
        event: &Event,
        scope: &RefCell<Map<String, Value>>,
    ) -> Result<Option<Applied<'p>>, Failure> {
        let now = self.now;
        let logs = &self.logs;
        let limits = self.engine.quotas().expression;
        let host = PatternHost::new(
            event,
            Some(&state.id),
            scope,
            &state.thred_context.participant_ids,
            now,
            logs,
        )
        .with_limits(limits);
        let mut empty = BTreeMap::new();
        let states = match state.reaction_store.as_mut() {
            Some(store) => &mut store.condition_state,
            None => &mut empty,
        };
        let fail = |part: &str, e: &crate::expr::Error| expr_failure(&reaction.name, part, e);
        let Some(matched) =
            apply(&reaction.condition, &host, states).map_err(|e| fail("condition", &e))?
        else {
            return Ok(None);
        };

        let outbound = match matched.transform {
            Some(transform) => {
                let data = match &transform.data {
                    DataSource::Template(t) => {
                        t.expand(&host).map_err(|e| fail("transform", &e))?
                    }
                    DataSource::Expression(x) => {
                        x.evaluate(&host).map_err(|e| fail("transform", &e))?
                    }
                };
                let re = match &transform.re {
                    Some(x) => x
                        .evaluate(&host)
                        .map_err(|e| fail("transform.meta.reXpr", &e))?,
                    None => None,
                };
                Some((data, re))
            }
            None => None,
        };
        let outbound = match outbound {
            Some((data, re)) => {
                if data.as_ref().is_some_and(|d| !d.is_object()) {
                    return Err(Failure::server(format!(
                        "reaction '{}', transform: the event data must be an object, got {}",
                        reaction.name,
                        data.unwrap_or_default()
                    )));
                }
                let re = re.filter(truthy).map(|v| match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
                let id = self.env.event_id();
                Some(build_event(
                    id,
                    now,
                    TELL,
                    Some(&state.id),
                    re.as_deref(),
                    data.unwrap_or(Value::Null),
                ))
            }
            None => None,
        };

        let mut message = None;
        if let Some(publish) = matched.publish {
            if let Some(event_out) = outbound {
                let to = publish
                    .to
                    .expand(&host)
                    .map_err(|e| fail("publish.to", &e))?;
                if let Some(on_publish) = &publish.on_publish {
                    let with_out = PatternHost::new(
                        event,
                        Some(&state.id),
                        scope,
                        &state.thred_context.participant_ids,
                        now,
                        logs,
                    )
                    .with_limits(limits)
                    .with_outbound(Some(event_out.as_value()));
                    on_publish
                        .evaluate(&with_out)
                        .map_err(|e| fail("publish.onPublish", &e))?;
                }
                if let Some(name) = &publish.name {
                    scope
                        .borrow_mut()
                        .insert(format!("{OUT_ID_PREFIX}{name}"), json!(event_out.id()));
                }
                if let Some(to) = to {
                    let to = addresses(&to).map_err(|reason| {
                        Failure::server(format!(
                            "reaction '{}', publish.to: {reason}",
                            reaction.name
                        ))
                    })?;
                    message = Some((event_out, to));
                }
            } else if let Some(name) = &publish.name {
                scope
                    .borrow_mut()
                    .shift_remove(&format!("{OUT_ID_PREFIX}{name}"));
            }
        }
        Ok(Some(Applied {
            transition: matched.transition,
            spawn: matched.spawn,
            outbound: message,
        }))
    }

    /// Moves `state` along `transition`; returns the next input, if any (spec §2.6).
    pub(super) fn transition(
        &mut self,
        pattern: &Pattern,
        state: &mut ThredState,
        transition: &Transition,
        current: Option<&Event>,
    ) -> Result<Option<Event>, Failure> {
        if state.status != Status::Active {
            // A finished thred stays finished (the reference jumped back to the initial reaction).
            return Ok(None);
        }
        let index = match state.current_reaction() {
            Some(name) => pattern.reaction_index(name),
            None => None,
        };
        let Some(index) = index else {
            return Err(Failure::server(format!(
                "thred {} has no reaction of pattern {} to leave",
                state.id, pattern.id
            )));
        };
        match transition.target {
            Target::Stay => {}
            Target::Next if index + 1 < pattern.reactions.len() => {
                self.enter(pattern, state, index + 1)
            }
            Target::Next | Target::Terminate => self.end(pattern, state),
            Target::Reaction(i) => self.enter(pattern, state, i),
        }
        if state.status != Status::Active {
            return Ok(None);
        }
        match transition.input {
            InputKind::Default => Ok(None),
            InputKind::Forward => Ok(current.cloned()),
            InputKind::Local => {
                let name = transition.local_name.as_deref().unwrap_or_default();
                match state.thred_context.scope.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => Event::from_value(value.clone()).map(Some).map_err(|e| {
                        Failure::server(format!(
                            "transition input: local '{name}' of thred {} is not an event: {e}",
                            state.id
                        ))
                    }),
                }
            }
        }
    }

    fn enter(&mut self, pattern: &Pattern, state: &mut ThredState, index: usize) {
        state.reaction_store = Some(ReactionStore {
            reaction_name: pattern.reactions[index].name.clone(),
            condition_state: BTreeMap::new(),
            start_time: self.now,
        });
        state.last_update_time = self.now;
    }

    fn end(&mut self, pattern: &Pattern, state: &mut ThredState) {
        state.reaction_store = None;
        state.end_time = Some(self.now);
        state.last_update_time = self.now;
        state.status = if pattern.broadcast_allowed {
            Status::Finished
        } else {
            Status::Terminated
        };
    }

    /// Sends a message produced by a reaction: resolves its recipients and records participants.
    fn dispatch(&mut self, state: &mut ThredState, event: Event, to: &[String], original: &Event) {
        let all = || self.all_participants();
        let resolved = address::resolve(
            to,
            &state.thred_context.participant_ids,
            &all,
            self.engine.sessions(),
            self.engine.resolver(),
        );
        for id in &resolved {
            state.thred_context.add_participant(id);
        }
        state.thred_context.add_participant(original.source_id());
        self.send(Some(&state.id), resolved, event);
    }

    /// Records and emits one outbound message.
    pub(super) fn send(&mut self, thred_id: Option<&str>, to: Vec<String>, event: Event) {
        self.history.push(Record::Event {
            event: event.clone(),
            thred_id: thred_id.map(str::to_string),
            to: Some(to.clone()),
            timestamp: self.now,
        });
        self.messages.push(Message { to, event });
    }

    /// The thred's participants that are not services (`$thred`).
    fn thred_participants(&self, state: &ThredState) -> Vec<String> {
        let resolver = self.engine.resolver();
        state
            .thred_context
            .participant_ids
            .iter()
            .filter(|p| !resolver.is_service(p))
            .cloned()
            .collect()
    }

    /// The thred's participants other than `sender`, who must be one of them (broadcast, echo).
    fn others(&self, state: &ThredState, sender: &str) -> Result<Vec<String>, Failure> {
        let mut to = self.thred_participants(state);
        if !to.iter().any(|p| p == sender) {
            return Err(Failure::client(
                Code::Unauthorized,
                format!(
                    "Participant {sender} is not a participant of thred {}",
                    state.id
                ),
            ));
        }
        to.retain(|p| p != sender);
        Ok(to)
    }

    /// The broadcast builtin (spec §4.8): the sender's values to every other participant.
    fn broadcast<'p>(
        &mut self,
        pattern: &Pattern,
        state: &ThredState,
        event: &Event,
    ) -> Result<Applied<'p>, Failure> {
        if !pattern.broadcast_allowed {
            return Err(Failure::client(
                Code::Unauthorized,
                format!("Pattern {} does not allow broadcast events", pattern.name),
            ));
        }
        let sender = event.source_id();
        let to = self.others(state, sender)?;
        if !event.value_named("message").is_some_and(truthy) {
            return Err(Failure::client(
                Code::MissingArgument,
                "No message supplied for broadcast",
            ));
        }
        let values = spread_values(event, [("messageSource", event.source().clone())]);
        let data = json!({
            "title": format!("Message from {sender}"),
            "content": {"valuesType": "broadcastMessage", "values": values}
        });
        let out = self.new_event(BROADCAST, Some(&state.id), None, data);
        Ok(Applied {
            transition: Some(stay()),
            spawn: None,
            outbound: Some((out, to)),
        })
    }

    /// The echo effect (spec §4.8): a participant's response, shown to the other participants.
    fn echo(&mut self, state: &ThredState, event: &Event) -> Result<(), Failure> {
        let sender = event.source_id();
        let to = self.others(state, sender)?;
        let re = event.re().map_or(Value::Null, |r| json!(r));
        let values = spread_values(
            event,
            [("messageSource", event.source().clone()), ("re", re)],
        );
        let data = json!({
            "title": format!("Action by {sender}"),
            "content": {"valuesType": "broadcastValues", "values": values}
        });
        let out = self.new_event(BROADCAST, Some(&state.id), None, data);
        self.send(Some(&state.id), to, out);
        Ok(())
    }

    /// Starts the threds a matched condition spawns (spec §2.7); `original` is the event the outer
    /// consider received.
    fn spawn(
        &mut self,
        parent: &mut ThredState,
        spawn: &Spawn,
        original: &Event,
    ) -> Result<(), Failure> {
        if self.spawn_depth >= MAX_SPAWN_DEPTH {
            return Err(Failure::server(format!(
                "thred {}: spawns nested deeper than {MAX_SPAWN_DEPTH}; stopped as a loop",
                parent.id
            )));
        }
        for name in &spawn.names {
            let Some(pattern) = self.engine.patterns().resolve(name).cloned() else {
                self.history.push(Record::Log {
                    kind: LogKind::SpawnSkipped,
                    event_id: Some(original.id().to_string()),
                    thred_id: Some(parent.id.clone()),
                    pattern_id: Some(name.clone()),
                    from_reaction: None,
                    to_reaction: None,
                    detail: Some(format!("no loaded pattern has id or name '{name}'")),
                    timestamp: self.now,
                });
                continue;
            };
            if let Some(reason) = self.veto(&pattern) {
                self.record_veto(&pattern, original.id(), reason);
                continue;
            }
            self.check_quotas(&pattern, None)?;
            let input = match spawn.input {
                InputKind::Default => None,
                InputKind::Forward => Some(original.clone()),
                InputKind::Local => {
                    let local = spawn.local_name.as_deref().unwrap_or_default();
                    match parent.thred_context.scope.get(local) {
                        None | Some(Value::Null) => None,
                        Some(v) => Some(Event::from_value(v.clone()).map_err(|e| {
                            Failure::server(format!(
                                "spawn input: local '{local}' of thred {} is not an event: {e}",
                                parent.id
                            ))
                        })?),
                    }
                }
            };
            self.start_child(parent, &pattern, spawn, input)?;
        }
        Ok(())
    }

    fn start_child(
        &mut self,
        parent: &mut ThredState,
        pattern: &Arc<Pattern>,
        spawn: &Spawn,
        input: Option<Event>,
    ) -> Result<(), Failure> {
        let id = self.env.thred_id(pattern);
        self.created.push(id.clone());
        self.count_start(pattern, None);
        let mut child = ThredState::new(pattern, id, self.now);
        child.parent_thred_id = Some(parent.id.clone());
        child.spawn_type = Some(spawn.spawn_type);
        parent.child_thred_ids.push(child.id.clone());
        if spawn.context {
            for (k, v) in &parent.thred_context.scope {
                child.thred_context.scope.insert(k.clone(), v.clone());
            }
            for p in &parent.thred_context.participant_ids {
                child.thred_context.add_participant(p);
            }
        }
        if let Some(event) = input {
            let bound = event.with_thred_id(&child.id);
            self.spawn_depth += 1;
            let result = self.consider(pattern, &mut child, &bound);
            self.spawn_depth -= 1;
            result?;
        }
        debug_assert!(matches!(
            spawn.spawn_type,
            SpawnType::Child | SpawnType::Sibling
        ));
        self.put(child)
    }
}

/// Updates the display metadata from the event that advanced the thred (spec §4.5c).
fn update_meta(pattern: &Pattern, state: &mut ThredState, input: &Event) {
    let text = |key: &str| {
        input
            .data()
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    state.meta.label = Some(text("title").unwrap_or_else(|| pattern.name.clone()));
    state.meta.description =
        Some(text("description").unwrap_or_else(|| input.event_type().to_string()));
    if let Some(uri) = input
        .data()
        .and_then(|d| d.get("display"))
        .and_then(|d| d.get("uri"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        state.meta.display_uri = Some(uri.to_string());
    }
}

/// `{...event's values, extra...}`.
fn spread_values<const N: usize>(event: &Event, extra: [(&str, Value); N]) -> Value {
    let mut values = match event.values() {
        Some(Value::Object(obj)) => obj.clone(),
        _ => Map::new(),
    };
    for (k, v) in extra {
        values.insert(k.to_string(), v);
    }
    Value::Object(values)
}

/// JavaScript truthiness of a JSON value.
pub(super) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Normalises an expanded `publish.to`: a string, or an array flattened one level, of strings.
fn addresses(to: &Value) -> Result<Vec<String>, String> {
    fn push(out: &mut Vec<String>, v: &Value, depth: usize) -> Result<(), String> {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Null => {}
            Value::Array(items) if depth == 0 => {
                for item in items {
                    push(out, item, depth + 1)?;
                }
            }
            other => return Err(format!("an address must be a string, got {other}")),
        }
        Ok(())
    }
    let mut out = Vec::new();
    match to {
        Value::Array(items) => {
            for item in items {
                push(&mut out, item, 0)?;
            }
        }
        other => push(&mut out, other, 1)?,
    }
    Ok(out)
}
