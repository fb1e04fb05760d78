//! Matchers: the spec §7 filter vocabulary, compiled once (bad operators are reported) and then
//! evaluated against documents.
//!
//! A matcher is an object whose entries must all hold. A field entry (`"a.b": value`) compares the
//! values its dotted path reaches: a plain value is an equality (an array field matches when the
//! whole array or any element equals it; an object is an exact sub-document), an object of
//! operators (`$gt`, `$gte`, `$lt`, `$lte`, `$ne`, `$in`, `$nin`, `$not`, `$re`) is a condition.
//! `$or` takes an array of matchers. A missing field behaves as `null`.

use std::cmp::Ordering;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::order::{compare_same_type, json_eq, kind};
use super::path::{lookup, Path};
use super::Error;

/// How deeply `$or` and `$not` may nest (bounds recursion on hostile input).
const MAX_DEPTH: usize = 32;

/// The most a compiled regular expression may take (guards against pathological patterns).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Does `doc` satisfy `matcher`? An invalid matcher matches nothing (use [`Matcher::compile`] to
/// see why it is invalid).
pub fn matches(doc: &Value, matcher: &Value) -> bool {
    Matcher::compile(matcher).is_ok_and(|m| m.matches(doc))
}

/// A compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    clauses: Vec<Clause>,
}

/// One entry of a matcher.
#[derive(Debug, Clone)]
enum Clause {
    /// A condition on the values a path reaches.
    Field(Path, Cond),
    /// At least one of these matchers holds.
    Or(Vec<Matcher>),
}

/// A condition on a field: a plain value to equal, or operators that must all hold.
#[derive(Debug, Clone)]
pub(crate) enum Cond {
    /// Equality (array fields: any element, or the whole array).
    Eq(Value),
    /// Every operator holds.
    Ops(Vec<Operator>),
}

/// One matcher operator.
#[derive(Debug, Clone)]
pub(crate) enum Operator {
    /// A comparison with a same-typed value; true when the ordering is one of the listed ones.
    Compare(&'static [Ordering], Value),
    /// Not equal (no element equals either).
    Ne(Value),
    /// Equal to one of these.
    In(Vec<Value>),
    /// Equal to none of these.
    Nin(Vec<Value>),
    /// The operators do not all hold.
    Not(Vec<Operator>),
    /// A string matching this (case-insensitive) regular expression.
    Re(Regex),
}

impl Matcher {
    /// Compiles a matcher object, reporting unknown operators, malformed operands, bad paths,
    /// invalid regular expressions and excessive nesting as [`Error::Invalid`].
    pub fn compile(matcher: &Value) -> Result<Self, Error> {
        Self::compile_at(matcher, 0)
    }

