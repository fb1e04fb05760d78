//! Loading patterns, sessions models and resolver configs from JSON text.
//!
//! Every problem names where it is: the source (usually a file name, supplied by the caller), the
//! JSON path and, when it can be found, the line. Unknown fields are tolerated (reference files carry
//! extra keys) and listed, so `threds validate --strict` can report them. The core does no file I/O:
//! callers read the text.

use crate::model::{PatternModel, ResolverConfig, SessionsModel};
use crate::pattern::{self, Pattern};
use serde::de::DeserializeOwned;
use std::fmt;

/// One problem found while loading, located as precisely as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The source the text came from (a file name).
    pub source: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The JSON path, e.g. `reactions[1].condition.xpr` (`$` for the whole document).
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.path, self.reason)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// Problems found in one source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// Every problem, in document order where possible.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// A successfully loaded document plus the unknown fields it carried.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The loaded value.
    pub value: T,
    /// JSON paths of fields the model does not know (ignored).
    pub unknown_fields: Vec<String>,
}

/// Loads and compiles one pattern.
pub fn pattern(source: &str, text: &str) -> Result<Loaded<Pattern>, Error> {
    let model: Loaded<PatternModel> = document(source, text)?;
    match pattern::compile(model.value) {
        Ok(p) => Ok(Loaded {
            value: p,
            unknown_fields: model.unknown_fields,
        }),
        Err(errors) => Err(Error {
            problems: errors
                .into_iter()
                .map(|e| Problem {
                    source: source.to_string(),
                    line: locate::line_of(text, &e.path),
                    path: e.path,
                    reason: e.reason,
                })
                .collect(),
        }),
    }
}

/// Loads a sessions model.
pub fn sessions(source: &str, text: &str) -> Result<Loaded<SessionsModel>, Error> {
    document(source, text)
}

/// Loads a resolver config.
pub fn resolver(source: &str, text: &str) -> Result<Loaded<ResolverConfig>, Error> {
    document(source, text)
}

/// Parses `text` as a `T`, with exact paths for type errors and a list of ignored fields.
pub fn document<T: DeserializeOwned>(source: &str, text: &str) -> Result<Loaded<T>, Error> {
    let problem = |line: Option<usize>, path: String, reason: String| Error {
        problems: vec![Problem {
            source: source.to_string(),
            line,
            path,
            reason,
        }],
    };
    // Syntax first, so a bad document gets serde_json's own line and column.
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| problem(Some(e.line()), "$".into(), format!("invalid JSON: {e}")))?;
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(&value, &mut track);
    let result: Result<T, _> = serde_ignored::deserialize(de, |p| unknown.push(ignored_path(&p)));
    match result {
        Ok(value) => Ok(Loaded {
            value,
            unknown_fields: unknown,
        }),
        Err(e) => {
            let mut path = track.path().to_string();
            let mut reason = e.to_string();
            let mut line = None;
            if let Some(field) = missing_field(&reason) {
                let parent = if path.is_empty() || path == "." {
                    "$".to_string()
                } else {
                    path.clone()
                };
                line = locate::line_of(text, &parent);
                path = join(&path, &field);
                reason = "required field is missing".into();
            } else if reason.contains("untagged enum StringOrList") {
                reason = "must be a string or an array of strings".into();
            }
            let path = if path == "." || path.is_empty() {
                "$".to_string()
            } else {
                path
            };
            let line = line.or_else(|| locate::line_of(text, &path));
            Err(problem(line, path, reason))
        }
    }
}

