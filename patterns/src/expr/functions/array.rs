//! Array functions: `$append`, `$reverse`, `$sort`, `$shuffle`, `$distinct`, `$zip`.

use super::arg;
use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::functions::boolean::truthy;
use crate::expr::functions::string::js_cmp;
use crate::expr::value::{deep_equal, Val};

/// `$append(a, b)`
pub fn append<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    if a.is_undef() {
        return Ok(b);
    }
    if b.is_undef() {
        return Ok(a);
    }
    // Checked (and allocated exactly) before anything is copied.
    let total = a.len().max(1).saturating_add(b.len().max(1));
    ctx.mem.seq(total)?;
    let mut items = Vec::with_capacity(total);
    for v in [a, b] {
        if v.is_array() {
            items.extend(v.iter());
        } else {
            items.push(v);
        }
    }
    Ok(Val::array(items))
}

/// `$reverse(array)`
pub fn reverse<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() || a.len() <= 1 {
        return Ok(a);
    }
    let mut items = ctx.members(&a)?;
    items.reverse();
    Ok(Val::array(items))
}

/// Stable merge sort with a fallible "a goes after b" predicate.
fn merge_sort<'a>(
    items: Vec<Val<'a>>,
    after: &mut dyn FnMut(&Val<'a>, &Val<'a>) -> Result<bool, Fail>,
) -> Result<Vec<Val<'a>>, Fail> {
    if items.len() <= 1 {
        return Ok(items);
    }
    let mut right = items;
    let left_part: Vec<Val<'a>> = right.drain(..right.len() / 2).collect();
    let left = merge_sort(left_part, after)?;
    let right = merge_sort(right, after)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut l, mut r) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        match (l.peek(), r.peek()) {
            (Some(x), Some(y)) => {
                if after(x, y)? {
                    out.extend(r.next());
                } else {
                    out.extend(l.next());
                }
            }
            (Some(_), None) => out.extend(l.by_ref()),
            (None, Some(_)) => out.extend(r.by_ref()),
            (None, None) => break,
        }
    }
    Ok(out)
}

/// `$sort(array, comparator)`
pub fn sort<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() || a.len() <= 1 {
        return Ok(a);
    }
    let items = ctx.members(&a)?;
    // The merge sort's output (its temporaries are as large again, freed level by level).
    ctx.mem.seq(items.len())?;
    let sorted = match args.get(1).filter(|f| f.is_func()) {
        Some(f) => merge_sort(items, &mut |x, y| {
            ctx.tick()?;
            Ok(truthy(&ctx.apply(f, vec![x.clone(), y.clone()], input)?))
        })?,
        None => {
            let all_nums = items.iter().all(|v| matches!(v, Val::Num(_)));
            let all_strs = items.iter().all(|v| matches!(v, Val::Str(_)));
            if !all_nums && !all_strs {
                return Err(Error::new(
                    "D3070",
                    "The single argument form of the sort function can only be applied to an array of strings or an array of numbers.  Use the second argument to specify a comparison function",
                ));
            }
            merge_sort(items, &mut |x, y| {
                Ok(match (x, y) {
                    (Val::Num(p), Val::Num(q)) => p > q,
                    (Val::Str(p), Val::Str(q)) => js_cmp(p, q).is_gt(),
                    _ => false,
                })
            })?
        }
    };
    Ok(Val::array(sorted))
}

/// `$shuffle(array)` (randomness from `Ctx::random`).
pub fn shuffle<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() || a.len() <= 1 {
        return Ok(a);
    }
    let mut items = ctx.members(&a)?;
    for i in (1..items.len()).rev() {
        let j = ((ctx.random() * (i + 1) as f64) as usize).min(i);
        items.swap(i, j);
    }
    Ok(Val::array(items))
}

/// `$distinct(array)`
pub fn distinct<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if !a.is_array() || a.len() <= 1 {
        return Ok(a);
    }
    let mut out: Vec<Val<'a>> = Vec::new();
    for m in a.iter() {
        ctx.charge(1 + out.len() as u64 / 16)?;
        if !out.iter().any(|o| deep_equal(o, &m)) {
            ctx.mem.grow(out.len(), 1)?;
            out.push(m);
        }
    }
    Ok(if a.is_seq() {
        Val::seq(out)
    } else {
        Val::array(out)
    })
}

/// `$zip(array, ...)`
pub fn zip<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let n = args
        .iter()
        .map(|a| {
            if a.is_array() {
                a.len()
            } else {
                usize::from(!a.is_undef())
            }
        })
        .min()
        .unwrap_or(0);
    // `n` rows of `args.len()` members each, checked before any copy.
    ctx.mem.seq(n)?;
    ctx.mem.check_len(args.len())?;
    ctx.mem.bytes(
        n.saturating_mul(args.len())
            .saturating_mul(crate::expr::budget::MEMBER_BYTES),
    )?;
    let mut lists: Vec<Vec<Val<'a>>> = Vec::with_capacity(args.len());
    for a in args {
        lists.push(ctx.members(a)?);
    }
    let out = (0..n)
        .map(|i| Val::array(lists.iter().map(|l| l[i].clone()).collect()))
        .collect();
    Val::array(out).check_nesting()
}
