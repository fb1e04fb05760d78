//! Dotted field paths: parsing, reading (with Mongo's implicit array traversal) and writing.

use serde_json::{Map, Value};

use super::Error;

/// The longest path accepted, in segments (bounds every recursion over a path).
const MAX_SEGMENTS: usize = 64;

/// The largest array index a write may create (writes past the end pad with nulls).
const MAX_INDEX: usize = 100_000;

/// A dotted field path (`a.b.0.c`), split into segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    text: String,
    segments: Vec<String>,
}

impl Path {
    /// Parses a dotted path; empty segments, `$` segments and overly long paths are invalid.
    pub(crate) fn parse(text: &str) -> Result<Self, Error> {
        let segments: Vec<String> = text.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_SEGMENTS {
            return Err(Error::Invalid(format!("field path too long: {text}")));
        }
        if let Some(bad) = segments.iter().find(|s| s.is_empty() || s.starts_with('$')) {
            let what = if bad.is_empty() {
                "empty segment"
            } else {
                "operator segment"
            };
            return Err(Error::Invalid(format!("bad field path {text:?}: {what}")));
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The path as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// The path's segments (never empty).
    pub(crate) fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The first segment: the top-level field the path starts at.
    pub(crate) fn root(&self) -> &str {
        self.segments.first().map_or("", String::as_str)
    }
}

/// Parses an array index segment (digits only, as Mongo does).
fn index(segment: &str) -> Option<usize> {
    if segment.bytes().all(|b| b.is_ascii_digit()) {
        segment.parse().ok()
    } else {
        None
    }
}

/// Every value the path reaches in `doc`: a numeric segment indexes an array, any other segment
/// applied to an array reaches into each of its object elements. Empty when the field is missing.
pub(crate) fn lookup<'a>(doc: &'a Map<String, Value>, path: &Path) -> Vec<&'a Value> {
    let mut out = Vec::new();
    if let Some((first, rest)) = path.segments().split_first() {
        if let Some(value) = doc.get(first) {
            reach(value, rest, &mut out);
        }
    }
    out
}

/// Collects the values `segments` reach from `value` (recursion bounded by the path length).
fn reach<'a>(value: &'a Value, segments: &[String], out: &mut Vec<&'a Value>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(value);
        return;
    };
    match value {
        Value::Object(map) => {
            if let Some(child) = map.get(first) {
                reach(child, rest, out);
            }
        }
        Value::Array(items) => {
            if let Some(child) = index(first).and_then(|i| items.get(i)) {
                reach(child, rest, out);
            }
            for item in items.iter().filter(|item| item.is_object()) {
                reach(item, segments, out);
            }
        }
        _ => {}
    }
}

/// The value at exactly this path (numeric segments index arrays; no implicit traversal).
pub(crate) fn get<'a>(doc: &'a Map<String, Value>, path: &Path) -> Option<&'a Value> {
    let (first, rest) = path.segments().split_first()?;
    let mut current = doc.get(first)?;
    for segment in rest {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(index(segment)?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Mutable access to the value at exactly this path.
pub(crate) fn get_mut<'a>(doc: &'a mut Map<String, Value>, path: &Path) -> Option<&'a mut Value> {
    let (first, rest) = path.segments().split_first()?;
    let mut current = doc.get_mut(first)?;
    for segment in rest {
        current = match current {
            Value::Object(map) => map.get_mut(segment)?,
            Value::Array(items) => items.get_mut(index(segment)?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// Sets the value at this path, creating intermediate objects (and padding arrays with nulls up
/// to a numeric index). Reaching through a scalar, or naming a non-index field of an array, is
/// invalid (Mongo refuses both).
pub(crate) fn set(doc: &mut Map<String, Value>, path: &Path, value: Value) -> Result<(), Error> {
    let Some((last, parents)) = path.segments().split_last() else {
        return Err(Error::Invalid("empty field path".into()));
    };
    let Some((first, middle)) = parents.split_first() else {
        doc.insert(last.clone(), value);
        return Ok(());
    };
    let mut current = doc
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    for segment in middle {
        current = child_mut(current, segment, path)?;
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let slot = slot_mut(items, last, path)?;
            *slot = value;
            Ok(())
        }
        _ => Err(cannot_create(path)),
    }
}

/// Steps into (creating when missing) the container child `segment` of `value`.
fn child_mut<'a>(value: &'a mut Value, segment: &str, path: &Path) -> Result<&'a mut Value, Error> {
    let child = match value {
        Value::Object(map) => map
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new())),
        Value::Array(items) => {
            let slot = slot_mut(items, segment, path)?;
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            slot
        }
        _ => return Err(cannot_create(path)),
    };
    if child.is_object() || child.is_array() {
        Ok(child)
    } else {
        Err(cannot_create(path))
    }
}

/// The array element at index `segment`, padding the array with nulls when it is short.
fn slot_mut<'a>(
    items: &'a mut Vec<Value>,
    segment: &str,
    path: &Path,
) -> Result<&'a mut Value, Error> {
    let Some(i) = index(segment).filter(|&i| i <= MAX_INDEX) else {
        return Err(cannot_create(path));
    };
    if items.len() <= i {
        items.resize(i + 1, Value::Null);
    }
    items.get_mut(i).ok_or_else(|| cannot_create(path))
}

/// The error for a write that would have to reach through a scalar or name a field of an array.
fn cannot_create(path: &Path) -> Error {
    Error::Invalid(format!("cannot create field path {}", path.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn p(s: &str) -> Path {
        Path::parse(s).unwrap()
    }

    #[test]
    fn parse_rejects_bad_paths() {
        assert!(Path::parse("").is_err());
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse("a.$").is_err());
        assert!(Path::parse(&"a.".repeat(70)).is_err());
        assert_eq!(p("a.b").segments(), ["a", "b"]);
    }

    #[test]
    fn lookup_traverses_arrays() {
        let d = doc(json!({"a": [{"b": 1}, {"b": 2}, 3], "c": {"d": [4, 5]}}));
        assert_eq!(lookup(&d, &p("a.b")), [&json!(1), &json!(2)]);
        assert_eq!(lookup(&d, &p("a.1.b")), [&json!(2)]);
        assert_eq!(lookup(&d, &p("c.d")), [&json!([4, 5])]);
        assert!(lookup(&d, &p("x.y")).is_empty());
    }

    #[test]
    fn set_creates_and_pads() {
        let mut d = doc(json!({"a": [1], "s": 3}));
        set(&mut d, &p("x.y"), json!(1)).unwrap();
        set(&mut d, &p("a.2.b"), json!(2)).unwrap();
        set(&mut d, &p("a.0"), json!(9)).unwrap();
        assert_eq!(
            Value::Object(d.clone()),
            json!({"a": [9, null, {"b": 2}], "s": 3, "x": {"y": 1}})
        );
        assert!(set(&mut d, &p("s.t"), json!(1)).is_err());
        assert!(set(&mut d, &p("a.name"), json!(1)).is_err());
        assert!(set(&mut d, &p("a.100001"), json!(1)).is_err());
        assert_eq!(get(&d, &p("a.2.b")), Some(&json!(2)));
        assert_eq!(get(&d, &p("a.b")), None);
    }
}
