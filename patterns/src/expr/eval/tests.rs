//! Unit tests for the evaluator's trickier semantics.
#![allow(clippy::unwrap_used)]

use crate::expr::{Bindings, Expression, Host, HostValue, Limits};
use serde_json::{json, Value};

fn eval_on(src: &str, input: Value) -> Result<Option<Value>, crate::expr::Error> {
    let host = Bindings {
        input: Some(input),
        ..Bindings::default()
    };
    Expression::compile(src)?.evaluate(&host)
}

fn ok(src: &str, input: Value) -> Option<Value> {
    eval_on(src, input).unwrap()
}

#[test]
fn sequences_flatten_and_singletons_unwrap() {
    let doc = json!({"a": [{"b": [1, 2]}, {"b": 3}], "c": [{"d": 1}]});
    assert_eq!(ok("a.b", doc.clone()), Some(json!([1, 2, 3])));
    assert_eq!(ok("c.d", doc.clone()), Some(json!(1)));
    assert_eq!(ok("c.d[]", doc.clone()), Some(json!([1])));
    assert_eq!(ok("a[1].b", doc.clone()), Some(json!(3)));
    assert_eq!(ok("nothing.here", doc), None);
}

#[test]
fn array_input_is_wrapped_for_paths() {
    assert_eq!(ok("$[1]", json!([1, 2, 3])), Some(json!(2)));
    assert_eq!(ok("$$", json!([1, 2])), Some(json!([1, 2])));
    assert_eq!(ok("*", json!([1, 2, 3])), Some(json!([1, 2, 3])));
}

#[test]
fn tuple_streams_bind_focus_index_and_parent() {
    let doc = json!({"o": [{"id": "x", "p": [{"n": 1}, {"n": 2}]}, {"id": "y", "p": [{"n": 3}]}]});
    assert_eq!(
        ok("o.p#$i.{'n': n, 'i': $i}", doc.clone()),
        Some(json!([{"n": 1, "i": 0}, {"n": 2, "i": 1}, {"n": 3, "i": 0}]))
    );
    let join = json!({"o": [{"id": "x"}, {"id": "y"}],
                      "q": [{"k": "x", "v": 1}, {"k": "y", "v": 2}, {"k": "x", "v": 3}]});
    assert_eq!(
        ok("o@$o.q[k = $o.id].(v & $o.id)", join),
        Some(json!(["1x", "3x", "2y"]))
    );
    assert_eq!(ok("o.p.%.id", doc), Some(json!(["x", "x", "y"])));
}

#[test]
fn transform_copies_and_updates_matches_only() {
    let doc = json!({"items": [{"v": 1}, {"v": 2}], "keep": {"same": true}});
    assert_eq!(
        ok("$ ~> |items|{'w': v * 10}, ['v']|", doc),
        Some(json!({"items": [{"w": 10}, {"w": 20}], "keep": {"same": true}}))
    );
}

#[test]
fn tail_calls_run_in_constant_depth() {
    let src = "($f := function($n, $a){ $n = 0 ? $a : $f($n - 1, $a + 1) }; $f(5000, 0))";
    let host = Bindings {
        limits: Limits {
            max_depth: 50,
            ..Limits::default()
        },
        ..Bindings::default()
    };
    let v = Expression::compile(src).unwrap().evaluate(&host).unwrap();
    assert_eq!(v, Some(json!(5000)));
}

struct TestHost {
    doc: Value,
}

impl Host for TestHost {
    fn variable(&self, name: &str) -> Option<&Value> {
        match name {
            "doc" => Some(&self.doc),
            "string" => Some(&self.doc),
            _ => None,
        }
    }
    fn call(&self, name: &str, args: &[Option<&Value>]) -> Option<Result<HostValue<'_>, String>> {
        match name {
            "pick" => {
                let key = args.first().copied().flatten()?.as_str()?;
                Some(Ok(self
                    .doc
                    .get(key)
                    .map_or(HostValue::Undefined, HostValue::Borrowed)))
            }
            "echo" => Some(Ok(HostValue::Owned(json!(args
                .iter()
                .map(|a| a.cloned().unwrap_or(Value::Null))
                .collect::<Vec<_>>())))),
            "boom" => Some(Err("exploded".into())),
            "uppercase" => Some(Ok(HostValue::Owned(json!("host wins")))),
            _ => None,
        }
    }
    fn now_millis(&self) -> i64 {
        42
    }
}

#[test]
fn host_functions_and_variables() {
    let host = TestHost {
        doc: json!({"count": 7, "name": "n"}),
    };
    let run = |src: &str| Expression::compile(src).unwrap().evaluate(&host);
    assert_eq!(run("$pick('count') > 5").unwrap(), Some(json!(true)));
    assert_eq!(run("$doc.name").unwrap(), Some(json!("n")));
    assert_eq!(
        run("$echo(1 + 1, 'a', $doc.count)").unwrap(),
        Some(json!([2, "a", 7]))
    );
    assert_eq!(run("$uppercase('x')").unwrap(), Some(json!("host wins")));
    assert_eq!(
        run("($uppercase := function($s){ 'lexical' }; $uppercase('x'))").unwrap(),
        Some(json!("lexical"))
    );
    assert_eq!(run("$millis()").unwrap(), Some(json!(42)));
    assert_eq!(run("$boom()").unwrap_err().code, "H1001");
}

struct NoFunctions;

impl Host for NoFunctions {
    fn call(&self, _: &str, _: &[Option<&Value>]) -> Option<Result<HostValue<'_>, String>> {
        Some(Err("must not be called".into()))
    }
    fn has_function(&self, _: &str) -> bool {
        false
    }
}

#[test]
fn has_function_false_skips_host_calls() {
    let e = Expression::compile("$count([1, 2])").unwrap();
    assert_eq!(e.evaluate(&NoFunctions).unwrap(), Some(json!(2)));
}

#[test]
fn eval_is_not_provided() {
    assert_eq!(
        eval_on("$eval('1 + 1')", json!({})).unwrap_err().code,
        "U2001"
    );
}

#[test]
fn random_is_deterministic_per_clock() {
    let host = Bindings {
        now_millis: 7,
        ..Bindings::default()
    };
    let e = Expression::compile("[$random(), $random()]").unwrap();
    let a = e.evaluate(&host).unwrap();
    assert_eq!(a, e.evaluate(&host).unwrap());
    let pair = a.unwrap();
    assert_ne!(pair[0], pair[1]);
}

#[test]
fn truthiness_is_javascript_style() {
    let host = Bindings {
        input: Some(json!({"e": [], "z": 0, "s": "", "o": {}})),
        ..Bindings::default()
    };
    let t = |src: &str| {
        Expression::compile(src)
            .unwrap()
            .evaluate_truthy(&host)
            .unwrap()
    };
    assert!(t("e"));
    assert!(t("o"));
    assert!(!t("z"));
    assert!(!t("s"));
    assert!(!t("missing"));
    assert!(t("function(){1}"));
}

#[test]
fn official_error_codes() {
    let code = |src: &str| eval_on(src, json!({"a": "x"})).unwrap_err().code;
    assert_eq!(code("a + 1"), "T2001");
    assert_eq!(code("1 < 'a'"), "T2009");
    assert_eq!(code("[1, 2] < 3"), "T2010");
    assert_eq!(code("$substring(1)"), "T0411");
    assert_eq!(code("$substring('a', 1, 2, 3)"), "T0410");
    assert_eq!(code("(1"), "S0203");
    assert_eq!(code("1 +"), "S0207");
    assert_eq!(code("($x := 1; $x())"), "T1006");
}
