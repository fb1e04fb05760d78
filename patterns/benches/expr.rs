//! Compares our JSONata engine with the `jsonata-rs` crate on the pattern machine's typical
//! filter. jsonata-rs has no host functions or borrowed variables, so for it `$event` is bound
//! per evaluation and `$valueNamed('count')` is rewritten as `$event.data.content.values.count`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use threds_patterns::expr::Expression;

#[path = "support/event_host.rs"]
mod event_host;
use event_host::EventHost;

const FILTER: &str = "$event.type = 'org.wt.echo' and $valueNamed('count') > 10";
const FILTER_REWRITTEN: &str =
    "$event.type = 'org.wt.echo' and $event.data.content.values.count > 10";

fn event() -> Value {
    json!({"id": "e1", "type": "org.wt.echo", "source": {"id": "p1"},
           "data": {"content": {"values": {"count": 42}}}})
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter");
    let host = EventHost { event: event() };
    let ours = Expression::compile(FILTER).unwrap();
    assert!(ours.evaluate_truthy(&host).unwrap());
    g.bench_function("threds", |b| {
        b.iter(|| black_box(ours.evaluate_truthy(black_box(&host)).unwrap()))
    });

    let ev = event();
    g.bench_function("jsonata-rs", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                // A fresh arena per chunk keeps jsonata-rs's memory bounded.
                let arena = bumpalo::Bump::new();
                let expr = jsonata_rs::JsonAta::new(FILTER_REWRITTEN, &arena).unwrap();
                let chunk = left.min(10_000);
                let mut bindings = HashMap::new();
                bindings.insert("event", &ev);
                let start = Instant::now();
                for _ in 0..chunk {
                    let r = expr.evaluate(None, Some(&bindings)).unwrap();
                    black_box(r.as_bool());
                }
                total += start.elapsed();
                left -= chunk;
            }
            total
        })
    });
    g.finish();
}

/// Expressions that construct values (arrays, strings, objects): the work the memory budget
/// meters, so its overhead shows here.
const CONSTRUCT: &[(&str, &str)] = &[
    ("map", "$sum($map([1..1000], function($v){ $v * 2 }))"),
    (
        "join",
        "$length($join($map([1..1000], function($v){ $string($v) }), ','))",
    ),
    ("path", "$count(items.v)"),
    ("group", "$count($keys(items{ $string(v): v }))"),
    (
        "concat",
        "$length($reduce([1..500], function($a, $v){ $a & 'x' }, ''))",
    ),
    ("sort", "$count(items^(>v).v)"),
    ("result", "items[v > 10]"),
];

/// An input document and no host functions.
struct DataHost(Value);

impl threds_patterns::expr::Host for DataHost {
    fn input(&self) -> Option<&Value> {
        Some(&self.0)
    }
    fn has_function(&self, _name: &str) -> bool {
        false
    }
}

fn bench_construct(c: &mut Criterion) {
    let mut g = c.benchmark_group("construct");
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    let items: Vec<Value> = (0..1000).map(|i| json!({"v": i, "s": "x"})).collect();
    let host = DataHost(json!({ "items": items }));
    for (name, src) in CONSTRUCT {
        let e = Expression::compile(src).unwrap();
        assert!(e.evaluate(&host).unwrap().is_some(), "{src}");
        g.bench_function(*name, |b| {
            b.iter(|| black_box(e.evaluate(black_box(&host)).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, bench_construct);
criterion_main!(benches);
