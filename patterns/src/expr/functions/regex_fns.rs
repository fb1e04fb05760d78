//! Functions that accept a string or a regex: `$match`, `$contains`, `$replace`, `$split`,
//! and calling a regex literal directly.

use super::arg;
use crate::expr::budget::{Meter, ENTRY_BYTES, MEMBER_BYTES};
use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::regex::{Found, RegexDef};
use crate::expr::value::{Func, Obj, Str, Val};

fn regex_of<'a>(v: &Val<'a>) -> Option<&'a RegexDef> {
    match v {
        Val::Func(f) => match &**f {
            Func::Regex(def) => Some(*def),
            _ => None,
        },
        _ => None,
    }
}

/// All matches the way JSONata iterates them: an empty match that is not at the end of the
/// text is followed by error `D1004` (the iteration could never progress).
fn all_matches(
    mem: &Meter,
    def: &RegexDef,
    text: &str,
    limit: Option<usize>,
) -> Result<Vec<Found>, Fail> {
    let mut out: Vec<Found> = Vec::new();
    let Some(mut m) = def.find_at(text, 0) else {
        return Ok(out);
    };
    loop {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let (end, end_chars) = (m.byte_end, m.end);
        charge_found(mem, out.len(), &m)?;
        out.push(m);
        if end >= text.len() || limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        match def.find_after(text, end, end_chars) {
            None => break,
            Some(next) if next.text.is_empty() => {
                return Err(Error::new(
                    "D1004",
                    format!(
                        "Regular expression matches zero length string: {}",
                        def.source
                    ),
                ))
            }
            Some(next) => m = next,
        }
    }
    Ok(out)
}

/// Charges one more match (its text and groups) to the memory budget.
fn charge_found(mem: &Meter, have: usize, m: &Found) -> Result<(), Fail> {
    mem.grow(have, 1)?;
    let groups = m
        .groups
        .iter()
        .fold(0usize, |n, g| n.saturating_add(g.len() + MEMBER_BYTES));
    mem.bytes(
        std::mem::size_of::<Found>()
            .saturating_add(m.text.len())
            .saturating_add(groups),
    )
}

fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(b, _)| b)
}

fn bad_matcher(name: &str) -> Fail {
    Error::new(
        "T1010",
        format!("The matcher function argument passed to function {name} does not return the correct object structure"),
    )
}

/// Runs a user-defined matcher function (`{match, start, end, groups, next}` protocol).
fn custom_matches<'a>(
    ctx: &Ctx<'a>,
    f: &Val<'a>,
    text: &str,
    limit: Option<usize>,
    input: &Val<'a>,
    name: &str,
) -> Result<Vec<Found>, Fail> {
    let mut out = Vec::new();
    ctx.mem.text(text.len())?;
    let mut result = ctx.apply(f, vec![Val::string(text)], input)?;
    while !result.is_undef() && limit.is_none_or(|l| out.len() < l) {
        ctx.tick()?;
        let (Some(m), Some(start), Some(end)) = (
            result.field("match").as_str().map(str::to_string),
            result.field("start").num(),
            result.field("end").num(),
        ) else {
            return Err(bad_matcher(name));
        };
        let groups = result.field("groups");
        if !groups.is_array() {
            return Err(bad_matcher(name));
        }
        let (start, end) = (start.max(0.0) as usize, end.max(0.0) as usize);
        ctx.mem.seq(groups.len())?;
        let found = Found {
            text: m,
            start,
            end,
            byte_start: byte_offset(text, start),
            byte_end: byte_offset(text, end),
            groups: groups
                .iter()
                .map(|g| g.as_str().unwrap_or_default().to_string())
                .collect(),
        };
        charge_found(&ctx.mem, out.len(), &found)?;
        out.push(found);
        let next = result.field("next");
        if !next.is_func() {
            break;
        }
        result = ctx.apply(&next, Vec::new(), input)?;
    }
    Ok(out)
}

