//! Location paths: step mapping with sequence flattening, predicates (filters), tuple streams
//! for `@`/`#`/`%` bindings, wildcards and descendants.

use super::{Ctx, Fail};
use crate::expr::ast::{Kind, Node, Stage};
use crate::expr::functions::boolean::truthy;
use crate::expr::value::{Env, Tuple, Val};
use std::rc::Rc;

fn is_simple(node: &Node, steps: &[Node]) -> bool {
    !node.keep_singleton
        && node.group.is_none()
        && !node.tuple
        && steps.iter().enumerate().all(|(i, s)| {
            s.stages.is_empty()
                && s.predicates.is_empty()
                && s.group.is_none()
                && !s.tuple
                && !s.keep_array
                && match &s.kind {
                    Kind::Name(_) => true,
                    Kind::Variable(_) => i == 0,
                    _ => false,
                }
        })
}

impl<'a> Ctx<'a> {
    pub(super) fn eval_path(
        &self,
        node: &'a Node,
        steps: &'a [Node],
        input: &Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        if is_simple(node, steps) {
            if let Some(v) = self.simple_path(steps, input, env)? {
                return Ok(v);
            }
        }
        let first_is_var = matches!(steps.first().map(|s| &s.kind), Some(Kind::Variable(_)));
        let mut inp = if input.is_array() && !first_is_var {
            input.clone()
        } else {
            Val::seq(vec![input.clone()])
        };
        let mut result = Val::Undef;
        let mut tuples: Option<Vec<Tuple<'a>>> = None;
        let mut is_tuple = false;
        let last = steps.len().saturating_sub(1);
        for (i, step) in steps.iter().enumerate() {
            if step.tuple {
                is_tuple = true;
            }
            if i == 0 && step.consarray {
                result = self.eval(step, &inp, env)?;
            } else if is_tuple {
                tuples = Some(self.tuple_step(step, &inp, tuples.take(), env)?);
            } else {
                result = self.step(step, &inp, env, i == last)?;
            }
            if !is_tuple && (result.is_undef() || (result.is_array() && result.is_empty())) {
                break;
            }
            if step.focus.is_none() {
                inp = result.clone();
            }
        }
        let mut tuple_result = None;
        if is_tuple {
            let ts = Rc::new(tuples.unwrap_or_default());
            result = if node.tuple {
                Val::Tuples(ts.clone())
            } else {
                self.mem.seq(ts.len())?;
                Val::seq(ts.iter().map(|t| t.ctx.clone()).collect())
            };
            tuple_result = Some(ts);
        }
        if node.keep_singleton {
            result = match result {
                Val::Arr(a) if a.flags.cons && !a.flags.seq => Val::with_flags(
                    vec![Val::Arr(a)],
                    crate::expr::value::Flags {
                        seq: true,
                        keep: true,
                        ..Default::default()
                    },
                ),
                Val::Arr(mut a) => {
                    super::set_keep(&self.mem, &mut a)?;
                    Val::Arr(a)
                }
                other => other,
            };
        }
        if let Some(group) = &node.group {
            let grouped = match tuple_result {
                Some(ts) => Val::Tuples(ts),
                None => result,
            };
            result = self
                .group(&group.pairs, grouped, env)
                .map_err(|e| e.or_at(group.position))?;
        }
        Ok(result)
    }

