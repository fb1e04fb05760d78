//! Spreadsheet-column letters (`1` ⇄ `A`, `27` ⇄ `AA`), the `A`/`a` integer presentation.

/// `n` as letters starting from `a` (or `A` when `upper`); zero is the empty string.
pub(crate) fn to_letters(mut n: u64, upper: bool) -> String {
    let base = if upper { b'A' } else { b'a' };
    let mut out = Vec::new();
    while n > 0 {
        let index = (n - 1) % 26;
        out.push(char::from(base + index as u8));
        n = (n - 1) / 26;
    }
    out.iter().rev().collect()
}

/// The value of ASCII letters in either case (empty is zero); `None` for other characters or overflow.
pub(crate) fn from_letters(text: &str) -> Option<u64> {
    text.chars().try_fold(0u64, |acc, c| {
        if !c.is_ascii_alphabetic() {
            return None;
        }
        let digit = u64::from(c.to_ascii_lowercase() as u8 - b'a' + 1);
        acc.checked_mul(26)?.checked_add(digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(to_letters(1, true), "A");
        assert_eq!(to_letters(26, false), "z");
        assert_eq!(to_letters(27, false), "aa");
        assert_eq!(to_letters(123_456, true), "FZPH");
        assert_eq!(to_letters(0, true), "");
        assert_eq!(from_letters("FZPH"), Some(123_456));
        assert_eq!(from_letters("kn"), Some(300));
        assert_eq!(from_letters("a1"), None);
        assert_eq!(from_letters(&"z".repeat(40)), None);
        for n in 1..2000 {
            assert_eq!(from_letters(&to_letters(n, n % 2 == 0)), Some(n));
        }
        assert!(!to_letters(u64::MAX, true).is_empty());
    }
}
