//! Exact decimal views of numbers: the shortest round-trip digits of an `f64` with half-even
//! rounding ([`Decimal`]), and a small unbounded natural number in base ten ([`BigNat`]).
//!
//! Working on decimal digits (rather than `f64` arithmetic) keeps formatting exact: `0.14` scaled
//! to a percentage is `14`, and `1e46` spelled in words has no stray remainder.

use std::cmp::Ordering;

/// A non-negative decimal `0.d₁d₂… × 10^exp`; `digits` has no leading or trailing zeros (empty = 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decimal {
    /// The significant digits (values 0–9), most significant first.
    pub digits: Vec<u8>,
    /// The power of ten that places the point: the value is `0.digits × 10^exp`.
    pub exp: i64,
}

impl Decimal {
    /// The value zero.
    pub fn zero() -> Self {
        Decimal {
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// The exact shortest round-trip decimal of `|value|`; NaN and infinities give zero.
    pub fn from_f64(value: f64) -> Self {
        let value = value.abs();
        if value == 0.0 || !value.is_finite() {
            return Decimal::zero();
        }
        // `{:e}` prints the shortest digits that round-trip, as `d.ddde±x`.
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text.as_str(), "0"));
        let exponent: i64 = exponent.parse().unwrap_or(0);
        let digits = mantissa
            .chars()
            .filter_map(|c| c.to_digit(10))
            .map(|d| d as u8)
            .collect();
        Decimal {
            digits,
            exp: exponent + 1,
        }
        .normalized()
    }

    /// Strips leading and trailing zero digits, keeping the value.
    fn normalized(mut self) -> Self {
        let leading = self.digits.iter().take_while(|d| **d == 0).count();
        if leading == self.digits.len() {
            return Decimal::zero();
        }
        self.digits.drain(..leading);
        self.exp -= leading as i64;
        while self.digits.last() == Some(&0) {
            self.digits.pop();
        }
        self
    }

    /// True when the value is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Multiplies by `10^places` (negative divides).
    pub fn shift(&mut self, places: i64) {
        if !self.is_zero() {
            self.exp = self.exp.saturating_add(places);
        }
    }

    /// Rounds half-to-even to `fraction` digits after the decimal point.
    pub fn round_half_even(&self, fraction: i64) -> Decimal {
        let keep = self.exp.saturating_add(fraction);
        if keep < 0 || self.is_zero() {
            return Decimal::zero();
        }
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        if keep >= self.digits.len() {
            return self.clone();
        }
        let first_dropped = self.digits.get(keep).copied().unwrap_or(0);
        let rest_nonzero = self.digits.iter().skip(keep + 1).any(|d| *d != 0);
        let last_kept_odd = keep > 0 && self.digits.get(keep - 1).is_some_and(|d| d % 2 == 1);
        let round_up = first_dropped > 5 || (first_dropped == 5 && (rest_nonzero || last_kept_odd));
        let mut digits: Vec<u8> = self.digits.iter().take(keep).copied().collect();
        let mut exp = self.exp;
        if round_up {
            let mut carry = true;
            for d in digits.iter_mut().rev() {
                if *d == 9 {
                    *d = 0;
                } else {
                    *d += 1;
                    carry = false;
                    break;
                }
            }
            if carry {
                digits.insert(0, 1);
                exp += 1;
            }
        }
        Decimal { digits, exp }.normalized()
    }

    /// The digits before the decimal point (empty when the value is below one).
    pub fn integer_digits(&self) -> Vec<u8> {
        if self.exp <= 0 {
            return Vec::new();
        }
        let len = usize::try_from(self.exp).unwrap_or(usize::MAX);
        let mut out: Vec<u8> = self.digits.iter().take(len).copied().collect();
        out.resize(len.max(out.len()), 0);
        out
    }

    /// The digits after the decimal point, without trailing zeros.
    pub fn fraction_digits(&self) -> Vec<u8> {
        let len = self.digits.len() as i64;
        if self.exp >= len {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.exp < 0 {
            out.resize(usize::try_from(-self.exp).unwrap_or(0), 0);
        }
        let skip = usize::try_from(self.exp.max(0)).unwrap_or(0);
        out.extend(self.digits.iter().skip(skip));
        out
    }
}

/// An unbounded natural number as decimal digits, most significant first, no leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct BigNat {
    digits: Vec<u8>,
}

impl BigNat {
    /// The number from digit values (0–9), most significant first.
    pub fn from_digits(digits: &[u8]) -> Self {
        let leading = digits.iter().take_while(|d| **d == 0).count();
        BigNat {
            digits: digits.iter().skip(leading).copied().collect(),
        }
    }