/// Matches of a regex literal or a custom matcher function.
fn matches_of<'a>(
    ctx: &Ctx<'a>,
    pat: &Val<'a>,
    text: &str,
    limit: Option<usize>,
    input: &Val<'a>,
    name: &str,
) -> Result<Vec<Found>, Fail> {
    match regex_of(pat) {
        Some(def) => all_matches(&ctx.mem, def, text, limit),
        None if pat.is_func() => custom_matches(ctx, pat, text, limit, input, name),
        None => Err(bad_matcher(name)),
    }
}

fn match_object<'a>(m: &Found, with_end: bool) -> Val<'a> {
    let mut o = Obj::new();
    o.insert(Str::B("match"), Val::string(m.text.clone()));
    if with_end {
        o.insert(Str::B("start"), Val::Num(m.start as f64));
        o.insert(Str::B("end"), Val::Num(m.end as f64));
    } else {
        o.insert(Str::B("index"), Val::Num(m.start as f64));
    }
    o.insert(
        Str::B("groups"),
        Val::array(m.groups.iter().map(|g| Val::string(g.clone())).collect()),
    );
    Val::object(o)
}

/// Calling a regex literal as a function: the first match object, or undefined.
pub fn matcher_call<'a>(def: &RegexDef, args: &[Val<'a>]) -> Val<'a> {
    let Some(text) = args.first().and_then(Val::as_str) else {
        return Val::Undef;
    };
    def.find_at(text, 0)
        .map_or(Val::Undef, |m| match_object(&m, true))
}

fn limit_arg(args: &[Val<'_>], i: usize, code: &str, what: &str) -> Result<Option<usize>, Fail> {
    match args.get(i).and_then(Val::num) {
        None => Ok(None),
        Some(l) if l < 0.0 => Err(Error::new(
            code,
            format!("Third argument of {what} function must evaluate to a positive number"),
        )),
        Some(l) => Ok(Some(l.floor() as usize)),
    }
}

/// `$match(str, regex, limit)`
pub fn match_fn<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = args.first().and_then(Val::as_str) else {
        return Ok(Val::Undef);
    };
    let limit = limit_arg(args, 2, "D3040", "match")?;
    if limit == Some(0) {
        return Ok(Val::seq(Vec::new()));
    }
    let found = matches_of(ctx, &arg(args, 1), text, limit, input, "match")?;
    // One object of up to four entries (plus copies of the text and groups) per match.
    ctx.mem.seq(found.len())?;
    ctx.mem.bytes(found.len().saturating_mul(4 * ENTRY_BYTES))?;
    for m in &found {
        charge_found(&ctx.mem, 0, m)?;
    }
    Ok(Val::seq(
        found.iter().map(|m| match_object(m, false)).collect(),
    ))
}

/// `$contains(str, pattern)`
pub fn contains<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = args.first().and_then(Val::as_str) else {
        return Ok(Val::Undef);
    };
    let pat = arg(args, 1);
    if pat.is_undef() {
        return Ok(Val::Undef);
    }
    Ok(Val::Bool(match (&pat, regex_of(&pat)) {
        (Val::Str(s), _) => text.contains(&**s),
        (_, Some(def)) => def.find_at(text, 0).is_some(),
        _ => !matches_of(ctx, &pat, text, Some(1), input, "contains")?.is_empty(),
    }))
}

fn substitute(mem: &Meter, template: &str, m: &Found) -> Result<String, Fail> {
    let mut out = String::new();
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    let groups = m.groups.len();
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        match chars.get(i) {
            Some('$') => {
                out.push('$');
                i += 1;
            }
            Some('0') => {
                mem.check_text(out.len().saturating_add(m.text.len()))?;
                out.push_str(&m.text);
                i += 1;
            }
            _ => {
                let max_digits = if groups == 0 {
                    1
                } else {
                    (groups as f64).log10().floor() as usize + 1
                };
                let digits: String = chars[i..]
                    .iter()
                    .take(max_digits)
                    .take_while(|c| c.is_ascii_digit())
                    .collect();
                let mut index: Option<usize> = digits.parse().ok();
                let mut used = digits.len();
                if max_digits > 1 && index.is_some_and(|n| n > groups) && digits.len() > 1 {
                    let shorter = &digits[..max_digits.min(digits.len()) - 1];
                    index = shorter.parse().ok();
                    used = shorter.len();
                }
                match index {
                    Some(n) => {
                        if groups > 0 && n >= 1 {
                            if let Some(g) = m.groups.get(n - 1) {
                                mem.check_text(out.len().saturating_add(g.len()))?;
                                out.push_str(g);
                            }
                        }
                        i += used;
                    }
                    None => out.push('$'),
                }
            }
        }
    }
    Ok(out)
}

