//! The thred machine: pure step functions that turn one input (an event, a fired timer) plus a
//! read-only view of stored state into ordered outbound messages and a change set.
//!
//! Hosts (`threds simulate`/`test`, `threds dev`, the distributed engine) all call
//! [`Machine::process`]; they differ only in where the view comes from and where the changes go.
//! Within one input, each thred's processing (including threds it spawns) is one atomic unit: if it
//! fails, none of its state changes or messages survive, only the error notification.

mod address;
mod condition;
mod consider;
mod failure;
pub mod history;
mod host;
pub mod quota;
mod route;
mod txn;

pub use address::resolve;
pub use failure::{Code, Failure, FailureData, Scope};
pub use history::{LogKind, Record};
pub use quota::Quotas;

use crate::model::{Event, ResolverConfig, SessionsModel};
use crate::pattern::{Pattern, PatternSet};
use crate::thred::{ThredState, Timer};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Where time and ids come from. The core never reads a clock or a random source.
pub trait Env {
    /// The current time, epoch milliseconds (read once per input).
    fn now(&self) -> i64;
    /// A fresh id for a new thred of `pattern`.
    fn thred_id(&mut self, pattern: &Pattern) -> String;
    /// A fresh id for a generated event.
    fn event_id(&mut self) -> String;
}

/// Live-instance bookkeeping of a pattern (spec §4.4: `ni`, `li`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counter {
    /// Live (active or finished) threds of the pattern.
    #[serde(rename = "ni")]
    pub instances: u64,
    /// When the last thred of the pattern was created (epoch ms); `None` before the first.
    #[serde(rename = "li", default, skip_serializing_if = "Option::is_none")]
    pub last_start: Option<i64>,
}

/// Read-only access to stored state while one input is processed.
pub trait StateView {
    /// The stored state of thred `id`.
    fn thred(&self, id: &str) -> Option<ThredState>;
    /// Ids of threds whose current reaction accepts unbound events, oldest first.
    fn unbound_listeners(&self) -> Vec<String>;
    /// The counter of pattern `pattern_id`, or of a participant's live threds when the key is a
    /// [`quota::participant_key`].
    fn counter(&self, pattern_id: &str) -> Counter;
    /// Every participant the host knows (for `$all`).
    fn participants(&self) -> Vec<String>;
}

/// One input to the machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// An event from a participant or an agent.
    Event(Event),
    /// An expiry timer that came due.
    Timer(Timer),
    /// Admin: terminate a thred (and its children), whatever its state (spec §4.9 `terminateThred`).
    Terminate {
        /// The thred.
        thred_id: String,
    },
    /// Admin: move a thred along a transition, consuming a local input if it names one (spec §4.9
    /// `transitionThred`).
    Transition {
        /// The thred.
        thred_id: String,
        /// The transition, as a pattern would write it.
        transition: crate::model::TransitionModel,
    },
    /// Admin: move a live thred to version `version` of its pattern (it must be loaded, and have
    /// the thred's current reaction). The current reaction's condition starts afresh there.
    Migrate {
        /// The thred.
        thred_id: String,
        /// The target version.
        version: u32,
    },
    /// An event the host refused before any pattern saw it (larger than the deployment allows):
    /// the history records it and its sender is told, with [`Code::QuotaExceeded`].
    Refused {
        /// The event's envelope (id, type, source, thred id; its data is not kept).
        event: Event,
        /// Why it was refused.
        reason: String,
    },
}

/// An outbound message: an event and its resolved recipients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Resolved recipients (participant ids and service addresses).
    pub to: Vec<String>,
    /// The event.
    pub event: Event,
}

/// What happened to one thred.
#[derive(Debug, Clone, PartialEq)]
pub enum ThredChange {
    /// Store this state (replacing any stored one).
    Saved {
        /// The new state.
        state: ThredState,
        /// Whether the thred now belongs in the unbound-listener index.
        listens_unbound: bool,
        /// The expiry timer the thred needs now (replaces any pending one; `None` cancels it).
        timer: Option<Timer>,
    },
    /// The thred terminated: archive this final state, delete the live one, cancel its timer.
    Removed {
        /// The final state (status `t`).
        state: ThredState,
    },
}

