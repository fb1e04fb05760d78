//! XPath/XSLT "picture string" formatting and parsing used by JSONata's `$formatNumber`,
//! `$formatInteger`, `$parseInteger`, `$fromMillis`, `$toMillis` and `$now(picture, timezone)`.
//!
//! Pure functions over primitive values; errors carry the official JSONata codes (`D3xxx`).
//! API CONTRACT (the evaluator calls exactly these; internals are free).

use serde_json::{Map, Value};

mod calendar;
mod datetime_format;
mod datetime_parse;
mod datetime_picture;
mod decimal;
mod digits;
mod integer;
mod letters;
mod number;
mod roman;
mod words;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests_datetime;
#[cfg(test)]
mod tests_integer;
#[cfg(test)]
mod tests_number;
#[cfg(test)]
mod tests_robustness;

/// A picture-string error with its official JSONata code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PictureError {
    /// Official JSONata error code, e.g. `D3080`.
    pub code: &'static str,
    /// Human-readable description.
    pub message: String,
}

/// The decimal-format properties `$formatNumber` accepts as its third argument.
#[derive(Debug, Clone, PartialEq)]
pub struct DecimalFormat {
    /// `decimal-separator` (default `.`).
    pub decimal_separator: char,
    /// `grouping-separator` (default `,`).
    pub grouping_separator: char,
    /// `exponent-separator` (default `e`).
    pub exponent_separator: char,
    /// `infinity` (default `Infinity`).
    pub infinity: String,
    /// `minus-sign` (default `-`).
    pub minus_sign: char,
    /// `NaN` (default `NaN`).
    pub nan: String,
    /// `percent` (default `%`).
    pub percent: char,
    /// `per-mille` (default `‰`).
    pub per_mille: char,
    /// `zero-digit` (default `0`).
    pub zero_digit: char,
    /// `digit` (default `#`).
    pub digit: char,
    /// `pattern-separator` (default `;`).
    pub pattern_separator: char,
}

impl Default for DecimalFormat {
    fn default() -> Self {
        DecimalFormat {
            decimal_separator: '.',
            grouping_separator: ',',
            exponent_separator: 'e',
            infinity: "Infinity".into(),
            minus_sign: '-',
            nan: "NaN".into(),
            percent: '%',
            per_mille: '\u{2030}',
            zero_digit: '0',
            digit: '#',
            pattern_separator: ';',
        }
    }
}

impl DecimalFormat {
    /// Builds a format from `$formatNumber`'s options object (keys as in XPath, e.g. `"decimal-separator"`).
    pub fn from_json(options: &Map<String, Value>) -> Result<Self, PictureError> {
        let mut format = DecimalFormat::default();
        for (key, value) in options {
            let Value::String(text) = value else {
                continue;
            };
            // Multi-character values keep their first character (e.g. `"per-mille": "pm"`).
            let Some(first) = text.chars().next() else {
                continue;
            };
            match key.as_str() {
                "decimal-separator" => format.decimal_separator = first,
                "grouping-separator" => format.grouping_separator = first,
                "exponent-separator" => format.exponent_separator = first,
                "infinity" => format.infinity = text.clone(),
                "minus-sign" => format.minus_sign = first,
                "NaN" => format.nan = text.clone(),
                "percent" => format.percent = first,
                "per-mille" => format.per_mille = first,
                "zero-digit" => format.zero_digit = first,
                "digit" => format.digit = first,
                "pattern-separator" => format.pattern_separator = first,
                _ => {}
            }
        }
        Ok(format)
    }
}

/// `$formatNumber(value, picture, options)`.
pub fn format_number(
    value: f64,
    picture: &str,
    format: &DecimalFormat,
) -> Result<String, PictureError> {
    number::format_number(value, picture, format)
}

/// `$formatInteger(value, picture)`; the value is rounded down to an integer first.
pub fn format_integer(value: f64, picture: &str) -> Result<String, PictureError> {
    let picture = integer::IntegerPicture::analyse(picture)?;
    if value.is_nan() {
        return Ok("NaN".into());
    }
    if value.is_infinite() {
        return Ok(if value < 0.0 { "-Infinity" } else { "Infinity" }.into());
    }
    let value = value.floor();
    Ok(picture.format(value < 0.0, &decimal::BigNat::from_f64_trunc(value)))
}

/// `$parseInteger(text, picture)`; `Ok(None)` when the text does not match the picture.
pub fn parse_integer(text: &str, picture: &str) -> Result<Option<f64>, PictureError> {
    Ok(integer::IntegerPicture::analyse(picture)?.parse(text))
}

/// `$fromMillis(millis, picture, timezone)`: `picture` `None` means ISO 8601; `timezone` like `"+0100"`.
pub fn format_datetime(
    millis: i64,
    picture: Option<&str>,
    timezone: Option<&str>,
) -> Result<String, PictureError> {
    datetime_format::format_datetime(millis, picture, timezone)
}

/// `$toMillis(text, picture)`: `picture` `None` means ISO 8601; `Ok(None)` when the text does not match.
///
/// Components a picture leaves out above the first one it gives (e.g. the date for `[H]:[m]`)
/// are taken from the epoch, since this crate reads no clock; the evaluator should call
/// [`parse_datetime_at`] with the evaluation timestamp instead.
pub fn parse_datetime(text: &str, picture: Option<&str>) -> Result<Option<i64>, PictureError> {
    parse_datetime_at(text, picture, 0)
}

/// `$toMillis(text, picture)` with `now_millis` (the `$now()` of the evaluation) supplying the
/// components the picture leaves out above the first one it gives.
pub fn parse_datetime_at(
    text: &str,
    picture: Option<&str>,
    now_millis: i64,
) -> Result<Option<i64>, PictureError> {
    match picture {
        None => datetime_parse::parse_iso8601(text).map(Some),
        Some(picture) => datetime_parse::parse_datetime(text, picture, now_millis),
    }
}
