//! Updates: the spec §7 update vocabulary, compiled once and applied to documents.
//!
//! Top-level operator keys take an object of `field: operand` pairs: `$add` (add to a set, Mongo's
//! `$addToSet`), `$push`, `$remove` (Mongo's `$pull`), `$now` (set to the current time), `$inc`,
//! `$mul`, `$min`, `$max`. Every other top-level key is a field to set (a dotted key reaches into
//! nested objects and array elements); `id`, `_id`, `created` and `modified` are ignored there.
//! Applying an update always sets `modified`.

use serde_json::{Map, Number, Value};

use super::order::{add, json_eq, kind, mul, total_cmp};
use super::path::{self, Path};
use super::query::{Cond, Matcher};
use super::Error;

/// Top-level fields a plain set never touches.
const RESERVED: [&str; 4] = ["id", "_id", "created", "modified"];

/// A compiled update.
#[derive(Debug, Clone)]
pub struct Update {
    steps: Vec<Step>,
}

/// One change, applied in the order the update lists them.
#[derive(Debug, Clone)]
enum Step {
    Set(Path, Value),
    Now(Path),
    Inc(Path, Number),
    Mul(Path, Number),
    Min(Path, Value),
    Max(Path, Value),
    Add(Path, Vec<Value>),
    Push(Path, Vec<Value>),
    Remove(Path, Pull),
}

/// Which array elements `$remove` pulls.
#[derive(Debug, Clone)]
enum Pull {
    /// Elements equal to this value.
    Equal(Value),
    /// Elements satisfying this operator condition (`{"$gte": 5}`).
    Cond(Cond),
    /// Object elements matching this matcher (`{"kind": "x"}`), as Mongo's `$pull` does.
    Matching(Matcher),
}

impl Update {
    /// Compiles update values, reporting unknown operators and malformed operands as
    /// [`Error::Invalid`].
    pub fn compile(values: &Value) -> Result<Self, Error> {
        let Value::Object(entries) = values else {
            return Err(Error::Invalid(format!(
                "update values must be an object, got {}",
                kind(values)
            )));
        };
        let mut steps = Vec::new();
        for (key, value) in entries {
            if key.starts_with('$') {
                compile_operator(key, value, &mut steps)?;
            } else {
                let path = Path::parse(key)?;
                if !RESERVED.contains(&path.root()) {
                    steps.push(Step::Set(path, value.clone()));
                }
            }
        }
        Ok(Self { steps })
    }

    /// Applies the update to `doc` at time `now` (epoch milliseconds), then sets `modified`.
    /// On error `doc` may be partly changed: apply to a copy.
    pub(crate) fn apply(&self, doc: &mut Map<String, Value>, now: i64) -> Result<(), Error> {
        for step in &self.steps {
            step.apply(doc, now)?;
        }
        doc.insert("modified".into(), Value::from(now));
        Ok(())
    }
}

/// Compiles one top-level operator (`$inc: {...}`) into steps.
fn compile_operator(op: &str, operand: &Value, steps: &mut Vec<Step>) -> Result<(), Error> {
    let Value::Object(fields) = operand else {
        return Err(Error::Invalid(format!("{op} takes an object of fields")));
    };
    for (field, arg) in fields {
        let path = Path::parse(field)?;
        if matches!(path.root(), "id" | "_id") {
            return Err(Error::Invalid(format!(
                "{op} may not change the document id"
            )));
        }
        let number = || match arg {
            Value::Number(n) => Ok(n.clone()),
            _ => Err(Error::Invalid(format!(
                "{op} takes numbers, got {}",
                kind(arg)
            ))),
        };
        let step = match op {
            "$now" => Step::Now(path),
            "$inc" => Step::Inc(path, number()?),
            "$mul" => Step::Mul(path, number()?),
            "$min" => Step::Min(path, arg.clone()),
            "$max" => Step::Max(path, arg.clone()),
            "$add" => Step::Add(path, each(op, arg)?),
            "$push" => Step::Push(path, each(op, arg)?),
            "$remove" => Step::Remove(path, Pull::compile(arg)?),
            other => {
                return Err(Error::Invalid(format!(
                    "unsupported update operator {other}"
                )))
            }
        };
        steps.push(step);
    }
    Ok(())
}

/// The values `$add`/`$push` append: one value, or the array of `{"$each": [...]}`.
fn each(op: &str, arg: &Value) -> Result<Vec<Value>, Error> {
    match arg {
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
            match (map.len(), map.get("$each")) {
                (1, Some(Value::Array(items))) => Ok(items.clone()),
                _ => Err(Error::Invalid(format!(
                    "{op} supports only the $each modifier, with an array"
                ))),
            }
        }
        _ => Ok(vec![arg.clone()]),
    }
}

impl Pull {
    fn compile(arg: &Value) -> Result<Self, Error> {
        let cond = Cond::compile(arg, 0)?;
        Ok(match (arg, cond.is_operators()) {
            (_, true) => Pull::Cond(cond),
            (Value::Object(_), false) => Pull::Matching(Matcher::compile(arg)?),
            (_, false) => Pull::Equal(arg.clone()),
        })
    }

