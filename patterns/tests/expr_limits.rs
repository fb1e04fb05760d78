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
        let code = r.err().map(|e| e.code);
        assert_eq!(code.as_deref(), Some("U1001"), "{src}");
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
