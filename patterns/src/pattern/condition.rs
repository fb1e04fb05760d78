//! Compiled conditions (spec §2.3) and the directives they carry.

use super::{Publish, Spawn, Transform, Transition};
use crate::expr::Expression;

/// A compiled condition. Every condition of a reaction has its own state slot (fixing the
/// reference's sibling collision, spec §11.3b).
#[derive(Debug, Clone)]
pub struct Condition {
    /// Unique (per reaction) key of this condition's state in the thred's `conditionState`.
    pub slot: String,
    /// What must hold.
    pub kind: ConditionKind,
    /// Evaluated for side effects when this condition matches.
    pub on_true: Option<Expression>,
    /// The directives this condition contributes when it matches.
    pub directives: Directives,
}

/// The three kinds of condition.
#[derive(Debug, Clone)]
pub enum ConditionKind {
    /// A JSONata expression; matches when its value is truthy.
    Filter(Expression),
    /// Matches once every operand has matched, across events (progress is thred state).
    And(Vec<Condition>),
    /// Matches with the first matching operand.
    Or(Vec<Condition>),
}

/// The directives of a matched condition: what to send, where, and what happens next.
#[derive(Debug, Clone, Default)]
pub struct Directives {
    /// Builds the outbound event.
    pub transform: Option<Transform>,
    /// Addresses the outbound event.
    pub publish: Option<Publish>,
    /// The next state.
    pub transition: Option<Transition>,
    /// Threds to start.
    pub spawn: Option<Spawn>,
}

/// The directives that apply after a match, borrowed from the conditions that supplied them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Matched<'p> {
    /// Builds the outbound event.
    pub transform: Option<&'p Transform>,
    /// Addresses the outbound event.
    pub publish: Option<&'p Publish>,
    /// The next state.
    pub transition: Option<&'p Transition>,
    /// Threds to start.
    pub spawn: Option<&'p Spawn>,
}

impl<'p> Matched<'p> {
    /// The directives defined on `d`.
    pub fn of(d: &'p Directives) -> Self {
        Matched {
            transform: d.transform.as_ref(),
            publish: d.publish.as_ref(),
            transition: d.transition.as_ref(),
            spawn: d.spawn.as_ref(),
        }
    }

    /// `{...outer, ...inner}`: each directive the inner (deeper) result defines wins (or semantics).
    pub fn overlaid_with(self, inner: Matched<'p>) -> Self {
        Matched {
            transform: inner.transform.or(self.transform),
            publish: inner.publish.or(self.publish),
            transition: inner.transition.or(self.transition),
            spawn: inner.spawn.or(self.spawn),
        }
    }
}

impl Condition {
    /// Visits this condition and every nested operand, pre-order.
    pub fn walk<'a>(&'a self, f: &mut dyn FnMut(&'a Condition)) {
        f(self);
        if let ConditionKind::And(ops) | ConditionKind::Or(ops) = &self.kind {
            for op in ops {
                op.walk(f);
            }
        }
    }
}
