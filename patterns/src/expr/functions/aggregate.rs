//! Aggregation functions: `$sum`, `$count`, `$max`, `$min`, `$average`.

use super::arg;
use crate::expr::error::Fail;
use crate::expr::eval::Ctx;
use crate::expr::value::Val;

fn numbers(v: &Val<'_>) -> Vec<f64> {
    v.iter().filter_map(|m| m.num()).collect()
}

/// `$sum(array)`
pub fn sum<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    Ok(Val::Num(numbers(&a).iter().sum()))
}

/// `$count(array)`
pub fn count<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    Ok(Val::Num(if a.is_undef() { 0.0 } else { a.len() as f64 }))
}

/// `$max(array)`
pub fn max<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let n = numbers(&arg(args, 0));
    Ok(n.into_iter().reduce(f64::max).map_or(Val::Undef, Val::Num))
}

/// `$min(array)`
pub fn min<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let n = numbers(&arg(args, 0));
    Ok(n.into_iter().reduce(f64::min).map_or(Val::Undef, Val::Num))
}

/// `$average(array)`
pub fn average<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let n = numbers(&arg(args, 0));
    if n.is_empty() {
        return Ok(Val::Undef);
    }
    Ok(Val::Num(n.iter().sum::<f64>() / n.len() as f64))
}
