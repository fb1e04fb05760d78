//! The operator translation of spec §7: matchers, updates, selectors and collectors of a task,
//! already validated by the embedded engine's compilers, rewritten as MongoDB filters, update
//! documents, projections and find options.

use mongodb::bson::{doc, Bson, Document, Regex};
use serde_json::{Map, Value};

use super::convert::to_bson;
use crate::documents::select::Selector;

/// Top-level fields a plain set never touches (the store owns them).
const RESERVED: [&str; 4] = ["id", "_id", "created", "modified"];

/// The stored name of a field path: a path rooted at `id` is rooted at `_id` in MongoDB.
pub(super) fn stored_path(path: &str) -> String {
    match path.strip_prefix("id") {
        Some("") => "_id".into(),
        Some(rest) if rest.starts_with('.') => format!("_id{rest}"),
        _ => path.to_owned(),
    }
}

/// The root segment of a dotted path.
fn root(path: &str) -> &str {
    path.split('.').next().unwrap_or(path)
}

/// A matcher as a MongoDB filter: fields rooted at `id` become `_id` (at every `$or` depth), `$re`
/// becomes `$regex` with option `i`, everything else keeps its name.
pub(super) fn filter(matcher: Option<&Value>) -> Document {
    match matcher {
        Some(Value::Object(map)) => matcher_doc(map, true),
        _ => Document::new(),
    }
}

/// Translates one matcher object; `ids`: map `id` to `_id` (false inside array elements).
fn matcher_doc(map: &Map<String, Value>, ids: bool) -> Document {
    let mut out = Document::new();
    for (key, value) in map {
        if key == "$or" {
            let alternatives = value
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| match m {
                    Value::Object(m) => Bson::Document(matcher_doc(m, ids)),
                    other => to_bson(other),
                })
                .collect();
            out.insert("$or", Bson::Array(alternatives));
        } else {
            let field = if ids { stored_path(key) } else { key.clone() };
            out.insert(field, condition(value));
        }
    }
    out
}

/// A field's condition: an operator object, or a plain value to equal.
fn condition(value: &Value) -> Bson {
    match value {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
            Bson::Document(operators(map))
        }
        other => to_bson(other),
    }
}

/// An operator object (`{"$gt": 1, "$re": "x"}`).
fn operators(map: &Map<String, Value>) -> Document {
    let mut out = Document::new();
    for (op, operand) in map {
        match (op.as_str(), operand) {
            ("$re", Value::String(pattern)) => {
                out.insert("$regex", pattern.as_str());
                out.insert("$options", "i");
            }
            ("$not", Value::Object(inner)) => {
                // `$not` over a lone regex takes the BSON regex type (every server version
                // accepts it); otherwise an operator object.
                let negated = match (inner.len(), inner.get("$re")) {
                    (1, Some(Value::String(pattern))) => Bson::RegularExpression(Regex {
                        pattern: pattern.clone(),
                        options: "i".into(),
                    }),
                    _ => Bson::Document(operators(inner)),
                };
                out.insert("$not", negated);
            }
            _ => {
                out.insert(op.clone(), to_bson(operand));
            }
        }
    }
    out
}

/// An update (validated by `Update::compile`) as a MongoDB update document: plain keys and `$now`
/// go to `$set` (`$now` as the task's time, an epoch-millisecond number like every time the port
/// writes), `$add` → `$addToSet`, `$remove` → `$pull`, `$push`/`$inc`/`$mul`/`$min`/`$max` keep
/// their names; `modified` is set to `now`. Reserved plain keys are dropped, and operators on
/// `modified` too (it is overwritten anyway, and MongoDB refuses two changes of one path).
pub(super) fn update(values: &Value, now: i64) -> Document {
    let mut set = Document::new();
    let mut ops: Vec<(&'static str, Document)> = Vec::new();
    for (key, value) in values.as_object().into_iter().flatten() {
        let Some(op) = key.strip_prefix('$') else {
            if !RESERVED.contains(&root(key)) {
                set.insert(key.clone(), to_bson(value));
            }
            continue;
        };
        let fields = value
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(field, _)| root(field) != "modified");
        let name = match op {
            "now" => {
                for (field, _) in fields {
                    set.insert(field.clone(), now);
                }
                continue;
            }
            "add" => "$addToSet",
            "remove" => "$pull",
            "push" => "$push",
            "inc" => "$inc",
            "mul" => "$mul",
            "min" => "$min",
            "max" => "$max",
            _ => continue,
        };
        let args = fields
            .map(|(field, arg)| {
                let arg = if name == "$pull" {
                    pull(arg)
                } else {
                    to_bson(arg)
                };
                (field.clone(), arg)
            })
            .collect();
        ops.push((name, args));
    }
    set.insert("modified", now);
    let mut out = doc! {"$set": set};
    for (name, args) in ops {
        if !args.is_empty() {
            out.insert(name, args);
        }
    }
    out
}

/// A `$remove` operand as a `$pull` condition: an operator object, an object matched against
/// object elements (its fields are the elements' own, so `id` stays `id`), or a value to equal.
fn pull(arg: &Value) -> Bson {
    match arg {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
            Bson::Document(operators(map))
        }
        Value::Object(map) => Bson::Document(matcher_doc(map, false)),
        other => to_bson(other),
    }
}

