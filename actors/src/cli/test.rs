//! `threds test SCENARIO.json...`: run scenario files against the simulator (SIMULATE.md).

use anyhow::Context;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use threds_patterns::machine::{Machine, Message};
use threds_patterns::pattern::{Pattern, PatternSet};
use threds_patterns::sim::matching::{contains, same_set, substitute};
use threds_patterns::sim::{Output, Simulator};

/// Arguments of `threds test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scenario files.
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<PathBuf>,
    /// Print every step as it runs.
    #[arg(long, short)]
    verbose: bool,
}

/// Runs every scenario; prints `N passed, M failed` last; exit 0 when all pass.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (_, failed) = run_all(&args.scenarios, &[], args.verbose);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs scenario files, with the `overlay` patterns in place of those of the same id (and beside
/// the others) in each; prints each result and `N passed, M failed` last; answers both counts.
pub fn run_all(scenarios: &[PathBuf], overlay: &[Arc<Pattern>], verbose: bool) -> (usize, usize) {
    let (mut passed, mut failed) = (0usize, 0usize);
    for path in scenarios {
        match run_scenario(path, overlay, verbose) {
            Ok(name) => {
                passed += 1;
                println!("PASS {name} ({})", path.display());
            }
            Err(e) => {
                failed += 1;
                println!("FAIL {}\n{e:#}\n", path.display());
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    (passed, failed)
}

/// `engine` with the `overlay` patterns in place of those of the same id, the others after them.
fn overlaid(engine: Machine, overlay: &[Arc<Pattern>]) -> Machine {
    if overlay.is_empty() {
        return engine;
    }
    let mut set = PatternSet::new();
    for p in engine.patterns().iter() {
        match overlay.iter().find(|o| o.id == p.id) {
            Some(o) => set.insert(o.clone()),
            None => set.insert(p.clone()),
        }
    }
    for o in overlay {
        if set.get(&o.id).is_none() {
            set.insert(o.clone());
        }
    }
    Machine::new(set, engine.sessions().clone(), engine.resolver().clone())
}

fn relative(base: &Path, p: &str) -> PathBuf {
    base.parent().unwrap_or(Path::new(".")).join(p)
}

fn run_scenario(path: &Path, overlay: &[Arc<Pattern>], verbose: bool) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let scenario: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let name = scenario
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    let patterns: Vec<PathBuf> = scenario
        .get("patterns")
        .and_then(Value::as_array)
        .context("scenario: `patterns` must be an array of paths")?
        .iter()
        .map(|p| {
            p.as_str()
                .map(|p| relative(path, p))
                .context("scenario: `patterns` entries must be strings")
        })
        .collect::<anyhow::Result<_>>()?;
    let file = |key: &str| {
        scenario
            .get(key)
            .and_then(Value::as_str)
            .map(|p| relative(path, p))
    };
    let sessions = file("sessions");
    let resolver = file("resolver");
    let engine =
        threds_runtime::files::load_machine(&patterns, sessions.as_deref(), resolver.as_deref())
            .map_err(|problems| {
                anyhow::anyhow!(
                    "scenario '{name}': invalid configuration:\n  {}",
                    problems.join("\n  ")
                )
            })?;
    let start = scenario
        .get("startTime")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut sim = Simulator::new(overlaid(engine, overlay), start);
    let steps = scenario
        .get("steps")
        .and_then(Value::as_array)
        .context("scenario: `steps` must be an array")?;

    let mut pending: Vec<Message> = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let fail = |what: String| anyhow::anyhow!("scenario '{name}', step {index}: {what}");
        let obj = step
            .as_object()
            .ok_or_else(|| fail("a step must be an object".into()))?;
        if verbose {
            println!("  step {index}: {step}");
        }
        if obj.contains_key("comment") && obj.len() == 1 {
            continue;
        }
        if let Some(event) = obj.get("send") {
            let outputs = sim
                .input(event.clone())
                .map_err(|e| fail(format!("cannot send: {e}")))?;
            pending = messages(outputs);
        } else if let Some(ms) = obj.get("advance") {
            let outputs = sim
                .input(json!({ "$advance": ms }))
                .map_err(|e| fail(format!("cannot advance: {e}")))?;
            pending = messages(outputs);
        } else if obj.contains_key("restart") {
            sim.restart();
        } else if let Some(expected) = obj.get("expect") {
            let expected = expected
                .as_array()
                .ok_or_else(|| fail("`expect` must be an array".into()))?;
            check_expect(&sim, expected, &pending).map_err(fail)?;
            pending.clear();
        } else if let Some(expected) = obj.get("expect_error") {
            check_error(expected, &pending).map_err(fail)?;
        } else if let Some(expected) = obj.get("expect_threds") {
            check_threds(&mut sim, expected).map_err(fail)?;
        } else if let Some(expected) = obj.get("expect_history") {
            check_history(&mut sim, expected).map_err(fail)?;
        } else {
            return Err(fail(format!("unknown step {step}")));
        }
        for d in sim.take_diagnostics() {
            if verbose {
                println!("    {d}");
            }
        }
    }
    Ok(name)
}

fn messages(outputs: Vec<Output>) -> Vec<Message> {
    outputs
        .into_iter()
        .filter_map(|o| match o {
            Output::Message(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn resolve(sim: &Simulator, v: &Value) -> Result<Value, String> {
    substitute(v.clone(), &|n| sim.thred(n).map(str::to_string), &|k| {
        sim.out(k).map(str::to_string)
    })
}

fn show(messages: &[Message]) -> String {
    if messages.is_empty() {
        return "  (nothing)".into();
    }
    messages
        .iter()
        .map(|m| format!("  {}", json!({"to": m.to, "event": m.event})))
        .collect::<Vec<_>>()
        .join("\n")
}

fn check_expect(sim: &Simulator, expected: &[Value], actual: &[Message]) -> Result<(), String> {
    let mismatch = |why: String| {
        format!(
            "{why}\nexpected:\n  {}\nactual:\n{}",
            expected
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n  "),
            show(actual)
        )
    };
    if expected.len() != actual.len() {
        return Err(mismatch(format!(
            "expected {} message(s), got {}",
            expected.len(),
            actual.len()
        )));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        let e = resolve(sim, e)?;
        if let Some(to) = e.get("to") {
            let to: Vec<String> = serde_json::from_value(to.clone())
                .map_err(|_| "`to` must be an array of strings".to_string())?;
            if !same_set(&a.to, &to) {
                return Err(mismatch(format!("message {i}: recipients differ")));
            }
        }
        if let Some(event) = e.get("event") {
            if !contains(a.event.as_value(), event) {
                return Err(mismatch(format!("message {i}: event does not match")));
            }
        }
    }
    Ok(())
}

fn check_error(expected: &Value, actual: &[Message]) -> Result<(), String> {
    let code = expected.get("code");
    let to: Option<Vec<String>> = expected
        .get("to")
        .and_then(|t| serde_json::from_value(t.clone()).ok());
    let found = actual.iter().any(|m| {
        let error = m.event.error();
        error.is_some()
            && code.is_none_or(|c| {
                error
                    .and_then(|e| e.get("code"))
                    .is_some_and(|ac| contains(ac, c))
            })
            && to.as_ref().is_none_or(|t| same_set(&m.to, t))
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "expected an error message {expected}\nactual:\n{}",
            show(actual)
        ))
    }
}

fn check_threds(sim: &mut Simulator, expected: &Value) -> Result<(), String> {
    if let Some(active) = expected.get("active").and_then(Value::as_u64) {
        let live = sim.live_count();
        if live as u64 != active {
            return Err(format!(
                "expected {active} live thred(s), found {live}: {}",
                Value::Array(sim.threds())
            ));
        }
    }
    if let Some(Value::Object(statuses)) = expected.get("status") {
        for (key, want) in statuses {
            let id = match resolve(sim, &json!(key))? {
                Value::String(s) => s,
                _ => key.clone(),
            };
            let got = sim
                .threds()
                .into_iter()
                .find(|t| t.get("id").and_then(Value::as_str) == Some(id.as_str()));
            let got = got
                .and_then(|t| t.get("status").cloned())
                .unwrap_or(Value::Null);
            if &got != want {
                return Err(format!("thred {id}: expected status {want}, found {got}"));
            }
        }
    }
    if let Some(Value::Object(reactions)) = expected.get("reaction") {
        for (key, want) in reactions {
            let id = match resolve(sim, &json!(key))? {
                Value::String(s) => s,
                _ => key.clone(),
            };
            let got = sim.reaction_of(&id);
            if got.as_deref() != want.as_str() {
                return Err(format!(
                    "thred {id}: expected reaction {want}, found {got:?}"
                ));
            }
        }
    }
    Ok(())
}

fn check_history(sim: &mut Simulator, expected: &Value) -> Result<(), String> {
    let expected = expected
        .as_array()
        .ok_or("`expect_history` must be an array")?;
    let history = match sim.input(json!({"$history": true}))?.pop() {
        Some(Output::History(h)) => h,
        _ => Vec::new(),
    };
    let actual: Vec<Value> = history
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    for e in expected {
        let e = resolve(sim, e)?;
        if !actual.iter().any(|a| contains(a, &e)) {
            return Err(format!(
                "no history record matches {e}\nhistory:\n  {}",
                actual
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }
    Ok(())
}
