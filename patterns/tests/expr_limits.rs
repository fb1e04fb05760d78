//! Runaway expressions must stop with a clear error (never a hang, stack overflow or panic),
//! on the 2 MiB stacks the workers use, with the default `Limits`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use threds_patterns::expr::{Bindings, Error, Expression, Limits};

const WORKER_STACK: usize = 2 << 20;

fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .expect("worker thread must not overflow its stack or panic")
}

fn run(src: &str, limits: Limits) -> Result<Option<serde_json::Value>, Error> {
    let host = Bindings {
        input: Some(json!({"a": {"b": 1}})),
        limits,
        ..Bindings::default()
    };
    Expression::compile(src).and_then(|e| e.evaluate(&host))
}

#[test]
fn compiled_expression_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Expression>();
}

#[test]
fn deep_recursion_is_stopped_by_depth_budget() {
    let sources = [
        "($f := function($n){ $n = 0 ? 0 : 1 + $f($n - 1) }; $f(1000000))",
        "($f := function($n){ [$f($n + 1)] }; $f(0))",
        "($f := function($n){ {'a': $f($n + 1)} }; $f(0))",
        "($f := function($n){ $f($n + 1).x }; $f(0))",
        "($f := function($n){ $map([1], function($v){ $f($n + 1) }) }; $f(0))",
        "($f := function($n){ $string([$f($n + 1)]) }; $f(0))",
        "($f := function($n){ ($n > 0 ? $f($n - 1) : 0) + 1 }; $f(100000))",
        "($f := function($n){ [1,2][$f($n+1)] }; $f(0))",
        "($f := function($n){ $sort([3,1], function($a,$b){ $f($n+1) }) }; $f(0))",
        "($f := function($n){ {'k': 1}{'x': $f($n+1)} }; $f(0))",
        "($f := function($o){ $o ~> | $ | {'a': $f($o)} | }; $f({'z': 1}))",
    ];
    for src in sources {
        let err = on_worker_stack(move || run(src, Limits::default())).unwrap_err();
        assert_eq!(err.code, "U1001", "{src}: {err}");
    }
}

#[test]
fn deep_values_built_by_iteration_are_rejected() {
    let sources = [
        "$reduce([1..100000], function($acc, $v){ [[$acc]] }, [])",
        "$reduce([1..100000], function($acc, $v){ {'a': $acc} }, {})",
        "$reduce([1..100000], function($acc, $v){ $spread({'k': $acc}) }, {})",
        "$string($reduce([1..100000], function($acc, $v){ [[$acc]] }, []))",
        "$reduce([1..100000], function($acc, $v){ $acc ~> |$|{'a': $acc}| }, {})",
    ];
    for src in sources {
        let err = on_worker_stack(move || run(src, Limits::default())).unwrap_err();
        assert_eq!(err.code, "U1001", "{src}: {err}");
    }
    let ok = on_worker_stack(|| {
        run(
            "$reduce([1..100], function($acc, $v){ [[$acc]] }, [])",
            Limits::default(),
        )
    });
    assert!(ok.is_ok());
}

#[test]
fn infinite_tail_loop_is_stopped_by_step_budget() {
    let limits = Limits {
        max_steps: 200_000,
        ..Limits::default()
    };
    let err = on_worker_stack(move || run("($f := function($n){ $f($n + 1) }; $f(0))", limits))
        .unwrap_err();
    assert_eq!(err.code, "U1001");
}

