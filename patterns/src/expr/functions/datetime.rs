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

/// `$toMillis(timestamp, picture)`
pub fn to_millis<'a>(_: &Ctx<'a>, args: &[Val<'a>], _: &Val<'a>) -> Result<Val<'a>, Fail> {
    let Some(text) = opt_str(args, 0) else {
        return Ok(Val::Undef);
    };
    Ok(picture::parse_datetime(text, opt_str(args, 1))
        .map_err(picture_error)?
        .map_or(Val::Undef, |ms| Val::Num(ms as f64)))
}
