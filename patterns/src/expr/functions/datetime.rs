//! Date/time functions wired to the picture module; the clock comes from the host.

use super::{arg, picture_error};
use crate::expr::error::Fail;
use crate::expr::eval::Ctx;
use crate::expr::picture;
use crate::expr::value::Val;

fn opt_str<'v>(args: &'v [Val<'_>], i: usize) -> Option<&'v str> {
    args.get(i).and_then(Val::as_str)
}

/// `$now(picture, timezone)`: the host clock as an ISO 8601 (or pictured) timestamp.
pub fn now<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    picture::format_datetime(ctx.host.now_millis(), opt_str(args, 0), opt_str(args, 1))
        .map(Val::string)
        .map_err(picture_error)
}

/// `$millis()`: the host clock in epoch milliseconds.
pub fn millis<'a>(ctx: &Ctx<'a>, _: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    Ok(Val::Num(ctx.host.now_millis() as f64))
}

/// `$fromMillis(millis, picture, timezone)`
pub fn from_millis<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(ms) = arg(args, 0).num() else {
        return Ok(Val::Undef);
    };
    if !ms.is_finite() {
        return Ok(Val::Undef);
    }
    picture::format_datetime(ms.floor() as i64, opt_str(args, 1), opt_str(args, 2))
        .map(Val::string)
        .map_err(picture_error)
}

const MILLIS_PER_DAY: i64 = 86_400_000;

/// True when a picture names no date component (year, month, day, week...), only a time.
fn time_only(picture: &str) -> bool {
    let mut in_marker = false;
    for c in picture.chars() {
        match c {
            '[' => in_marker = true,
            ']' => in_marker = false,
            c if in_marker && !c.is_whitespace() => {
                if matches!(c, 'Y' | 'M' | 'D' | 'd' | 'F' | 'W' | 'w' | 'X' | 'x') {
                    return false;
                }
                in_marker = false;
            }
            _ => {}
        }
    }
    true
}

/// `$toMillis(timestamp, picture)`. A time-only picture takes its date from the host clock
/// (JSONata defaults missing date components to the current date; the picture module has no
/// clock).
pub fn to_millis<'a>(ctx: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = opt_str(args, 0) else {
        return Ok(Val::Undef);
    };
    let picture_text = opt_str(args, 1);
    let parsed = picture::parse_datetime(text, picture_text).map_err(picture_error)?;
    let today = match picture_text {
        Some(p) if time_only(p) => {
            ctx.host.now_millis().div_euclid(MILLIS_PER_DAY) * MILLIS_PER_DAY
        }
        _ => 0,
    };
    Ok(parsed.map_or(Val::Undef, |ms| Val::Num(ms.saturating_add(today) as f64)))
}

#[cfg(test)]
mod tests {
    use super::time_only;

    #[test]
    fn detects_time_only_pictures() {
        assert!(time_only("[H]:[m]"));
        assert!(time_only("[h].[m01][P]"));
        assert!(!time_only("[Y0001]-[M01]-[D01]"));
        assert!(!time_only("[FNn], [H]"));
    }
}
