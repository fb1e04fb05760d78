//! `fn:format-integer` pictures: analysis of the primary format token and its `;o`/`;c`
//! modifier, formatting (`$formatInteger`, date components) and the reverse (`$parseInteger`).

use super::decimal::BigNat;
use super::{digits, letters, roman, words, PictureError};

/// Letter case of words, numerals or names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LetterCase {
    /// `one hundred`
    Lower,
    /// `ONE HUNDRED`
    Upper,
    /// `One Hundred`
    Title,
}

impl LetterCase {
    /// `text` (given in lower case) converted to this case.
    pub fn apply(self, text: &str) -> String {
        match self {
            LetterCase::Lower => text.to_lowercase(),
            LetterCase::Upper => text.to_uppercase(),
            LetterCase::Title => words::title_case(text),
        }
    }
}

/// Where grouping separators go, counted in digits from the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grouping {
    /// `separator` every `every` digits (`#,##0`).
    Regular {
        /// The interval in digits.
        every: usize,
        /// The separator character.
        separator: char,
    },
    /// Separators only at the listed positions (`#:###,##0`); empty for none.
    Irregular(Vec<(usize, char)>),
}

/// A decimal-digit pattern such as `#,##0` or `٠٠١`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigitPattern {
    /// Code point of the zero digit of the pattern's digit family.
    pub zero: u32,
    /// Minimum number of digits (zero-padded).
    pub mandatory: usize,
    /// Number of `#` optional-digit signs.
    pub optional: usize,
    /// Grouping separators.
    pub grouping: Grouping,
}

impl DigitPattern {
    /// True when `c` is one of this pattern's grouping separators.
    pub fn is_separator(&self, c: char) -> bool {
        match &self.grouping {
            Grouping::Regular { separator, .. } => *separator == c,
            Grouping::Irregular(list) => list.iter().any(|(_, s)| *s == c),
        }
    }

    /// The value of `c` as a digit of this pattern's family (ASCII digits are always accepted).
    pub fn digit_value(&self, c: char) -> Option<u8> {
        digits::value_in(self.zero, c).or_else(|| digits::value_in(digits::ASCII_ZERO, c))
    }
}

/// The primary format token of an integer picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Primary {
    /// Decimal digits.
    Digits(DigitPattern),
    /// `A`/`a`: spreadsheet-column letters.
    Letters {
        /// `A` rather than `a`.
        upper: bool,
    },
    /// `I`/`i`: Roman numerals.
    Roman {
        /// `I` rather than `i`.
        upper: bool,
    },
    /// `w`/`W`/`Ww`: English words.
    Words(LetterCase),
}

/// An analysed integer picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntegerPicture {
    /// The primary format token.
    pub primary: Primary,
    /// The `o` (ordinal) modifier.
    pub ordinal: bool,
}

fn error(code: &'static str, message: impl Into<String>) -> PictureError {
    PictureError {
        code,
        message: message.into(),
    }
}

impl IntegerPicture {
    /// Analyses a `$formatInteger` picture: a primary token, optionally `;` and a modifier.
    pub fn analyse(picture: &str) -> Result<Self, PictureError> {
        let (token, modifier) = match picture.rfind(';') {
            Some(i) => (&picture[..i], Some(&picture[i + 1..])),
            None => (picture, None),
        };
        Ok(IntegerPicture {
            primary: analyse_primary(token)?,
            ordinal: modifier.is_some_and(|m| m.starts_with('o')),
        })
    }

    /// A picture from an already separated primary token and ordinal flag (date/time markers).
    pub fn with_primary(token: &str, ordinal: bool) -> Result<Self, PictureError> {
        Ok(IntegerPicture {
            primary: analyse_primary(token)?,
            ordinal,
        })
    }