impl ThredChange {
    /// The thred concerned.
    pub fn thred_id(&self) -> &str {
        match self {
            ThredChange::Saved { state, .. } | ThredChange::Removed { state } => &state.id,
        }
    }

    /// The thred's state after the change.
    pub fn state(&self) -> &ThredState {
        match self {
            ThredChange::Saved { state, .. } | ThredChange::Removed { state } => state,
        }
    }
}

/// Everything one input produced, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Outbound messages in dispatch order, including error notifications.
    pub messages: Vec<Message>,
    /// Final state changes, one per thred touched, in order of first change.
    pub threds: Vec<ThredChange>,
    /// Final counters of the patterns touched.
    pub counters: Vec<(String, Counter)>,
    /// History records.
    pub history: Vec<Record>,
    /// Why units of this input failed (each already turned into an error notification).
    pub failures: Vec<Failure>,
    /// `$log(...)` output, for diagnostics.
    pub logs: Vec<String>,
}

/// The compiled patterns and the address directory: everything a step needs besides state.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    patterns: PatternSet,
    sessions: Arc<SessionsModel>,
    resolver: Arc<ResolverConfig>,
    quotas: Quotas,
}

impl Machine {
    /// An engine over `patterns` with the given sessions model and resolver config.
    pub fn new(patterns: PatternSet, sessions: SessionsModel, resolver: ResolverConfig) -> Machine {
        Machine {
            patterns,
            sessions: Arc::new(sessions),
            resolver: Arc::new(resolver),
            quotas: Quotas::default(),
        }
    }

    /// The same machine enforcing the deployment `quotas`.
    pub fn with_quotas(mut self, quotas: Quotas) -> Machine {
        self.quotas = quotas;
        self
    }

    /// The deployment quotas enforced.
    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// The loaded patterns.
    pub fn patterns(&self) -> &PatternSet {
        &self.patterns
    }

    /// Replaces the loaded patterns (a reload).
    pub fn set_patterns(&mut self, patterns: PatternSet) {
        self.patterns = patterns;
    }

    /// The sessions model.
    pub fn sessions(&self) -> &SessionsModel {
        &self.sessions
    }

    /// The resolver config.
    pub fn resolver(&self) -> &ResolverConfig {
        &self.resolver
    }

    /// Processes one input against `view`, with time and ids from `env`.
    pub fn process(&self, view: &dyn StateView, input: &Input, env: &mut dyn Env) -> Outcome {
        let mut txn = txn::Txn::new(self, view, env);
        match input {
            Input::Event(event) => txn.event(event),
            Input::Timer(timer) => txn.timer(timer),
            Input::Terminate { thred_id } => txn.terminate(thred_id),
            Input::Transition {
                thred_id,
                transition,
            } => txn.admin_transition(thred_id, transition),
            Input::Refused { event, reason } => txn.refused(event, reason),
            Input::Migrate { thred_id, version } => txn.migrate(thred_id, *version),
        }
        txn.finish()
    }

    /// The pattern a stored thred runs: its version when it has one, else the active definition.
    pub fn pattern_of(&self, state: &ThredState) -> Option<&Arc<Pattern>> {
        match state.pattern_version {
            Some(v) => self.patterns.version(&state.pattern_id, v),
            None => self.patterns.get(&state.pattern_id),
        }
    }

    /// The expiry timer and unbound-index membership of a stored thred (for rebuilding indexes).
    pub fn derived(&self, state: &ThredState) -> (Option<Timer>, bool) {
        match self.pattern_of(state) {
            Some(p) => (state.timer(p), state.listens_unbound(p)),
            None => (None, false),
        }
    }
}
