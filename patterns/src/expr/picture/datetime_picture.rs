//! Date/time picture strings (F&O 9.8.4.1): literal text and `[…]` variable markers, each with a
//! component, presentation modifiers and an optional width modifier.

use super::integer::{IntegerPicture, LetterCase, Primary};
use super::PictureError;

/// Every component specifier JSONata knows.
const COMPONENTS: &str = "YMDdFWwXxHhPmsfZzCE";

/// Components whose value is an integer (formatted through an integer picture).
const INTEGER_COMPONENTS: &str = "YMDdFWwXxHhmsf";

/// Widths above this are clamped, so a picture cannot demand gigabytes of padding.
const MAX_WIDTH: usize = 100;

/// One piece of an analysed date/time picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Text copied verbatim (`[[` and `]]` already unescaped).
    Literal(String),
    /// A `[…]` variable marker.
    Marker(Marker),
}

/// How a marker presents its component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Presentation {
    /// As a name (`N`, `n`, `Nn`): month and day names, `am`/`pm`.
    Names(LetterCase),
    /// As an integer picture (`01`, `1o`, `w`, `I`, …).
    Number(IntegerPicture),
}

/// An analysed variable marker such as `[D01]` or `[MNn,3-3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The component specifier letter (`Y`, `M`, `D`, …).
    pub component: char,
    /// The first presentation modifier.
    pub presentation: Presentation,
    /// The second presentation modifier (`a`, `t`, `c` or `o`), if any.
    pub modifier: Option<char>,
    /// Minimum width from the width modifier.
    pub min_width: Option<usize>,
    /// Maximum width from the width modifier.
    pub max_width: Option<usize>,
    /// For `Y`: how many low-order digits of the year to show.
    pub year_digits: Option<usize>,
    /// For parsing: the exact digit count, when another number follows with no separator.
    pub parse_width: Option<usize>,
}

fn error(code: &'static str, message: impl Into<String>) -> PictureError {
    PictureError {
        code,
        message: message.into(),
    }
}

/// Splits a date/time picture into literals and analysed markers.
pub(crate) fn analyse(picture: &str) -> Result<Vec<Part>, PictureError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = picture;
    while let Some(open) = rest.find('[') {
        literal.push_str(&rest[..open].replace("]]", "]"));
        let after = &rest[open + 1..];
        if let Some(next) = after.strip_prefix('[') {
            literal.push('[');
            rest = next;
            continue;
        }
        let Some(close) = after.find(']') else {
            return Err(error(
                "D3135",
                "No matching closing bracket ']' in date/time picture string",
            ));
        };
        if !literal.is_empty() {
            parts.push(Part::Literal(std::mem::take(&mut literal)));
        }
        let marker = analyse_marker(&after[..close])?;
        if let (Presentation::Number(_), Some(Part::Marker(previous))) =
            (&marker.presentation, parts.last_mut())
        {
            if INTEGER_COMPONENTS.contains(marker.component) {
                if let Presentation::Number(picture) = &previous.presentation {
                    previous.parse_width = picture.digits().map(|d| d.mandatory);
                }
            }
        }
        parts.push(Part::Marker(marker));
        rest = &after[close + 1..];
    }
    literal.push_str(&rest.replace("]]", "]"));
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

fn default_presentation(component: char) -> &'static str {
    match component {
        'F' | 'P' | 'C' | 'E' => "n",
        'm' | 's' => "01",
        'Z' | 'z' => "01:01",
        _ => "1",
    }
}

fn parse_width(text: &str) -> Option<usize> {
    text.parse::<usize>().ok().map(|w| w.min(MAX_WIDTH))
}

