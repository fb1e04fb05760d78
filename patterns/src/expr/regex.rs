//! Regular expression literals (`/pattern/flags`), compiled once with the `regex` crate.
//! JSONata regexes are JavaScript regexes; the common subset (no look-around or
//! back-references) is supported.

use super::error::{Error, Fail};
use regex::Regex;

/// A compiled regular expression literal.
#[derive(Debug)]
pub struct RegexDef {
    /// The pattern as written.
    pub source: String,
    /// The compiled matcher.
    pub regex: Regex,
}

/// One match: matched text, char offsets and capture groups.
#[derive(Debug, Clone)]
pub struct Found {
    /// The matched text.
    pub text: String,
    /// Char offset of the match start.
    pub start: usize,
    /// Char offset just past the match.
    pub end: usize,
    /// Byte offset just past the match.
    pub byte_end: usize,
    /// Byte offset of the match start.
    pub byte_start: usize,
    /// Capture groups (empty string for a group that did not participate).
    pub groups: Vec<String>,
}

impl RegexDef {
    /// Compiles `pattern` with JavaScript `flags` (`i`, `m`).
    pub fn new(pattern: &str, flags: &str) -> Result<Self, Fail> {
        let mut prefix = String::new();
        for f in flags.chars() {
            match f {
                'i' => prefix.push_str("(?i)"),
                'm' => prefix.push_str("(?m)"),
                'g' => {}
                _ => {
                    return Err(Error::new(
                        "S0303",
                        format!("Invalid regular expression flag: {f}"),
                    ))
                }
            }
        }
        let translated = translate(pattern);
        let regex = regex::RegexBuilder::new(&format!("{prefix}{translated}"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Error::new("S0303", format!("Invalid regular expression: {e}")))?;
        Ok(RegexDef {
            source: pattern.to_string(),
            regex,
        })
    }

    /// Finds the first match at or after byte offset `from`.
    pub fn find_at(&self, text: &str, from: usize) -> Option<Found> {
        let from_chars = text.get(..from).map_or(0, |s| s.chars().count());
        self.find_after(text, from, from_chars)
    }

    /// [`RegexDef::find_at`] when the char offset of byte `from` is already known (iterating
    /// matches stays linear instead of recounting the text before each one).
    pub fn find_after(&self, text: &str, from: usize, from_chars: usize) -> Option<Found> {
        if from > text.len() || !text.is_char_boundary(from) {
            return None;
        }
        let caps = self.regex.captures_at(text, from)?;
        let m = caps.get(0)?;
        let start = from_chars + text.get(from..m.start()).map_or(0, |s| s.chars().count());
        let len = m.as_str().chars().count();
        Some(Found {
            text: m.as_str().to_string(),
            start,
            end: start + len,
            byte_start: m.start(),
            byte_end: m.end(),
            groups: caps
                .iter()
                .skip(1)
                .map(|g| g.map_or(String::new(), |g| g.as_str().to_string()))
                .collect(),
        })
    }
}

/// Adapts JavaScript regex syntax to the `regex` crate where they differ: `\d`, `\w` and `\b`
/// are ASCII-only in JavaScript (Unicode-aware in `regex`), `[\b]` is a backspace, and `\/`
/// is just a slash.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(n) = chars.next() else {
                    out.push_str("\\\\");
                    break;
                };
                let replacement = match (n, in_class) {
                    ('/', _) => "/",
                    ('d', _) => "[0-9]",
                    ('D', _) => "[^0-9]",
                    ('w', _) => "[A-Za-z0-9_]",
                    ('W', _) => "[^A-Za-z0-9_]",
                    ('b', true) => "\\x08",
                    ('b', false) => "(?-u:\\b)",
                    ('B', false) => "(?-u:\\B)",
                    _ => {
                        out.push('\\');
                        out.push(n);
                        continue;
                    }
                };
                out.push_str(replacement);
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            // `regex` gives `[`, `&&` and `~~` meaning inside classes; JavaScript does not.
            '[' | '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn javascript_classes_are_ascii() {
        let w = RegexDef::new("^\\w+$", "").unwrap();
        assert!(w.find_at("abc_1", 0).is_some());
        assert!(w.find_at("é", 0).is_none());
        let b = RegexDef::new("[\\b]", "").unwrap();
        assert!(b.find_at("a\u{8}", 0).is_some());
        let d = RegexDef::new("[\\d.]+", "").unwrap();
        assert_eq!(d.find_at("x3.5y", 0).unwrap().text, "3.5");
    }

    #[test]
    fn finds_from_offset() {
        let re = RegexDef::new("b+", "").unwrap();
        let m = re.find_at("ababbxabbcc", 2).unwrap();
        assert_eq!(m.start, 3);
        assert_eq!(m.text, "bb");
    }
}
