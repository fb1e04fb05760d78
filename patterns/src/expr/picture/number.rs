//! `fn:format-number` (`$formatNumber`): splitting and validating the picture into sub-pictures
//! (errors D3080–D3093), analysing each, and rendering a number through the chosen one.

use super::decimal::Decimal;
use super::integer::gcd;
use super::{DecimalFormat, PictureError};

/// The decimal-digit family and active characters of a [`DecimalFormat`].
struct Alphabet<'a> {
    format: &'a DecimalFormat,
    zero: u32,
}

impl Alphabet<'_> {
    fn digit_value(&self, c: char) -> Option<u8> {
        let offset = (c as u32).wrapping_sub(self.zero);
        (offset < 10).then_some(offset as u8)
    }

    fn is_digit(&self, c: char) -> bool {
        self.digit_value(c).is_some()
    }

    /// A mandatory digit or an optional-digit sign.
    fn is_digit_sign(&self, c: char) -> bool {
        self.is_digit(c) || c == self.format.digit
    }

    fn is_active(&self, c: char) -> bool {
        let f = self.format;
        self.is_digit(c)
            || c == f.decimal_separator
            || c == f.exponent_separator
            || c == f.grouping_separator
            || c == f.digit
            || c == f.pattern_separator
    }

    fn digit_char(&self, value: u8) -> char {
        super::digits::digit_char(self.zero, value)
    }
}

/// A sub-picture split into its parts (F&O 4.7.3).
struct Parts {
    whole: Vec<char>,
    prefix: String,
    suffix: String,
    active: Vec<char>,
    mantissa: Vec<char>,
    exponent: Option<Vec<char>>,
    integer: Vec<char>,
    fraction: Vec<char>,
    has_decimal: bool,
}

fn split_parts(sub: &[char], a: &Alphabet<'_>) -> Parts {
    let is_anchor = |c: &char| a.is_active(*c) && *c != a.format.exponent_separator;
    let (start, end) = match (
        sub.iter().position(is_anchor),
        sub.iter().rposition(is_anchor),
    ) {
        (Some(s), Some(e)) => (s, e + 1),
        _ => (0, sub.len()),
    };
    let active = sub[start..end].to_vec();
    let (mantissa, exponent) = match active
        .iter()
        .position(|c| *c == a.format.exponent_separator)
    {
        Some(i) => (active[..i].to_vec(), Some(active[i + 1..].to_vec())),
        None => (active.clone(), None),
    };
    let (integer, fraction, has_decimal) = match mantissa
        .iter()
        .position(|c| *c == a.format.decimal_separator)
    {
        Some(i) => (mantissa[..i].to_vec(), mantissa[i + 1..].to_vec(), true),
        None => (mantissa.clone(), Vec::new(), false),
    };
    Parts {
        whole: sub.to_vec(),
        prefix: sub[..start].iter().collect(),
        suffix: sub[end..].iter().collect(),
        active,
        mantissa,
        exponent,
        integer,
        fraction,
        has_decimal,
    }
}

fn count(chars: &[char], c: char) -> usize {
    chars.iter().filter(|x| **x == c).count()
}

