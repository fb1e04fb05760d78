//! "No panic" property tests for the parser and evaluator: arbitrary source text, and mutations
//! of valid expressions, must compile or fail cleanly and evaluate or fail cleanly (small
//! budgets keep runaway cases short). With `--release` this runs 120,000 cases in a few
//! seconds; debug builds run fewer. `PROPTEST_CASES=n` overrides the count per property.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::json;
use threds_patterns::expr::{Bindings, Expression, Limits};

const CORPUS: &[&str] = &[
    "$event.type = 'org.wt.echo' and $valueNamed('count') > 10",
    "Account.Order.Product[Price > 30].(Price * Quantity)",
    "$sum(Account.Order.Product.(Price * Quantity))",
    "Account.Order#$i.Product{ $string(ProductID): $i }",
    "Account.Order.Product^(>Price, Description.Colour).SKU",
    "library.loans@$L.books@$B[$L.isbn=$B.isbn].{'title': $B.title}",
    "Account.Order.Product.%.OrderID",
    "($f := function($n){ $n <= 1 ? 1 : $n * $f($n - 1) }; $f(10))",
    "$map([1..5], function($v, $i){ $v * $i })",
    "$reduce([1,2,3], function($a, $b){ $a + $b }, 0)",
    "$filter(items, function($x){ $x.v > 1 }).v",
    "$ ~> |items|{'w': v * 2}, ['v']|",
    "$replace('hello world', /o(.)/, '0$1')",
    "$match('ababbxabbcc', /a(b+)/)",
    "$split('a,b,,c', ',', 3)",
    "{'a': [1, 2, {'b': true}], 'c': null}",
    "items{v: $count($)}",
    "a ? b : c ?: d ?? e",
    "$string({'x': 1.5e300 * 10})",
    "$substring('héllo wörld', -3, 2) & $uppercase('ß')",
    "$formatNumber(1234.5678, '#,##0.00')",
    "$fromMillis(1500000000000)",
    "**[v = 2]",
    "$sort(items, function($a, $b){ $a.v > $b.v }).v",
    "$zip([1,2,3], ['a','b'])",
    "$each({'a': 1, 'b': 2}, function($v, $k){ $k & $v })",
    "$keys($)[0]",
    "$spread(o)",
    "$merge([{'a':1},{'b':2}])",
    "(items.v)[-1]",
    "items[[0..1]]",
    "$lookup(o, 'n')",
    "$number('0x1F') + $round(2.5) + $power(2, 10)",
    "$distinct([1,1,2,'a','a'])",
    "$shuffle([1,2,3])[0] > 0",
    "$single(items, function($i){ $i.v = 3 })",
    "$sift(o, function($v){ $v })",
    "$base64decode($base64encode('päss'))",
    "$decodeUrl($encodeUrl('a b/ü'))",
    "function($x)<n:n>{ $x + 1 }(2)",
    "$substringBefore('a-b', '-') & $pad('x', -4, '#')",
    "[1,2,3].($ * 2)[$ > 2]",
    "$assert(true, 'ok')",
    "`quoted name` & \"dq\\u00e9\"",
    "/* comment */ 1 + 2",
];

fn host() -> Bindings {
    let mut variables = serde_json::Map::new();
    variables.insert(
        "event".into(),
        json!({"type": "org.wt.echo", "data": {"count": 3}}),
    );
    Bindings {
        input: Some(json!({
            "a": 1, "b": "two", "c": [1, 2, 3], "d": null, "e": {"f": true},
            "o": {"n": 4, "s": "x"},
            "items": [{"v": 1}, {"v": 2}, {"v": 3}],
            "Account": {"Order": [{"OrderID": "o1", "Product": [{"Price": 34.45, "Quantity": 2, "SKU": "s1", "ProductID": 1, "Description": {"Colour": "red"}}]}]},
            "library": {"loans": [{"isbn": "i1"}], "books": [{"isbn": "i1", "title": "t"}]}
        })),
        variables,
        now_millis: 1_500_000_000_000,
        limits: Limits {
            max_depth: 100,
            max_steps: 20_000,
            ..Limits::default()
        },
    }
}

fn cases() -> u32 {
    if let Some(n) = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if cfg!(debug_assertions) {
        3_000
    } else {
        60_000
    }
}

fn exercise(src: &str) {
    if let Ok(expr) = Expression::compile(src) {
        let h = host();
        let _ = expr.evaluate(&h);
        let _ = expr.evaluate_truthy(&h);
    }
}

/// Characters JSONata gives meaning to, plus some letters, digits and non-ASCII.
fn source_text() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(
        "$.[]{}()<>=!~?:;,@#%^&|*/+-'\"`\\ abcnstvxy0129éλ\u{1F600}\n"
            .chars()
            .collect::<Vec<_>>(),
    );
    prop::collection::vec(chars, 0..40).prop_map(|v| v.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize),
    Swap(usize, usize),
}

fn apply(src: &str, m: &Mutation) -> String {
    let chars: Vec<char> = src.chars().collect();
    let n = chars.len().max(1);
    let mut out = chars.clone();
    match m {
        Mutation::Delete(at, len) => {
            let at = at % n;
            let end = (at + len % 8).min(out.len());
            out.drain(at.min(out.len())..end);
        }
        Mutation::Insert(at, s) => {
            let at = (at % n).min(out.len());
            for (i, c) in s.chars().enumerate() {
                out.insert(at + i, c);
            }
        }
        Mutation::Duplicate(at, len) => {
            let at = at % n;
            let end = (at + len % 12).min(chars.len());
            let piece: Vec<char> = chars[at.min(chars.len())..end].to_vec();
            let at = at.min(out.len());
            for (i, c) in piece.into_iter().enumerate() {
                out.insert(at + i, c);
            }
        }
        Mutation::Swap(a, b) => {
            if !out.is_empty() {
                let (a, b) = (a % out.len(), b % out.len());
                out.swap(a, b);
            }
        }
    }
    out.into_iter().collect()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Mutation::Delete(a, l)),
        (
            any::<usize>(),
            source_text().prop_map(|s| s.chars().take(4).collect())
        )
            .prop_map(|(a, s)| Mutation::Insert(a, s)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, l)| Mutation::Duplicate(a, l)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_source_never_panics(src in source_text()) {
        exercise(&src);
    }

    #[test]
    fn mutated_expressions_never_panic(
        base in prop::sample::select(CORPUS.to_vec()),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut src = base.to_string();
        for m in &muts {
            src = apply(&src, m);
        }
        exercise(&src);
    }
}

#[test]
fn corpus_compiles() {
    for src in CORPUS {
        assert!(Expression::compile(src).is_ok(), "{src}");
    }
}