fn analyse_marker(text: &str) -> Result<Marker, PictureError> {
    let marker: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut chars = marker.chars();
    let component = chars
        .next()
        .filter(|c| COMPONENTS.contains(*c))
        .ok_or_else(|| {
            error(
                "D3132",
                format!("Unknown component specifier in date/time picture: [{text}]"),
            )
        })?;
    let rest = chars.as_str();
    let (modifiers, width) = match rest.rfind(',') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (min_width, max_width) = match width.map(|w| w.split_once('-').unwrap_or((w, ""))) {
        Some((min, max)) => (parse_width(min), parse_width(max)),
        None => (None, None),
    };
    let (first, second) = match modifiers.char_indices().last() {
        None => (default_presentation(component), None),
        Some((i, last)) if i > 0 && "atco".contains(last) => (&modifiers[..i], Some(last)),
        Some(_) => (modifiers, None),
    };
    let presentation = if let Some(names) = first.strip_prefix('N') {
        Presentation::Names(if names.starts_with('n') {
            LetterCase::Title
        } else {
            LetterCase::Upper
        })
    } else if first.starts_with('n') || "PCE".contains(component) {
        Presentation::Names(LetterCase::Lower)
    } else {
        Presentation::Number(IntegerPicture::with_primary(first, second == Some('o'))?)
    };
    let mut marker = Marker {
        component,
        presentation,
        modifier: second,
        min_width,
        max_width,
        year_digits: None,
        parse_width: None,
    };
    apply_width(&mut marker);
    Ok(marker)
}

/// Widens mandatory digits to the minimum width and works out year truncation (F&O 9.8.4.4).
fn apply_width(marker: &mut Marker) {
    let Presentation::Number(picture) = &mut marker.presentation else {
        return;
    };
    let Primary::Digits(digits) = &mut picture.primary else {
        if marker.component == 'Y' {
            marker.year_digits = marker.max_width;
        }
        return;
    };
    if !INTEGER_COMPONENTS.contains(marker.component) {
        return;
    }
    if let Some(min) = marker.min_width {
        digits.mandatory = digits.mandatory.max(min);
    }
    if marker.component == 'Y' {
        if let Some(max) = marker.max_width {
            digits.mandatory = max;
            marker.year_digits = Some(max);
        } else {
            let width = digits.mandatory + digits.optional;
            marker.year_digits = (width >= 2).then_some(width);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn marker(picture: &str) -> Marker {
        match analyse(picture).unwrap().pop() {
            Some(Part::Marker(m)) => m,
            other => panic!("no marker: {other:?}"),
        }
    }

    #[test]
    fn literals_and_escapes() {
        let parts = analyse("[[Year]]: [[[Y0001]]]").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], Part::Literal("[Year]: [".into()));
        assert_eq!(parts[2], Part::Literal("]".into()));
        assert_eq!(analyse("[Y").unwrap_err().code, "D3135");
        assert_eq!(analyse("[q]").unwrap_err().code, "D3132");
        assert_eq!(analyse("[]").unwrap_err().code, "D3132");
        assert!(analyse("").unwrap().is_empty());
    }

    #[test]
    fn modifiers() {
        let m = marker("[MNn,3-3]");
        assert_eq!(m.presentation, Presentation::Names(LetterCase::Title));
        assert_eq!((m.min_width, m.max_width), (Some(3), Some(3)));
        let m = marker("[D1o]");
        assert_eq!(m.modifier, Some('o'));
        assert_eq!(marker("[Y,2]").year_digits, Some(2));
        assert_eq!(marker("[Y]").year_digits, None);
        assert_eq!(marker("[Y0001,2-2]").year_digits, Some(2));
        assert_eq!(marker("[Z01:01t]").modifier, Some('t'));
        assert_eq!(marker("[ f0  01]").component, 'f');
        assert_eq!(marker("[D,999999999999]").min_width, Some(MAX_WIDTH));
    }

    #[test]
    fn adjacent_numbers_get_parse_widths() {
        let parts = analyse("[Y0001][M01]").unwrap();
        match &parts[0] {
            Part::Marker(m) => assert_eq!(m.parse_width, Some(4)),
            other => panic!("{other:?}"),
        }
    }
}
