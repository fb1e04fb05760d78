//! Object and miscellaneous functions: `$keys`, `$lookup`, `$spread`, `$merge`, `$error`,
//! `$assert`, `$type`, and the unsupported `$eval`.

use super::arg;
use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::value::{Obj, Str, Val};

/// `$keys(object | array of objects)`
pub fn keys<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    let mut out: Vec<Str<'a>> = Vec::new();
    let objects = if a.is_array() {
        ctx.members(&a)?
    } else {
        vec![a]
    };
    for o in objects {
        for (k, _) in ctx.entries(&o)? {
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    ctx.mem.seq(out.len())?;
    Ok(Val::seq(out.into_iter().map(Val::Str).collect()))
}

/// `$lookup(object, key)`
pub fn lookup<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let key = args.get(1).and_then(Val::as_str).unwrap_or_default();
    crate::expr::eval::lookup_field(ctx, &arg(args, 0), key)
}

fn spread_into<'a>(ctx: &Ctx<'a>, v: Val<'a>, out: &mut Vec<Val<'a>>) -> Result<(), Fail> {
    if v.is_array() {
        ctx.tick()?;
        for m in v.iter() {
            spread_into(ctx, m, out)?;
        }
    } else if v.is_object() {
        for (k, e) in ctx.entries(&v)? {
            ctx.mem.grow(out.len(), 1)?;
            ctx.mem.object(1)?;
            let mut o = Obj::new();
            o.insert(k, e);
            out.push(Val::object(o));
        }
    } else if !v.is_undef() {
        ctx.mem.grow(out.len(), 1)?;
        out.push(v);
    }
    Ok(())
}

/// `$spread(object)`
pub fn spread<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if !a.is_array() && !a.is_object() {
        return Ok(a);
    }
    let mut out = Vec::new();
    spread_into(ctx, a, &mut out)?;
    Val::seq(out).check_nesting()
}

/// `$merge(array of objects)`
pub fn merge<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    let mut out = Obj::new();
    for o in a.iter() {
        let entries = ctx.entries(&o)?;
        ctx.mem.check_len(out.len().saturating_add(entries.len()))?;
        for (k, v) in entries {
            out.insert(k, v);
        }
    }
    ctx.mem.object(out.len())?;
    Ok(Val::object(out))
}

/// `$error(message)`
pub fn error<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let msg = args
        .first()
        .and_then(Val::as_str)
        .unwrap_or("$error() function evaluated");
    Err(Error::new("D3137", msg))
}

/// `$assert(condition, message)`
pub fn assert<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    if matches!(args.first(), Some(Val::Bool(true))) {
        return Ok(Val::Undef);
    }
    let msg = args
        .get(1)
        .and_then(Val::as_str)
        .unwrap_or("$assert() statement failed");
    Err(Error::new("D3141", msg))
}

/// `$type(value)`
pub fn type_of<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    let t = match a {
        Val::Undef => return Ok(Val::Undef),
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::Str(_) => "string",
        Val::Func(_) => "function",
        v if v.is_array() => "array",
        _ => "object",
    };
    Ok(Val::Str(Str::B(t)))
}

/// `$eval` is deliberately not provided: expressions are compiled once, never from data.
pub fn eval_unsupported<'a>(_: &Ctx<'a>, _: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Err(Error::new(
        "U2001",
        "$eval is not supported: expressions must be compiled ahead of time",
    ))
}
