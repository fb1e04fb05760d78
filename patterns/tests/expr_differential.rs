//! Differential test: random expressions from a grammar of well-supported constructs, evaluated
//! by our engine and by `jsonata-rs` (=0.3.4) against random inputs. Whenever jsonata-rs
//! succeeds, our result must be equal.
//!
//! Constructs deliberately left out because jsonata-rs disagrees with the JSONata reference
//! (jsonata-js) on them:
//! * `$string` of non-integral numbers: jsonata-rs does not round to 15 significant digits
//!   (e.g. `$string(0.1 + 0.2)` gives `"0.30000000000000004"`, JSONata gives `"0.3"`).
//! * Division results printed through `&` (same rounding issue, e.g. `1/3 & ''`).
//! * `$substring` with a start past the end: jsonata-rs panics slicing the string
//!   (e.g. `$substring("", 1)`), so `$substring` is not generated.
//! * `$keys`: jsonata-rs does not keep the input's key order (e.g. `$keys({"n":1,"s":2,"deep":3})`
//!   gives `["deep","n","s"]`; JSONata gives insertion order `["n","s","deep"]`).
//! * Comparisons (`<`, `>`, ...) between values of different types: JSONata raises `T2009`/`T2010`,
//!   jsonata-rs returns a value; the generator only compares like with like.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;

use serde_json::{json, Value};
use threds_patterns::expr::{Bindings, Expression};

fn numbers_close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_close(
            x.as_f64().unwrap_or(f64::NAN),
            y.as_f64().unwrap_or(f64::NAN),
        ),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Random input documents with a known shape and random values.
fn input() -> impl Strategy<Value = Value> {
    (
        -50i64..50,
        -50i64..50,
        prop::sample::select(vec!["x", "abc", "", "Hello World", "42"]),
        any::<bool>(),
        prop::collection::vec(-20i64..20, 0..5),
        prop::option::of(-9i64..9),
    )
        .prop_map(|(a, b, s, t, arr, opt)| {
            let mut doc = json!({
                "a": a,
                "b": b,
                "s": s,
                "t": t,
                "arr": arr,
                "o": {"n": a * 2, "s": s, "deep": {"n": b}},
                "items": [{"v": a}, {"v": b}, {"v": 3}],
            });
            if let Some(v) = opt {
                doc["opt"] = json!(v);
            }
            doc
        })
}

/// Numeric expressions.
fn num_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (-20i64..20).prop_map(|n| n.to_string()),
        prop::sample::select(vec!["1.5", "0.25", "100"]).prop_map(str::to_string),
        prop::sample::select(vec![
            "a",
            "b",
            "o.n",
            "o.deep.n",
            "opt",
            "$count(arr)",
            "$sum(arr)",
            "$length(s)",
            "$abs(a)",
            "$floor(b / 3)",
            "$sum(items.v)",
            "items[0].v",
            "arr[1]",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 16, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*"])
            )
                .prop_map(|(l, r, op)| format!("({l} {op} {r})")),
            inner.clone().prop_map(|e| format!("-({e})")),
            (bool_expr_leaf(), inner.clone(), inner)
                .prop_map(|(c, t, e)| format!("({c} ? {t} : {e})")),
        ]
    })
}

fn bool_expr_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "true",
            "false",
            "t",
            "$not(t)",
            "$exists(opt)",
            "$boolean(s)"
        ])
        .prop_map(str::to_string),
        (
            prop::sample::select(vec!["a", "b", "o.n", "$count(arr)"]),
            prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
            -10i64..10
        )
            .prop_map(|(l, op, r)| format!("{l} {op} {r}")),
        (
            prop::sample::select(vec!["s", "o.s", "$uppercase(s)"]),
            prop::sample::select(vec!["=", "!="]),
            prop::sample::select(vec!["'x'", "'abc'", "''", "'ABC'"])
        )
            .prop_map(|(l, op, r)| format!("{l} {op} {r}")),
    ]
}