fn missing_field(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() || parent == "." {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => join(&ignored_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// Finding the line of a JSON path in the original text.
pub mod locate {
    /// The 1-based line where the value at `path` (e.g. `reactions[1].condition.xpr`) starts, if found.
    pub fn line_of(text: &str, path: &str) -> Option<usize> {
        let segments = parse_path(path)?;
        let mut s = Scanner {
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
        };
        s.find(&segments)?;
        Some(
            text.as_bytes()[..s.pos]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
        )
    }

    #[derive(Debug, PartialEq)]
    enum Segment {
        Key(String),
        Index(usize),
    }

    fn parse_path(path: &str) -> Option<Vec<Segment>> {
        let mut out = Vec::new();
        if path == "$" {
            return Some(out);
        }
        for part in path.split('.') {
            let mut rest = part;
            let key_end = rest.find('[').unwrap_or(rest.len());
            if key_end > 0 {
                out.push(Segment::Key(rest[..key_end].to_string()));
            }
            rest = &rest[key_end..];
            while let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']')?;
                out.push(Segment::Index(r[..close].parse().ok()?));
                rest = &r[close + 1..];
            }
        }
        Some(out)
    }

    struct Scanner<'t> {
        bytes: &'t [u8],
        pos: usize,
        depth: usize,
    }

    impl Scanner<'_> {
        fn ws(&mut self) {
            while self.pos < self.bytes.len() && self.bytes[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
        }

        fn peek(&self) -> Option<u8> {
            self.bytes.get(self.pos).copied()
        }

        /// Positions `pos` at the start of the value at `segments` below the value at `pos`.
        fn find(&mut self, segments: &[Segment]) -> Option<()> {
            self.ws();
            let Some((first, rest)) = segments.split_first() else {
                return Some(());
            };
            match (first, self.peek()?) {
                (Segment::Key(key), b'{') => {
                    self.pos += 1;
                    loop {
                        self.ws();
                        if self.peek()? == b'}' {
                            return None;
                        }
                        let k = self.string()?;
                        self.ws();
                        (self.peek()? == b':').then_some(())?;
                        self.pos += 1;
                        if &k == key {
                            return self.find(rest);
                        }
                        self.skip()?;
                        self.ws();
                        if self.peek()? == b',' {
                            self.pos += 1;
                        }
                    }
                }
                (Segment::Index(i), b'[') => {
                    self.pos += 1;
                    for _ in 0..*i {
                        self.ws();
                        self.skip()?;
                        self.ws();
                        (self.peek()? == b',').then_some(())?;
                        self.pos += 1;
                    }
                    self.find(rest)
                }
                _ => None,
            }
        }

        fn string(&mut self) -> Option<String> {
            (self.peek()? == b'"').then_some(())?;
            let start = self.pos;
            self.pos += 1;
            while self.peek()? != b'"' {
                if self.peek()? == b'\\' {
                    self.pos += 1;
                }
                self.pos += 1;
            }
            self.pos += 1;
            let raw = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
            serde_json::from_str(raw).ok()
        }

        fn skip(&mut self) -> Option<()> {
            self.ws();
            match self.peek()? {
                b'"' => self.string().map(|_| ()),
                open @ (b'{' | b'[') => {
                    self.depth += 1;
                    (self.depth < 512).then_some(())?;
                    let close = if open == b'{' { b'}' } else { b']' };
                    self.pos += 1;
                    loop {
                        self.ws();
                        match self.peek()? {
                            c if c == close => {
                                self.pos += 1;
                                self.depth -= 1;
                                return Some(());
                            }
                            b',' | b':' => self.pos += 1,
                            _ => self.skip()?,
                        }
                    }
                }
                _ => {
                    while let Some(b) = self.peek() {
                        if matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace() {
                            break;
                        }
                        self.pos += 1;
                    }
                    Some(())
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_lines_of_nested_paths() {
            let text = "{\n  \"a\": [\n    {\"x\": 1},\n    {\"x\": \"y\",\n     \"z\": {\"q\": [1, 2]}}\n  ]\n}";
            assert_eq!(line_of(text, "a[1].x"), Some(4));
            assert_eq!(line_of(text, "a[1].z.q[1]"), Some(5));
            assert_eq!(line_of(text, "a[0]"), Some(3));
            assert_eq!(line_of(text, "a[5]"), None);
            assert_eq!(line_of(text, "$"), Some(1));
        }
    }
}
