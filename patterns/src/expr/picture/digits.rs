//! Unicode decimal digit families (`0`–`9`, `٠`–`٩`, `０`–`９`, …) used by integer and date pictures.

/// The code points of the zero digit of each Unicode decimal-digit (Nd) run of ten.
const ZEROS: &[u32] = &[
    0x0030, 0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6,
    0x0D66, 0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80,
    0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
    0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The ASCII zero, the default digit family.
pub(crate) const ASCII_ZERO: u32 = 0x30;

/// `(zero of its family, digit value)` when `c` is a Unicode decimal digit.
pub(crate) fn family_of(c: char) -> Option<(u32, u8)> {
    let code = c as u32;
    ZEROS
        .iter()
        .find(|zero| code >= **zero && code - **zero < 10)
        .map(|zero| (*zero, (code - zero) as u8))
}

/// The value of `c` as a digit of the family starting at `zero`.
pub(crate) fn value_in(zero: u32, c: char) -> Option<u8> {
    let offset = (c as u32).wrapping_sub(zero);
    (offset < 10).then_some(offset as u8)
}

/// The character for digit `value` in the family starting at `zero` (U+FFFD if unassignable).
pub(crate) fn digit_char(zero: u32, value: u8) -> char {
    char::from_u32(zero.saturating_add(u32::from(value))).unwrap_or(char::REPLACEMENT_CHARACTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(family_of('7'), Some((0x30, 7)));
        assert_eq!(family_of('١'), Some((0x660, 1)));
        assert_eq!(family_of('０'), Some((0xFF10, 0)));
        assert_eq!(family_of('#'), None);
        assert_eq!(value_in(0x660, '٣'), Some(3));
        assert_eq!(value_in(0x30, 'a'), None);
        assert_eq!(digit_char(0xFF10, 2), '２');
        assert_eq!(digit_char(0x10FFFF, 5), char::REPLACEMENT_CHARACTER);
    }
}
