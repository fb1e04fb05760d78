//! Evaluating conditions (spec §2.3): `test` (side-effect-free probe) and `apply` (with state).

use super::failure::Failure;
use super::host::PatternHost;
use super::txn::Txn;
use crate::expr::{self, Host};
use crate::model::Event;
use crate::pattern::sources::allowed;
use crate::pattern::{Condition, ConditionKind, Matched, Reaction};
use crate::thred::{AndState, ThredState};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Would `reaction` accept `event`? (allowedSources, then the condition's `test`: a filter's
/// truthiness; an and/or is true when any operand is.) Probes never change the thred.
pub(super) fn test_reaction(
    txn: &Txn<'_>,
    reaction: &Reaction,
    event: &Event,
    state: Option<&ThredState>,
) -> Result<bool, Failure> {
    if !allowed(
        &reaction.allowed_sources,
        event.source_id(),
        txn.engine.sessions(),
    ) {
        return Ok(false);
    }
    let scope = RefCell::new(
        state
            .map(|s| s.thred_context.scope.clone())
            .unwrap_or_default(),
    );
    let participants = state
        .map(|s| s.thred_context.participant_ids.as_slice())
        .unwrap_or(&[]);
    let host = PatternHost::new(
        event,
        state.map(|s| s.id.as_str()),
        &scope,
        participants,
        txn.now,
        &txn.logs,
    )
    .with_limits(txn.engine.quotas().expression);
    test(&reaction.condition, &host).map_err(|e| expr_failure(&reaction.name, "condition", &e))
}

fn test(condition: &Condition, host: &dyn Host) -> Result<bool, expr::Error> {
    match &condition.kind {
        ConditionKind::Filter(x) => x.evaluate_truthy(host),
        ConditionKind::And(ops) | ConditionKind::Or(ops) => {
            for op in ops {
                if test(op, host)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// Applies `condition`: evaluates filters, advances and-state in `states`, runs `onTrue` of every
/// condition that matches, and returns the directives that apply ("highest wins" for and, "deepest
/// wins" for or).
pub(super) fn apply<'p>(
    condition: &'p Condition,
    host: &dyn Host,
    states: &mut BTreeMap<String, AndState>,
) -> Result<Option<Matched<'p>>, expr::Error> {
    let matched = match &condition.kind {
        ConditionKind::Filter(x) => x
            .evaluate_truthy(host)?
            .then(|| Matched::of(&condition.directives)),
        ConditionKind::And(ops) => {
            let mut progress = states.get(&condition.slot).cloned().unwrap_or_default();
            progress.operand_results.resize(ops.len(), false);
            for (i, op) in ops.iter().enumerate() {
                if !progress.operand_results[i] && apply(op, host, states)?.is_some() {
                    progress.operand_results[i] = true;
                }
            }
            let complete = progress.operand_results.iter().all(|&done| done);
            states.insert(condition.slot.clone(), progress);
            complete.then(|| Matched::of(&condition.directives))
        }
        ConditionKind::Or(ops) => {
            let mut hit = None;
            for op in ops {
                if let Some(m) = apply(op, host, states)? {
                    hit = Some(m);
                    break;
                }
            }
            hit.map(|inner| Matched::of(&condition.directives).overlaid_with(inner))
        }
    };
    if matched.is_some() {
        if let Some(on_true) = &condition.on_true {
            on_true.evaluate(host)?;
        }
    }
    Ok(matched)
}

/// An expression failure, naming the reaction and the part of it that failed.
pub(super) fn expr_failure(reaction: &str, part: &str, e: &expr::Error) -> Failure {
    Failure::server(format!(
        "reaction '{reaction}', {part}: {}",
        crate::pattern::compile::expr_reason(e)
    ))
}
