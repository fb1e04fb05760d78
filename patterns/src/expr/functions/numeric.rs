//! Numeric functions, including the picture-string formatters wired to `expr::picture`.

use super::{arg, picture_error};
use crate::expr::error::{Error, Fail};
use crate::expr::eval::Ctx;
use crate::expr::numfmt::js_number_string;
use crate::expr::picture;
use crate::expr::value::Val;

fn num_arg(args: &[Val<'_>], i: usize) -> Option<f64> {
    args.get(i).and_then(Val::num)
}

fn unary<'a>(args: &[Val<'a>], f: impl Fn(f64) -> f64) -> Result<Val<'a>, Fail> {
    Ok(num_arg(args, 0).map_or(Val::Undef, |n| Val::Num(f(n))))
}

fn is_decimal_literal(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == f {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// Parses a string the way `$number` accepts it (decimal, or 0x/0o/0b integers).
pub fn parse_number(s: &str) -> Option<f64> {
    if is_decimal_literal(s) {
        return s.parse::<f64>().ok().filter(|n| n.is_finite());
    }
    let radix = |p: &str, r: u32| {
        s.strip_prefix(p)
            .or_else(|| s.strip_prefix(&p.to_uppercase()))
            .and_then(|d| u64::from_str_radix(d, r).ok())
            .map(|n| n as f64)
    };
    radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
}

/// `$number(arg)`
pub fn number<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    match arg(args, 0) {
        Val::Undef => Ok(Val::Undef),
        Val::Num(n) => Ok(Val::Num(n)),
        Val::Bool(b) => Ok(Val::Num(if b { 1.0 } else { 0.0 })),
        Val::Str(s) => parse_number(&s).map(Val::Num).ok_or_else(|| {
            Error::new(
                "D3030",
                format!("Unable to cast value to a number: \"{}\"", &*s),
            )
        }),
        other => Err(Error::new(
            "D3030",
            format!(
                "Unable to cast value to a number: {}",
                super::describe(&other)
            ),
        )),
    }
}

/// `$floor(n)`
pub fn floor<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    unary(args, f64::floor)
}

/// `$ceil(n)`
pub fn ceil<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    unary(args, f64::ceil)
}

/// `$abs(n)`
pub fn abs<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    unary(args, f64::abs)
}

/// `$sqrt(n)`
pub fn sqrt<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    match num_arg(args, 0) {
        None => Ok(Val::Undef),
        Some(n) if n < 0.0 => Err(Error::new(
            "D3060",
            format!(
                "The sqrt function cannot be applied to a negative number: {}",
                js_number_string(n)
            ),
        )),
        Some(n) => Ok(Val::Num(n.sqrt())),
    }
}

/// `$power(base, exponent)`
pub fn power<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let (Some(b), Some(e)) = (num_arg(args, 0), num_arg(args, 1)) else {
        return Ok(Val::Undef);
    };
    let r = b.powf(e);
    if !r.is_finite() {
        return Err(Error::new(
            "D3061",
            format!("The power function has resulted in a value that cannot be represented as a JSON number: base={}, exponent={}", js_number_string(b), js_number_string(e)),
        ));
    }
    Ok(Val::Num(r))
}

fn shift(n: f64, places: i32) -> f64 {
    let s = js_number_string(n);
    let (mantissa, exp) = match s.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    format!("{mantissa}e{}", exp + places).parse().unwrap_or(n)
}

/// Rounds half to even at `precision` decimal places (JSONata `$round`).
pub fn round_half_even(n: f64, precision: i32) -> f64 {
    let x = if precision != 0 {
        shift(n, precision)
    } else {
        n
    };
    let mut r = (x + 0.5).floor();
    let diff = r - x;
    if diff.abs() == 0.5 && (r % 2.0).abs() == 1.0 {
        r -= 1.0;
    }
    let r = if precision != 0 {
        shift(r, -precision)
    } else {
        r
    };
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// `$round(n, precision)`
pub fn round<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(n) = num_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let p = num_arg(args, 1).unwrap_or(0.0).clamp(-400.0, 400.0) as i32;
    Ok(Val::Num(round_half_even(n, p)))
}

/// `$random()` (deterministic: see `Ctx::random`).
pub fn random<'a>(ctx: &Ctx<'a>, _: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(Val::Num(ctx.random()))
}

/// `$formatBase(n, radix)`
pub fn format_base<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(n) = num_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let radix = num_arg(args, 1).unwrap_or(10.0);
    if !(2.0..=36.0).contains(&radix) {
        return Err(Error::new(
            "D3100",
            format!(
                "The radix of the formatBase function must be between 2 and 36.  It was given {}",
                js_number_string(radix)
            ),
        ));
    }
    let radix = radix as u32;
    let v = round_half_even(n, 0);
    let neg = v < 0.0;
    let mut m = v.abs();
    let mut digits = Vec::new();
    if m == 0.0 {
        digits.push('0');
    }
    while m >= 1.0 && digits.len() < 2000 {
        let d = (m % radix as f64) as u32;
        digits.push(char::from_digit(d, radix).unwrap_or('0'));
        m = (m / radix as f64).floor();
    }
    if neg {
        digits.push('-');
    }
    Ok(Val::string(digits.into_iter().rev().collect::<String>()))
}

/// `$formatNumber(n, picture, options)`
pub fn format_number<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(n) = num_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let picture_text = args.get(1).and_then(Val::as_str).unwrap_or_default();
    let format = match args.get(2) {
        Some(o) if o.is_object() => {
            let Some(serde_json::Value::Object(map)) = ctx.to_json(o)? else {
                return Ok(Val::Undef);
            };
            picture::DecimalFormat::from_json(&map).map_err(picture_error)?
        }
        _ => picture::DecimalFormat::default(),
    };
    picture::format_number(n, picture_text, &format)
        .map(Val::string)
        .map_err(picture_error)
}

/// `$formatInteger(n, picture)`
pub fn format_integer<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(n) = num_arg(args, 0) else {
        return Ok(Val::Undef);
    };
    let picture_text = args.get(1).and_then(Val::as_str).unwrap_or_default();
    picture::format_integer(n, picture_text)
        .map(Val::string)
        .map_err(picture_error)
}

/// `$parseInteger(text, picture)`
pub fn parse_integer<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = args.first().and_then(Val::as_str) else {
        return Ok(Val::Undef);
    };
    let picture_text = args.get(1).and_then(Val::as_str).unwrap_or_default();
    Ok(picture::parse_integer(text, picture_text)
        .map_err(picture_error)?
        .map_or(Val::Undef, Val::Num))
}
