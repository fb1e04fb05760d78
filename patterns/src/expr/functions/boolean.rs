//! Boolean functions: `$boolean`, `$not`, `$exists`, and JSONata truthiness.

use super::arg;
use crate::expr::error::Fail;
use crate::expr::eval::Ctx;
use crate::expr::value::Val;

/// JSONata's boolean cast (undefined is false here): arrays are true when any member is,
/// objects when non-empty, functions are false.
pub fn truthy(v: &Val<'_>) -> bool {
    match v {
        Val::Undef | Val::Null | Val::Func(_) => false,
        Val::Bool(b) => *b,
        Val::Num(n) => *n != 0.0 && !n.is_nan(),
        Val::Str(s) => !s.is_empty(),
        Val::Tuples(t) => t.iter().any(|t| truthy(&t.ctx)),
        v if v.is_array() => match v.len() {
            0 => false,
            1 => truthy(&v.get(0)),
            _ => v.iter().any(|m| truthy(&m)),
        },
        Val::Obj(o) => !o.is_empty(),
        Val::Json(serde_json::Value::Object(m)) => !m.is_empty(),
        _ => false,
    }
}

/// True unless undefined.
pub fn exists(v: &Val<'_>) -> bool {
    !v.is_undef()
}

/// `$boolean(arg)`
pub fn boolean_fn<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    Ok(if a.is_undef() {
        Val::Undef
    } else {
        Val::Bool(truthy(&a))
    })
}

/// `$not(arg)`
pub fn not<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    Ok(if a.is_undef() {
        Val::Undef
    } else {
        Val::Bool(!truthy(&a))
    })
}

/// `$exists(arg)`
pub fn exists_fn<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(Val::Bool(exists(&arg(args, 0))))
}
