//! Roman numerals (`1984` ⇄ `MCMLXXXIV`), the `I`/`i` integer presentation.

const NUMERALS: [(u64, &str); 13] = [
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
];

/// The largest value written in numerals (as repeated `M`s); larger values fall back to digits.
pub(crate) const MAX_ROMAN: u64 = 100_000;

/// `n` in upper-case Roman numerals (zero is the empty string); `None` above [`MAX_ROMAN`].
pub(crate) fn to_roman(mut n: u64) -> Option<String> {
    if n > MAX_ROMAN {
        return None;
    }
    let mut out = String::new();
    for (value, numeral) in NUMERALS {
        while n >= value {
            out.push_str(numeral);
            n -= value;
        }
    }
    Some(out)
}

fn numeral_value(c: char) -> Option<i64> {
    Some(match c.to_ascii_uppercase() {
        'M' => 1000,
        'D' => 500,
        'C' => 100,
        'L' => 50,
        'X' => 10,
        'V' => 5,
        'I' => 1,
        _ => return None,
    })
}

/// True when `c` is a Roman numeral letter (either case).
pub(crate) fn is_numeral(c: char) -> bool {
    numeral_value(c).is_some()
}

/// The value of Roman numerals in either case (empty is zero); `None` for other characters.
pub(crate) fn from_roman(text: &str) -> Option<u64> {
    let mut total: i64 = 0;
    let mut max = 1;
    for c in text.chars().rev() {
        let value = numeral_value(c)?;
        if value < max {
            total = total.checked_sub(value)?;
        } else {
            max = value;
            total = total.checked_add(value)?;
        }
    }
    u64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(to_roman(1984).as_deref(), Some("MCMLXXXIV"));
        assert_eq!(to_roman(0).as_deref(), Some(""));
        assert_eq!(to_roman(4999).as_deref(), Some("MMMMCMXCIX"));
        assert_eq!(to_roman(MAX_ROMAN + 1), None);
        assert_eq!(from_roman("MCMLXXXIV"), Some(1984));
        assert_eq!(from_roman("xcix"), Some(99));
        assert_eq!(from_roman(""), Some(0));
        assert_eq!(from_roman("IIIIIIIIIIIIX"), None);
        assert_eq!(from_roman("MXQ"), None);
        for n in 1..=3999 {
            assert_eq!(to_roman(n).as_deref().and_then(from_roman), Some(n), "{n}");
        }
    }
}