/// A selector (validated by `Projection::compile`) as a projection; `None` selects everything.
/// Paths under another listed path are dropped (MongoDB refuses such collisions), `id` is `_id`
/// (always returned).
pub(super) fn projection(selector: Option<&Value>) -> Option<Document> {
    let selector = Selector::from_json(selector?).ok()?;
    let include = !selector.include.is_empty();
    let fields = if include {
        selector.include
    } else {
        selector.exclude
    };
    let mut paths: Vec<String> = fields.into_iter().filter(|f| root(f) != "id").collect();
    paths.sort();
    paths.dedup();
    let covered = |p: &String, others: &[String]| {
        others.iter().any(|o| {
            p.len() > o.len() && p.starts_with(o.as_str()) && p[o.len()..].starts_with('.')
        })
    };
    let kept: Vec<&String> = paths.iter().filter(|p| !covered(p, &paths)).collect();
    if include {
        let mut out = doc! {"_id": 1};
        for path in kept {
            out.insert(path.clone(), 1);
        }
        Some(out)
    } else if kept.is_empty() {
        None
    } else {
        Some(
            kept.into_iter()
                .map(|p| (p.clone(), Bson::Int32(0)))
                .collect(),
        )
    }
}

/// A collector (validated by `Collector::from_json`) as find options: the sort document, skip and
/// limit (`limit: 0` is no limit).
#[derive(Debug, Default)]
pub(super) struct Paging {
    /// `{field: 1 | -1}` in key order, or `None`.
    pub(super) sort: Option<Document>,
    /// Documents to skip.
    pub(super) skip: Option<u64>,
    /// Most documents to return.
    pub(super) limit: Option<i64>,
}

/// Reads a validated collector.
pub(super) fn paging(collector: Option<&Value>) -> Paging {
    let Some(Value::Object(map)) = collector else {
        return Paging::default();
    };
    let keys: Document = map
        .get("sort")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|key| {
            let field = key.get("field")?.as_str()?;
            let desc = key.get("desc").and_then(Value::as_bool).unwrap_or(false);
            Some((stored_path(field), Bson::Int32(if desc { -1 } else { 1 })))
        })
        .collect();
    let count = |name: &str| map.get(name).and_then(Value::as_u64);
    Paging {
        sort: (!keys.is_empty()).then_some(keys),
        skip: count("skip")
            .filter(|&n| n > 0)
            .map(|n| n.min(i64::MAX as u64)),
        limit: count("limit")
            .filter(|&n| n > 0)
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn translates_matchers() {
        let m = json!({"id": "a", "id.x": 1, "identity": 2, "n": {"$gt": 1, "$re": "^A"},
                       "$or": [{"id": {"$in": ["b"]}}, {"s": {"$not": {"$re": "z"}}}],
                       "t": {"$not": {"$gt": 2}}});
        let f = filter(Some(&m));
        let want = doc! {
            "_id": "a", "_id.x": 1_i64, "identity": 2_i64,
            "n": {"$gt": 1_i64, "$regex": "^A", "$options": "i"},
            "$or": [{"_id": {"$in": ["b"]}},
                    {"s": {"$not": Bson::RegularExpression(Regex {pattern: "z".into(), options: "i".into()})}}],
            "t": {"$not": {"$gt": 2_i64}},
        };
        assert_eq!(f, want);
        assert_eq!(filter(None), Document::new());
    }

    #[test]
    fn translates_updates() {
        let values = json!({"a.b": 1, "id": "x", "_id": "y", "created": 0, "modified": 0,
            "$add": {"tags": {"$each": ["a"]}}, "$remove": {"l": {"$gte": 4}, "o": {"id": 1}, "t": {"$re": "x"}},
            "$now": {"seen": true}, "$inc": {"n": 1, "modified": 1}, "$mul": {"f": 2},
            "$push": {"p": 1}, "$min": {"lo": 1}, "$max": {"hi": 2}});
        let want = doc! {
            "$set": {"a.b": 1_i64, "seen": 7_i64, "modified": 7_i64},
            "$addToSet": {"tags": {"$each": ["a"]}},
            "$pull": {"l": {"$gte": 4_i64}, "o": {"id": 1_i64}, "t": {"$regex": "x", "$options": "i"}},
            "$inc": {"n": 1_i64},
            "$mul": {"f": 2_i64},
            "$push": {"p": 1_i64},
            "$min": {"lo": 1_i64},
            "$max": {"hi": 2_i64},
        };
        assert_eq!(update(&values, 7), want);
        assert_eq!(update(&json!({}), 7), doc! {"$set": {"modified": 7_i64}});
    }

    #[test]
    fn translates_selectors_and_collectors() {
        let p = projection(Some(&json!({"include": ["o", "o.p", "n", "id"]})));
        assert_eq!(p, Some(doc! {"_id": 1, "n": 1, "o": 1}));
        let p = projection(Some(&json!({"exclude": ["id", "a.b"]})));
        assert_eq!(p, Some(doc! {"a.b": 0}));
        assert_eq!(projection(Some(&json!({"exclude": ["id"]}))), None);
        assert_eq!(projection(None), None);
        let c = paging(Some(
            &json!({"sort": [{"field": "id", "desc": true}, {"field": "n"}],
                                    "skip": u64::MAX, "limit": 0}),
        ));
        assert_eq!(c.sort, Some(doc! {"_id": -1, "n": 1}));
        assert_eq!((c.skip, c.limit), (Some(i64::MAX as u64), None));
    }
}
