//! Steps per second of the thred machine on one core: `cargo bench -p threds-patterns --bench machine`.
//!
//! A step = [`Machine::process`] of one bound event for an existing thred, against an in-memory view,
//! with the new state written back (what every host does per event, minus its I/O).

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use threds_patterns::machine::{Counter, Env, Input, Machine, StateView, ThredChange};
use threds_patterns::model::Event;
use threds_patterns::pattern::{Pattern, PatternSet};
use threds_patterns::thred::ThredState;

#[derive(Default)]
struct Memory {
    threds: HashMap<String, ThredState>,
}

impl StateView for Memory {
    fn thred(&self, id: &str) -> Option<ThredState> {
        self.threds.get(id).cloned()
    }
    fn unbound_listeners(&self) -> Vec<String> {
        Vec::new()
    }
    fn counter(&self, _: &str) -> Counter {
        Counter::default()
    }
    fn participants(&self) -> Vec<String> {
        Vec::new()
    }
}

struct Ids(u64);

impl Env for Ids {
    fn now(&self) -> i64 {
        1_700_000_000_000
    }
    fn thred_id(&mut self, p: &Pattern) -> String {
        self.0 += 1;
        format!("{}_{}", p.id, self.0)
    }
    fn event_id(&mut self) -> String {
        self.0 += 1;
        format!("evt_{}", self.0)
    }
}

fn engine(text: &str) -> Machine {
    let pattern = threds_patterns::load::pattern("bench", text).unwrap().value;
    let mut set = PatternSet::new();
    set.insert(Arc::new(pattern));
    Machine::new(set, Default::default(), Default::default())
}

fn apply(memory: &mut Memory, changes: Vec<ThredChange>) {
    for c in changes {
        match c {
            ThredChange::Saved { state, .. } => {
                memory.threds.insert(state.id.clone(), state);
            }
            ThredChange::Removed { state } => {
                memory.threds.remove(&state.id);
            }
        }
    }
}

/// Starts a thred with `first` and returns its id.
fn start(engine: &Machine, memory: &mut Memory, ids: &mut Ids, first: Value) -> String {
    let outcome = engine.process(
        memory,
        &Input::Event(Event::from_value(first).unwrap()),
        ids,
    );
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let id = outcome.threds[0].thred_id().to_string();
    apply(memory, outcome.threds);
    id
}

fn echo_pattern() -> String {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/srvthreds/src/test/config/patterns/echo_test.pattern.json");
    match std::fs::read_to_string(&reference) {
        Ok(text) => text,
        Err(_) => {
            eprintln!("reference echo_test pattern not found at {}; using config/patterns/echo.pattern.json", reference.display());
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/patterns/echo.pattern.json"),
            )
            .unwrap()
        }
    }
}

const AND_PATTERN: &str = r#"{
  "name": "And Locals",
  "reactions": [
    { "name": "open", "condition": { "type": "filter", "xpr": "$event.type = 'open'",
        "onTrue": { "xpr": "$setLocal('opener', $event.source.id)" },
        "transform": { "eventDataTemplate": { "title": "opened" } }, "publish": { "to": ["$thred"] } } },
    { "name": "collect", "condition": { "type": "and", "operands": [
        { "type": "filter", "xpr": "$event.type = 'a'", "onTrue": { "xpr": "$setLocal('a', $valueNamed('n'))" } },
        { "type": "filter", "xpr": "$event.type = 'b'", "onTrue": { "xpr": "$setLocal('b', $valueNamed('n'))" } } ],
        "transform": { "eventDataTemplate": { "title": "$xpr( 'sum ' & $string($local('a') + $local('b')) )" } },
        "publish": { "to": ["$xpr( $local('opener') )"] } } },
    { "name": "close", "condition": { "type": "filter", "xpr": "$event.type = 'close' and $local('a') > 0",
        "transform": { "eventDataTemplate": { "title": "closed" } }, "publish": { "to": ["$thred"] },
        "transition": { "name": "open" } } }
  ]
}"#;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("machine");
    group.throughput(Throughput::Elements(1));

    let echo = engine(&echo_pattern());
    let mut memory = Memory::default();
    let mut ids = Ids(0);
    let values = json!({"echoTo": ["p2"], "echoTitle": "hi", "echoContent": {"n": 1}});
    let first = json!({"id": "e0", "type": "org.wt.echo", "source": {"id": "p1"}, "data": {"content": {"values": values}}});
    let thred = start(&echo, &mut memory, &mut ids, first);
    let event = Event::from_value(
        json!({"id": "e1", "type": "org.wt.echo", "source": {"id": "p1"}, "thredId": thred,
        "data": {"content": {"values": values}}}),
    )
    .unwrap();
    let input = Input::Event(event);
    group.bench_function("echo step", |b| {
        b.iter(|| {
            let outcome = echo.process(&memory, &input, &mut ids);
            debug_assert_eq!(outcome.messages.len(), 1);
            apply(&mut memory, outcome.threds);
        })
    });

    // The same step under the deployment's default quotas (the state size check serializes the
    // thred's state once more per save).
    let quotas = threds_patterns::machine::Quotas {
        default_max_instances: 100_000,
        max_threds_per_participant: 1_000,
        max_state_bytes: 1 << 20,
        ..Default::default()
    };
    let echo_quotas = engine(&echo_pattern()).with_quotas(quotas);
    group.bench_function("echo step, default quotas", |b| {
        b.iter(|| {
            let outcome = echo_quotas.process(&memory, &input, &mut ids);
            debug_assert_eq!(outcome.messages.len(), 1);
            apply(&mut memory, outcome.threds);
        })
    });

    let and = engine(AND_PATTERN);
    let mut memory = Memory::default();
    let thred = start(
        &and,
        &mut memory,
        &mut ids,
        json!({"id": "o0", "type": "open", "source": {"id": "p1"}}),
    );
    let ev = |ty: &str, n: i64| {
        Input::Event(
            Event::from_value(
                json!({"id": format!("{ty}1"), "type": ty, "source": {"id": "p1"}, "thredId": thred,
            "data": {"content": {"values": {"n": n}}}}),
            )
            .unwrap(),
        )
    };
    let cycle = [ev("a", 2), ev("b", 3), ev("close", 0), ev("open", 0)];
    let mut i = 0usize;
    group.bench_function("and+locals step", |b| {
        b.iter(|| {
            let outcome = and.process(&memory, &cycle[i % 4], &mut ids);
            debug_assert!(outcome.failures.is_empty());
            apply(&mut memory, outcome.threds);
            i += 1;
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
