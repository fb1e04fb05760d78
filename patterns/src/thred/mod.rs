//! Thred state: what a running pattern instance is, as stored between steps (spec §5 `Thred:<id>`),
//! and the Thred JSON clients and admins see (spec §1.6).

use crate::model::SpawnType;
use crate::pattern::Pattern;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Lifecycle status of a thred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Running: has a current reaction.
    #[serde(rename = "a")]
    Active,
    /// Ran out of reactions but is kept (patterns with `broadcastAllowed`).
    #[serde(rename = "f")]
    Finished,
    /// Ended; archived and removed from live storage.
    #[serde(rename = "t")]
    Terminated,
}

/// The persisted state of one thred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThredState {
    /// Thred id.
    pub id: String,
    /// The pattern it runs.
    pub pattern_id: String,
    /// The version of the pattern it runs (absent: unversioned, it follows the active one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern_version: Option<u32>,
    /// Locals and participants.
    pub thred_context: ThredContext,
    /// The current reaction and its condition state; `None` once the thred has no current reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction_store: Option<ReactionStore>,
    /// Creation time (epoch ms).
    pub start_time: i64,
    /// When it finished or terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// Lifecycle status.
    pub status: Status,
    /// Last transition time.
    pub last_update_time: i64,
    /// Display metadata updated on every transition.
    #[serde(default)]
    pub meta: ThredMeta,
    /// The thred that spawned this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_thred_id: Option<String>,
    /// Child or sibling of its parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn_type: Option<SpawnType>,
    /// Threds spawned by this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_thred_ids: Vec<String>,
    /// The participant whose event started it (counted against that participant's quota of live
    /// threds); `None` for spawned threds and threds stored before quotas existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
}

/// A thred's scope (locals) and participants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ThredContext {
    /// The thred id.
    pub thred_id: String,
    /// Locals set with `$setLocal`.
    #[serde(default)]
    pub scope: Map<String, Value>,
    /// Every resolved publish target and every source whose event produced a message (no duplicates).
    #[serde(default)]
    pub participant_ids: Vec<String>,
}

impl ThredContext {
    /// Adds a participant unless already present.
    pub fn add_participant(&mut self, id: &str) {
        if !self.participant_ids.iter().any(|p| p == id) {
            self.participant_ids.push(id.to_string());
        }
    }
}

/// The current reaction of a thred and the state of its conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReactionStore {
    /// The current reaction's name.
    pub reaction_name: String,
    /// Per-condition state by slot (and-conditions: which operands matched).
    #[serde(default)]
    pub condition_state: BTreeMap<String, AndState>,
    /// When the reaction was entered (the expiry clock starts here).
    pub start_time: i64,
}

/// Progress of an `and` condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct AndState {
    /// One flag per operand: has it matched yet?
    pub operand_results: Vec<bool>,
}

/// Display metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ThredMeta {
    /// Title of the last event that advanced the thred, or the pattern name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Description (or type) of that event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its `data.display.uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_uri: Option<String>,
}

/// A pending expiry: fires for `thred_id` at `due` if the thred is still in the same reaction entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timer {
    /// The thred.
    pub thred_id: String,
    /// Epoch ms when it fires.
    pub due: i64,
    /// The reaction it expires.
    pub reaction_name: String,
    /// When that reaction was entered (identifies the entry; a later entry makes this timer stale).
    pub entered_at: i64,
}

impl ThredState {
    /// A new active thred of `pattern` in its initial reaction.
    pub fn new(pattern: &Pattern, id: String, now: i64) -> ThredState {
        ThredState {
            pattern_version: (pattern.version > 0).then_some(pattern.version),
            reaction_store: pattern.initial().map(|r| ReactionStore {
                reaction_name: r.name.clone(),
                condition_state: BTreeMap::new(),
                start_time: now,
            }),
            start_time: now,
            ..ThredState::bare(&id, &pattern.id, now)
        }
    }