/// Boolean expressions.
fn bool_expr() -> impl Strategy<Value = String> {
    bool_expr_leaf().prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec!["and", "or"])
            )
                .prop_map(|(l, r, op)| format!("({l} {op} {r})")),
            inner.prop_map(|e| format!("$not({e})")),
        ]
    })
}

/// String expressions (integers only inside `&`, see the module doc).
fn str_expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "'x'",
            "'-'",
            "s",
            "o.s",
            "$string(a)",
            "$uppercase(s)",
            "$lowercase('AbC')"
        ])
        .prop_map(str::to_string),
        (-9i64..9).prop_map(|n| n.to_string()),
    ];
    leaf.prop_recursive(2, 8, 2, |inner| {
        (inner.clone(), inner).prop_map(|(l, r)| format!("({l} & {r})"))
    })
}

/// Structured expressions: constructors, predicates, higher-order and array functions.
fn structured_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        (num_expr(), str_expr()).prop_map(|(n, s)| format!("{{'n': {n}, 's': {s}}}")),
        (num_expr(), num_expr()).prop_map(|(a, b)| format!("[{a}, {b}]")),
        (-5i64..5).prop_map(|n| format!("items[v > {n}].v")),
        (-5i64..5).prop_map(|n| format!("$count(items[v >= {n}])")),
        (-5i64..5).prop_map(|n| format!("$map(arr, function($x){{ $x * {n} }})")),
        (-5i64..5).prop_map(|n| format!("$filter(arr, function($x){{ $x > {n} }})")),
        Just("$reduce(arr, function($a, $b){ $a + $b })".to_string()),
        Just("$reverse(arr)".to_string()),
        Just("$append(arr, [a, b])".to_string()),
        Just("$join([s, 'y', o.s], '-')".to_string()),
        Just("$sort(arr)".to_string()),
        Just("$max(arr)".to_string()),
        Just("items.{'v': v, 'd': v * 2}".to_string()),
        Just("$distinct(arr)".to_string()),
        Just("arr[0]".to_string()),
        Just("arr[-1]".to_string()),
        Just("$exists(items[v = 3])".to_string()),
        Just("o.deep.n in arr".to_string()),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    prop_oneof![
        structured_expr(),
        num_expr(),
        bool_expr(),
        str_expr(),
        (bool_expr(), str_expr(), str_expr()).prop_map(|(c, t, e)| format!("{c} ? {t} : {e}")),
        prop::sample::select(vec![
            "items.v",
            "items[v > 0].v",
            "arr",
            "o",
            "o.deep",
            "items"
        ])
        .prop_map(str::to_string),
    ]
}

fn jsonata_rs(expr: &str, input: &Value) -> Option<Option<Value>> {
    std::panic::catch_unwind(|| jsonata_rs_inner(expr, input))
        .ok()
        .flatten()
}

fn jsonata_rs_inner(expr: &str, input: &Value) -> Option<Option<Value>> {
    let arena = bumpalo::Bump::new();
    let j = jsonata_rs::JsonAta::new(expr, &arena).ok()?;
    let text = input.to_string();
    let r = j.evaluate(Some(&text), None).ok()?;
    if r.is_undefined() {
        return Some(None);
    }
    Some(Some(serde_json::from_str(&r.serialize(false)).ok()?))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_jsonata_rs(expr in expression(), doc in input()) {
        let Some(expected) = jsonata_rs(&expr, &doc) else {
            return Ok(());
        };
        let host = Bindings { input: Some(doc.clone()), ..Bindings::default() };
        let ours = Expression::compile(&expr).and_then(|e| e.evaluate(&host));
        let ours = match ours {
            Ok(v) => v,
            Err(e) => return Err(TestCaseError::fail(format!("{expr} on {doc}: we failed with {e}, jsonata-rs gave {expected:?}"))),
        };
        let same = match (&ours, &expected) {
            (None, None) => true,
            (Some(a), Some(b)) => json_eq(a, b),
            _ => false,
        };
        prop_assert!(same, "{} on {}: ours {:?}, jsonata-rs {:?}", expr, doc, ours, expected);
    }
}
