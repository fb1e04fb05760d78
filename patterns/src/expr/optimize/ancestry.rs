//! Resolution of `%` (parent) references: each `%` seeks back through the steps of its
//! enclosing paths for the step whose input it denotes, which then binds an ancestor label.

use super::Optimizer;
use crate::expr::ast::{Kind, Node};
use crate::expr::error::{Error, Fail};

/// Records the unresolved parent slots of `value` (and `value` itself if it is `%`) on `result`.
pub(super) fn push_ancestry(result: &mut Node, value: &Node) {
    result.seeking.extend(value.seeking.iter().copied());
    if let (Kind::Parent(_), Some(slot)) = (&value.kind, value.slot) {
        result.seeking.push(slot);
    }
}

impl Optimizer {
    /// How many steps slot `slot` still has to climb.
    pub(super) fn level(&self, slot: usize) -> i32 {
        self.slots.get(slot).map_or(0, |s| s.level)
    }

    /// Adjusts the steps slot `slot` still has to climb.
    pub(super) fn add_level(&mut self, slot: usize, delta: i32) {
        if let Some(s) = self.slots.get_mut(slot) {
            s.level += delta;
        }
    }

    /// Walks back from `node` looking for the step that binds the ancestor for `slot`.
    pub(super) fn seek_parent(&mut self, node: &mut Node, slot: usize) -> Result<(), Fail> {
        match &mut node.kind {
            Kind::Name(_) | Kind::Wildcard => {
                self.add_level(slot, -1);
                if self.level(slot) == 0 {
                    if let Some(existing) = node.ancestor_slot {
                        let label = self.slots.get(existing).map_or(existing, |s| s.label);
                        if let Some(s) = self.slots.get_mut(slot) {
                            s.label = label;
                        }
                    }
                    node.ancestor_slot = Some(slot);
                    node.tuple = true;
                }
            }
            Kind::Parent(_) => self.add_level(slot, 1),
            Kind::Block(items) => {
                if let Some(last) = items.last_mut() {
                    node.tuple = true;
                    self.seek_parent(last, slot)?;
                }
            }
            Kind::Path(steps) => {
                node.tuple = true;
                let mut index = steps.len();
                while index > 0 {
                    index -= 1;
                    if let Some(step) = steps.get_mut(index) {
                        self.seek_parent(step, slot)?;
                    }
                    if self.level(slot) <= 0 {
                        break;
                    }
                }
            }
            _ => {
                return Err(Error::new(
                    "S0217",
                    "The object representing the 'parent' cannot be derived from this expression",
                )
                .at(node.position)
                .with_token(kind_name(&node.kind)));
            }
        }
        Ok(())
    }

    /// Resolves the parent slots sought by the last step of `path` against its earlier steps.
    pub(super) fn resolve_ancestry(&mut self, path: &mut Node) -> Result<(), Fail> {
        let Kind::Path(steps) = &mut path.kind else {
            return Ok(());
        };
        let Some(last) = steps.last() else {
            return Ok(());
        };
        let mut slots = last.seeking.clone();
        if let (Kind::Parent(_), Some(slot)) = (&last.kind, last.slot) {
            slots.push(slot);
        }
        let mut escaped = Vec::new();
        for slot in slots {
            let mut index = steps.len() as isize - 2;
            while self.level(slot) > 0 {
                if index < 0 {
                    escaped.push(slot);
                    break;
                }
                let mut i = index as usize;
                index -= 1;
                while index >= 0
                    && steps.get(i).is_some_and(|s| s.focus.is_some())
                    && steps.get(index as usize).is_some_and(|s| s.focus.is_some())
                {
                    i = index as usize;
                    index -= 1;
                }
                if let Some(step) = steps.get_mut(i) {
                    self.seek_parent(step, slot)?;
                }
            }
        }
        path.seeking.extend(escaped);
        Ok(())
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Str(_) => "string",
        Kind::Num(..) => "number",
        Kind::Bool(_) | Kind::Null => "value",
        Kind::Variable(_) => "variable",
        Kind::Call { .. } => "function",
        Kind::Lambda(_) => "lambda",
        Kind::Condition(..) => "condition",
        Kind::Object(_) | Kind::Array(_) | Kind::Neg(_) => "unary",
        Kind::Binary(..) => "binary",
        Kind::Descendant => "descendant",
        Kind::Regex(_) => "regex",
        Kind::Transform(..) => "transform",
        Kind::Sort(_) => "sort",
        Kind::Apply(..) => "apply",
        Kind::Bind(..) => "bind",
        _ => "expression",
    }
}
