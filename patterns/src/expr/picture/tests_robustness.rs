//! No-panic checks: pseudo-random pictures, texts and values through every public function.
#![allow(clippy::unwrap_used)]

use super::*;

/// A small deterministic xorshift generator (no external crates).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn string(&mut self, alphabet: &[&str], max: usize) -> String {
        let len = self.below(max + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }
    fn number(&mut self) -> f64 {
        const SPECIAL: [f64; 12] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1e21,
            -1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        match self.below(3) {
            0 => SPECIAL[self.below(SPECIAL.len())],
            1 => (self.next() as i64 as f64) / 1000.0,
            _ => f64::from_bits(self.next()),
        }
    }
}

const NUMBER_PICTURE: &[&str] = &[
    "#", "0", "9", ".", ",", ";", "e", "%", "‰", "-", "+", "x", "٣", "'", " ", "E",
];
const INTEGER_PICTURE: &[&str] = &[
    "#", "0", "1", ",", ";", "o", "c", "w", "W", "I", "i", "A", "a", ":", "١", "０", "Ww", "é",
];
const DATE_PICTURE: &[&str] = &[
    "[", "]", "Y", "M", "D", "d", "F", "W", "w", "X", "x", "H", "h", "P", "m", "s", "f", "Z", "z",
    "C", "E", "q", "N", "n", "0", "1", "#", ",", "-", "*", "o", "t", "I", "i", "a", " ", ":", "9",
    "2", "٣",
];
const DATE_TEXT: &[&str] = &[
    "1", "2", "0", "9", "-", ":", " ", "T", "Z", "+", ".", "th", "st", "am", "PM", "GMT", "March",
    "Mon", "twenty", "first", "and", "hundred", ",", "MCM", "x", "é", "٣",
];

#[test]
fn nothing_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let format = DecimalFormat::default();
    for _ in 0..3000 {
        let picture = rng.string(NUMBER_PICTURE, 12);
        let _ = format_number(rng.number(), &picture, &format);

        let picture = rng.string(INTEGER_PICTURE, 8);
        let _ = format_integer(rng.number(), &picture);
        let text = rng.string(DATE_TEXT, 6);
        let _ = parse_integer(&text, &picture);

        let picture = rng.string(DATE_PICTURE, 14);
        let millis = rng.next() as i64 >> rng.below(40);
        let zone = ["+0100", "-0530", "0000", "+9959", "x"][rng.below(5)];
        let _ = format_datetime(millis, Some(&picture), Some(zone));
        let text = rng.string(DATE_TEXT, 10);
        let _ = parse_datetime_at(&text, Some(&picture), millis);
        let _ = parse_datetime(&text, None);
        if let Ok(formatted) = format_datetime(millis, Some(&picture), None) {
            let _ = parse_datetime(&formatted, Some(&picture));
        }
    }
}

#[test]
fn huge_inputs_stay_bounded() {
    let long = "9".repeat(5000);
    assert!(parse_integer(&long, "0").unwrap().unwrap().is_infinite());
    assert!(parse_datetime(&long, Some("[Y]")).unwrap().is_none());
    let words = "one hundred and ".repeat(200);
    let _ = parse_datetime(&words, Some("[Yw]"));
    let _ = format_number(f64::MAX, &"#,".repeat(2000), &DecimalFormat::default());
    let _ = format_integer(f64::MAX, "w;o");
    let _ = format_datetime(0, Some(&"[Y,*-100]".repeat(100)), None);
}

#[test]
fn date_pictures_round_trip() {
    const PICTURES: &[&str] = &[
        "[Y0001]-[M01]-[D01]T[H01]:[m01]:[s01].[f001][Z01:01t]",
        "[Y0001][M01][D01][H01][m01][s01][f001]",
        "[FNn], [D1o] [MNn] [Y] [h]:[m01]:[s01].[f001] [PN] [z]",
        "[Dwo] of [MNn,*-3], [Yw] at [H]h[m]m[s]s[f001] [Z0101]",
        "[D] [MI] [YI] [H01]:[m]:[s]:[f1]",
        "[Y]--[d001] [H]:[m]:[s].[f001]",
        "[DW] [MA] [Y0001] [H]:[m]:[s].[f001] [Z0]",
    ];
    let mut rng = Rng(42);
    for _ in 0..300 {
        // Years 1000–3999 keep roman numerals and zero-padded years unambiguous.
        let millis = -30_610_224_000_000 + (rng.next() % 126_230_400_000_000) as i64;
        for picture in PICTURES {
            let has_zone = picture.contains("[Z") || picture.contains("[z");
            let zone = has_zone.then(|| ["+0100", "-0530", "0000", "+1400"][rng.below(4)]);
            let text = format_datetime(millis, Some(picture), zone).unwrap_or_default();
            let parsed = parse_datetime(&text, Some(picture));
            assert_eq!(parsed, Ok(Some(millis)), "{picture} {zone:?}: {text}");
        }
    }
}

#[test]
fn integers_round_trip() {
    let mut rng = Rng(7);
    for picture in [
        "0", "#,##0", "000;o", "w", "Ww;o", "W", "I", "i", "A", "a", "٠٠", "#:##,#0",
    ] {
        for _ in 0..500 {
            let n = (rng.next() % 3_000_000) as f64;
            if picture.starts_with(['I', 'i']) && n > 100_000.0 {
                continue;
            }
            let text = format_integer(n, picture).unwrap_or_default();
            assert_eq!(
                parse_integer(&text, picture),
                Ok(Some(n)),
                "{picture}: {text}"
            );
        }
    }
}
