//! Compiled patterns: validated, with every expression parsed once, ready for the machine.

pub(crate) mod compile;
pub mod condition;
pub mod sources;
pub mod template;

pub use compile::{compile, compile_transition, CompileError};
pub use condition::{Condition, ConditionKind, Directives, Matched};
pub use sources::SourceRule;
pub use template::Template;

use crate::expr::Expression;
use crate::model::{InputKind, PatternModel, SpawnType};
use std::collections::HashMap;
use std::sync::Arc;

/// A compiled pattern (spec §2.1).
#[derive(Debug)]
pub struct Pattern {
    /// The pattern id (explicit, or derived from the name).
    pub id: String,
    /// The display name.
    pub name: String,
    /// The model as authored (for admin views and persistence).
    pub model: PatternModel,
    /// The reactions, in order; index 0 is initial.
    pub reactions: Vec<Reaction>,
    /// Reaction index by name.
    pub by_name: HashMap<String, usize>,
    /// Minimum ms between creations; 0 = none.
    pub instance_interval: i64,
    /// Maximum live threds; 0 = unlimited.
    pub max_instances: u64,
    /// Broadcast builtin enabled; finished threds are kept.
    pub broadcast_allowed: bool,
    /// Echo `org.wt.client.tell` events to other participants.
    pub echo_responses: bool,
    /// Its version in the pattern registry (0: unversioned, as loaded from files without a
    /// registry; threds on it follow whichever definition of the id is active).
    pub version: u32,
}

/// A compiled reaction (spec §2.2).
#[derive(Debug)]
pub struct Reaction {
    /// Name (explicit or `<pattern name>_<index>`).
    pub name: String,
    /// The condition.
    pub condition: Condition,
    /// `allowedSources`; empty means anyone.
    pub allowed_sources: Vec<SourceRule>,
    /// Unbound events are tested against this reaction while it is current.
    pub allow_unbound_events: bool,
    /// Leave after `interval` ms.
    pub expiry: Option<Expiry>,
}

/// Where a transition goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The next reaction in order (the thred ends after the last).
    Next,
    /// End the thred.
    Terminate,
    /// Stay in the current reaction without resetting it.
    Stay,
    /// The reaction at this index (re-entering it resets its state and expiry clock).
    Reaction(usize),
}

/// A compiled transition (spec §2.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The name as written (`$next`, `$terminate`, `$noTransition` or a reaction name).
    pub name: String,
    /// Where it goes.
    pub target: Target,
    /// What the next state receives.
    pub input: InputKind,
    /// The local holding the input event, for `input: local`.
    pub local_name: Option<String>,
}

impl Transition {
    /// The default transition: `$next` without input.
    pub fn next() -> Transition {
        Transition {
            name: "$next".into(),
            target: Target::Next,
            input: InputKind::Default,
            local_name: None,
        }
    }
}

/// Expiry of a reaction (spec §4.7), fired by a real timer.
#[derive(Debug, Clone)]
pub struct Expiry {
    /// Milliseconds after entering the reaction.
    pub interval: i64,
    /// Where to go when it fires.
    pub transition: Transition,
}

/// How the outbound event's `data` is produced.
#[derive(Debug, Clone)]
pub enum DataSource {
    /// `eventDataTemplate`.
    Template(Template),
    /// `templateXpr`.
    Expression(Expression),
}

/// A compiled transform (spec §2.4).
#[derive(Debug, Clone)]
pub struct Transform {
    /// The outbound `data`.
    pub data: DataSource,
    /// `meta.reXpr`: the outbound `re`.
    pub re: Option<Expression>,
}

/// A compiled publish (spec §2.5).
#[derive(Debug, Clone)]
pub struct Publish {
    /// The `to` template.
    pub to: Template,
    /// Records the outbound id in local `out_id_<name>`.
    pub name: Option<String>,
    /// Evaluated with `$outboundEvent` bound.
    pub on_publish: Option<Expression>,
}

/// A compiled spawn (spec §2.7).
#[derive(Debug, Clone)]
pub struct Spawn {
    /// Pattern ids or names.
    pub names: Vec<String>,
    /// What the new threds receive first.
    pub input: InputKind,
    /// Child or sibling.
    pub spawn_type: SpawnType,
    /// The local holding the input event, for `input: local`.
    pub local_name: Option<String>,
    /// Copy locals and participants into the new thred.
    pub context: bool,
}

impl Pattern {
    /// The initial reaction.
    pub fn initial(&self) -> Option<&Reaction> {
        self.reactions.first()
    }

    /// The reaction named `name`.
    pub fn reaction(&self, name: &str) -> Option<&Reaction> {
        self.by_name.get(name).map(|&i| &self.reactions[i])
    }

    /// The index of the reaction named `name`.
    pub fn reaction_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

/// `"Transition Test"` → `transition_test` (spec §2.1).
pub fn id_from_name(name: &str) -> String {
    name.replace(' ', "_").to_lowercase()
}

/// The loaded patterns: the active version of each id, in load order (the order unbound events
/// are matched in), and older versions that live threds may still run.
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Arc<Pattern>>,
    retained: Vec<Arc<Pattern>>,
}

impl PatternSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pattern as its id's active version, replacing the active one in place (which is
    /// retained when both are versioned and differ, for the threds that run it).
    pub fn insert(&mut self, pattern: Arc<Pattern>) {
        match self.patterns.iter_mut().find(|p| p.id == pattern.id) {
            Some(slot) => {
                let old = std::mem::replace(slot, pattern);
                if old.version > 0 && old.version != slot.version {
                    self.retain(old);
                }
            }
            None => self.patterns.push(pattern),
        }
    }

    /// Keeps `pattern` as an inactive version (replacing the same version).
    pub fn retain(&mut self, pattern: Arc<Pattern>) {
        self.retained
            .retain(|p| !(p.id == pattern.id && p.version == pattern.version));
        self.retained.push(pattern);
    }

    /// Version `version` of pattern `id`, active or retained.
    pub fn version(&self, id: &str, version: u32) -> Option<&Arc<Pattern>> {
        self.patterns
            .iter()
            .chain(&self.retained)
            .find(|p| p.id == id && p.version == version)
    }

    /// Every retained (inactive) version.
    pub fn retained(&self) -> impl Iterator<Item = &Arc<Pattern>> {
        self.retained.iter()
    }

    /// Removes the pattern with id `id`.
    pub fn remove(&mut self, id: &str) -> Option<Arc<Pattern>> {
        let i = self.patterns.iter().position(|p| p.id == id)?;
        Some(self.patterns.remove(i))
    }

    /// The pattern with id `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Pattern>> {
        self.patterns.iter().find(|p| p.id == id)
    }

    /// Resolves a spawn name: by id, then by the id derived from it as a name (spec §2.7).
    pub fn resolve(&self, name: &str) -> Option<&Arc<Pattern>> {
        self.get(name).or_else(|| self.get(&id_from_name(name)))
    }

    /// All patterns in load order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Pattern>> {
        self.patterns.iter()
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when no pattern is loaded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}