    /// Path of a variable/name followed by names, walking single objects without allocating.
    /// Returns `None` when an array is met (the general algorithm then runs).
    fn simple_path(
        &self,
        steps: &'a [Node],
        input: &Val<'a>,
        env: Env,
    ) -> Result<Option<Val<'a>>, Fail> {
        let Some(first) = steps.first() else {
            return Ok(Some(Val::Undef));
        };
        let mut cur = match &first.kind {
            Kind::Name(name) => {
                if input.is_array() {
                    return Ok(None);
                }
                self.tick()?;
                input.field(name)
            }
            _ => self.eval(first, input, env)?,
        };
        for step in &steps[1..] {
            let Kind::Name(name) = &step.kind else {
                return Ok(None);
            };
            self.tick()?;
            cur = match &cur {
                Val::Undef => return Ok(Some(Val::Undef)),
                v if v.is_object() => v.field(name),
                v if v.is_array() => return Ok(None),
                _ => return Ok(Some(Val::Undef)),
            };
        }
        if cur.is_seq() {
            return Ok(None);
        }
        Ok(Some(cur))
    }

    fn step(&self, step: &'a Node, inp: &Val<'a>, env: Env, last: bool) -> Result<Val<'a>, Fail> {
        if let Kind::Sort(terms) = &step.kind {
            let mut result = self.sort(step, terms, inp.clone(), env)?;
            for stage in &step.stages {
                if let Stage::Filter(p) = stage {
                    result = self.filter(p, result, env)?;
                }
            }
            return Ok(result);
        }
        let mut out = Vec::new();
        for item in self.members(inp)? {
            let mut res = self.eval(step, &item, env)?;
            for stage in &step.stages {
                if let Stage::Filter(p) = stage {
                    res = self.filter(p, res, env)?;
                }
            }
            if !res.is_undef() {
                self.mem.grow(out.len(), 1)?;
                out.push(res);
            }
        }
        if last && out.len() == 1 && out[0].is_array() && !out[0].is_seq() {
            return Ok(out.swap_remove(0));
        }
        // The flattened length is known before anything is copied.
        let total = out.iter().fold(0usize, |n, r| {
            n.saturating_add(if !r.is_array() || r.flags().cons {
                1
            } else {
                r.len()
            })
        });
        self.mem.seq(total)?;
        let mut flat = Vec::with_capacity(total);
        for r in out {
            if !r.is_array() || r.flags().cons {
                flat.push(r);
            } else {
                flat.extend(r.iter());
            }
        }
        let v = Val::seq(flat);
        self.charge_size(&v)?;
        Ok(v)
    }

    fn frame_from_tuple(&self, env: Env, t: &Tuple<'a>) -> Env {
        let frame = self.new_frame(env);
        for (name, v) in &t.binds {
            self.bind(frame, name, v.clone());
        }
        frame
    }

    fn tuple_step(
        &self,
        step: &'a Node,
        inp: &Val<'a>,
        tuples: Option<Vec<Tuple<'a>>>,
        env: Env,
    ) -> Result<Vec<Tuple<'a>>, Fail> {
        if let Kind::Sort(terms) = &step.kind {
            let mut result = match tuples {
                Some(ts) => self.sort_tuples(terms, ts, env)?,
                None => {
                    let sorted = self.sort(step, terms, inp.clone(), env)?;
                    self.mem.tuples(sorted.len(), 1)?;
                    self.members(&sorted)?
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let mut t = Tuple {
                                ctx: v,
                                binds: Vec::new(),
                            };
                            if let Some(ix) = &step.index {
                                set_bind(&mut t, ix, Val::Num(i as f64));
                            }
                            t
                        })
                        .collect()
                }
            };
            self.tuple_stages(step, &mut result, env)?;
            return Ok(result);
        }
        let ts = match tuples {
            Some(ts) => ts,
            None => {
                self.mem.tuples(inp.len(), 0)?;
                self.members(inp)?
                    .into_iter()
                    .map(|v| Tuple {
                        ctx: v,
                        binds: Vec::new(),
                    })
                    .collect()
            }
        };
        let mut result = Vec::new();
        for t in &ts {
            let mark = self.mark();
            let step_env = self.frame_from_tuple(env, t);
            let res = self.eval(step, &t.ctx, step_env)?;
            self.release(mark);
            match res {
                Val::Undef => {}
                Val::Tuples(inner) => {
                    for it in inner.iter() {
                        self.mem
                            .tuples(1, t.binds.len().saturating_add(it.binds.len()))?;
                        self.mem.check_len(result.len().saturating_add(1))?;
                        let mut nt = t.clone();
                        nt.ctx = it.ctx.clone();
                        for (n, v) in &it.binds {
                            set_bind(&mut nt, n, v.clone());
                        }
                        result.push(nt);
                    }
                }
                res => {
                    let items = self.members(&res)?;
                    for (bb, item) in items.into_iter().enumerate() {
                        self.mem.tuples(1, t.binds.len().saturating_add(3))?;
                        self.mem.check_len(result.len().saturating_add(1))?;
                        let mut nt = t.clone();
                        match &step.focus {
                            Some(focus) => set_bind(&mut nt, focus, item),
                            None => nt.ctx = item,
                        }
                        if let Some(ix) = &step.index {
                            set_bind(&mut nt, ix, Val::Num(bb as f64));
                        }
                        if let Some(anc) = &step.ancestor {
                            set_bind(&mut nt, anc, t.ctx.clone());
                        }
                        result.push(nt);
                    }
                }
            }
        }
        self.tuple_stages(step, &mut result, env)?;
        Ok(result)
    }

    fn tuple_stages(
        &self,
        step: &'a Node,
        result: &mut Vec<Tuple<'a>>,
        env: Env,
    ) -> Result<(), Fail> {
        for stage in &step.stages {
            match stage {
                Stage::Filter(p) => {
                    let ts = std::mem::take(result);
                    *result = self.filter_tuples(p, ts, env)?;
                }
                Stage::Index(name) => {
                    for (i, t) in result.iter_mut().enumerate() {
                        set_bind(t, name, Val::Num(i as f64));
                    }
                }
            }
        }
        Ok(())
    }

    fn filter_tuples(
        &self,
        pred: &'a Node,
        ts: Vec<Tuple<'a>>,
        env: Env,
    ) -> Result<Vec<Tuple<'a>>, Fail> {
        if let Kind::Num(n, _) = pred.kind {
            let len = ts.len() as f64;
            let mut idx = n.floor();
            if idx < 0.0 {
                idx += len;
            }
            return Ok(if idx >= 0.0 && idx < len {
                ts.into_iter().nth(idx as usize).into_iter().collect()
            } else {
                Vec::new()
            });
        }
        let len = ts.len();
        let mut out = Vec::new();
        for (i, t) in ts.into_iter().enumerate() {
            let mark = self.mark();
            let fenv = self.frame_from_tuple(env, &t);
            let res = self.eval(pred, &t.ctx, fenv)?;
            self.release(mark);
            if predicate_selects(&res, i, len) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Applies predicate `pred` to each member of `input` (JSONata `evaluateFilter`).
    pub(super) fn filter(&self, pred: &'a Node, input: Val<'a>, env: Env) -> Result<Val<'a>, Fail> {
        if let Val::Tuples(ts) = input {
            let ts = match Rc::try_unwrap(ts) {
                Ok(ts) => ts,
                Err(rc) => {
                    self.mem
                        .tuples(rc.len(), rc.first().map_or(0, |t| t.binds.len()))?;
                    (*rc).clone()
                }
            };
            return Ok(Val::Tuples(Rc::new(self.filter_tuples(pred, ts, env)?)));
        }
        if let Kind::Num(n, _) = pred.kind {
            let (len, item_at) = if input.is_array() {
                (input.len(), None)
            } else {
                (usize::from(!input.is_undef()), Some(&input))
            };
            let mut idx = n.floor();
            if idx < 0.0 {
                idx += len as f64;
            }
            if idx >= 0.0 && idx < len as f64 {
                let item = match item_at {
                    Some(v) => v.clone(),
                    None => input.get(idx as usize),
                };
                if item.is_array() {
                    return Ok(item);
                }
                return Ok(Val::seq(vec![item]));
            }
            return Ok(Val::seq(Vec::new()));
        }
        self.charge_size(&input)?;
        let items = self.members(&input)?;
        let len = items.len();
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let res = self.eval(pred, &item, env)?;
            if predicate_selects(&res, i, len) {
                out.push(item);
            }
        }
        self.mem.seq(out.len())?;
        Ok(Val::seq(out))
    }
}

