//! The `^(...)` order-by step: keys are computed once per item, then a stable sort.

use super::{Ctx, Error, Fail};
use crate::expr::ast::{Node, SortTerm};
use crate::expr::functions::string::js_cmp;
use crate::expr::value::{Env, Tuple, Val};
use std::cmp::Ordering;

fn check_keys(keys: &[Vec<Val<'_>>], terms: usize) -> Result<(), Fail> {
    if keys.len() < 2 {
        return Ok(());
    }
    for t in 0..terms {
        let mut seen: Option<char> = None;
        for k in keys {
            match k.get(t) {
                None | Some(Val::Undef) => {}
                Some(v @ (Val::Num(_) | Val::Str(_))) => {
                    let sym = v.type_symbol();
                    match seen {
                        Some(s) if s != sym => {
                            return Err(Error::new(
                                "T2007",
                                "Type mismatch within order-by clause. All values must be of the same type",
                            ))
                        }
                        _ => seen = Some(sym),
                    }
                }
                Some(_) => {
                    return Err(Error::new(
                        "T2008",
                        "The expressions within an order-by clause must evaluate to numeric or string values",
                    ))
                }
            }
        }
    }
    Ok(())
}

fn compare_keys(a: &[Val<'_>], b: &[Val<'_>], terms: &[SortTerm]) -> Ordering {
    for (i, term) in terms.iter().enumerate() {
        let (x, y) = (a.get(i), b.get(i));
        let ord = match (x, y) {
            (None | Some(Val::Undef), None | Some(Val::Undef)) => Ordering::Equal,
            (None | Some(Val::Undef), _) => Ordering::Greater,
            (_, None | Some(Val::Undef)) => Ordering::Less,
            (Some(Val::Num(p)), Some(Val::Num(q))) => {
                let o = p.partial_cmp(q).unwrap_or(Ordering::Equal);
                if term.descending {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(Val::Str(p)), Some(Val::Str(q))) => {
                let o = js_cmp(p, q);
                if term.descending {
                    o.reverse()
                } else {
                    o
                }
            }
            _ => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl<'a> Ctx<'a> {
    /// Sorts the members of `input` by `terms`.
    pub(super) fn sort(
        &self,
        node: &'a Node,
        terms: &'a [SortTerm],
        input: Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        if input.is_undef() {
            return Ok(Val::Undef);
        }
        if let Val::Tuples(ts) = input {
            self.mem
                .tuples(ts.len(), ts.first().map_or(0, |t| t.binds.len()))?;
            let sorted = self.sort_tuples(terms, (*ts).clone(), env)?;
            return Ok(Val::Tuples(std::rc::Rc::new(sorted)));
        }
        if !input.is_array() || input.len() <= 1 {
            return Ok(input);
        }
        let items = self.members(&input)?;
        // The keyed pairs and the key copies checked below.
        self.mem
            .seq(items.len().saturating_mul(2 + 2 * terms.len()))?;
        let mut keyed = Vec::with_capacity(items.len());
        for item in items {
            let mut keys = Vec::with_capacity(terms.len());
            for term in terms {
                keys.push(self.eval(&term.expr, &item, env)?);
            }
            keyed.push((keys, item));
        }
        let keys: Vec<Vec<Val<'a>>> = keyed.iter().map(|(k, _)| k.clone()).collect();
        check_keys(&keys, terms.len()).map_err(|e| e.or_at(node.position))?;
        keyed.sort_by(|(a, _), (b, _)| compare_keys(a, b, terms));
        Ok(Val::array(keyed.into_iter().map(|(_, v)| v).collect()))
    }

    /// Sorts a tuple stream by `terms` (keys evaluated with each tuple's bindings).
    pub(super) fn sort_tuples(
        &self,
        terms: &'a [SortTerm],
        ts: Vec<Tuple<'a>>,
        env: Env,
    ) -> Result<Vec<Tuple<'a>>, Fail> {
        self.mem.seq(ts.len().saturating_mul(2 + 2 * terms.len()))?;
        let mut keyed = Vec::with_capacity(ts.len());
        for t in ts {
            let tenv = self.tuple_env(env, &t);
            let mut keys = Vec::with_capacity(terms.len());
            for term in terms {
                keys.push(self.eval(&term.expr, &t.ctx, tenv)?);
            }
            keyed.push((keys, t));
        }
        let keys: Vec<Vec<Val<'a>>> = keyed.iter().map(|(k, _)| k.clone()).collect();
        check_keys(&keys, terms.len())?;
        keyed.sort_by(|(a, _), (b, _)| compare_keys(a, b, terms));
        Ok(keyed.into_iter().map(|(_, t)| t).collect())
    }
}