    /// Formats `±n`.
    pub fn format(&self, negative: bool, n: &BigNat) -> String {
        let body = match &self.primary {
            Primary::Letters { upper } => match n.to_u64() {
                Some(v) => letters::to_letters(v, *upper),
                None => plain_digits(n),
            },
            Primary::Roman { upper } => match n.to_u64().and_then(roman::to_roman) {
                Some(r) if *upper => r,
                Some(r) => r.to_lowercase(),
                None => plain_digits(n),
            },
            Primary::Words(case) => case.apply(&words::to_words(n, self.ordinal)),
            Primary::Digits(pattern) => format_digits(pattern, self.ordinal, n),
        };
        if negative && !n.is_zero() {
            format!("-{body}")
        } else {
            body
        }
    }

    /// Formats a machine integer.
    pub fn format_i64(&self, value: i64) -> String {
        self.format(value < 0, &BigNat::from_u64(value.unsigned_abs()))
    }

    /// The digit pattern, when the primary token is decimal digits.
    pub fn digits(&self) -> Option<&DigitPattern> {
        match &self.primary {
            Primary::Digits(p) => Some(p),
            _ => None,
        }
    }

    /// The value of `text` written in this picture, or `None` if it does not fit the picture.
    pub fn parse(&self, text: &str) -> Option<f64> {
        match &self.primary {
            Primary::Letters { .. } => letters::from_letters(text).map(|v| v as f64),
            Primary::Roman { .. } => roman::from_roman(text).map(|v| v as f64),
            Primary::Words(_) => words::from_words(text).map(|n| n.to_f64()),
            Primary::Digits(pattern) => {
                let (negative, body) = match text.strip_prefix('-') {
                    Some(rest) => (true, rest),
                    None => (false, text),
                };
                let body = if self.ordinal {
                    strip_ordinal_suffix(body)
                } else {
                    body
                };
                let mut values = Vec::new();
                for c in body.chars() {
                    if let Some(d) = pattern.digit_value(c) {
                        values.push(d);
                    } else if !pattern.is_separator(c) {
                        return None;
                    }
                }
                if values.is_empty() {
                    return None;
                }
                let value = BigNat::from_digits(&values).to_f64();
                Some(if negative { -value } else { value })
            }
        }
    }
}

/// True when `text` is an English ordinal suffix (`st`, `nd`, `rd`, `th`, any case).
pub(crate) fn is_ordinal_suffix(text: &str) -> bool {
    matches!(
        text.to_ascii_lowercase().as_str(),
        "st" | "nd" | "rd" | "th"
    )
}

fn strip_ordinal_suffix(text: &str) -> &str {
    let cut = text
        .char_indices()
        .rev()
        .nth(1)
        .map_or(text.len(), |(i, _)| i);
    if is_ordinal_suffix(&text[cut..]) {
        &text[..cut]
    } else {
        text
    }
}

fn analyse_primary(token: &str) -> Result<Primary, PictureError> {
    Ok(match token {
        "A" => Primary::Letters { upper: true },
        "a" => Primary::Letters { upper: false },
        "I" => Primary::Roman { upper: true },
        "i" => Primary::Roman { upper: false },
        "W" => Primary::Words(LetterCase::Upper),
        "Ww" => Primary::Words(LetterCase::Title),
        "w" => Primary::Words(LetterCase::Lower),
        _ => Primary::Digits(analyse_digits(token)?),
    })
}

fn analyse_digits(token: &str) -> Result<DigitPattern, PictureError> {
    let mut zero = None;
    let (mut mandatory, mut optional, mut position) = (0usize, 0usize, 0usize);
    let mut separators = Vec::new();
    for c in token.chars().rev() {
        if let Some((family, _)) = digits::family_of(c) {
            match zero {
                None => zero = Some(family),
                Some(z) if z != family => {
                    return Err(error(
                        "D3131",
                        "A decimal-digit pattern must use digits from a single digit family",
                    ))
                }
                Some(_) => {}
            }
            mandatory += 1;
            position += 1;
        } else if c == '#' {
            optional += 1;
            position += 1;
        } else if position > 0 {
            separators.push((position, c));
        }
    }
    let Some(zero) = zero else {
        return Err(error(
            "D3130",
            format!(
                "Formatting or parsing an integer as a sequence starting with '{token}' is not supported"
            ),
        ));
    };
    Ok(DigitPattern {
        zero,
        mandatory,
        optional,
        grouping: grouping_of(separators),
    })
}