/// F&O 4.7.3 checks; like the reference implementation, the last failing check decides the code.
fn validate(p: &Parts, a: &Alphabet<'_>) -> Result<(), PictureError> {
    let f = a.format;
    let whole = &p.whole;
    let mut code = None;
    let mut fail = |c: &'static str| code = Some(c);
    if count(whole, f.decimal_separator) > 1 {
        fail("D3081");
    }
    if count(whole, f.percent) > 1 {
        fail("D3082");
    }
    if count(whole, f.per_mille) > 1 {
        fail("D3083");
    }
    if count(whole, f.percent) > 0 && count(whole, f.per_mille) > 0 {
        fail("D3084");
    }
    if !p.mantissa.iter().any(|c| a.is_digit_sign(*c)) {
        fail("D3085");
    }
    if p.active.iter().any(|c| !a.is_active(*c)) {
        fail("D3086");
    }
    let grouping = f.grouping_separator;
    if let Some(i) = whole.iter().position(|c| *c == f.decimal_separator) {
        let before = i.checked_sub(1).and_then(|j| whole.get(j));
        if before == Some(&grouping) || whole.get(i + 1) == Some(&grouping) {
            fail("D3087");
        }
    } else if p.integer.last() == Some(&grouping) {
        fail("D3088");
    }
    if whole
        .windows(2)
        .any(|w| w[0] == grouping && w[1] == grouping)
    {
        fail("D3089");
    }
    if let Some(i) = p.integer.iter().position(|c| *c == f.digit) {
        if p.integer[..i].iter().any(|c| a.is_digit(*c)) {
            fail("D3090");
        }
    }
    if let Some(i) = p.fraction.iter().rposition(|c| *c == f.digit) {
        if p.fraction[i..].iter().any(|c| a.is_digit(*c)) {
            fail("D3091");
        }
    }
    if let Some(exponent) = &p.exponent {
        if !exponent.is_empty() && (count(whole, f.percent) + count(whole, f.per_mille)) > 0 {
            fail("D3092");
        }
        if exponent.is_empty() || exponent.iter().any(|c| !a.is_digit(*c)) {
            fail("D3093");
        }
    }
    match code {
        None => Ok(()),
        Some(code) => Err(PictureError {
            code,
            message: format!(
                "Invalid $formatNumber picture string '{}'",
                whole.iter().collect::<String>()
            ),
        }),
    }
}

/// What formatting needs from a validated sub-picture (F&O 4.7.4).
#[derive(Clone)]
struct Analysis {
    prefix: String,
    suffix: String,
    integer_groups: Vec<usize>,
    regular_group: usize,
    min_integer: usize,
    scaling: i64,
    fraction_groups: Vec<usize>,
    min_fraction: usize,
    max_fraction: usize,
    min_exponent: usize,
    has_decimal: bool,
    percent: bool,
    per_mille: bool,
}

fn analyse(p: &Parts, a: &Alphabet<'_>) -> Analysis {
    let grouping = a.format.grouping_separator;
    let integer_groups: Vec<usize> = p
        .integer
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == grouping)
        .map(|(i, _)| {
            p.integer[i..]
                .iter()
                .filter(|c| a.is_digit_sign(**c))
                .count()
        })
        .collect();
    let fraction_groups = p
        .fraction
        .iter()
        .enumerate()
        .filter(|(_, c)| **c == grouping)
        .map(|(i, _)| {
            p.fraction[..i]
                .iter()
                .filter(|c| a.is_digit_sign(**c))
                .count()
        })
        .collect();
    let mut min_integer = p.integer.iter().filter(|c| a.is_digit(**c)).count();
    let scaling = min_integer as i64;
    let mut min_fraction = p.fraction.iter().filter(|c| a.is_digit(**c)).count();
    let mut max_fraction = p.fraction.iter().filter(|c| a.is_digit_sign(**c)).count();
    let has_exponent = p.exponent.is_some();
    if min_integer == 0 && max_fraction == 0 {
        if has_exponent {
            min_fraction = 1;
            max_fraction = 1;
        } else {
            min_integer = 1;
        }
    }
    if has_exponent && min_integer == 0 && p.integer.contains(&a.format.digit) {
        min_integer = 1;
    }
    if min_integer == 0 && min_fraction == 0 {
        min_fraction = 1;
    }
    let min_exponent = p
        .exponent
        .as_ref()
        .map_or(0, |e| e.iter().filter(|c| a.is_digit(**c)).count());
    Analysis {
        prefix: p.prefix.clone(),
        suffix: p.suffix.clone(),
        regular_group: regular(&integer_groups),
        integer_groups,
        min_integer,
        scaling,
        fraction_groups,
        min_fraction,
        max_fraction,
        min_exponent,
        has_decimal: p.has_decimal,
        percent: p.whole.contains(&a.format.percent),
        per_mille: p.whole.contains(&a.format.per_mille),
    }
}

/// The interval of regularly spaced grouping positions, or 0 when they are not regular.
fn regular(positions: &[usize]) -> usize {
    let every = positions.iter().fold(0, |g, p| gcd(g, *p));
    let is_regular = every > 0 && (1..=positions.len()).all(|i| positions.contains(&(i * every)));
    if is_regular {
        every
    } else {
        0
    }
}