    /// The number `value`.
    pub fn from_u64(value: u64) -> Self {
        let text = value.to_string();
        let digits: Vec<u8> = text.bytes().map(|b| b.wrapping_sub(b'0')).collect();
        BigNat::from_digits(&digits)
    }

    /// The integer part of `|value|` (zero for NaN and infinities).
    pub fn from_f64_trunc(value: f64) -> Self {
        BigNat::from_digits(&Decimal::from_f64(value.trunc()).integer_digits())
    }

    /// The digit values, most significant first (empty for zero).
    pub fn digits(&self) -> &[u8] {
        &self.digits
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The number of digits (zero has none).
    pub fn len(&self) -> usize {
        self.digits.len()
    }

    /// The value when it fits a `u64`.
    pub fn to_u64(&self) -> Option<u64> {
        self.digits.iter().try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(*d))
        })
    }

    /// The nearest `f64`.
    pub fn to_f64(&self) -> f64 {
        if self.is_zero() {
            return 0.0;
        }
        let text: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        text.parse().unwrap_or(f64::INFINITY)
    }

    /// `self × 10^places`.
    pub fn mul_pow10(&self, places: usize) -> BigNat {
        if self.is_zero() {
            return BigNat::default();
        }
        let mut digits = self.digits.clone();
        digits.resize(digits.len() + places, 0);
        BigNat { digits }
    }

    /// `self + other`.
    pub fn add(&self, other: &BigNat) -> BigNat {
        let mut out = Vec::with_capacity(self.len().max(other.len()) + 1);
        let mut a = self.digits.iter().rev();
        let mut b = other.digits.iter().rev();
        let mut carry = 0u8;
        loop {
            let (x, y) = (a.next(), b.next());
            if x.is_none() && y.is_none() {
                break;
            }
            let sum = x.copied().unwrap_or(0) + y.copied().unwrap_or(0) + carry;
            out.push(sum % 10);
            carry = sum / 10;
        }
        if carry > 0 {
            out.push(carry);
        }
        out.reverse();
        BigNat::from_digits(&out)
    }

    /// `(self / 10^places, self % 10^places)`.
    pub fn split_pow10(&self, places: usize) -> (BigNat, BigNat) {
        let cut = self.len().saturating_sub(places);
        let (high, low) = self.digits.split_at(cut);
        (BigNat::from_digits(high), BigNat::from_digits(low))
    }
}

impl PartialOrd for BigNat {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BigNat {
    fn cmp(&self, other: &Self) -> Ordering {
        self.len()
            .cmp(&other.len())
            .then_with(|| self.digits.cmp(&other.digits))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shortest_digits() {
        let d = Decimal::from_f64(1234.5678);
        assert_eq!(d.digits, vec![1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(d.exp, 4);
        let d = Decimal::from_f64(0.0012);
        assert_eq!(d.digits, vec![1, 2]);
        assert_eq!(d.exp, -2);
        assert_eq!(d.fraction_digits(), vec![0, 0, 1, 2]);
        assert!(Decimal::from_f64(f64::NAN).is_zero());
        let d = Decimal::from_f64(1e20);
        assert_eq!(d.integer_digits().len(), 21);
    }

    #[test]
    fn half_even_rounding() {
        let r = |v: f64, f: i64| {
            let d = Decimal::from_f64(v).round_half_even(f);
            let i: String = d.integer_digits().iter().map(|d| d.to_string()).collect();
            let f: String = d.fraction_digits().iter().map(|d| d.to_string()).collect();
            format!("{i}.{f}")
        };
        assert_eq!(r(2.5, 0), "2.");
        assert_eq!(r(3.5, 0), "4.");
        assert_eq!(r(0.5, 0), ".");
        assert_eq!(r(0.51, 0), "1.");
        assert_eq!(r(9.96, 1), "10.");
        assert_eq!(r(12.345678, 3), "12.346");
        assert_eq!(r(0.0004, 2), ".");
        assert_eq!(r(123.9, 0), "124.");
    }

    #[test]
    fn big_naturals() {
        let a = BigNat::from_u64(999);
        let b = a.add(&BigNat::from_u64(1));
        assert_eq!(b.to_u64(), Some(1000));
        assert_eq!(b.mul_pow10(43).to_f64(), 1e46);
        let (h, l) = BigNat::from_u64(1_234_567).split_pow10(3);
        assert_eq!((h.to_u64(), l.to_u64()), (Some(1234), Some(567)));
        assert!(BigNat::from_u64(99) < BigNat::from_u64(100));
        assert_eq!(BigNat::from_f64_trunc(-12.6).to_u64(), Some(12));
        assert_eq!(BigNat::from_f64_trunc(1e46).len(), 47);
    }
}
