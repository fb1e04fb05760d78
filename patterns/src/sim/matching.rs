//! Placeholders (`$thred:N`, `$out:K`) and the partial matching `threds test` uses.

use serde_json::Value;

/// Replaces every string `"$thred:N"` / `"$out:K"` inside `value` with the id it stands for.
pub fn substitute(
    value: Value,
    thred: &dyn Fn(usize) -> Option<String>,
    out: &dyn Fn(usize) -> Option<String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(placeholder(&s, thred, out)?.unwrap_or(s)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| substitute(v, thred, out))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(obj) => Value::Object(
            obj.into_iter()
                .map(|(k, v)| Ok((k, substitute(v, thred, out)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other,
    })
}

fn placeholder(
    s: &str,
    thred: &dyn Fn(usize) -> Option<String>,
    out: &dyn Fn(usize) -> Option<String>,
) -> Result<Option<String>, String> {
    let (kind, n, lookup) = if let Some(n) = s.strip_prefix("$thred:") {
        ("thred", n, thred)
    } else if let Some(n) = s.strip_prefix("$out:") {
        ("out", n, out)
    } else {
        return Ok(None);
    };
    let Ok(n) = n.parse::<usize>() else {
        return Ok(None);
    };
    lookup(n)
        .map(Some)
        .ok_or_else(|| format!("${kind}:{n} does not exist yet"))
}

/// Does `actual` contain `expected`? Objects: every expected key present and matching (`{}` matches
/// any object); arrays: same length, element-wise; scalars: equal (numbers by value).
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| contains(av, ev))),
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(ev, av)| contains(av, ev))
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (e, a) => e == a,
    }
}

/// Are `actual` and `expected` the same set of strings?
pub fn same_set(actual: &[String], expected: &[String]) -> bool {
    expected.iter().all(|e| actual.contains(e)) && actual.iter().all(|a| expected.contains(a))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn partial_matching() {
        let actual = json!({"a": 1, "b": {"c": [1, {"d": 2, "e": 3}]}, "f": {}});
        assert!(contains(&actual, &json!({"b": {"c": [1, {"d": 2}]}})));
        assert!(contains(&actual, &json!({"b": {}})));
        assert!(!contains(&actual, &json!({"b": {"c": [1]}})));
        assert!(!contains(&actual, &json!({"g": {}})));
        assert!(contains(&json!(2.0), &json!(2)));
    }

    #[test]
    fn placeholders_resolve_or_fail_clearly() {
        let thred = |n: usize| (n == 1).then(|| "p_1".to_string());
        let out = |_: usize| None;
        let v = substitute(
            json!({"thredId": "$thred:1", "x": ["$thred:x"]}),
            &thred,
            &out,
        )
        .unwrap();
        assert_eq!(v, json!({"thredId": "p_1", "x": ["$thred:x"]}));
        assert_eq!(
            substitute(json!("$out:3"), &thred, &out).unwrap_err(),
            "$out:3 does not exist yet"
        );
    }
}
