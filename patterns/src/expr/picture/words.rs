//! Integers as English words, both ways: `123` ⇄ `one hundred and twenty-three`, with ordinals
//! (`twenty-third`) and British `and`; magnitudes stop at `trillion` (10¹⁵ is `one thousand trillion`).

use super::decimal::BigNat;

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

const UNIT_ORDINALS: [&str; 20] = [
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
];

const TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

const TEN_ORDINALS: [&str; 8] = [
    "twentieth",
    "thirtieth",
    "fortieth",
    "fiftieth",
    "sixtieth",
    "seventieth",
    "eightieth",
    "ninetieth",
];

/// Magnitude words with their power of ten.
const MAGNITUDES: [(&str, &str, usize); 5] = [
    ("hundred", "hundredth", 2),
    ("thousand", "thousandth", 3),
    ("million", "millionth", 6),
    ("billion", "billionth", 9),
    ("trillion", "trillionth", 12),
];

/// `n` in lower-case English words (`ordinal` gives `first`, `twenty-third`, …).
pub(crate) fn to_words(n: &BigNat, ordinal: bool) -> String {
    let mut out = String::new();
    words_into(&mut out, n, ordinal);
    out
}

fn words_into(out: &mut String, n: &BigNat, ordinal: bool) {
    if let Some(small) = n.to_u64().filter(|v| *v < 1000) {
        small_words(out, small as usize, ordinal);
        return;
    }
    // Group of three digits to split at: thousand (1) … trillion (4); larger numbers repeat trillion.
    let group = ((n.len().saturating_sub(1)) / 3).clamp(1, 4);
    let (high, low) = n.split_pow10(group * 3);
    words_into(out, &high, false);
    out.push(' ');
    out.push_str(MAGNITUDES[group].0);
    if low.is_zero() {
        if ordinal {
            out.push_str("th");
        }
    } else {
        out.push_str(if low < BigNat::from_u64(100) {
            " and "
        } else {
            ", "
        });
        words_into(out, &low, ordinal);
    }
}

fn small_words(out: &mut String, n: usize, ordinal: bool) {
    if n < 20 {
        let table = if ordinal { &UNIT_ORDINALS } else { &UNITS };
        out.push_str(table.get(n).copied().unwrap_or_default());
    } else if n < 100 {
        let (tens, unit) = (n / 10 - 2, n % 10);
        if unit == 0 {
            let table = if ordinal { &TEN_ORDINALS } else { &TENS };
            out.push_str(table.get(tens).copied().unwrap_or_default());
        } else {
            out.push_str(TENS.get(tens).copied().unwrap_or_default());
            out.push('-');
            small_words(out, unit, ordinal);
        }
    } else {
        out.push_str(UNITS.get(n / 100).copied().unwrap_or_default());
        out.push_str(" hundred");
        let rest = n % 100;
        if rest == 0 {
            if ordinal {
                out.push_str("th");
            }
        } else {
            out.push_str(" and ");
            small_words(out, rest, ordinal);
        }
    }
}

/// Every number word (cardinal and ordinal forms, magnitudes and `and`).
pub(crate) fn vocabulary() -> impl Iterator<Item = &'static str> {
    UNIT_ORDINALS
        .iter()
        .chain(UNITS.iter())
        .chain(TEN_ORDINALS.iter())
        .chain(TENS.iter())
        .chain(MAGNITUDES.iter().map(|m| &m.1))
        .chain(MAGNITUDES.iter().map(|m| &m.0))
        .chain(["and"].iter())
        .copied()
}

/// What a single (lower-case) number word stands for.
enum Word {
    /// A value below one hundred that adds on.
    Small(u64),
    /// A multiplier `10^k`.
    Magnitude(usize),
}

fn lookup(word: &str) -> Option<Word> {
    let position = |table: &[&str]| table.iter().position(|w| *w == word);
    if let Some(i) = position(&UNITS).or_else(|| position(&UNIT_ORDINALS)) {
        return Some(Word::Small(i as u64));
    }
    if let Some(i) = position(&TENS).or_else(|| position(&TEN_ORDINALS)) {
        return Some(Word::Small((i as u64 + 2) * 10));
    }
    MAGNITUDES
        .iter()
        .find(|m| m.0 == word || m.1 == word)
        .map(|m| Word::Magnitude(m.2))
}

