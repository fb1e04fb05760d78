//! Array constructors and object constructors (which group their input by key).

use super::{Ctx, Error, Fail};
use crate::expr::ast::{Kind, Node};
use crate::expr::budget::Meter;
use crate::expr::functions::describe;
use crate::expr::value::{Env, Flags, Obj, Str, Tuple, Val};
use indexmap::IndexMap;

/// The items gathered for one group key.
enum Data<'a> {
    One(Val<'a>),
    Many(Vec<Val<'a>>),
    Tuples(Vec<Tuple<'a>>),
}

/// The number of members `v` contributes when appended (arrays flatten one level).
fn append_len(v: &Val<'_>) -> usize {
    if v.is_array() {
        v.len()
    } else {
        usize::from(!v.is_undef())
    }
}

impl<'a> Data<'a> {
    fn push(self, mem: &Meter, item: Val<'a>) -> Result<Data<'a>, Fail> {
        Ok(match self {
            Data::One(v) => {
                mem.seq(append_len(&v).saturating_add(append_len(&item)))?;
                let mut items = v.members();
                if item.is_array() {
                    items.extend(item.iter());
                } else {
                    items.push(item);
                }
                Data::Many(items)
            }
            Data::Many(mut items) => {
                mem.grow(items.len(), append_len(&item))?;
                if item.is_array() {
                    items.extend(item.iter());
                } else {
                    items.push(item);
                }
                Data::Many(items)
            }
            other => other,
        })
    }
}

impl<'a> Ctx<'a> {
    pub(super) fn array_constructor(
        &self,
        node: &'a Node,
        items: &'a [Node],
        input: &Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        self.mem.seq(items.len())?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let v = self.eval(item, input, env)?;
            if v.is_undef() {
                continue;
            }
            if matches!(item.kind, Kind::Array(_)) {
                out.push(v);
            } else if let Val::Tuples(ts) = &v {
                self.mem.grow(out.len(), ts.len())?;
                out.extend(ts.iter().map(|t| t.ctx.clone()));
            } else if v.is_array() {
                self.mem.grow(out.len(), v.len())?;
                out.extend(v.iter());
            } else {
                out.push(v);
            }
        }
        let v = Val::with_flags(
            out,
            Flags {
                cons: node.consarray,
                ..Flags::default()
            },
        );
        self.charge_size(&v)?;
        v.check_nesting()
    }

    /// Evaluates an object constructor / group-by over `input`.
    pub(super) fn group(
        &self,
        pairs: &'a [(Node, Node)],
        input: Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        let mut groups: IndexMap<Str<'a>, (Data<'a>, usize)> = IndexMap::new();
        let (items, tuples): (Vec<Val<'a>>, Option<Vec<Tuple<'a>>>) = match input {
            Val::Tuples(ts) => {
                self.mem
                    .tuples(ts.len(), ts.first().map_or(0, |t| t.binds.len()))?;
                (Vec::new(), Some((*ts).clone()))
            }
            v if v.is_array() => (self.members(&v)?, None),
            v => (vec![v], None),
        };
        let reduce = tuples.is_some();
        let count = tuples.as_ref().map_or(items.len(), Vec::len).max(1);
        for i in 0..count {
            let (ctx, ienv, tuple) = match &tuples {
                Some(ts) => match ts.get(i) {
                    Some(t) => (t.ctx.clone(), self.tuple_env(env, t), Some(t.clone())),
                    None => (Val::Undef, env, None),
                },
                None => (items.get(i).cloned().unwrap_or_default(), env, None),
            };
            for (pi, (k, _)) in pairs.iter().enumerate() {
                let key = self.eval(k, &ctx, ienv)?;
                let key = match key {
                    Val::Undef => continue,
                    Val::Str(s) => s,
                    other => {
                        return Err(Error::new(
                            "T1003",
                            format!(
                                "Key in object structure must evaluate to a string; got: {}",
                                describe(&other)
                            ),
                        )
                        .at(k.position));
                    }
                };
                match groups.get_mut(&*key) {
                    Some((data, idx)) => {
                        if *idx != pi {
                            return Err(Error::new(
                                "D1009",
                                format!("Multiple key definitions evaluate to same key: {}", &*key),
                            )
                            .at(k.position));
                        }
                        let old = std::mem::replace(data, Data::Many(Vec::new()));
                        *data = match (old, &tuple) {
                            (Data::Tuples(mut ts), Some(t)) => {
                                self.mem.check_len(ts.len().saturating_add(1))?;
                                self.mem.tuples(1, t.binds.len())?;
                                ts.push(t.clone());
                                Data::Tuples(ts)
                            }
                            (old, _) => old.push(&self.mem, ctx.clone())?,
                        };
                    }
                    None => {
                        let data = match &tuple {
                            Some(t) if reduce => Data::Tuples(vec![t.clone()]),
                            _ => Data::One(ctx.clone()),
                        };
                        self.mem.object(1)?;
                        self.mem.check_len(groups.len().saturating_add(1))?;
                        groups.insert(key, (data, pi));
                    }
                }
            }
        }
        self.mem.object(groups.len())?;
        let mut result = Obj::with_capacity(groups.len());
        for (key, (data, idx)) in groups {
            let Some((_, value_expr)) = pairs.get(idx) else {
                continue;
            };
            let (context, genv) = match data {
                Data::One(v) => (v, env),
                Data::Many(items) => (Val::array(items), env),
                Data::Tuples(ts) => {
                    let t = reduce_tuples(&self.mem, ts)?;
                    let genv = self.tuple_env(env, &t);
                    (t.ctx, genv)
                }
            };
            let value = self.eval(value_expr, &context, genv)?;
            if !value.is_undef() {
                result.insert(key, value);
            }
        }
        Val::object(result).check_nesting()
    }

    /// A frame holding a tuple's bindings.
    pub(super) fn tuple_env(&self, env: Env, t: &Tuple<'a>) -> Env {
        let frame = self.new_frame(env);
        for (name, v) in &t.binds {
            self.bind(frame, name, v.clone());
        }
        frame
    }
}

/// Merges a group of tuples: every binding (and the context) becomes the append of all values.
/// (JSONata folds with `append`; gathering first copies each member once.)
fn reduce_tuples<'a>(mem: &Meter, ts: Vec<Tuple<'a>>) -> Result<Tuple<'a>, Fail> {
    let mut ctx: Vec<Val<'a>> = Vec::new();
    let mut binds: Vec<(&'a str, Vec<Val<'a>>)> = Vec::new();
    for t in ts {
        if !t.ctx.is_undef() {
            ctx.push(t.ctx);
        }
        for (name, v) in t.binds {
            let slot = match binds.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    binds.push((name, Vec::new()));
                    binds.len() - 1
                }
            };
            if let Some((_, vals)) = binds.get_mut(slot) {
                if !v.is_undef() {
                    vals.push(v);
                }
            }
        }
    }
    let mut out = Tuple {
        ctx: append_all(mem, ctx)?,
        binds: Vec::with_capacity(binds.len()),
    };
    for (name, vals) in binds {
        out.binds.push((name, append_all(mem, vals)?));
    }
    Ok(out)
}

/// JSONata `append` of all of `vals` (none undefined): one value stays itself, several
/// concatenate with arrays flattened one level.
fn append_all<'a>(mem: &Meter, mut vals: Vec<Val<'a>>) -> Result<Val<'a>, Fail> {
    if vals.len() <= 1 {
        return Ok(vals.pop().unwrap_or_default());
    }
    let total = vals
        .iter()
        .fold(0usize, |n, v| n.saturating_add(append_len(v)));
    mem.seq(total)?;
    let mut items = Vec::with_capacity(total);
    for v in vals {
        if v.is_array() {
            items.extend(v.iter());
        } else {
            items.push(v);
        }
    }
    Ok(Val::array(items))
}
