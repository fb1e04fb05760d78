//! Array constructors and object constructors (which group their input by key).

use super::{Ctx, Error, Fail};
use crate::expr::ast::{Kind, Node};
use crate::expr::functions::describe;
use crate::expr::value::{Env, Flags, Obj, Str, Tuple, Val};
use indexmap::IndexMap;

/// The items gathered for one group key.
enum Data<'a> {
    One(Val<'a>),
    Many(Vec<Val<'a>>),
    Tuples(Vec<Tuple<'a>>),
}

/// JSONata `append`: concatenates, flattening one level of array on each side.
pub fn append<'a>(a: Val<'a>, b: Val<'a>) -> Val<'a> {
    if b.is_undef() {
        return a;
    }
    if a.is_undef() {
        return b;
    }
    let mut items = a.members();
    if b.is_array() {
        items.extend(b.iter());
    } else {
        items.push(b);
    }
    Val::array(items)
}

impl<'a> Data<'a> {
    fn push(self, item: Val<'a>) -> Data<'a> {
        match self {
            Data::One(v) => {
                let mut items = v.members();
                if item.is_array() {
                    items.extend(item.iter());
                } else {
                    items.push(item);
                }
                Data::Many(items)
            }
            Data::Many(mut items) => {
                if item.is_array() {
                    items.extend(item.iter());
                } else {
                    items.push(item);
                }
                Data::Many(items)
            }
            other => other,
        }
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
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let v = self.eval(item, input, env)?;
            if v.is_undef() {
                continue;
            }
            if matches!(item.kind, Kind::Array(_)) {
                out.push(v);
            } else if let Val::Tuples(ts) = &v {
                out.extend(ts.iter().map(|t| t.ctx.clone()));
            } else if v.is_array() {
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
            Val::Tuples(ts) => (Vec::new(), Some((*ts).clone())),
            v if v.is_array() => (v.members(), None),
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
                                ts.push(t.clone());
                                Data::Tuples(ts)
                            }
                            (old, _) => old.push(ctx.clone()),
                        };
                    }
                    None => {
                        let data = match &tuple {
                            Some(t) if reduce => Data::Tuples(vec![t.clone()]),
                            _ => Data::One(ctx.clone()),
                        };
                        groups.insert(key, (data, pi));
                    }
                }
            }
        }
        let mut result = Obj::with_capacity(groups.len());
        for (key, (data, idx)) in groups {
            let Some((_, value_expr)) = pairs.get(idx) else {
                continue;
            };
            let (context, genv) = match data {
                Data::One(v) => (v, env),
                Data::Many(items) => (Val::array(items), env),
                Data::Tuples(ts) => {
                    let t = reduce_tuples(ts);
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
fn reduce_tuples(ts: Vec<Tuple<'_>>) -> Tuple<'_> {
    let mut iter = ts.into_iter();
    let Some(mut acc) = iter.next() else {
        return Tuple {
            ctx: Val::Undef,
            binds: Vec::new(),
        };
    };
    for t in iter {
        acc.ctx = append(std::mem::take(&mut acc.ctx), t.ctx);
        for (name, v) in t.binds {
            match acc.binds.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = append(std::mem::take(&mut slot.1), v),
                None => acc.binds.push((name, v)),
            }
        }
    }
    acc
}