/// `$replace(str, pattern, replacement, limit)`
pub fn replace<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = args.first().and_then(Val::as_str) else {
        return Ok(Val::Undef);
    };
    let pat = arg(args, 1);
    let rep = arg(args, 2);
    if pat.as_str() == Some("") {
        return Err(Error::new(
            "D3010",
            "Second argument of replace function cannot be an empty string",
        ));
    }
    let limit = limit_arg(args, 3, "D3011", "replace")?;
    if limit == Some(0) {
        return Ok(Val::string(text));
    }
    if let Some(p) = pat.as_str() {
        let r = rep.as_str().unwrap_or_default();
        let mut out = String::new();
        let mut pos = 0;
        let mut count = 0;
        while let Some(idx) = text[pos..].find(p) {
            if limit.is_some_and(|l| count >= l) {
                break;
            }
            // Checked before the output grows.
            ctx.mem
                .check_text(out.len().saturating_add(idx).saturating_add(r.len()))?;
            out.push_str(&text[pos..pos + idx]);
            out.push_str(r);
            pos += idx + p.len();
            count += 1;
        }
        out.push_str(&text[pos..]);
        return Ok(Val::string(out));
    }
    let found = matches_of(ctx, &pat, text, limit, input, "replace")?;
    let mut out = String::new();
    let mut pos = 0;
    for m in &found {
        ctx.mem
            .check_text(out.len().saturating_add(m.byte_start.saturating_sub(pos)))?;
        out.push_str(text.get(pos..m.byte_start).unwrap_or_default());
        let with = match &rep {
            Val::Str(t) => substitute(&ctx.mem, t, m)?,
            f @ Val::Func(_) => {
                let r = ctx.apply(f, vec![match_object(m, true)], input)?;
                match r {
                    Val::Str(s) => s.to_string(),
                    other => {
                        return Err(Error::new(
                            "D3012",
                            format!(
                                "Attempted to replace a matched string with a non-string value: {}",
                                super::describe(&other)
                            ),
                        ))
                    }
                }
            }
            _ => String::new(),
        };
        ctx.mem.check_text(out.len().saturating_add(with.len()))?;
        out.push_str(&with);
        pos = m.byte_end;
    }
    out.push_str(text.get(pos..).unwrap_or_default());
    Ok(Val::string(out))
}

/// `$split(str, separator, limit)`
pub fn split<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], input: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = args.first().and_then(Val::as_str) else {
        return Ok(Val::Undef);
    };
    let limit = limit_arg(args, 2, "D3020", "split")?;
    let sep = arg(args, 1);
    let mut parts: Vec<String> = Vec::new();
    if let Some(s) = sep.as_str() {
        // The number of parts is counted (and checked) before any is copied.
        let n = if s.is_empty() {
            text.chars().count()
        } else {
            text.matches(s).count().saturating_add(1)
        };
        ctx.mem.seq(limit.map_or(n, |l| l.min(n)))?;
        ctx.mem.bytes(text.len())?;
        if s.is_empty() {
            parts = text.chars().map(String::from).collect();
        } else {
            parts = text.split(s).map(str::to_string).collect();
        }
        if let Some(l) = limit {
            parts.truncate(l);
        }
    } else {
        let found = matches_of(ctx, &sep, text, limit, input, "split")?;
        let mut pos = 0;
        for m in &found {
            parts.push(text.get(pos..m.byte_start).unwrap_or_default().to_string());
            pos = m.byte_end;
        }
        if limit.is_none_or(|l| found.len() < l) {
            parts.push(text.get(pos..).unwrap_or_default().to_string());
        }
    }
    Ok(Val::array(parts.into_iter().map(Val::string).collect()))
}
