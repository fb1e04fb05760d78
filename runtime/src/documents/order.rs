//! Equality, ordering and arithmetic over JSON values, the way the documents store compares them.
//!
//! Numbers are compared by value (`1` equals `1.0`), objects by their key/value pairs (key order
//! does not matter for equality). The total order used by sorting, `$min` and `$max` ranks types as
//! Mongo does: null < numbers < strings < objects < arrays < booleans.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::Error;

/// Deeper values than this compare as unequal (bounds recursion).
const MAX_DEPTH: usize = 128;

/// Are `a` and `b` the same value (numbers by value, objects regardless of key order)?
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    eq_at(a, b, 0)
}

fn eq_at(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_cmp(x, y) == Ordering::Equal,
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| eq_at(x, y, depth + 1))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len()
                && xs
                    .iter()
                    .all(|(k, x)| ys.get(k).is_some_and(|y| eq_at(x, y, depth + 1)))
        }
        _ => a == b,
    }
}

/// Compares two numbers by value (exactly for integers, as floats otherwise).
pub(crate) fn number_cmp(a: &Number, b: &Number) -> Ordering {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x.cmp(&y);
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x.cmp(&y);
    }
    let x = a.as_f64().unwrap_or(0.0);
    let y = b.as_f64().unwrap_or(0.0);
    x.total_cmp(&y)
}

/// Compares values of the same scalar type (numbers, strings, booleans, nulls); `None` for mixed
/// types and for objects and arrays. This is what `$gt`, `$gte`, `$lt` and `$lte` use.
pub(crate) fn compare_same_type(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Some(number_cmp(x, y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        _ => None,
    }
}

/// A value's type, for error messages (which never echo client values, whatever their size).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The rank of a value's type in the total order.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Number(_) => 1,
        Value::String(_) => 2,
        Value::Object(_) => 3,
        Value::Array(_) => 4,
        Value::Bool(_) => 5,
    }
}

/// A total order over all values: by type rank, then by value (objects pair by pair in order).
pub(crate) fn total_cmp(a: &Value, b: &Value) -> Ordering {
    cmp_at(a, b, 0)
}

fn cmp_at(a: &Value, b: &Value, depth: usize) -> Ordering {
    if depth > MAX_DEPTH {
        return Ordering::Equal;
    }
    if let Some(ordering) = compare_same_type(a, b) {
        return ordering;
    }
    match (a, b) {
        (Value::Array(xs), Value::Array(ys)) => xs
            .iter()
            .zip(ys)
            .map(|(x, y)| cmp_at(x, y, depth + 1))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| xs.len().cmp(&ys.len())),
        (Value::Object(xs), Value::Object(ys)) => xs
            .iter()
            .zip(ys)
            .map(|((kx, x), (ky, y))| kx.cmp(ky).then_with(|| cmp_at(x, y, depth + 1)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| xs.len().cmp(&ys.len())),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `a + b`, exact for integers; an overflow or a non-finite result is invalid.
pub(crate) fn add(a: &Number, b: &Number) -> Result<Number, Error> {
    arithmetic(a, b, i64::checked_add, |x, y| x + y, "$inc")
}

/// `a * b`, exact for integers; an overflow or a non-finite result is invalid.
pub(crate) fn mul(a: &Number, b: &Number) -> Result<Number, Error> {
    arithmetic(a, b, i64::checked_mul, |x, y| x * y, "$mul")
}

fn arithmetic(
    a: &Number,
    b: &Number,
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
    op: &str,
) -> Result<Number, Error> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return int(x, y)
            .map(Number::from)
            .ok_or_else(|| Error::Invalid(format!("{op} overflows a 64-bit integer")));
    }
    let x = a.as_f64().unwrap_or(0.0);
    let y = b.as_f64().unwrap_or(0.0);
    Number::from_f64(float(x, y))
        .ok_or_else(|| Error::Invalid(format!("{op} gives a non-finite number")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn equality_is_by_value() {
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(
            &json!({"a": 1, "b": 2}),
            &json!({"b": 2, "a": 1.0})
        ));
        assert!(!json_eq(&json!([1, 2]), &json!([2, 1])));
        assert!(!json_eq(&json!("1"), &json!(1)));
    }

    #[test]
    fn total_order_ranks_types() {
        let mut vs = vec![
            json!(true),
            json!([1]),
            json!({"a": 1}),
            json!("s"),
            json!(2),
            json!(null),
            json!(1.5),
        ];
        vs.sort_by(total_cmp);
        assert_eq!(
            vs,
            vec![
                json!(null),
                json!(1.5),
                json!(2),
                json!("s"),
                json!({"a": 1}),
                json!([1]),
                json!(true)
            ]
        );
        assert_eq!(compare_same_type(&json!(1), &json!("1")), None);
    }

    #[test]
    fn arithmetic_checks_overflow() {
        let n = |v: Value| v.as_number().cloned().unwrap();
        assert_eq!(add(&n(json!(2)), &n(json!(3))).unwrap(), n(json!(5)));
        assert_eq!(mul(&n(json!(2)), &n(json!(1.5))).unwrap(), n(json!(3.0)));
        assert!(add(&n(json!(i64::MAX)), &n(json!(1))).is_err());
        assert!(mul(&n(json!(1e300)), &n(json!(1e300))).is_err());
    }
}