/// Regular grouping when all separators are one character at every multiple of their spacing.
fn grouping_of(separators: Vec<(usize, char)>) -> Grouping {
    let Some(&(_, first)) = separators.first() else {
        return Grouping::Irregular(separators);
    };
    if separators.iter().any(|(_, c)| *c != first) {
        return Grouping::Irregular(separators);
    }
    let every = separators.iter().fold(0, |g, (p, _)| gcd(g, *p));
    let regular = every > 0
        && (1..=separators.len()).all(|i| separators.iter().any(|(p, _)| *p == i * every));
    if regular {
        Grouping::Regular {
            every,
            separator: first,
        }
    } else {
        Grouping::Irregular(separators)
    }
}

/// Greatest common divisor.
pub(crate) fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn plain_digits(n: &BigNat) -> String {
    if n.is_zero() {
        return "0".into();
    }
    n.digits().iter().map(|d| char::from(b'0' + d)).collect()
}

fn format_digits(pattern: &DigitPattern, ordinal: bool, n: &BigNat) -> String {
    let mut values: Vec<u8> = n.digits().to_vec();
    if values.is_empty() {
        values.push(0);
    }
    if values.len() < pattern.mandatory {
        let mut padded = vec![0; pattern.mandatory - values.len()];
        padded.extend(values);
        values = padded;
    }
    let len = values.len();
    // Build right to left: `k` digits already written.
    let mut out: Vec<char> = Vec::with_capacity(len * 2);
    for (k, d) in values.iter().rev().enumerate() {
        if k > 0 {
            match &pattern.grouping {
                Grouping::Regular { every, separator } if k % every == 0 => out.push(*separator),
                Grouping::Irregular(list) => {
                    out.extend(list.iter().filter(|(p, _)| *p == k).map(|(_, s)| *s))
                }
                Grouping::Regular { .. } => {}
            }
        }
        out.push(digits::digit_char(pattern.zero, *d));
    }
    let mut text: String = out.iter().rev().collect();
    if ordinal {
        let last = values.last().copied().unwrap_or(0);
        let tens = if len > 1 { values[len - 2] } else { 0 };
        text.push_str(match (tens, last) {
            (1, _) => "th",
            (_, 1) => "st",
            (_, 2) => "nd",
            (_, 3) => "rd",
            _ => "th",
        });
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fmt(v: i64, picture: &str) -> String {
        IntegerPicture::analyse(picture).unwrap().format_i64(v)
    }

    #[test]
    fn digit_patterns() {
        assert_eq!(fmt(123, "0000"), "0123");
        assert_eq!(fmt(-3, "0000"), "-0003");
        assert_eq!(fmt(1_234_567_890, "#:###,##0"), "1234:567,890");
        assert_eq!(fmt(12, "#:###,##0"), "12");
        assert_eq!(fmt(11, "0;o"), "11th");
        assert_eq!(fmt(112, "0;o"), "112th");
        assert_eq!(fmt(22, "0;o"), "22nd");
        assert_eq!(fmt(0, "0;o"), "0th");
        assert_eq!(fmt(5, "#0,"), "5");
    }

    #[test]
    fn analysis_errors() {
        assert_eq!(IntegerPicture::analyse("#").unwrap_err().code, "D3130");
        assert_eq!(IntegerPicture::analyse("").unwrap_err().code, "D3130");
        assert_eq!(IntegerPicture::analyse("##0０").unwrap_err().code, "D3131");
    }

    #[test]
    fn parsing() {
        let p = |t: &str, pic: &str| IntegerPicture::analyse(pic).unwrap().parse(t);
        assert_eq!(p("-1,234", "#,##0"), Some(-1234.0));
        assert_eq!(p("12x", "0"), None);
        assert_eq!(p("", "0"), None);
        assert_eq!(p("23rd", "0;o"), Some(23.0));
        assert_eq!(p("é", "0;o"), None);
    }
}
