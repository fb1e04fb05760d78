//! String functions and JSONata's `$string` serialisation.

use super::arg;
use crate::expr::budget::Meter;
use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::numfmt::jsonata_number_string;
use crate::expr::value::Val;
use std::borrow::Cow;
use std::cmp::Ordering;

/// Compares strings the way JavaScript does (by UTF-16 code units).
pub fn js_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(
    out: &mut String,
    v: &Val<'_>,
    pretty: bool,
    indent: usize,
    depth: usize,
    mem: &Meter,
) -> Result<(), Fail> {
    if depth > 1_000 {
        return Err(Error::new("U1001", "Value nested too deeply to stringify"));
    }
    // The output is checked as it grows (each check is before a member or a string is added).
    mem.check_text(out.len())?;
    let newline = |out: &mut String, level: usize| {
        if pretty {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', level * 2));
        }
    };
    match v {
        Val::Undef | Val::Null => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::Num(n) => {
            if !n.is_finite() {
                return Err(Error::new("D1001", "Number out of range"));
            }
            if n.fract() == 0.0 {
                out.push_str(&crate::expr::numfmt::js_number_string(*n));
            } else {
                out.push_str(&jsonata_number_string(*n));
            }
        }
        Val::Str(s) => {
            mem.check_text(out.len().saturating_add(s.len()))?;
            escape_into(out, s)
        }
        Val::Func(_) => out.push_str("\"\""),
        Val::Tuples(_) | Val::Arr(_) | Val::Json(serde_json::Value::Array(_)) => {
            let mut members: Box<dyn Iterator<Item = Val<'_>>> = match v {
                Val::Tuples(t) => Box::new(t.iter().map(|t| t.ctx.clone())),
                _ => Box::new(v.iter()),
            };
            let Some(first) = members.next() else {
                out.push_str("[]");
                return Ok(());
            };
            out.push('[');
            newline(out, indent + 1);
            write_json(out, &first, pretty, indent + 1, depth + 1, mem)?;
            for m in members {
                out.push(',');
                newline(out, indent + 1);
                write_json(out, &m, pretty, indent + 1, depth + 1, mem)?;
            }
            newline(out, indent);
            out.push(']');
        }
        _ => {
            let entries: Vec<_> = v
                .entries()
                .into_iter()
                .filter(|(_, e)| !e.is_undef())
                .collect();
            if entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, e)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent + 1);
                mem.check_text(out.len().saturating_add(k.len()))?;
                escape_into(out, k);
                out.push(':');
                if pretty {
                    out.push(' ');
                }
                write_json(out, e, pretty, indent + 1, depth + 1, mem)?;
            }
            newline(out, indent);
            out.push('}');
        }
    }
    Ok(())
}

/// `$string` semantics: strings unchanged, functions `""`, everything else as JSON. The text is
/// checked against `mem`'s string budget while it is written (the caller charges the result).
pub fn stringify<'v>(v: &'v Val<'_>, pretty: bool, mem: &Meter) -> Result<Cow<'v, str>, Fail> {
    match v {
        Val::Str(s) => Ok(Cow::Borrowed(s)),
        Val::Func(_) | Val::Undef => Ok(Cow::Borrowed("")),
        Val::Num(n) if !n.is_finite() => Err(Error::new(
            "D3001",
            "Attempting to invoke string function on Infinity or NaN",
        )),
        Val::Arr(a) if a.flags.outer && !a.items.is_empty() => stringify(&a.items[0], pretty, mem),
        other => {
            let mut out = String::new();
            write_json(&mut out, other, pretty, 0, 0, mem)?;
            mem.check_text(out.len())?;
            Ok(Cow::Owned(out))
        }
    }
}

/// Longest rendering of a value in an error message, in bytes.
const PREVIEW_BYTES: usize = 1_000;

/// `$string` rendering for error messages, cut to [`PREVIEW_BYTES`] (with `...`).
pub fn preview(v: &Val<'_>) -> String {
    let mem = Meter::for_text(PREVIEW_BYTES);
    let mut out = String::new();
    let full = match v {
        Val::Str(s) => {
            out.push_str(&s[..floor_char_boundary(s, PREVIEW_BYTES + 1)]);
            out.len() <= PREVIEW_BYTES
        }
        Val::Arr(a) if a.flags.outer && !a.items.is_empty() => return preview(&a.items[0]),
        other => match write_json(&mut out, other, false, 0, 0, &mem) {
            Ok(()) => true,
            Err(e) if e.code == crate::expr::budget::CODE => false,
            Err(_) => return String::new(),
        },
    };
    if !full || out.len() > PREVIEW_BYTES {
        out.truncate(floor_char_boundary(&out, PREVIEW_BYTES));
        out.push_str("...");
    }
    out
}

/// The largest char boundary of `s` at or below `i`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

