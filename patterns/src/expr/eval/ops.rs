//! Binary operators: arithmetic, comparison, equality, boolean, string concatenation, range and
//! inclusion.

use super::{Ctx, Error, Fail};
use crate::expr::ast::{BinOp, Node};
use crate::expr::functions::{self, boolean::truthy};
use crate::expr::value::{deep_equal, Env, Val};

fn symbol(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::Mod => "%",
        BinOp::Eq => "=",
        BinOp::Ne => "!=",
        BinOp::Lt => "<",
        BinOp::Le => "<=",
        BinOp::Gt => ">",
        BinOp::Ge => ">=",
        BinOp::Concat => "&",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::In => "in",
        BinOp::Range => "..",
    }
}

/// A finite number, `None` for a non-number; non-finite numbers are error `D1001`.
fn numeric(v: &Val<'_>) -> Result<Option<f64>, Fail> {
    match v {
        Val::Num(n) if n.is_nan() => Ok(None),
        Val::Num(n) if n.is_infinite() => Err(Error::new("D1001", "Number out of range")),
        Val::Num(n) => Ok(Some(*n)),
        _ => Ok(None),
    }
}

impl<'a> Ctx<'a> {
    #[inline(never)]
    pub(super) fn binary(
        &self,
        op: BinOp,
        lhs: &'a Node,
        rhs: &'a Node,
        input: &Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        let l = self.eval(lhs, input, env)?;
        match op {
            BinOp::And => {
                if !truthy(&l) {
                    return Ok(Val::Bool(false));
                }
                let r = self.eval(rhs, input, env)?;
                return Ok(Val::Bool(truthy(&r)));
            }
            BinOp::Or => {
                if truthy(&l) {
                    return Ok(Val::Bool(true));
                }
                let r = self.eval(rhs, input, env)?;
                return Ok(Val::Bool(truthy(&r)));
            }
            _ => {}
        }
        let r = self.eval(rhs, input, env)?;
        if matches!(op, BinOp::Eq | BinOp::Ne | BinOp::In) {
            self.charge_size(&l)?;
            self.charge_size(&r)?;
        }
        let pos = rhs.position.max(lhs.position);
        let result = match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                arithmetic(op, &l, &r)
            }
            BinOp::Eq => Ok(Val::Bool(
                !l.is_undef() && !r.is_undef() && deep_equal(&l, &r),
            )),
            BinOp::Ne => Ok(Val::Bool(
                !l.is_undef() && !r.is_undef() && !deep_equal(&l, &r),
            )),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => compare(op, &l, &r),
            BinOp::Concat => {
                let lt = functions::string::stringify(&l, false, &self.mem)?;
                let rt = functions::string::stringify(&r, false, &self.mem)?;
                // The result's length is known (and checked) before it is built.
                self.mem.text(lt.len().saturating_add(rt.len()))?;
                let mut s = String::with_capacity(lt.len() + rt.len());
                s.push_str(&lt);
                s.push_str(&rt);
                let s = Val::string(s);
                self.charge_size(&s)?;
                Ok(s)
            }
            BinOp::Range => self.range(&l, &r),
            BinOp::In => Ok(Val::Bool(includes(&l, &r))),
            BinOp::And | BinOp::Or => Ok(Val::Undef),
        };
        result.map_err(|e| e.or_at(pos).or_token(symbol(op)))
    }

    fn range(&self, l: &Val<'a>, r: &Val<'a>) -> Result<Val<'a>, Fail> {
        let is_int = |v: &Val<'_>| matches!(v, Val::Num(n) if n.fract() == 0.0 && n.is_finite());
        if !l.is_undef() && !is_int(l) {
            return Err(Error::new(
                "T2003",
                "The left side of the range operator (..) must evaluate to an integer",
            ));
        }
        if !r.is_undef() && !is_int(r) {
            return Err(Error::new(
                "T2004",
                "The right side of the range operator (..) must evaluate to an integer",
            ));
        }
        let (Some(a), Some(b)) = (l.num(), r.num()) else {
            return Ok(Val::Undef);
        };
        if a > b {
            return Ok(Val::Undef);
        }
        let size = b - a + 1.0;
        if size > 1e7 {
            return Err(Error::new(
                "D2014",
                format!("The size of the sequence allocated by the range operator (..) must not exceed 1e7.  Attempted to allocate {size}."),
            ));
        }
        // Checked before the sequence is allocated.
        self.mem.seq(size as usize)?;
        self.charge(size as u64 / 64)?;
        let a = a as i64;
        let items = (0..size as i64).map(|i| Val::Num((a + i) as f64)).collect();
        Ok(Val::seq(items))
    }
}

fn arithmetic<'a>(op: BinOp, l: &Val<'a>, r: &Val<'a>) -> Result<Val<'a>, Fail> {
    let ln = numeric(l)?;
    let rn = numeric(r)?;
    if !l.is_undef() && ln.is_none() {
        return Err(Error::new(
            "T2001",
            format!(
                "The left side of the {} operator must evaluate to a number",
                symbol(op)
            ),
        ));
    }
    if !r.is_undef() && rn.is_none() {
        return Err(Error::new(
            "T2002",
            format!(
                "The right side of the {} operator must evaluate to a number",
                symbol(op)
            ),
        ));
    }
    let (Some(a), Some(b)) = (ln, rn) else {
        return Ok(Val::Undef);
    };
    Ok(Val::Num(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        _ => a % b,
    }))
}

fn compare<'a>(op: BinOp, l: &Val<'a>, r: &Val<'a>) -> Result<Val<'a>, Fail> {
    let comparable = |v: &Val<'_>| matches!(v, Val::Undef | Val::Str(_) | Val::Num(_));
    if !comparable(l) || !comparable(r) {
        return Err(Error::new(
            "T2010",
            format!(
                "The expressions either side of operator \"{}\" must evaluate to numeric or string values",
                symbol(op)
            ),
        ));
    }
    let ord = match (l, r) {
        (Val::Undef, _) | (_, Val::Undef) => return Ok(Val::Undef),
        (Val::Num(a), Val::Num(b)) => a.partial_cmp(b),
        (Val::Str(a), Val::Str(b)) => Some(functions::string::js_cmp(a, b)),
        _ => {
            return Err(Error::new(
                "T2009",
                format!(
                    "The values either side of the operator {} must be of the same data type",
                    symbol(op)
                ),
            ))
        }
    };
    let Some(ord) = ord else {
        return Ok(Val::Bool(false));
    };
    use std::cmp::Ordering::*;
    Ok(Val::Bool(match op {
        BinOp::Lt => ord == Less,
        BinOp::Le => ord != Greater,
        BinOp::Gt => ord == Greater,
        _ => ord != Less,
    }))
}

fn strict_equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => **x == **y,
        (Val::Json(x), Val::Json(y)) => std::ptr::eq(*x, *y),
        (Val::Arr(x), Val::Arr(y)) => std::rc::Rc::ptr_eq(x, y),
        (Val::Obj(x), Val::Obj(y)) => std::rc::Rc::ptr_eq(x, y),
        (Val::Func(x), Val::Func(y)) => std::rc::Rc::ptr_eq(x, y),
        _ => false,
    }
}

fn includes(l: &Val<'_>, r: &Val<'_>) -> bool {
    if l.is_undef() || r.is_undef() {
        return false;
    }
    if r.is_array() {
        r.iter().any(|m| strict_equal(l, &m))
    } else {
        strict_equal(l, r)
    }
}
