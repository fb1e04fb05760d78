//! Higher-order functions: `$map`, `$filter`, `$single`, `$reduce`, `$sift`, `$each`.

use super::{arg, arity};
use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::functions::boolean::truthy;
use crate::expr::value::{Obj, Val};

/// Arguments for a callback: value, then index and array if the function takes them.
fn hof_args<'a>(f: &Val<'a>, v: Val<'a>, i: usize, arr: &Val<'a>) -> Vec<Val<'a>> {
    let n = arity(f);
    let mut args = vec![v];
    if n >= 2 {
        args.push(Val::Num(i as f64));
    }
    if n >= 3 {
        args.push(arr.clone());
    }
    args
}

/// `$map(array, function)`
pub fn map<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    let f = arg(args, 1);
    ctx.mem.seq(a.len())?;
    let mut out = Vec::with_capacity(a.len());
    for (i, v) in a.iter().enumerate() {
        let r = ctx.apply(&f, hof_args(&f, v, i, &a), input)?;
        if !r.is_undef() {
            out.push(r);
        }
    }
    Ok(Val::seq(out))
}

/// `$filter(array, predicate)`
pub fn filter<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    let f = arg(args, 1);
    let mut out = Vec::new();
    for (i, v) in a.iter().enumerate() {
        if truthy(&ctx.apply(&f, hof_args(&f, v.clone(), i, &a), input)?) {
            ctx.mem.grow(out.len(), 1)?;
            out.push(v);
        }
    }
    Ok(Val::seq(out))
}

/// `$single(array, predicate)`
pub fn single<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    let f = arg(args, 1);
    let mut found: Option<Val<'a>> = None;
    for (i, v) in a.iter().enumerate() {
        let hit = if f.is_func() {
            truthy(&ctx.apply(&f, hof_args(&f, v.clone(), i, &a), input)?)
        } else {
            true
        };
        if hit {
            if found.is_some() {
                return Err(Error::new(
                    "D3138",
                    "The $single() function expected exactly 1 matching result.  Instead it matched more.",
                ));
            }
            found = Some(v);
        }
    }
    found.ok_or_else(|| {
        Error::new(
            "D3139",
            "The $single() function expected exactly 1 matching result.  Instead it matched 0.",
        )
    })
}

/// `$reduce(array, function, init)`
pub fn reduce<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    let f = arg(args, 1);
    let n = arity(&f);
    if n < 2 {
        return Err(Error::new(
            "D3050",
            "The second argument of reduce function must be a function with at least two arguments",
        ));
    }
    let items = ctx.members(&a)?;
    let init = arg(args, 2);
    let (mut acc, start) = if init.is_undef() && !items.is_empty() {
        (items[0].clone(), 1)
    } else {
        (init, 0)
    };
    for (i, v) in items.iter().enumerate().skip(start) {
        let mut call = vec![acc, v.clone()];
        if n >= 3 {
            call.push(Val::Num(i as f64));
        }
        if n >= 4 {
            call.push(a.clone());
        }
        acc = ctx.apply(&f, call, input)?;
    }
    Ok(acc)
}

fn entry_args<'a>(f: &Val<'a>, v: Val<'a>, k: &str, obj: &Val<'a>) -> Vec<Val<'a>> {
    let n = arity(f);
    let mut args = vec![v];
    if n >= 2 {
        args.push(Val::string(k));
    }
    if n >= 3 {
        args.push(obj.clone());
    }
    args
}

/// `$sift(object, predicate)`
pub fn sift<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let o = arg(args, 0);
    if o.is_undef() {
        return Ok(Val::Undef);
    }
    let f = arg(args, 1);
    let mut out = Obj::new();
    for (k, v) in ctx.entries(&o)? {
        if truthy(&ctx.apply(&f, entry_args(&f, v.clone(), &k, &o), input)?) {
            ctx.mem.object(1)?;
            out.insert(k, v);
        }
    }
    Ok(if out.is_empty() {
        Val::Undef
    } else {
        Val::object(out)
    })
}

/// `$each(object, function)`
pub fn each<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let o = arg(args, 0);
    if o.is_undef() {
        return Ok(Val::Undef);
    }
    let f = arg(args, 1);
    let mut out = Vec::new();
    for (k, v) in ctx.entries(&o)? {
        let r = ctx.apply(&f, entry_args(&f, v, &k, &o), input)?;
        if !r.is_undef() {
            ctx.mem.grow(out.len(), 1)?;
            out.push(r);
        }
    }
    Ok(Val::seq(out))
}