#[test]
fn quadratic_loops_are_stopped_by_step_budget() {
    let sources = [
        "$reduce([1..1000000], function($a, $v){ $a & 'xxxxxxxxxxxxxxxx' }, '')",
        "$reduce([1..1000000], function($a, $v){ $append($a, $v) }, [])",
        "$reduce([1..1000000], function($a, $v){ [$a, $v] }, [])",
        "$reduce([1..1000000], function($a, $v){ $string($a) }, [1..1000])",
        "($big := [1..100000]; $reduce([1..1000000], function($a, $v){ $big[-1] + $count($big) }, 0))",
        "($big := [1..100000]; $reduce([1..1000000], function($a, $v){ $big = $big }, 0))",
    ];
    for src in sources {
        let start = std::time::Instant::now();
        let r = on_worker_stack(move || run(src, Limits::default()));
        // Either budget may stop them first: steps (`U1001`) or bytes constructed (`U1002`).
        let code = r.err().map(|e| e.code);
        assert!(
            matches!(code.as_deref(), Some("U1001" | "U1002")),
            "{src}: {code:?}"
        );
        assert!(
            start.elapsed().as_secs() < 20,
            "{src} took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn tail_calls_do_not_grow_depth() {
    let v = on_worker_stack(|| {
        run(
            "($loop := function($n, $acc){ $n = 0 ? $acc : $loop($n - 1, $acc + 1) }; $loop(50000, 0))",
            Limits::default(),
        )
    })
    .unwrap();
    assert_eq!(v, Some(json!(50000)));
}

#[test]
fn deeply_nested_source_is_rejected_without_overflow() {
    let n = 100_000;
    let sources = vec![
        format!("{}1{}", "(".repeat(n), ")".repeat(n)),
        format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        format!("{}1", "-".repeat(n)),
        format!("a{}", ".b".repeat(n)),
        format!("a{}", "[0]".repeat(n)),
        format!("{}1{}", "{'a':".repeat(n), "}".repeat(n)),
        format!("1{}", "+1".repeat(n)),
        format!("{}x", "$f := ".repeat(n)),
        format!("{}1", "true ? ".repeat(n)),
        format!("{}", "function($x){".repeat(n)),
    ];
    for src in sources {
        let r = on_worker_stack(move || Expression::compile(&src).map(|_| ()));
        assert!(r.is_err(), "deeply nested source should be rejected");
    }
}

#[test]
fn moderately_nested_source_compiles_and_runs() {
    let src = format!("{}1{}", "(".repeat(50), ")".repeat(50));
    let v = on_worker_stack(move || run(&src, Limits::default())).unwrap();
    assert_eq!(v, Some(json!(1)));
}

/// Runs `src` on a worker stack with `limits` and returns the error it must fail with.
fn refused(src: &str, limits: Limits) -> Error {
    let owned = src.to_string();
    match on_worker_stack(move || run(&owned, limits)) {
        Ok(v) => panic!("{src} should be refused, got {v:?}"),
        Err(e) => e,
    }
}

/// Asserts `src` fails with `U1002` naming `budget` under `limits`.
fn assert_budget(src: &str, limits: Limits, budget: &str) {
    let err = refused(src, limits);
    assert_eq!(err.code, "U1002", "{src}: {err}");
    assert!(
        err.message.contains(budget),
        "{src}: expected {budget} in {err}"
    );
}

#[test]
fn memory_budget_defaults_are_documented_values() {
    let l = Limits::default();
    assert_eq!(l.max_sequence_len, 1_000_000);
    assert_eq!(l.max_string_bytes, 8 << 20);
    assert_eq!(l.max_bytes, 128 << 20);
}

#[test]
fn range_over_the_sequence_budget_is_refused_before_it_is_built() {
    let d = Limits::default();
    // JSONata's own cap still comes first, with its own code.
    let err = refused("$count([0..1e7])", d);
    assert_eq!(err.code, "D2014");
    for src in [
        "$count([1..1e7])",
        "[1..1e7] ~> $count()",
        "$count([1..1000001])",
    ] {
        assert_budget(src, d, "max_sequence_len (1000000)");
    }
    // Within the sequence budget but over the bytes budget: refused by the range operator
    // itself (the size is charged before the members are built).
    let small = Limits {
        max_sequence_len: usize::MAX,
        max_bytes: 1 << 20,
        ..d
    };
    assert_budget("$count([1..1e7])", small, "max_bytes (1048576)");
    assert_eq!(
        run("$count([1..1000000])", d).unwrap(),
        Some(json!(1_000_000))
    );
}

#[test]
fn growing_strings_are_refused() {
    let d = Limits::default();
    let cases = [
        "$reduce([1..40], function($a, $v){ $a & $a }, 'x')",
        "($f := function($s, $n){ $n = 0 ? $s : $f($s & $s, $n - 1) }; $f('x', 40))",
        "$pad('x', 9000000)",
        "$pad('x', -9000000, '€')",
        "$pad('', 3000000, '€')",
        "$join([1..100000].('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'))",
        "$join([1..100000].('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'), ',')",
        "$string([1..100000].('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'))",
        "$string([1..900000], true)",
        "$replace($pad('', 1000000, 'a'), 'a', 'bbbbbbbbbb')",
        "$replace($pad('', 1000000, 'a'), /a/, 'bbbbbbbbbb')",
        "$replace($pad('', 1000000, 'a'), /a/, '$0$0$0$0$0$0$0$0$0$0')",
        "$replace('ab', /a/, $pad('', 5000000, 'c') & $pad('', 5000000, 'c'))",
        "($s := $pad('', 5000000, 'a'); $s & $s)",
        "$base64encode($pad('', 7000000, 'a'))",
        "$encodeUrlComponent($pad('', 3000000, '€'))",
    ];
    for src in cases {
        assert_budget(src, d, "max_string_bytes (8388608)");
    }
    let small = Limits {
        max_string_bytes: 10,
        ..d
    };
    assert_budget("'abcdef' & 'abcdef'", small, "max_string_bytes (10)");
    assert_eq!(
        run("'abcde' & 'abcde'", small).unwrap(),
        Some(json!("abcdeabcde"))
    );
}

#[test]
fn growing_arrays_and_objects_are_refused() {
    let d = Limits::default();
    let cases = [
        // Doubling by $append, array constructors and $map.
        "$reduce([1..30], function($a, $v){ $append($a, $a) }, [1])",
        "$count($reduce([1..30], function($a, $v){ [$a, $a] ~> $map(function($x){ $x }) }, [1]))",
        // Path flattening of many references to one big array.
        "($b := [1..100000]; $count([1..1000].$b))",
        "($b := [1..100000]; $count([1..1000].{'k': $b}.k))",
        "($b := [1..100000]; $count($map([1..1000], function(){ $b }).*))",
        // Object construction over many members.
        "($b := [1..100000]; $count($map([1..1000], function(){ $b }){'k': $}.k))",
        // Many medium values add up (each within the sequence budget).
        "$count($map([1..1000], function($v){ [1..10000] }))",
        "$count($zip([1..1000000], [1..1000000], [1..1000000], [1..1000000], [1..1000000], [1..1000000]))",
        "($o := $merge([1..100000].{$string($): $}); $count($spread([1..1000].$o)))",
        "$count($split($pad('', 2000000, 'a'), ''))",
        "$count($match($pad('', 2000000, 'a'), /a/))",
    ];
    for src in cases {
        let err = refused(src, d);
        assert_eq!(err.code, "U1002", "{src}: {err}");
    }
    let small = Limits {
        max_sequence_len: 5,
        ..d
    };
    assert_budget("[1..6]", small, "max_sequence_len (5)");
    assert_budget("$append([1,2,3], [4,5,6])", small, "max_sequence_len (5)");
    assert_budget(
        "{'a':1,'b':2,'c':3,'d':4,'e':5,'f':6}",
        small,
        "max_sequence_len (5)",
    );
    assert_eq!(run("[1..5]", small).unwrap(), Some(json!([1, 2, 3, 4, 5])));
}

#[test]
fn shared_values_cannot_multiply_when_materialised() {
    // 2^60 members by reference: serialising, flattening or returning them is refused as soon as
    // the budget runs out, instead of running out of memory.
    let d = Limits::default();
    let dag = "$reduce([1..60], function($a, $v){ [[$a], [$a]] }, 1)";
    assert_budget(&format!("$string({dag})"), d, "max_string_bytes");
    assert_budget(&format!("$length($string({dag}))"), d, "max_string_bytes");
    assert_budget(dag, d, "max_bytes");
    let obj = "$reduce([1..60], function($a, $v){ {'l': $a, 'r': $a} }, {})";
    assert_eq!(refused(&format!("$count({obj}.**)"), d).code, "U1002");
    assert_budget(obj, d, "max_bytes");
    // Error messages that show a value are cut short, not the size of the value.
    let err = refused(&format!("-{dag}"), d);
    assert_eq!(err.code, "D1002");
    assert!(err.message.len() < 2_000, "{}", err.message.len());
}

#[test]
fn large_but_sane_expressions_still_work() {
    let d = Limits::default();
    let sane = [
        ("$count([1..1000000])", json!(1_000_000)),
        (
            "$sum($map([1..100000], function($v){ $v }))",
            json!(5_000_050_000u64),
        ),
        (
            "$length($join($map([1..10000], function($v){ $string($v) }), ','))",
            json!(48_893),
        ),
        ("$length($pad('x', 1000000))", json!(1_000_000)),
        ("$length($string([1..100000]))", json!(588_896)),
        ("$count([1..10000]{$string($): $})", json!(1)),
        ("$count($keys([1..10000]{$string($): $}))", json!(10_000)),
        ("$count([1..100000][$ % 2 = 0])", json!(50_000)),
        (
            "$count($sort([1..100000], function($a, $b){ $a < $b }))",
            json!(100_000),
        ),
        (
            "$count([1..300].$map([1..300], function($v){ $v }))",
            json!(90_000),
        ),
        ("$count($append([1..400000], [1..400000]))", json!(800_000)),
        (
            "$length($replace($pad('', 100000, 'a'), 'a', 'bb'))",
            json!(200_000),
        ),
    ];
    for (src, want) in sane {
        let got = on_worker_stack(move || run(src, d));
        assert_eq!(
            got.as_ref().ok().cloned().flatten(),
            Some(want),
            "{src}: {got:?}"
        );
    }
    // A result of a million members (~120 MB of values and JSON) is within the defaults.
    let big = on_worker_stack(move || run("[1..1000000]", d)).unwrap();
    assert_eq!(
        big.and_then(|v| v.as_array().map(Vec::len)),
        Some(1_000_000)
    );
}