    fn compile_at(matcher: &Value, depth: usize) -> Result<Self, Error> {
        if depth > MAX_DEPTH {
            return Err(Error::Invalid("matcher nested too deeply".into()));
        }
        let Value::Object(entries) = matcher else {
            return Err(Error::Invalid(format!(
                "a matcher must be an object, got {}",
                kind(matcher)
            )));
        };
        let clauses = entries
            .iter()
            .map(|(key, value)| match key.as_str() {
                "$or" => compile_or(value, depth).map(Clause::Or),
                op if op.starts_with('$') => {
                    Err(Error::Invalid(format!("unsupported matcher operator {op}")))
                }
                field => Ok(Clause::Field(
                    Path::parse(field)?,
                    Cond::compile(value, depth)?,
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { clauses })
    }

    /// Does `doc` satisfy this matcher? (A non-object document has no fields.)
    pub fn matches(&self, doc: &Value) -> bool {
        match doc {
            Value::Object(map) => self.matches_map(map),
            _ => self.matches_map(&Map::new()),
        }
    }

    /// Does the document `doc` satisfy this matcher?
    pub(crate) fn matches_map(&self, doc: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|clause| match clause {
            Clause::Field(path, cond) => cond.holds(&lookup(doc, path)),
            Clause::Or(alternatives) => alternatives.iter().any(|m| m.matches_map(doc)),
        })
    }

    /// The top-level plain equalities (`field: value`), which an upsert copies into a new document.
    pub(crate) fn equalities(&self) -> impl Iterator<Item = (&Path, &Value)> {
        self.clauses.iter().filter_map(|clause| match clause {
            Clause::Field(path, Cond::Eq(value)) => Some((path, value)),
            _ => None,
        })
    }

    /// The id this matcher pins with a plain `id: "..."` equality, if any.
    pub(crate) fn id(&self) -> Option<&str> {
        self.equalities()
            .find(|(path, _)| path.segments() == ["id"])
            .and_then(|(_, value)| value.as_str())
    }
}

/// Compiles the operand of `$or`: a non-empty array of matchers.
fn compile_or(value: &Value, depth: usize) -> Result<Vec<Matcher>, Error> {
    match value {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|m| Matcher::compile_at(m, depth + 1))
            .collect(),
        _ => Err(Error::Invalid(
            "$or takes a non-empty array of matchers".into(),
        )),
    }
}

impl Cond {
    /// Compiles a field's condition: an object whose keys all start with `$` is an operator object,
    /// anything else a plain value to equal.
    pub(crate) fn compile(value: &Value, depth: usize) -> Result<Self, Error> {
        match value {
            Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => {
                compile_operators(map, depth).map(Cond::Ops)
            }
            _ => Ok(Cond::Eq(value.clone())),
        }
    }

    /// Is this an operator condition (rather than a plain value)?
    pub(crate) fn is_operators(&self) -> bool {
        matches!(self, Cond::Ops(_))
    }

    /// Does the condition hold for the values a path reached (none: the field is missing)?
    pub(crate) fn holds(&self, values: &[&Value]) -> bool {
        match self {
            Cond::Eq(expected) => any(values, |v| json_eq(v, expected)),
            Cond::Ops(ops) => ops.iter().all(|op| op.holds(values)),
        }
    }
}

/// Compiles an operator object (every key must be a known operator).
fn compile_operators(map: &Map<String, Value>, depth: usize) -> Result<Vec<Operator>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Invalid("matcher nested too deeply".into()));
    }
    map.iter()
        .map(|(key, operand)| Operator::compile(key, operand, depth))
        .collect()
}

const GT: &[Ordering] = &[Ordering::Greater];
const GTE: &[Ordering] = &[Ordering::Greater, Ordering::Equal];
const LT: &[Ordering] = &[Ordering::Less];
const LTE: &[Ordering] = &[Ordering::Less, Ordering::Equal];

impl Operator {
    fn compile(key: &str, operand: &Value, depth: usize) -> Result<Self, Error> {
        let list = |op: &str| match operand {
            Value::Array(items) => Ok(items.clone()),
            _ => Err(Error::Invalid(format!("{op} takes an array"))),
        };
        match key {
            "$gt" => Ok(Operator::Compare(GT, operand.clone())),
            "$gte" => Ok(Operator::Compare(GTE, operand.clone())),
            "$lt" => Ok(Operator::Compare(LT, operand.clone())),
            "$lte" => Ok(Operator::Compare(LTE, operand.clone())),
            "$ne" => Ok(Operator::Ne(operand.clone())),
            "$in" => list(key).map(Operator::In),
            "$nin" => list(key).map(Operator::Nin),
            "$not" => match operand {
                Value::Object(map) if !map.is_empty() && map.keys().all(|k| k.starts_with('$')) => {
                    compile_operators(map, depth + 1).map(Operator::Not)
                }
                _ => Err(Error::Invalid("$not takes an object of operators".into())),
            },
            "$re" => match operand {
                Value::String(pattern) => RegexBuilder::new(pattern)
                    .case_insensitive(true)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map(Operator::Re)
                    .map_err(|e| Error::Invalid(format!("invalid $re pattern {pattern:?}: {e}"))),
                _ => Err(Error::Invalid("$re takes a string".into())),
            },
            other => Err(Error::Invalid(format!(
                "unsupported matcher operator {other} (a field's operator object may not mix in plain keys)"
            ))),
        }
    }

