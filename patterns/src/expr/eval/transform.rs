//! The `| pattern | update, delete |` transform: evaluates the pattern against the original
//! value, then rebuilds a copy in which every matched object (identified by address) gets the
//! update merged in and the deletions removed. Unmatched subtrees are shared, not copied.

use super::{Ctx, Error, Fail};
use crate::expr::ast::{Kind, Node};
use crate::expr::functions::describe;
use crate::expr::value::{Env, Obj, Val};
use std::collections::HashSet;
use std::rc::Rc;

fn identity(v: &Val<'_>) -> Option<usize> {
    match v {
        Val::Json(j) if j.is_object() => Some(*j as *const serde_json::Value as usize),
        Val::Obj(o) => Some(Rc::as_ptr(o) as usize),
        _ => None,
    }
}

struct Job<'a, 'c> {
    ctx: &'c Ctx<'a>,
    update: &'a Node,
    delete: Option<&'a Node>,
    env: Env,
    targets: HashSet<usize>,
}

impl<'a> Job<'a, '_> {
    /// Rebuilds `v`; returns `None` when nothing below it changed.
    fn rebuild(&self, v: &Val<'a>, depth: usize) -> Result<Option<Val<'a>>, Fail> {
        if depth > 1_000 {
            return Err(Error::new("U1001", "Value nested too deeply"));
        }
        if v.is_array() {
            let mut changed = false;
            self.ctx.mem.seq(v.len())?;
            let mut items = Vec::with_capacity(v.len());
            for m in v.iter() {
                match self.rebuild(&m, depth + 1)? {
                    Some(n) => {
                        changed = true;
                        items.push(n);
                    }
                    None => items.push(m),
                }
            }
            return Ok(changed.then(|| Val::with_flags(items, v.flags())));
        }
        if !v.is_object() {
            return Ok(None);
        }
        let matched = identity(v).is_some_and(|id| self.targets.contains(&id));
        let mut changed = matched;
        let mut obj = Obj::new();
        let entries = self.ctx.entries(v)?;
        self.ctx.mem.object(entries.len())?;
        for (k, child) in entries {
            match self.rebuild(&child, depth + 1)? {
                Some(n) => {
                    changed = true;
                    obj.insert(k, n);
                }
                None => {
                    obj.insert(k, child);
                }
            }
        }
        if !changed {
            return Ok(None);
        }
        if matched {
            self.ctx.tick()?;
            let update = self.ctx.eval(self.update, v, self.env)?;
            if !update.is_undef() {
                if !update.is_object() {
                    return Err(Error::new(
                        "T2011",
                        format!("The insert/update clause of the transform expression must evaluate to an object: {}", describe(&update)),
                    )
                    .at(self.update.position));
                }
                let entries = self.ctx.entries(&update)?;
                self.ctx.mem.object(entries.len())?;
                self.ctx
                    .mem
                    .check_len(obj.len().saturating_add(entries.len()))?;
                for (k, val) in entries {
                    obj.insert(k, val);
                }
            }
            if let Some(del) = self.delete {
                let deletions = self.ctx.eval(del, v, self.env)?;
                if !deletions.is_undef() {
                    let names = self.ctx.members(&deletions)?;
                    if !names.iter().all(|n| matches!(n, Val::Str(_))) {
                        return Err(Error::new(
                            "T2012",
                            format!("The delete clause of the transform expression must evaluate to a string or array of strings: {}", describe(&deletions)),
                        )
                        .at(del.position));
                    }
                    for n in names {
                        if let Val::Str(s) = n {
                            obj.shift_remove(&*s);
                        }
                    }
                }
            }
        }
        Ok(Some(Val::object(obj)))
    }
}

impl<'a> Ctx<'a> {
    /// Applies transform `node` (defined in `env`) to `value`.
    pub(super) fn transform(
        &self,
        node: &'a Node,
        env: Env,
        value: Val<'a>,
    ) -> Result<Val<'a>, Fail> {
        let Kind::Transform(pattern, update, delete) = &node.kind else {
            return Ok(Val::Undef);
        };
        if value.is_undef() {
            return Ok(Val::Undef);
        }
        if !value.is_object() && !value.is_array() {
            return Err(Error::new(
                "T0410",
                "Argument 1 of function transform does not match function signature",
            )
            .at(node.position));
        }
        let matches = self.eval(pattern, &value, env)?;
        let targets: HashSet<usize> = self
            .members(&matches)?
            .iter()
            .filter_map(identity)
            .collect();
        let job = Job {
            ctx: self,
            update,
            delete: delete.as_deref(),
            env,
            targets,
        };
        job.rebuild(&value, 0)?.unwrap_or(value).check_nesting()
    }
}
