//! Selectors: which fields a query returns (Mongo projections over dotted paths).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::order::kind;
use super::path::Path;
use super::Error;

/// Which fields a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Only these fields (plus `id`).
    pub include: Vec<String>,
    /// All but these fields.
    pub exclude: Vec<String>,
}

impl Selector {
    /// Reads a task's `selector` (`{include?: [..], exclude?: [..]}`).
    pub fn from_json(value: &Value) -> Result<Self, Error> {
        let Value::Object(map) = value else {
            return Err(Error::Invalid(format!(
                "a selector must be an object, got {}",
                kind(value)
            )));
        };
        let fields = |key: &str| -> Result<Vec<String>, Error> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(Error::Invalid(format!("selector {key} takes field names"))),
                    })
                    .collect(),
                Some(_) => Err(Error::Invalid(format!("selector {key} takes an array"))),
            }
        };
        Ok(Self {
            include: fields("include")?,
            exclude: fields("exclude")?,
        })
    }
}

/// A validated selector, ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Projection {
    include: bool,
    tree: Tree,
}

/// Selected paths as a tree of segments; a leaf selects the whole value there.
#[derive(Debug, Clone, Default)]
struct Tree {
    leaf: bool,
    children: BTreeMap<String, Tree>,
}

impl Tree {
    fn add(&mut self, path: &Path) {
        let mut node = self;
        for segment in path.segments() {
            if node.leaf {
                return;
            }
            node = node.children.entry(segment.clone()).or_default();
        }
        node.leaf = true;
        node.children.clear();
    }
}

impl Projection {
    /// Validates a selector: its paths must parse, and it may not both include and exclude (as in
    /// Mongo). `None` when it selects everything.
    pub(crate) fn compile(selector: &Selector) -> Result<Option<Self>, Error> {
        if !selector.include.is_empty() && !selector.exclude.is_empty() {
            return Err(Error::Invalid(
                "a selector may not both include and exclude".into(),
            ));
        }
        let include = !selector.include.is_empty();
        let fields = if include {
            &selector.include
        } else {
            &selector.exclude
        };
        let mut tree = Tree::default();
        for field in fields {
            let path = Path::parse(field)?;
            if path.root() != "id" {
                tree.add(&path);
            }
        }
        if include {
            tree.add(&Path::parse("id")?);
        } else if tree.children.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self { include, tree }))
    }

    /// The selected part of `doc`.
    pub(crate) fn apply(&self, doc: &Map<String, Value>) -> Map<String, Value> {
        if self.include {
            include(doc, &self.tree)
        } else {
            exclude(doc, &self.tree)
        }
    }
}

/// Keeps only the fields in `tree` (object elements of arrays are projected one by one).
fn include(doc: &Map<String, Value>, tree: &Tree) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in doc {
        let Some(node) = tree.children.get(key) else {
            continue;
        };
        let kept = if node.leaf {
            Some(value.clone())
        } else {
            match value {
                Value::Object(map) => Some(Value::Object(include(map, node))),
                Value::Array(items) => Some(Value::Array(
                    items
                        .iter()
                        .filter_map(|item| {
                            item.as_object().map(|m| Value::Object(include(m, node)))
                        })
                        .collect(),
                )),
                _ => None,
            }
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    out
}

/// Drops the fields in `tree` (reaching into object elements of arrays).
fn exclude(doc: &Map<String, Value>, tree: &Tree) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in doc {
        let kept = match tree.children.get(key) {
            None => value.clone(),
            Some(node) if node.leaf => continue,
            Some(node) => match value {
                Value::Object(map) => Value::Object(exclude(map, node)),
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|item| match item {
                            Value::Object(m) => Value::Object(exclude(m, node)),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
        };
        out.insert(key.clone(), kept);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn project(selector: Value, doc: Value) -> Value {
        let selector = Selector::from_json(&selector).unwrap();
        let projection = Projection::compile(&selector).unwrap();
        let doc = doc.as_object().cloned().unwrap_or_default();
        Value::Object(projection.map_or(doc.clone(), |p| p.apply(&doc)))
    }

    #[test]
    fn includes_and_excludes() {
        let doc = json!({"id": "1", "a": 1, "b": {"c": 2, "d": 3}, "l": [{"c": 1, "d": 2}, 5]});
        assert_eq!(
            project(json!({"include": ["a", "b.c", "l.c"]}), doc.clone()),
            json!({"id": "1", "a": 1, "b": {"c": 2}, "l": [{"c": 1}]})
        );
        assert_eq!(
            project(json!({"exclude": ["a", "b.c", "l.c", "id"]}), doc.clone()),
            json!({"id": "1", "b": {"d": 3}, "l": [{"d": 2}, 5]})
        );
        assert_eq!(project(json!({}), doc.clone()), doc);
        assert!(Projection::compile(&Selector {
            include: vec!["a".into()],
            exclude: vec!["b".into()]
        })
        .is_err());
    }
}