    /// Does the operator hold for the values a path reached?
    fn holds(&self, values: &[&Value]) -> bool {
        match self {
            Operator::Compare(accept, operand) => any(values, |v| {
                compare_same_type(v, operand).is_some_and(|o| accept.contains(&o))
            }),
            Operator::Ne(operand) => !any(values, |v| json_eq(v, operand)),
            Operator::In(options) => any(values, |v| options.iter().any(|o| json_eq(v, o))),
            Operator::Nin(options) => !any(values, |v| options.iter().any(|o| json_eq(v, o))),
            Operator::Not(ops) => !ops.iter().all(|op| op.holds(values)),
            Operator::Re(regex) => any(values, |v| v.as_str().is_some_and(|s| regex.is_match(s))),
        }
    }
}

/// Does `test` hold for some reached value, or for some element of a reached array? A missing
/// field is tested as `null`.
fn any(values: &[&Value], test: impl Fn(&Value) -> bool) -> bool {
    if values.is_empty() {
        return test(&Value::Null);
    }
    values.iter().any(|v| {
        test(v)
            || match v {
                Value::Array(items) => items.iter().any(&test),
                _ => false,
            }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn compile_reports_bad_operators() {
        for bad in [
            json!({"a": {"$foo": 1}}),
            json!({"a": {"$gt": 1, "b": 2}}),
            json!({"$and": []}),
            json!({"$or": []}),
            json!({"$or": {}}),
            json!({"a": {"$in": 1}}),
            json!({"a": {"$not": 1}}),
            json!({"a": {"$re": "("}}),
            json!({"a..b": 1}),
            json!([1]),
        ] {
            assert!(
                matches!(Matcher::compile(&bad), Err(Error::Invalid(_))),
                "{bad}"
            );
        }
    }

    /// `{key: inner}` without copying `inner` (the `json!` macro would serialize it recursively).
    fn wrap(key: &str, inner: Value) -> Value {
        let mut map = Map::new();
        map.insert(key.to_owned(), inner);
        Value::Object(map)
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut m = json!({"a": 1});
        for _ in 0..10_000 {
            m = wrap("$or", Value::Array(vec![m]));
        }
        assert!(Matcher::compile(&m).is_err());
        let mut n = json!({"$gt": 1});
        for _ in 0..10_000 {
            n = wrap("$not", n);
        }
        let n = wrap("a", n);
        assert!(Matcher::compile(&n).is_err());
        // Dropping such deep values recursively would overflow the test's stack.
        std::mem::forget(m);
        std::mem::forget(n);
    }

    #[test]
    fn evaluates() {
        let doc = json!({"to": ["p0", "p1"], "n": 5, "s": "Hello", "o": {"x": 1, "y": [{"z": 2}]}});
        for (m, want) in [
            (json!({"to": "p1"}), true),
            (json!({"to": ["p0", "p1"]}), true),
            (json!({"to": "p2"}), false),
            (json!({"n": 5.0}), true),
            (json!({"n": {"$gt": 4, "$lte": 5}}), true),
            (json!({"n": {"$gt": "4"}}), false),
            (json!({"s": {"$re": "^hel"}}), true),
            (json!({"o": {"y": [{"z": 2}], "x": 1}}), true),
            (json!({"o": {"x": 1}}), false),
            (json!({"o.y.z": 2}), true),
            (json!({"o.y.0.z": 2}), true),
            (json!({"missing": null}), true),
            (json!({"missing": {"$ne": 1}}), true),
            (json!({"to": {"$ne": "p1"}}), false),
            (json!({"n": {"$not": {"$gt": 6}}}), true),
            (json!({"$or": [{"n": 1}, {"to": {"$in": ["p1"]}}]}), true),
            (json!({"to": {"$nin": ["p1"]}}), false),
        ] {
            assert_eq!(matches(&doc, &m), want, "{m}");
        }
    }
}