/// Whether a predicate result selects member `index` of `len`: numbers (or arrays of numbers)
/// are positions (negative from the end), anything else is tested for truthiness.
fn predicate_selects(res: &Val<'_>, index: usize, len: usize) -> bool {
    let hits = |n: f64| {
        let mut ii = n.floor();
        if ii < 0.0 {
            ii += len as f64;
        }
        ii == index as f64
    };
    match res {
        Val::Num(n) => hits(*n),
        v if v.is_array() && v.iter().all(|m| matches!(m, Val::Num(_))) => {
            v.iter().any(|m| m.num().is_some_and(hits))
        }
        v => truthy(v),
    }
}

fn set_bind<'a>(t: &mut Tuple<'a>, name: &'a str, v: Val<'a>) {
    if let Some(slot) = t.binds.iter_mut().find(|(n, _)| *n == name) {
        slot.1 = v;
    } else {
        t.binds.push((name, v));
    }
}

/// Field lookup over a value or (flattening) over each member of an array.
pub fn lookup_field<'a>(ctx: &Ctx<'a>, input: &Val<'a>, name: &str) -> Result<Val<'a>, Fail> {
    if input.is_array() {
        ctx.tick()?;
        let mut out = Vec::new();
        for m in input.iter() {
            let r = lookup_field(ctx, &m, name)?;
            if r.is_array() {
                ctx.mem.grow(out.len(), r.len())?;
                out.extend(r.iter());
            } else if !r.is_undef() {
                ctx.mem.grow(out.len(), 1)?;
                out.push(r);
            }
        }
        return Ok(Val::seq(out));
    }
    Ok(input.field(name))
}

