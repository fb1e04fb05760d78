//! Oversized values are refused before they are allocated: the peak heap of hostile
//! evaluations (measured by counting allocations, not RSS) stays far below what building their
//! values would take.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use threds_patterns::expr::{Bindings, Expression, Limits};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn hostile_evaluations_fail_before_allocating_their_values() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let default = Limits::default();
    let small_bytes = Limits {
        max_bytes: 8 << 20,
        ..Limits::default()
    };
    // (expression, limits, what building the value would need)
    let cases = [
        // 10^7 members: ~240 MB of members.
        ("$count([1..9999999])", default),
        ("[1..9999999] ~> $count()", default),
        // A 100 MB string.
        ("$length($pad('x', 9999999, '€€€€'))", default),
        // 10^8 members by path flattening of 1,000 references to one array.
        ("($b := [1..100000]; $count([1..1000].$b))", default),
        // 1.2 million members by $append.
        ("($b := [1..600000]; $count($append($b, $b)))", default),
        // 2^60 leaves shared by reference: serialised, or materialised as the result.
        (
            "$string($reduce([1..60], function($a, $v){ [[$a], [$a]] }, 1))",
            default,
        ),
        (
            "$reduce([1..60], function($a, $v){ {'l': $a, 'r': $a} }, {})",
            small_bytes,
        ),
    ];
    for (src, limits) in cases {
        let host = Bindings {
            limits,
            ..Bindings::default()
        };
        let err = Expression::compile(src)
            .unwrap()
            .evaluate(&host)
            .expect_err(src);
        assert_eq!(err.code, "U1002", "{src}: {err}");
    }
    let peak = dhat::HeapStats::get().max_bytes;
    assert!(
        peak < 32 << 20,
        "peak heap {peak} bytes: a value was built before it was refused"
    );
}