    /// An active thred `id` of the pattern called `pattern_id`, in no reaction, with no
    /// participants, last updated at `now`: a state for code that stores threds without running
    /// them (stores, their tests).
    pub fn bare(id: &str, pattern_id: &str, now: i64) -> ThredState {
        ThredState {
            id: id.to_owned(),
            pattern_id: pattern_id.to_owned(),
            pattern_version: None,
            thred_context: ThredContext {
                thred_id: id.to_owned(),
                ..ThredContext::default()
            },
            reaction_store: None,
            start_time: 0,
            end_time: None,
            status: Status::Active,
            last_update_time: now,
            meta: ThredMeta::default(),
            parent_thred_id: None,
            spawn_type: None,
            child_thred_ids: Vec::new(),
            started_by: None,
        }
    }

    /// The current reaction's name.
    pub fn current_reaction(&self) -> Option<&str> {
        self.reaction_store
            .as_ref()
            .map(|r| r.reaction_name.as_str())
    }

    /// The expiry timer this state needs, if its current reaction has an expiry.
    pub fn timer(&self, pattern: &Pattern) -> Option<Timer> {
        if self.status != Status::Active {
            return None;
        }
        let store = self.reaction_store.as_ref()?;
        let expiry = pattern.reaction(&store.reaction_name)?.expiry.as_ref()?;
        Some(Timer {
            thred_id: self.id.clone(),
            due: store.start_time.saturating_add(expiry.interval),
            reaction_name: store.reaction_name.clone(),
            entered_at: store.start_time,
        })
    }

    /// True while the current reaction accepts unbound events (spec §4.3b).
    pub fn listens_unbound(&self, pattern: &Pattern) -> bool {
        self.status == Status::Active
            && self
                .current_reaction()
                .and_then(|name| pattern.reaction(name))
                .is_some_and(|r| r.allow_unbound_events)
    }

    /// The reference's Thred JSON (spec §1.6).
    pub fn to_json(&self, pattern: Option<&Pattern>) -> Value {
        let mut current = Map::new();
        if let Some(name) = self.current_reaction() {
            current.insert("reactionName".into(), json!(name));
            let expiry = pattern
                .and_then(|p| p.reaction(name))
                .and_then(|r| r.expiry.as_ref());
            if let Some(e) = expiry {
                let mut transition = Map::new();
                transition.insert("name".into(), json!(e.transition.name));
                transition.insert(
                    "input".into(),
                    serde_json::to_value(e.transition.input).unwrap_or(Value::Null),
                );
                if let Some(local) = &e.transition.local_name {
                    transition.insert("localName".into(), json!(local));
                }
                current.insert(
                    "expiry".into(),
                    json!({"interval": e.interval, "transition": transition}),
                );
            }
        }
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("patternId".into(), json!(self.pattern_id));
        if let Some(version) = self.pattern_version {
            out.insert("patternVersion".into(), json!(version));
        }
        if let Some(p) = pattern {
            out.insert("patternName".into(), json!(p.name));
            out.insert("broadcastAllowed".into(), json!(p.broadcast_allowed));
        }
        out.insert("currentReaction".into(), Value::Object(current));
        out.insert("startTime".into(), json!(self.start_time));
        out.insert("lastUpdateTime".into(), json!(self.last_update_time));
        if let Some(end) = self.end_time {
            out.insert("endTime".into(), json!(end));
        }
        out.insert(
            "status".into(),
            serde_json::to_value(self.status).unwrap_or(Value::Null),
        );
        out.insert(
            "meta".into(),
            serde_json::to_value(&self.meta).unwrap_or(Value::Null),
        );
        if let Some(parent) = &self.parent_thred_id {
            out.insert("parentThredId".into(), json!(parent));
        }
        if let Some(t) = self.spawn_type {
            out.insert(
                "spawnType".into(),
                serde_json::to_value(t).unwrap_or(Value::Null),
            );
        }
        if !self.child_thred_ids.is_empty() {
            out.insert("childThredIds".into(), json!(self.child_thred_ids));
        }
        Value::Object(out)
    }
}