fn flatten_into<'a>(ctx: &Ctx<'a>, v: Val<'a>, out: &mut Vec<Val<'a>>) -> Result<(), Fail> {
    if v.is_array() {
        ctx.tick()?;
        for m in v.iter() {
            flatten_into(ctx, m, out)?;
        }
    } else {
        ctx.mem.grow(out.len(), 1)?;
        out.push(v);
    }
    Ok(())
}

/// `*`: the values of all fields of the context object (arrays flattened).
pub fn wildcard<'a>(ctx: &Ctx<'a>, input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let input = match input {
        Val::Arr(a) if a.flags.outer && !a.items.is_empty() => a.items[0].clone(),
        other => other.clone(),
    };
    let mut out = Vec::new();
    let mut seq = true;
    let values: Vec<Val<'a>> = if input.is_array() {
        ctx.mem.seq(input.len())?;
        input.members()
    } else {
        let entries = input.entries();
        ctx.mem.seq(entries.len())?;
        entries.into_iter().map(|(_, v)| v).collect()
    };
    for v in values {
        if v.is_array() {
            seq = false;
            flatten_into(ctx, v, &mut out)?;
        } else {
            ctx.mem.grow(out.len(), 1)?;
            out.push(v);
        }
    }
    Ok(if seq { Val::seq(out) } else { Val::array(out) })
}

fn descend<'a>(ctx: &Ctx<'a>, v: Val<'a>, out: &mut Vec<Val<'a>>) -> Result<(), Fail> {
    if v.is_array() {
        ctx.tick()?;
        for m in v.iter() {
            descend(ctx, m, out)?;
        }
        return Ok(());
    }
    let entries = v.entries();
    ctx.mem.grow(out.len(), 1)?;
    out.push(v);
    for (_, child) in entries {
        descend(ctx, child, out)?;
    }
    Ok(())
}

/// `**`: the context and all its descendants.
pub fn descendants<'a>(ctx: &Ctx<'a>, input: &Val<'a>) -> Result<Val<'a>, Fail> {
    if input.is_undef() {
        return Ok(Val::Undef);
    }
    let mut out = Vec::new();
    descend(ctx, input.clone(), &mut out)?;
    if out.len() == 1 {
        return Ok(out.swap_remove(0));
    }
    Ok(Val::seq(out))
}
