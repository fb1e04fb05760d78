//! Collectors: sort, skip and limit for `get`.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use super::order::{kind, total_cmp};
use super::path::{lookup, Path};
use super::Error;

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// Dotted field path.
    pub field: String,
    /// Descending.
    pub desc: bool,
}

/// A validated collector: `{sort?: [{field, desc?}], skip?, limit?}`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Collector {
    sort: Vec<(Path, bool)>,
    skip: usize,
    limit: Option<usize>,
}

impl Collector {
    /// Reads a task's `collector`; `limit: 0` means no limit (as in Mongo).
    pub(crate) fn from_json(value: &Value) -> Result<Self, Error> {
        let Value::Object(map) = value else {
            return Err(Error::Invalid(format!(
                "a collector must be an object, got {}",
                kind(value)
            )));
        };
        let sort = match map.get("sort") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|key| {
                    let key = sort_key(key)?;
                    Ok((Path::parse(&key.field)?, key.desc))
                })
                .collect::<Result<_, Error>>()?,
            Some(_) => return Err(Error::Invalid("collector sort takes an array".into())),
        };
        let skip = count(map.get("skip"), "skip")?.unwrap_or(0);
        let limit = count(map.get("limit"), "limit")?.filter(|&n| n > 0);
        Ok(Self { sort, skip, limit })
    }

    /// Sorts (stably), skips and limits `docs`, given in natural order.
    pub(crate) fn apply<'a>(
        &self,
        docs: Vec<&'a Map<String, Value>>,
    ) -> Vec<&'a Map<String, Value>> {
        let mut docs = docs;
        if !self.sort.is_empty() {
            let mut keyed: Vec<(Vec<Value>, &Map<String, Value>)> = docs
                .into_iter()
                .map(|doc| {
                    let keys = self
                        .sort
                        .iter()
                        .map(|(path, desc)| sort_value(doc, path, *desc));
                    (keys.collect(), doc)
                })
                .collect();
            keyed.sort_by(|(a, _), (b, _)| self.compare(a, b));
            docs = keyed.into_iter().map(|(_, doc)| doc).collect();
        }
        docs.into_iter()
            .skip(self.skip)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect()
    }

    fn compare(&self, a: &[Value], b: &[Value]) -> Ordering {
        self.sort
            .iter()
            .zip(a.iter().zip(b))
            .map(|((_, desc), (x, y))| {
                let ordering = total_cmp(x, y);
                if *desc {
                    ordering.reverse()
                } else {
                    ordering
                }
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

/// Reads one `{field, desc?}` sort key.
fn sort_key(value: &Value) -> Result<SortKey, Error> {
    let field = value.get("field").and_then(Value::as_str);
    let desc = match value.get("desc") {
        None | Some(Value::Null) => Some(false),
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => None,
    };
    match (field, desc) {
        (Some(field), Some(desc)) => Ok(SortKey {
            field: field.to_owned(),
            desc,
        }),
        _ => Err(Error::Invalid(format!(
            "a sort key is {{field, desc?}}, got {}",
            kind(value)
        ))),
    }
}

/// Reads a non-negative integer option.
fn count(value: Option<&Value>, name: &str) -> Result<Option<usize>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(usize::try_from(n).unwrap_or(usize::MAX)))
            .ok_or_else(|| {
                Error::Invalid(format!("collector {name} takes a non-negative integer"))
            }),
    }
}

/// The value a document sorts by: missing is null; of an array (or several reached values) the
/// smallest element ascending and the largest descending, as Mongo does.
fn sort_value(doc: &Map<String, Value>, path: &Path, desc: bool) -> Value {
    let reached = lookup(doc, path);
    let candidates = reached.iter().flat_map(|v| match v {
        Value::Array(items) => items.iter().collect::<Vec<_>>(),
        other => vec![*other],
    });
    let mut best: Option<&Value> = None;
    for v in candidates {
        let better = best.is_none_or(|b| {
            let ordering = total_cmp(v, b);
            if desc {
                ordering.is_gt()
            } else {
                ordering.is_lt()
            }
        });
        if better {
            best = Some(v);
        }
    }
    best.cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_skips_limits() {
        let docs: Vec<Map<String, Value>> = [
            json!({"id": "a", "n": 2, "t": "x"}),
            json!({"id": "b", "t": "y"}),
            json!({"id": "c", "n": 1, "t": "x"}),
            json!({"id": "d", "n": [0, 9], "t": "y"}),
        ]
        .iter()
        .filter_map(|d| d.as_object().cloned())
        .collect();
        let ids = |collector: Value| -> Vec<String> {
            let c = Collector::from_json(&collector).unwrap();
            c.apply(docs.iter().collect())
                .iter()
                .map(|d| d["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        assert_eq!(ids(json!({"sort": [{"field": "n"}]})), ["b", "d", "c", "a"]);
        assert_eq!(
            ids(json!({"sort": [{"field": "n", "desc": true}]})),
            ["d", "a", "c", "b"]
        );
        assert_eq!(
            ids(json!({"sort": [{"field": "t", "desc": true}]})),
            ["b", "d", "a", "c"]
        );
        assert_eq!(ids(json!({"skip": 1, "limit": 2})), ["b", "c"]);
        assert_eq!(ids(json!({"limit": 0})).len(), 4);
        assert!(Collector::from_json(&json!({"skip": -1})).is_err());
        assert!(Collector::from_json(&json!({"sort": [{"desc": true}]})).is_err());
    }
}