fn str_arg<'v>(args: &'v [Val<'_>], i: usize) -> Option<&'v str> {
    args.get(i).and_then(Val::as_str)
}

/// `$string(arg, prettify)`
pub fn string<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    if let Val::Str(s) = &a {
        return Ok(Val::Str(s.clone()));
    }
    let pretty = matches!(args.get(1), Some(Val::Bool(true)));
    Ok(Val::string(stringify(&a, pretty, &ctx.mem)?))
}

/// JavaScript `slice` index normalisation over `len` items.
pub fn js_index(i: f64, len: usize) -> usize {
    let len_f = len as f64;
    let i = if i.is_nan() { 0.0 } else { i.trunc() };
    if i < 0.0 {
        (len_f + i).max(0.0) as usize
    } else {
        i.min(len_f) as usize
    }
}

/// `$substring(str, start, length)` (by code points).
pub fn substring<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(s) = str_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let len = s.chars().count();
    let mut start = args.get(1).and_then(Val::num).unwrap_or(0.0);
    if (len as f64) + start < 0.0 {
        start = 0.0;
    }
    let from = js_index(start, len);
    let to = match args.get(2).and_then(Val::num) {
        Some(l) => {
            if l <= 0.0 {
                return Ok(Val::string(""));
            }
            let end = if start >= 0.0 {
                start + l
            } else {
                len as f64 + start + l
            };
            js_index(end, len)
        }
        None => len,
    };
    if from >= to {
        return Ok(Val::string(""));
    }
    // Byte offsets of the code points, found without copying the text into a `Vec<char>`.
    let byte_at = |c: usize| s.char_indices().nth(c).map_or(s.len(), |(b, _)| b);
    let start_byte = byte_at(from);
    let end_byte = start_byte
        + s[start_byte..]
            .char_indices()
            .nth(to - from)
            .map_or(s.len() - start_byte, |(b, _)| b);
    Ok(Val::string(&s[start_byte..end_byte]))
}

/// `$substringBefore(str, chars)`
pub fn substring_before<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let (Some(s), Some(c)) = (str_arg(args, 0), str_arg(args, 1)) else {
        return Ok(arg(args, 0));
    };
    Ok(Val::string(s.find(c).map_or(s, |p| &s[..p])))
}

/// `$substringAfter(str, chars)`
pub fn substring_after<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let (Some(s), Some(c)) = (str_arg(args, 0), str_arg(args, 1)) else {
        return Ok(arg(args, 0));
    };
    Ok(Val::string(s.find(c).map_or(s, |p| &s[p + c.len()..])))
}

/// `$lowercase(str)`
pub fn lowercase<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args, 0).map_or(Val::Undef, |s| Val::string(s.to_lowercase())))
}

/// `$uppercase(str)`
pub fn uppercase<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args, 0).map_or(Val::Undef, |s| Val::string(s.to_uppercase())))
}

/// `$length(str)` (code points).
pub fn length<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(str_arg(args, 0).map_or(Val::Undef, |s| Val::Num(s.chars().count() as f64)))
}

/// `$trim(str)`: collapses runs of whitespace to one space and strips the ends.
pub fn trim<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(s) = str_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_space = true;
        } else {
            if in_space && !out.is_empty() {
                out.push(' ');
            }
            in_space = false;
            out.push(c);
        }
    }
    Ok(Val::string(out))
}

/// `$pad(str, width, char)`
pub fn pad<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(s) = str_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let width = args.get(1).and_then(Val::num).unwrap_or(0.0);
    let fill = match str_arg(args, 2) {
        Some(c) if !c.is_empty() => c,
        _ => " ",
    };
    let len = s.chars().count() as f64;
    let pad_len = width.abs().trunc() - len;
    if pad_len <= 0.0 || pad_len > 1e7 {
        return Ok(Val::string(s));
    }
    // An upper bound of the result, checked before the padding is built.
    let widest = fill.chars().map(char::len_utf8).max().unwrap_or(1);
    ctx.mem.check_text(
        s.len()
            .saturating_add((pad_len as usize).saturating_mul(widest)),
    )?;
    let padding: String = fill.chars().cycle().take(pad_len as usize).collect();
    Ok(Val::string(if width > 0.0 {
        format!("{s}{padding}")
    } else {
        format!("{padding}{s}")
    }))
}

/// `$join(strings, separator)`
pub fn join<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let a = arg(args, 0);
    if a.is_undef() {
        return Ok(Val::Undef);
    }
    let sep = str_arg(args, 1).unwrap_or("");
    // The exact length is known (and checked) before anything is copied.
    let (count, bytes) = a
        .iter()
        .fold((0usize, 0usize), |(n, b), v| match v.as_str() {
            Some(s) => (n + 1, b.saturating_add(s.len())),
            None => (n, b),
        });
    let total = bytes.saturating_add(sep.len().saturating_mul(count.saturating_sub(1)));
    ctx.mem.check_text(total)?;
    let mut out = String::with_capacity(total);
    for (i, v) in a.iter().filter(|v| v.as_str().is_some()).enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(v.as_str().unwrap_or_default());
    }
    Ok(Val::string(out))
}
