//! `$fromMillis` / `$now(picture, timezone)`: rendering an instant through a date/time picture
//! (F&O 9.8.4.3–9.8.4.7), in a fixed timezone offset.

use super::calendar::{Fields, DAYS, MONTHS};
use super::datetime_picture::{analyse, Marker, Part, Presentation};
use super::digits::digit_char;
use super::integer::{Grouping, LetterCase, Primary};
use super::PictureError;

/// The picture used when none is given: ISO 8601 with milliseconds.
pub(crate) const ISO_PICTURE: &str = "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]";

fn error(code: &'static str, message: impl Into<String>) -> PictureError {
    PictureError {
        code,
        message: message.into(),
    }
}

/// Minutes east of UTC for a timezone like `+0100`, `-05:00`, `0000` or `+5`.
pub(crate) fn parse_timezone(text: &str) -> Option<i64> {
    let text = text.trim();
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let (hours, minutes) = if digits.len() <= 2 {
        (n, 0)
    } else {
        (n / 100, n % 100)
    };
    (minutes < 60).then_some(sign * (hours * 60 + minutes))
}

/// Formats `millis` since the epoch with `picture` (ISO 8601 when `None`) in `timezone`.
pub(crate) fn format_datetime(
    millis: i64,
    picture: Option<&str>,
    timezone: Option<&str>,
) -> Result<String, PictureError> {
    let offset = match timezone {
        None => 0,
        Some(tz) => parse_timezone(tz).ok_or_else(|| {
            error(
                "D3134",
                format!("Invalid timezone '{tz}': expected ±HHMM such as +0100"),
            )
        })?,
    };
    let parts = analyse(picture.unwrap_or(ISO_PICTURE))?;
    let fields = Fields::from_millis(millis.saturating_add(offset * 60_000));
    let mut out = String::new();
    for part in &parts {
        match part {
            Part::Literal(text) => out.push_str(text),
            Part::Marker(marker) => out.push_str(&format_marker(marker, &fields, offset)?),
        }
    }
    Ok(out)
}

fn integer_value(component: char, f: &Fields) -> i64 {
    match component {
        'Y' => f.year,
        'X' => f.iso_week_year(),
        'M' => i64::from(f.month),
        'x' => i64::from(f.week_month()),
        'D' => i64::from(f.day),
        'd' => f.day_of_year(),
        'F' => f.weekday(),
        'W' => f.iso_week(),
        'w' => f.week_of_month(),
        'H' => f.hour,
        'h' => match f.hour % 12 {
            0 => 12,
            h => h,
        },
        'm' => f.minute,
        's' => f.second,
        _ => f.millis,
    }
}

fn apply_name_case(name: &str, case: LetterCase) -> String {
    match case {
        LetterCase::Lower => name.to_lowercase(),
        LetterCase::Upper => name.to_uppercase(),
        LetterCase::Title => name.to_string(),
    }
}

fn truncate(text: String, max: Option<usize>) -> String {
    match max {
        Some(max) if text.chars().count() > max => text.chars().take(max).collect(),
        _ => text,
    }
}

fn no_names(component: char) -> PictureError {
    error(
        "D3133",
        format!("The '{component}' date/time component cannot be presented as a name"),
    )
}

fn format_marker(marker: &Marker, f: &Fields, offset: i64) -> Result<String, PictureError> {
    let component = marker.component;
    match component {
        'Z' | 'z' => return format_zone(marker, offset),
        'C' | 'E' => return Ok("ISO".into()),
        'P' => {
            let name = if f.hour >= 12 { "Pm" } else { "Am" };
            let case = match marker.presentation {
                Presentation::Names(case) => case,
                Presentation::Number(_) => LetterCase::Lower,
            };
            return Ok(apply_name_case(name, case));
        }
        'f' => return format_fraction(marker, f.millis),
        _ => {}
    }
    let value = integer_value(component, f);
    match &marker.presentation {
        Presentation::Names(case) => {
            let index = usize::try_from(value - 1).unwrap_or(0);
            let name = match component {
                'M' | 'x' => MONTHS.get(index),
                'F' => DAYS.get(index),
                _ => return Err(no_names(component)),
            };
            let name = apply_name_case(name.copied().unwrap_or_default(), *case);
            Ok(truncate(name, marker.max_width))
        }
        Presentation::Number(picture) => {
            let value = match marker.year_digits {
                Some(n) if component == 'Y' && n < 18 => value % 10i64.pow(n as u32),
                _ => value,
            };
            Ok(picture.format_i64(value))
        }
    }
}

/// Fractional seconds are a decimal fraction: `[f001]` shows 3 digits, `[f1]` as many as needed.
fn format_fraction(marker: &Marker, millis: i64) -> Result<String, PictureError> {
    let picture = match &marker.presentation {
        Presentation::Number(picture) => picture,
        Presentation::Names(_) => return Err(no_names('f')),
    };
    let Primary::Digits(digits) = &picture.primary else {
        return Ok(picture.format_i64(millis));
    };
    let min = digits.mandatory.max(1);
    let max = marker.max_width.or_else(|| {
        let width = digits.mandatory + digits.optional;
        (width > 1).then_some(width)
    });
    let mut values: Vec<u8> = format!("{:03}", millis.clamp(0, 999))
        .bytes()
        .map(|b| b.wrapping_sub(b'0'))
        .collect();
    if let Some(max) = max {
        values.truncate(max.max(1));
    }
    while values.len() > min && values.last() == Some(&0) {
        values.pop();
    }
    values.resize(values.len().max(min), 0);
    Ok(values.iter().map(|d| digit_char(digits.zero, *d)).collect())
}

/// Timezone offsets (F&O 9.8.4.6): `[Z]` `+01:00`, `[Z0]` `+1`, `[Z0101]` `+0100`, `[z]` `GMT+01:00`.
fn format_zone(marker: &Marker, offset: i64) -> Result<String, PictureError> {
    let Presentation::Number(picture) = &marker.presentation else {
        return Err(no_names(marker.component));
    };
    let (hours, minutes) = (offset.abs() / 60, offset.abs() % 60);
    let hhmm = hours * 100 + minutes;
    let body = match &picture.primary {
        Primary::Digits(d) if matches!(d.grouping, Grouping::Regular { .. }) => {
            picture.format_i64(hhmm)
        }
        Primary::Digits(d) if d.mandatory <= 2 => {
            let mut text = picture.format_i64(hours);
            if minutes != 0 {
                text.push_str(&format!(":{minutes:02}"));
            }
            text
        }
        Primary::Digits(d) if d.mandatory <= 4 => picture.format_i64(hhmm),
        _ => {
            return Err(error(
                "D3134",
                "The timezone integer format specifier cannot have more than four digits",
            ))
        }
    };
    if offset == 0 && marker.modifier == Some('t') {
        return Ok("Z".into());
    }
    let sign = if offset >= 0 { '+' } else { '-' };
    let gmt = if marker.component == 'z' { "GMT" } else { "" };
    Ok(format!("{gmt}{sign}{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezones() {
        assert_eq!(parse_timezone("+0100"), Some(60));
        assert_eq!(parse_timezone("-0530"), Some(-330));
        assert_eq!(parse_timezone("-05:00"), Some(-300));
        assert_eq!(parse_timezone("0000"), Some(0));
        assert_eq!(parse_timezone("+5"), Some(300));
        assert_eq!(parse_timezone("+0190"), None);
        assert_eq!(parse_timezone("EST"), None);
        assert_eq!(parse_timezone(""), None);
    }
}