/// The number spelled by `text` (any case, cardinal or ordinal), or `None` if it is not number words.
pub(crate) fn from_words(text: &str) -> Option<BigNat> {
    let lower = text.to_lowercase();
    let mut segments: Vec<BigNat> = Vec::new();
    let mut any = false;
    let thousand = BigNat::from_u64(1000);
    for token in lower.split(|c: char| c.is_whitespace() || c == ',' || c == '-') {
        if token.is_empty() || token == "and" {
            continue;
        }
        any = true;
        match lookup(token)? {
            Word::Small(v) => {
                let v = BigNat::from_u64(v);
                match segments.last_mut() {
                    Some(top) if *top < thousand => *top = top.add(&v),
                    _ => segments.push(v),
                }
            }
            Word::Magnitude(2) => match segments.last_mut() {
                Some(top) if *top < thousand => *top = top.mul_pow10(2),
                _ => segments.push(BigNat::from_u64(100)),
            },
            Word::Magnitude(k) => {
                let limit = BigNat::from_u64(1).mul_pow10(k);
                let mut sum = BigNat::default();
                let mut popped = false;
                while segments.last().is_some_and(|top| *top < limit) {
                    if let Some(top) = segments.pop() {
                        sum = sum.add(&top);
                        popped = true;
                    }
                }
                if popped {
                    segments.push(sum.mul_pow10(k));
                } else if let Some(top) = segments.last_mut() {
                    *top = top.mul_pow10(k);
                } else {
                    segments.push(limit);
                }
            }
        }
    }
    if !any {
        return None;
    }
    Some(
        segments
            .iter()
            .fold(BigNat::default(), |acc, segment| acc.add(segment)),
    )
}

/// Title case for number words: every word capitalised except `and` (`Twenty-First`).
pub(crate) fn title_case(words: &str) -> String {
    let mut out = String::with_capacity(words.len());
    let mut at_start = true;
    let mut rest = words;
    while let Some(c) = rest.chars().next() {
        if at_start && c.is_alphabetic() && !starts_with_and(rest) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        at_start = c == ' ' || c == '-';
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn starts_with_and(text: &str) -> bool {
    text.strip_prefix("and")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn words(n: u64) -> String {
        to_words(&BigNat::from_u64(n), false)
    }

    #[test]
    fn cardinals() {
        assert_eq!(words(0), "zero");
        assert_eq!(words(123), "one hundred and twenty-three");
        assert_eq!(words(3730), "three thousand, seven hundred and thirty");
        assert_eq!(words(1_000_000_000_001), "one trillion and one");
        assert_eq!(words(1_000_000_000_000_000), "one thousand trillion");
        let big = BigNat::from_f64_trunc(1e46);
        assert_eq!(
            to_words(&big, false),
            "ten billion trillion trillion trillion"
        );
    }

    #[test]
    fn ordinals() {
        let o = |n| to_words(&BigNat::from_u64(n), true);
        assert_eq!(o(1), "first");
        assert_eq!(o(20), "twentieth");
        assert_eq!(o(100), "one hundredth");
        assert_eq!(o(1000), "one thousandth");
        assert_eq!(o(4_327_732), "four million, three hundred and twenty-seven thousand, seven hundred and thirty-second");
    }

    #[test]
    fn parsing() {
        let p = |t: &str| from_words(t).map(|n| n.to_f64());
        assert_eq!(p("nineteen hundred and eighty-four"), Some(1984.0));
        assert_eq!(p("one thousand, two hundred and thirty-four trillion, five hundred and sixty-seven billion, eight hundred and ninety million, one hundred and twenty-three thousand, four hundred and fifty-six"), Some(1_234_567_890_123_456.0));
        assert_eq!(p("ten billion trillion trillion trillion"), Some(1e46));
        assert_eq!(p("Seven Hundred and Thirty-Third"), Some(733.0));
        assert_eq!(p("hundred"), Some(100.0));
        assert_eq!(p("banana"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("and"), None);
    }

    #[test]
    fn titles() {
        assert_eq!(
            title_case("five hundred and fifty-five"),
            "Five Hundred and Fifty-Five"
        );
        assert_eq!(title_case("one thousand, android"), "One Thousand, Android");
    }
}