/// `$formatNumber(value, picture, options)`.
pub(crate) fn format_number(
    value: f64,
    picture: &str,
    format: &DecimalFormat,
) -> Result<String, PictureError> {
    let a = Alphabet {
        format,
        zero: format.zero_digit as u32,
    };
    let chars: Vec<char> = picture.chars().collect();
    let subs: Vec<&[char]> = chars.split(|c| *c == format.pattern_separator).collect();
    if subs.len() > 2 {
        return Err(PictureError {
            code: "D3080",
            message: "The picture string must not contain more than one pattern separator".into(),
        });
    }
    let parts: Vec<Parts> = subs.iter().map(|s| split_parts(s, &a)).collect();
    for p in &parts {
        validate(p, &a)?;
    }
    let analyses: Vec<Analysis> = parts.iter().map(|p| analyse(p, &a)).collect();
    if value.is_nan() {
        return Ok(format.nan.clone());
    }
    let negative = value < 0.0;
    let pic = match (negative, analyses.as_slice()) {
        (true, [_, negative_pic]) => negative_pic.clone(),
        (true, [positive, ..]) => Analysis {
            prefix: format!("{}{}", format.minus_sign, positive.prefix),
            ..positive.clone()
        },
        (_, [positive, ..]) => positive.clone(),
        (_, []) => return Ok(String::new()),
    };
    if value.is_infinite() {
        return Ok(format!("{}{}{}", pic.prefix, format.infinity, pic.suffix));
    }
    Ok(render(value, &pic, &a))
}

fn render(value: f64, pic: &Analysis, a: &Alphabet<'_>) -> String {
    let f = a.format;
    let mut number = Decimal::from_f64(value);
    if pic.percent {
        number.shift(2);
    } else if pic.per_mille {
        number.shift(3);
    }
    let has_exponent = pic.min_exponent > 0;
    let mut exponent: i64 = 0;
    if has_exponent && !number.is_zero() {
        exponent = number.exp - pic.scaling;
        number.exp = pic.scaling;
    }
    let max_fraction = i64::try_from(pic.max_fraction).unwrap_or(i64::MAX);
    let mut rounded = number.round_half_even(max_fraction);
    if has_exponent && !rounded.is_zero() && rounded.exp > pic.scaling {
        // Rounding carried into a new integer digit (9.96 → 10.0): renormalise.
        rounded.exp -= 1;
        exponent += 1;
    }
    let mut integer = rounded.integer_digits();
    if integer.len() < pic.min_integer {
        let mut padded = vec![0; pic.min_integer - integer.len()];
        padded.extend(integer);
        integer = padded;
    }
    let mut fraction = rounded.fraction_digits();
    if fraction.len() < pic.min_fraction {
        fraction.resize(pic.min_fraction, 0);
    }

    let mut out = String::new();
    out.push_str(&pic.prefix);
    let len = integer.len();
    for (i, d) in integer.iter().enumerate() {
        let right = len - i; // digits from here to the decimal point
        if i > 0 {
            let group_here = if pic.regular_group > 0 {
                right.is_multiple_of(pic.regular_group)
            } else {
                pic.integer_groups.contains(&right)
            };
            if group_here {
                out.push(f.grouping_separator);
            }
        }
        out.push(a.digit_char(*d));
    }
    if pic.has_decimal && !fraction.is_empty() {
        out.push(f.decimal_separator);
        for (i, d) in fraction.iter().enumerate() {
            if i > 0 && pic.fraction_groups.contains(&i) {
                out.push(f.grouping_separator);
            }
            out.push(a.digit_char(*d));
        }
    }
    if has_exponent {
        out.push(f.exponent_separator);
        if exponent < 0 {
            out.push(f.minus_sign);
        }
        let digits = exponent.unsigned_abs().to_string();
        for _ in digits.len()..pic.min_exponent {
            out.push(a.digit_char(0));
        }
        for b in digits.bytes() {
            out.push(a.digit_char(b.wrapping_sub(b'0')));
        }
    }
    out.push_str(&pic.suffix);
    out
}