    /// Is `element` pulled?
    fn hits(&self, element: &Value) -> bool {
        match self {
            Pull::Equal(value) => json_eq(element, value),
            Pull::Cond(cond) => cond.holds(&[element]),
            Pull::Matching(matcher) => element.is_object() && matcher.matches(element),
        }
    }
}

impl Step {
    fn apply(&self, doc: &mut Map<String, Value>, now: i64) -> Result<(), Error> {
        match self {
            Step::Set(p, value) => path::set(doc, p, value.clone()),
            Step::Now(p) => path::set(doc, p, Value::from(now)),
            Step::Inc(p, n) => {
                let next = match numeric(doc, p, "$inc")? {
                    Some(current) => add(&current, n)?,
                    None => n.clone(),
                };
                path::set(doc, p, Value::Number(next))
            }
            Step::Mul(p, n) => {
                let next = match numeric(doc, p, "$mul")? {
                    Some(current) => mul(&current, n)?,
                    None if n.is_f64() => Number::from_f64(0.0).unwrap_or_else(|| Number::from(0)),
                    None => Number::from(0),
                };
                path::set(doc, p, Value::Number(next))
            }
            Step::Min(p, value) | Step::Max(p, value) => {
                let wanted = if matches!(self, Step::Min(..)) {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                };
                let replace =
                    path::get(doc, p).is_none_or(|current| total_cmp(value, current) == wanted);
                if replace {
                    path::set(doc, p, value.clone())?;
                }
                Ok(())
            }
            Step::Add(p, values) | Step::Push(p, values) => {
                let unique = matches!(self, Step::Add(..));
                match path::get_mut(doc, p) {
                    None => {
                        let mut items = Vec::new();
                        append(&mut items, values, unique);
                        path::set(doc, p, Value::Array(items))
                    }
                    Some(Value::Array(items)) => {
                        append(items, values, unique);
                        Ok(())
                    }
                    Some(_) => Err(not_an_array(p, if unique { "$add" } else { "$push" })),
                }
            }
            Step::Remove(p, pull) => match path::get_mut(doc, p) {
                None => Ok(()),
                Some(Value::Array(items)) => {
                    items.retain(|item| !pull.hits(item));
                    Ok(())
                }
                Some(_) => Err(not_an_array(p, "$remove")),
            },
        }
    }
}

/// The current number at `p` (`None` when missing); any other value is invalid for `op`.
fn numeric(doc: &Map<String, Value>, p: &Path, op: &str) -> Result<Option<Number>, Error> {
    match path::get(doc, p) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.clone())),
        Some(other) => Err(Error::Invalid(format!(
            "{op} on non-numeric field {} ({})",
            p.as_str(),
            kind(other)
        ))),
    }
}

/// Appends `values` to `items` (skipping ones already present when `unique`).
fn append(items: &mut Vec<Value>, values: &[Value], unique: bool) {
    for value in values {
        if !unique || !items.iter().any(|item| json_eq(item, value)) {
            items.push(value.clone());
        }
    }
}

fn not_an_array(p: &Path, op: &str) -> Error {
    Error::Invalid(format!("{op} on non-array field {}", p.as_str()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn run(doc: Value, update: Value) -> Result<Value, Error> {
        let mut map = doc.as_object().cloned().unwrap_or_default();
        Update::compile(&update)?.apply(&mut map, 7)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn applies_every_operator() {
        let out = run(
            json!({"id": "a", "n": 2, "f": 1.5, "tags": ["x"], "l": [1, 5, 9], "objs": [{"k": 1}, {"k": 2}]}),
            json!({
                "id": "b", "created": 0, "a.b": 1,
                "$add": {"tags": {"$each": ["x", "y"]}, "fresh": "z"},
                "$push": {"l": 1},
                "$remove": {"l": {"$gte": 5}, "objs": {"k": 2}},
                "$inc": {"n": 3, "m": 1},
                "$mul": {"f": 2, "g": 2},
                "$min": {"n": 1},
                "$max": {"hi": 4},
                "$now": {"seen": true}
            }),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"id": "a", "n": 1, "f": 3.0, "tags": ["x", "y"], "l": [1, 1], "objs": [{"k": 1}],
                   "a": {"b": 1}, "fresh": ["z"], "m": 1, "g": 0, "hi": 4, "seen": 7, "modified": 7})
        );
    }

    #[test]
    fn rejects_bad_updates() {
        for bad in [
            json!({"$set": {"a": 1}}),
            json!({"$inc": {"a": "x"}}),
            json!({"$inc": 1}),
            json!({"$push": {"a": {"$each": 1}}}),
            json!({"$push": {"a": {"$slice": 1}}}),
            json!({"$inc": {"id": 1}}),
            json!([]),
        ] {
            assert!(Update::compile(&bad).is_err(), "{bad}");
        }
        assert!(run(json!({"s": "x"}), json!({"$inc": {"s": 1}})).is_err());
        assert!(run(json!({"s": "x"}), json!({"$push": {"s": 1}})).is_err());
        assert!(run(json!({"s": "x"}), json!({"s.t": 1})).is_err());
    }
}
