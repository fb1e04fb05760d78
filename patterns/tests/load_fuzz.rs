//! Pattern loading never panics, whatever the text: arbitrary strings, and valid patterns with
//! random edits (values replaced by other JSON, keys dropped, bytes flipped). Every rejection names
//! a path. Runs `LOAD_FUZZ_CASES` cases (default 120,000 in release builds, 5,000 in debug).

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::path::Path;
use threds_patterns::load;

fn corpus() -> Vec<String> {
    let mut texts = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = [
        root.join("config/patterns"),
        root.join("patterns/tests/scenarios/patterns"),
        root.join("../shared/reference/srvthreds/src/test/config/patterns"),
        root.join("../shared/reference/srvthreds/scenarios/patterns"),
    ];
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                texts.push(text);
            }
        }
    }
    assert!(!texts.is_empty(), "no pattern corpus found");
    texts
}

fn cases() -> u32 {
    let default = if cfg!(debug_assertions) {
        5_000
    } else {
        120_000
    };
    std::env::var("LOAD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random JSON value of bounded size.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z$()'. =&:-]{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("$xpr( $event.type )"),
            Just("$xpr("),
            Just("$next"),
            Just("$terminate"),
            Just("filter"),
            Just("and"),
            Just("/[/"),
            Just("$group"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z$]{1,12}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Replaces the `n`-th node (pre-order) of `v` with `with`, or drops it from its parent.
fn mutate(v: &mut Value, n: &mut usize, with: &Value, drop: bool) -> bool {
    match v {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if *n == 0 {
                    if drop {
                        map.shift_remove(&k);
                    } else {
                        map.insert(k, with.clone());
                    }
                    return true;
                }
                *n -= 1;
                if let Some(child) = map.get_mut(&k) {
                    if mutate(child, n, with, drop) {
                        return true;
                    }
                }
            }
            false
        }
        Value::Array(items) => {
            for i in 0..items.len() {
                if *n == 0 {
                    if drop {
                        items.remove(i);
                    } else {
                        items[i] = with.clone();
                    }
                    return true;
                }
                *n -= 1;
                if mutate(&mut items[i], n, with, drop) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

fn check(text: &str) {
    if let Err(e) = load::pattern("fuzz.pattern.json", text) {
        for p in &e.problems {
            assert!(!p.path.is_empty(), "a problem without a path: {p}");
        }
    }
}

#[test]
fn loading_never_panics() {
    let corpus = corpus();
    let parsed: Vec<Value> = corpus
        .iter()
        .filter_map(|t| serde_json::from_str(t).ok())
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..parsed.len(),
        any::<usize>(),
        json_value(),
        any::<bool>(),
        0u8..4,
        any::<usize>(),
        "\\PC{0,40}",
    );
    runner
        .run(&strategy, |(doc, node, with, drop, mode, byte, noise)| {
            match mode {
                0 => check(&noise),
                1 => {
                    // Flip one byte of a valid text (kept valid UTF-8 by replacing an ASCII byte).
                    let text = &corpus[doc % corpus.len()];
                    let mut bytes = text.clone().into_bytes();
                    let i = byte % bytes.len().max(1);
                    if bytes.get(i).is_some_and(u8::is_ascii) {
                        bytes[i] = b"{}[]\",:0a$ "[byte % 11];
                    }
                    check(&String::from_utf8_lossy(&bytes));
                }
                _ => {
                    let mut v = parsed[doc].clone();
                    let mut n = node % 400;
                    mutate(&mut v, &mut n, &with, drop && mode == 2);
                    check(&v.to_string());
                }
            }
            Ok(())
        })
        .unwrap();
}
