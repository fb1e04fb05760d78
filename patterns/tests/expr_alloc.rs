//! The pattern machine's hot filter must not allocate: paths borrow the host's JSON, literals
//! are borrowed from the compiled expression, and host functions get pre-built arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/support/event_host.rs"]
mod event_host;
use event_host::EventHost;
use serde_json::json;
use threds_patterns::expr::Expression;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn hot_filter_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let host = EventHost {
        event: json!({"id": "e1", "type": "org.wt.echo", "source": {"id": "p1"},
                      "data": {"content": {"values": {"count": 42}}}}),
    };
    // (filter, allocations allowed per evaluation): a builtin call allocates its argument list,
    // an array constructor its array.
    let filters = [
        (
            "$event.type = 'org.wt.echo' and $valueNamed('count') > 10",
            0,
        ),
        (
            "$event.source.id != 'p2' or $event.data.content.values.count >= 42",
            0,
        ),
        ("$valueNamed('count') in [41, 42] and $event.id = 'e1'", 2),
        ("$exists($event.id) and $event.type = \"org.wt.echo\"", 1),
    ];
    for (src, allowed) in filters {
        let expr = Expression::compile(src).unwrap();
        assert!(expr.evaluate_truthy(&host).unwrap(), "{src}");
        let before = dhat::HeapStats::get();
        for _ in 0..1000 {
            assert!(expr.evaluate_truthy(&host).unwrap());
        }
        let after = dhat::HeapStats::get();
        let per_eval = (after.total_blocks - before.total_blocks) / 1000;
        assert!(
            per_eval <= allowed,
            "{src} allocated {per_eval} blocks per evaluation"
        );
    }
}
