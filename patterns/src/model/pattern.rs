//! The pattern model as authors write it (spec §2): plain serde types, field names exactly as in
//! SrvThreds' JSON. Loading (`crate::load`) validates these and compiles them into a
//! [`crate::pattern::Pattern`].

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A pattern: a named state machine of reactions (spec §2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatternModel {
    /// Display name (required).
    pub name: String,
    /// Id; defaults to the name lower-cased with spaces replaced by `_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Minimum milliseconds between creations of new threds; 0 or absent = none.
    #[serde(
        default,
        rename = "instanceInterval",
        skip_serializing_if = "Option::is_none"
    )]
    pub instance_interval: Option<f64>,
    /// Maximum live threds; 0 or absent = unlimited.
    #[serde(
        default,
        rename = "maxInstances",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_instances: Option<f64>,
    /// Enables the broadcast builtin and keeps finished threds (only the literal `true`).
    #[serde(
        default,
        rename = "broadcastAllowed",
        skip_serializing_if = "Option::is_none"
    )]
    pub broadcast_allowed: Option<Value>,
    /// Enables echoing `org.wt.client.tell` events to other participants (only the literal `true`).
    #[serde(
        default,
        rename = "echoResponses",
        skip_serializing_if = "Option::is_none"
    )]
    pub echo_responses: Option<Value>,
    /// The states; index 0 is the initial reaction.
    pub reactions: Vec<ReactionModel>,
    /// Free metadata (`meta.active` selects active patterns in persistence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A reaction: one state of a pattern (spec §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReactionModel {
    /// Name; defaults to `<pattern name>_<index>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The condition that must match for the reaction to fire.
    pub condition: ConditionModel,
    /// Who may trigger it: ids, `$group` names or `/regex/`.
    #[serde(
        default,
        rename = "allowedSources",
        skip_serializing_if = "Option::is_none"
    )]
    pub allowed_sources: Option<StringOrList>,
    /// While current, unbound events are also tested against this reaction.
    #[serde(
        default,
        rename = "allowUnboundEvents",
        skip_serializing_if = "Option::is_none"
    )]
    pub allow_unbound_events: Option<bool>,
    /// Parsed, not enforced (as in the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Value>,
    /// Leave this reaction after `interval` ms without a match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<ExpiryModel>,
}

/// `"x"` or `["x", "y"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StringOrList {
    /// One string.
    One(String),
    /// Several strings.
    Many(Vec<String>),
}

impl StringOrList {
    /// The entries as a slice-like list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            StringOrList::One(s) => vec![s.clone()],
            StringOrList::Many(v) => v.clone(),
        }
    }
}

/// The kind of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConditionType {
    /// A JSONata expression.
    Filter,
    /// Every operand must have matched (across events).
    And,
    /// The first matching operand.
    Or,
}

/// A condition: filter, and, or, with the directives that apply when it matches (spec §2.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConditionModel {
    /// `filter`, `and` or `or`.
    #[serde(rename = "type")]
    pub condition_type: ConditionType,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The filter expression (filter only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xpr: Option<String>,
    /// The operands (and/or only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operands: Option<Vec<ConditionModel>>,
    /// Evaluated for its side effects when the condition matches.
    #[serde(default, rename = "onTrue", skip_serializing_if = "Option::is_none")]
    pub on_true: Option<ConsequentModel>,
    /// Builds the outbound event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<TransformModel>,
    /// Where the outbound event goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<PublishModel>,
    /// The next state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<TransitionModel>,
    /// Threds to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spawn: Option<SpawnModel>,
}

/// `{xpr}`: an expression evaluated for its side effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsequentModel {
    /// The expression.
    pub xpr: String,
}

/// How to build the outbound event (spec §2.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformModel {
    /// A template of the outbound `data` with `"$xpr( ... )"` strings and `{"$xpr": ...}` spreads.
    #[serde(
        default,
        rename = "eventDataTemplate",
        skip_serializing_if = "Option::is_none"
    )]
    pub event_data_template: Option<Value>,
    /// An expression computing the outbound `data`.
    #[serde(
        default,
        rename = "templateXpr",
        skip_serializing_if = "Option::is_none"
    )]
    pub template_xpr: Option<String>,
    /// `{reXpr}`: an expression computing the outbound `re`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<TransformMetaModel>,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `transform.meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransformMetaModel {
    /// Expression computing the outbound event's `re`.
    #[serde(default, rename = "reXpr", skip_serializing_if = "Option::is_none")]
    pub re_xpr: Option<String>,
}

/// Where the outbound event goes (spec §2.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishModel {
    /// Addresses: participant ids, `$group`, `$thred`, `$all`, service addresses, `"$xpr( )"`.
    pub to: Value,
    /// Names the outbound event for `$isResponseFor(name)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Evaluated after publishing, with `$outboundEvent` bound.
    #[serde(default, rename = "onPublish", skip_serializing_if = "Option::is_none")]
    pub on_publish: Option<ConsequentModel>,
}

/// What the next state receives as input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// Nothing: wait for the next event.
    #[default]
    Default,
    /// The event that triggered this reaction.
    Forward,
    /// An event stored in a thred local (`localName`).
    Local,
}

/// The next state (spec §2.6): a reaction name, `$next`, `$terminate` or `$noTransition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionModel {
    /// Target reaction name or a `$` keyword.
    pub name: String,
    /// Informational.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What the next state receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputKind>,
    /// The local holding the input event when `input` is `local`.
    #[serde(default, rename = "localName", skip_serializing_if = "Option::is_none")]
    pub local_name: Option<String>,
}

/// The relation of a spawned thred to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpawnType {
    /// Terminated with its parent.
    #[default]
    Child,
    /// Outlives its parent.
    Sibling,
}

/// Threds to start when the condition matches (spec §2.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnModel {
    /// Pattern ids or names.
    pub names: Vec<String>,
    /// What the new threds receive first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputKind>,
    /// Child (default) or sibling.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub spawn_type: Option<SpawnType>,
    /// The local holding the input event when `input` is `local`.
    #[serde(default, rename = "localName", skip_serializing_if = "Option::is_none")]
    pub local_name: Option<String>,
    /// Copy the parent's locals and participants into the new thred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<bool>,
}

/// `{interval, transition?}` (spec §2.2, §4.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpiryModel {
    /// Milliseconds after entering the reaction.
    pub interval: f64,
    /// Where to go when it expires (default `$next`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<TransitionModel>,
}
