//! Resident memory must stay flat over many evaluations, including closures that refer to
//! themselves (environment frames live in a per-evaluation arena, so no `Rc` cycle can leak).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use threds_patterns::expr::{Bindings, Expression};

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[test]
fn memory_stays_flat_over_many_evaluations() {
    let Some(_) = resident_bytes() else {
        println!("SKIPPED: /proc/self/statm not available");
        return;
    };
    let exprs = [
        "($f := function($x){ $x <= 0 ? 0 : $f($x - 1) }; $f(20))",
        "($g := function($x){ function($y){ $g($y) } }; $g(1); $count(items))",
        "items{ $string(v): $map([1,2], function($n){ $n * v }) }",
        "$ ~> |items|{'w': v * 2}|",
    ];
    let compiled: Vec<Expression> = exprs
        .iter()
        .map(|e| Expression::compile(e).unwrap())
        .collect();
    let host = Bindings {
        input: Some(json!({"items": [{"v": 1}, {"v": 2}, {"v": 3}]})),
        ..Bindings::default()
    };
    let rounds = if cfg!(debug_assertions) {
        5_000
    } else {
        100_000
    };
    let run = |n: usize| {
        for _ in 0..n {
            for e in &compiled {
                e.evaluate(&host).unwrap();
            }
        }
    };
    run(rounds / 10);
    let before = resident_bytes().unwrap();
    run(rounds);
    let after = resident_bytes().unwrap();
    let growth = after.saturating_sub(before);
    assert!(
        growth < 4 << 20,
        "resident memory grew by {growth} bytes over {rounds} rounds"
    );
}

#[test]
fn long_loops_inside_one_evaluation_reuse_frames() {
    let Some(_) = resident_bytes() else {
        println!("SKIPPED: /proc/self/statm not available");
        return;
    };
    let n = if cfg!(debug_assertions) {
        200_000
    } else {
        1_000_000
    };
    let src = format!("$reduce([1..{n}], function($acc, $v){{ ($x := $v * 2; $acc + $x) }}, 0)");
    let e = Expression::compile(&src).unwrap();
    let host = Bindings::default();
    let before = resident_bytes().unwrap();
    let v = e.evaluate(&host).unwrap();
    let after = resident_bytes().unwrap();
    assert_eq!(v, Some(json!((n as u64) * (n as u64 + 1))));
    // The range itself takes n * 32 bytes; frames must not add n * (frame + bindings).
    let growth = after.saturating_sub(before);
    assert!(
        growth < (n as u64) * 64,
        "grew by {growth} bytes for {n} calls"
    );
}
