//! Behaviour of the thred machine beyond the scenario files: routing, spawn cascades, timers,
//! admin inputs and error routing, driven through the simulator and `Machine::process` directly.

#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::sync::Arc;
use threds_patterns::machine::{
    Counter, Env, Input, LogKind, Machine, Record, StateView, ThredChange,
};
use threds_patterns::model::{Event, SessionsModel, TransitionModel};
use threds_patterns::pattern::{Pattern, PatternSet};
use threds_patterns::sim::{Output, Simulator};
use threds_patterns::thred::{Status, ThredState, Timer};

fn pattern(v: Value) -> Arc<Pattern> {
    Arc::new(
        threds_patterns::load::pattern("test", &v.to_string())
            .unwrap()
            .value,
    )
}

fn engine(patterns: Vec<Value>) -> Machine {
    let mut set = PatternSet::new();
    for p in patterns {
        set.insert(pattern(p));
    }
    let sessions: SessionsModel =
        serde_json::from_value(json!({"groups": [{"name": "ops", "participants": [{"participantId": "op1"}, {"participantId": "op2"}]}]}))
            .unwrap();
    Machine::new(set, sessions, Default::default())
}

fn filter(name: &str, ty: &str, title: &str, to: Value, transition: Option<Value>) -> Value {
    let mut condition = json!({
        "type": "filter", "xpr": format!("$event.type = '{ty}'"),
        "transform": {"eventDataTemplate": {"title": title}}, "publish": {"to": to}
    });
    if let Some(t) = transition {
        condition["transition"] = t;
    }
    json!({"name": name, "condition": condition})
}

fn send(sim: &mut Simulator, event: Value) -> Vec<(Vec<String>, Value)> {
    sim.input(event)
        .unwrap()
        .into_iter()
        .filter_map(|o| match o {
            Output::Message(m) => Some((m.to, m.event.into_value())),
            _ => None,
        })
        .collect()
}

fn titles(messages: &[(Vec<String>, Value)]) -> Vec<String> {
    messages
        .iter()
        .map(|(_, e)| e["data"]["title"].as_str().unwrap_or("").to_string())
        .collect()
}

fn history(sim: &mut Simulator) -> Vec<Record> {
    match sim.input(json!({"$history": true})).unwrap().pop() {
        Some(Output::History(h)) => h,
        _ => Vec::new(),
    }
}

#[test]
fn one_unbound_event_starts_every_matching_pattern_in_load_order() {
    let a = json!({"name": "A", "reactions": [filter("a", "go", "from a", json!(["x"]), None)]});
    let b = json!({"name": "B", "reactions": [filter("b", "go", "from b", json!(["x"]), None)]});
    let mut sim = Simulator::new(engine(vec![a, b]), 0);
    let out = send(
        &mut sim,
        json!({"id": "1", "type": "go", "source": {"id": "p"}}),
    );
    assert_eq!(titles(&out), ["from a", "from b"]);
    assert_eq!(out[0].1["thredId"], "a_1");
    assert_eq!(out[1].1["thredId"], "b_2");
}

#[test]
fn an_and_as_initial_reaction_starts_on_its_first_operand_and_completes_bound() {
    let p = json!({"name": "J", "reactions": [{"name": "both", "condition": {"type": "and", "operands": [
        {"type": "filter", "xpr": "$event.type = 'one'"}, {"type": "filter", "xpr": "$event.type = 'two'"}],
        "transform": {"eventDataTemplate": {"title": "joined"}}, "publish": {"to": ["x"]}}}]});
    let mut sim = Simulator::new(engine(vec![p]), 0);
    assert!(send(
        &mut sim,
        json!({"id": "1", "type": "one", "source": {"id": "p"}})
    )
    .is_empty());
    assert_eq!(sim.live_count(), 1);
    let out = send(
        &mut sim,
        json!({"id": "2", "type": "two", "source": {"id": "p"}, "thredId": "j_1"}),
    );
    assert_eq!(titles(&out), ["joined"]);
}

#[test]
fn terminating_a_parent_cascades_to_children_but_not_siblings() {
    let parent = json!({"name": "Parent", "reactions": [
        {"name": "spawn", "condition": {"type": "filter", "xpr": "$event.type = 'go'",
            "spawn": {"names": ["Kid"], "type": "child"}}},
        {"name": "spawn2", "condition": {"type": "filter", "xpr": "$event.type = 'more'",
            "spawn": {"names": ["kid", "sib"], "type": "sibling"}}},
        {"name": "end", "condition": {"type": "filter", "xpr": "$event.type = 'stop'", "transition": {"name": "$terminate"}}}
    ]});
    let kid =
        json!({"name": "Kid", "reactions": [filter("wait", "never", "-", json!(["x"]), None)]});
    let mut sim = Simulator::new(engine(vec![parent, kid]), 0);
    send(
        &mut sim,
        json!({"id": "1", "type": "go", "source": {"id": "p"}}),
    );
    assert_eq!(sim.live_count(), 2, "parent and child");
    send(
        &mut sim,
        json!({"id": "2", "type": "more", "source": {"id": "p"}, "thredId": "parent_1"}),
    );
    assert_eq!(
        sim.live_count(),
        3,
        "a sibling; the unknown pattern 'sib' is skipped"
    );
    assert!(history(&mut sim).iter().any(|r| matches!(r, Record::Log { kind: LogKind::SpawnSkipped, pattern_id: Some(p), .. } if p == "sib")));
    send(
        &mut sim,
        json!({"id": "3", "type": "stop", "source": {"id": "p"}, "thredId": "parent_1"}),
    );
    let live: Vec<String> = sim
        .threds()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        live,
        ["kid_3"],
        "the child died with its parent, the sibling lives on"
    );
}

#[test]
fn publish_resolves_groups_thred_and_all() {
    let p = json!({"name": "R", "reactions": [
        filter("one", "a", "to group", json!(["$ops", "direct"]), None),
        filter("two", "b", "to thred", json!("$thred"), None),
        filter("three", "c", "to all", json!(["$all"]), None),
    ]});
    let mut sim = Simulator::new(engine(vec![p]), 0);
    let out = send(
        &mut sim,
        json!({"id": "1", "type": "a", "source": {"id": "p"}}),
    );
    assert_eq!(out[0].0, ["op1", "op2", "direct"]);
    let out = send(
        &mut sim,
        json!({"id": "2", "type": "b", "source": {"id": "q"}, "thredId": "r_1"}),
    );
    assert_eq!(out[0].0, ["op1", "op2", "direct", "p"]);
    send(
        &mut sim,
        json!({"id": "3", "type": "zzz", "source": {"id": "other"}}),
    );
    let out = send(
        &mut sim,
        json!({"id": "4", "type": "c", "source": {"id": "q"}, "thredId": "r_1"}),
    );
    assert_eq!(
        out[0].0,
        ["p", "q", "other"],
        "every participant the host has seen"
    );
}

/// A view over explicit state, for driving `Machine::process` directly.
#[derive(Default)]
struct Fixed {
    threds: Vec<ThredState>,
    counter: Counter,
}

impl StateView for Fixed {
    fn thred(&self, id: &str) -> Option<ThredState> {
        self.threds.iter().find(|t| t.id == id).cloned()
    }
    fn unbound_listeners(&self) -> Vec<String> {
        Vec::new()
    }
    fn counter(&self, _: &str) -> Counter {
        self.counter
    }
    fn participants(&self) -> Vec<String> {
        Vec::new()
    }
}

struct Clock(i64, u64);

impl Env for Clock {
    fn now(&self) -> i64 {
        self.0
    }
    fn thred_id(&mut self, p: &Pattern) -> String {
        self.1 += 1;
        format!("{}_{}", p.id, self.1)
    }
    fn event_id(&mut self) -> String {
        self.1 += 1;
        format!("e{}", self.1)
    }
}

fn timed() -> Machine {
    engine(vec![json!({"name": "T", "reactions": [
        {"name": "wait", "condition": {"type": "filter", "xpr": "$event.type = 'go'"},
         "expiry": {"interval": 100, "transition": {"name": "later"}}},
        filter("later", "go", "later", json!(["x"]), None)
    ]})])
}

#[test]
fn stale_and_duplicate_timers_are_ignored() {
    let engine = timed();
    let p = engine.patterns().get("t").unwrap().clone();
    let state = ThredState::new(&p, "t_1".into(), 0);
    let timer = state.timer(&p).unwrap();
    assert_eq!(
        timer,
        Timer {
            thred_id: "t_1".into(),
            due: 100,
            reaction_name: "wait".into(),
            entered_at: 0
        }
    );
    let view = Fixed {
        threds: vec![state],
        ..Fixed::default()
    };
    let fired = engine.process(&view, &Input::Timer(timer.clone()), &mut Clock(100, 0));
    let ThredChange::Saved {
        state: after,
        timer: next,
        ..
    } = &fired.threds[0]
    else {
        panic!("saved")
    };
    assert_eq!(after.current_reaction(), Some("later"));
    assert_eq!(*next, None, "'later' has no expiry");
    // The same timer delivered again, against the new state, does nothing.
    let view = Fixed {
        threds: vec![after.clone()],
        ..Fixed::default()
    };
    let again = engine.process(&view, &Input::Timer(timer), &mut Clock(150, 0));
    assert!(again.threds.is_empty() && again.messages.is_empty());
}

#[test]
fn an_event_after_the_due_time_expires_the_reaction_first() {
    let engine = timed();
    let p = engine.patterns().get("t").unwrap().clone();
    let view = Fixed {
        threds: vec![ThredState::new(&p, "t_1".into(), 0)],
        ..Fixed::default()
    };
    let event = Event::from_value(
        json!({"id": "1", "type": "go", "source": {"id": "p"}, "thredId": "t_1"}),
    )
    .unwrap();
    let out = engine.process(&view, &Input::Event(event), &mut Clock(100, 0));
    assert_eq!(out.messages.len(), 1, "the event met 'later', not 'wait'");
    assert_eq!(out.messages[0].event.as_value()["data"]["title"], "later");
}

#[test]
fn admin_terminate_frees_the_instance_and_admin_transition_replays_a_local() {
    let engine = engine(vec![json!({"name": "A", "maxInstances": 1, "reactions": [
        {"name": "first", "condition": {"type": "filter", "xpr": "$event.type = 'go'",
            "onTrue": {"xpr": "$setLocal('saved', $event)"}}},
        filter("second", "nothing", "-", json!(["x"]), None),
        filter("third", "go", "replayed", json!(["x"]), None),
    ]})]);
    let mut clock = Clock(0, 0);
    let start = Event::from_value(json!({"id": "1", "type": "go", "source": {"id": "p"}})).unwrap();
    let out = engine.process(&Fixed::default(), &Input::Event(start), &mut clock);
    let one = Counter {
        instances: 1,
        last_start: Some(0),
    };
    assert_eq!(
        out.counters,
        vec![("a".to_string(), one), ("@p".to_string(), one)],
        "the pattern's count and its starter's"
    );
    let ThredChange::Saved { state, .. } = &out.threds[0] else {
        panic!()
    };
    let view = Fixed {
        threds: vec![state.clone()],
        counter: Counter {
            instances: 1,
            last_start: Some(0),
        },
    };

    let transition: TransitionModel =
        serde_json::from_value(json!({"name": "third", "input": "local", "localName": "saved"}))
            .unwrap();
    let moved = engine.process(
        &view,
        &Input::Transition {
            thred_id: "a_1".into(),
            transition,
        },
        &mut clock,
    );
    assert_eq!(moved.messages.len(), 1);
    assert_eq!(
        moved.messages[0].event.as_value()["data"]["title"],
        "replayed"
    );

    let bad: TransitionModel = serde_json::from_value(json!({"name": "nowhere"})).unwrap();
    let refused = engine.process(
        &view,
        &Input::Transition {
            thred_id: "a_1".into(),
            transition: bad,
        },
        &mut clock,
    );
    assert!(refused.threds.is_empty());
    assert_eq!(refused.failures[0].error["code"], 4200);

    let ended = engine.process(
        &view,
        &Input::Terminate {
            thred_id: "a_1".into(),
        },
        &mut clock,
    );
    assert!(
        matches!(&ended.threds[0], ThredChange::Removed { state } if state.status == Status::Terminated)
    );
    assert_eq!(
        ended.counters[0].1.instances, 0,
        "admin termination frees the instance"
    );
    let missing = engine.process(
        &Fixed::default(),
        &Input::Terminate {
            thred_id: "a_9".into(),
        },
        &mut clock,
    );
    assert_eq!(missing.failures[0].error["code"], 5203);
}

#[test]
fn a_failing_filter_during_matching_reports_to_the_sender_and_creates_nothing() {
    let p = json!({"name": "Bad", "reactions": [{"condition": {"type": "filter", "xpr": "$error('no')"}}]});
    let mut sim = Simulator::new(engine(vec![p]), 0);
    let out = send(
        &mut sim,
        json!({"id": "1", "type": "go", "source": {"id": "p"}}),
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, ["p"]);
    assert_eq!(out[0].1["re"], "1");
    assert_eq!(out[0].1["data"]["content"]["error"]["code"], 5000);
    assert_eq!(sim.live_count(), 0);
}

#[test]
fn a_runaway_forward_chain_is_stopped_with_an_error() {
    let p = json!({"name": "Loop", "reactions": [{"name": "spin", "condition": {"type": "filter", "xpr": "true",
        "transition": {"name": "spin", "input": "forward"}}}]});
    let mut sim = Simulator::new(engine(vec![p]), 0);
    let out = send(
        &mut sim,
        json!({"id": "1", "type": "go", "source": {"id": "p"}}),
    );
    let cause = out[0].1["data"]["content"]["error"]["cause"]["message"]
        .as_str()
        .unwrap();
    assert!(cause.contains("stopped as a loop"), "{cause}");
    assert_eq!(sim.live_count(), 0);
}

#[test]
fn simulate_output_is_deterministic() {
    let run = || {
        let p = json!({"name": "E", "reactions": [filter("e", "go", "hi", json!(["x"]), Some(json!({"name": "e"})))]});
        let mut sim = Simulator::new(engine(vec![p]), 5);
        let mut lines = Vec::new();
        for i in 0..3 {
            for o in sim
                .input(json!({"id": format!("{i}"), "type": "go", "source": {"id": "p"}}))
                .unwrap()
            {
                lines.push(o.to_json().to_string());
            }
        }
        lines
    };
    assert_eq!(run(), run());
    assert!(run()[0].contains("\"id\":\"evt_1\"") && run()[0].contains("\"thredId\":\"e_1\""));
}

fn codes(messages: &[(Vec<String>, Value)]) -> Vec<(String, i64)> {
    messages
        .iter()
        .filter_map(|(to, e)| {
            let code = e["data"]["content"]["error"]["code"].as_i64()?;
            Some((to.join(","), code))
        })
        .collect()
}

#[test]
fn deployment_quotas_refuse_starts_with_4291_to_the_sender_and_free_up_when_threds_end() {
    use threds_patterns::machine::Quotas;
    // One live thred per `open`, ended by a bound `close`; no maxInstances of its own.
    let open_close = json!({"name": "Q", "reactions": [
        filter("open", "open", "opened", json!("$xpr($event.source.id)"), None),
        filter("close", "close", "closed", json!("$xpr($event.source.id)"), Some(json!({"name": "$terminate"}))),
    ]});
    let capped = json!({"name": "C", "maxInstances": 5, "reactions": [
        filter("c", "capped", "c", json!("$xpr($event.source.id)"), Some(json!({"name": "c"}))),
    ]});
    let quotas = Quotas {
        default_max_instances: 3,
        max_threds_per_participant: 2,
        ..Quotas::default()
    };
    let mut sim = Simulator::new(engine(vec![open_close, capped]).with_quotas(quotas), 0);
    let open = |id: &str, who: &str| json!({"id": id, "type": "open", "source": {"id": who}});

    // Per participant: alice's third live thred is refused; bob is not affected.
    assert_eq!(titles(&send(&mut sim, open("a1", "alice"))), ["opened"]);
    assert_eq!(titles(&send(&mut sim, open("a2", "alice"))), ["opened"]);
    let refused = send(&mut sim, open("a3", "alice"));
    assert_eq!(codes(&refused), [("alice".to_string(), 4291)]);
    let message = refused[0].1["data"]["content"]["error"]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("max_threds_per_participant = 2"),
        "{message}"
    );
    assert_eq!(sim.live_count(), 2);
    assert_eq!(titles(&send(&mut sim, open("b1", "bob"))), ["opened"]);

    // Per pattern (no maxInstances): the fourth live thred of Q is refused, whoever asks.
    assert_eq!(
        codes(&send(&mut sim, open("c1", "carol"))),
        [("carol".to_string(), 4291)]
    );
    let errors: Vec<_> = history(&mut sim)
        .into_iter()
        .filter(|r| {
            matches!(
                r,
                Record::Log {
                    kind: LogKind::Error,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(
        errors.len(),
        2,
        "each refusal is in the history: {errors:?}"
    );

    // Ending one of alice's threds frees one place for her (and for the pattern).
    let first = sim.thred(1).unwrap().to_string();
    let close = json!({"id": "x1", "type": "close", "thredId": first, "source": {"id": "alice"}});
    assert_eq!(titles(&send(&mut sim, close)), ["closed"]);
    assert_eq!(titles(&send(&mut sim, open("a4", "alice"))), ["opened"]);

    // A pattern's own maxInstances still applies, above the deployment default.
    for n in 0..5 {
        let who = format!("p{n}");
        let e = json!({"id": format!("k{n}"), "type": "capped", "source": {"id": who}});
        assert_eq!(titles(&send(&mut sim, e)), ["c"], "start {n}");
    }
    let sixth = json!({"id": "k5", "type": "capped", "source": {"id": "p5"}});
    assert!(
        send(&mut sim, sixth).is_empty(),
        "silently vetoed, as the spec says"
    );
}

#[test]
fn a_step_that_would_outgrow_the_state_quota_is_refused_and_changes_nothing() {
    use threds_patterns::machine::Quotas;
    let grow = json!({"name": "G", "reactions": [{"name": "g", "condition": {
        "type": "filter", "xpr": "$event.type = 'add'",
        "onTrue": {"xpr": "$setLocal('items', $append($local('items') ? $local('items') : [], $event.data.content.values.item))"},
        "transform": {"eventDataTemplate": {"title": "$xpr($string($count($local('items'))))"}},
        "publish": {"to": "$xpr($event.source.id)"},
        "transition": {"name": "g"}
    }}]});
    let quotas = Quotas {
        max_state_bytes: 2_000,
        ..Quotas::default()
    };
    let mut sim = Simulator::new(engine(vec![grow]).with_quotas(quotas), 0);
    let add = |id: String, thred: Option<&str>| add_item(id, thred, 400);
    assert_eq!(titles(&send(&mut sim, add("e0".into(), None))), ["1"]);
    let thred = sim.thred(1).unwrap().to_string();
    let mut refused = None;
    for n in 1..10 {
        let out = send(&mut sim, add(format!("e{n}"), Some(&thred)));
        if !codes(&out).is_empty() {
            refused = Some((n, out));
            break;
        }
        assert_eq!(titles(&out), [(n + 1).to_string()]);
    }
    let (n, out) = refused.expect("the state quota refuses a step");
    assert_eq!(codes(&out), [("alice".to_string(), 4291)]);
    assert!(
        n >= 3,
        "steps under the quota were applied (refused at {n})"
    );
    // The refused step left the state as it was: a small item still fits, as item n + 1.
    let small = send(&mut sim, add_item("small".into(), Some(&thred), 1));
    assert_eq!(titles(&small), [(n + 1).to_string()]);
}

fn add_item(id: String, thred: Option<&str>, size: usize) -> Value {
    let mut e = json!({"id": id, "type": "add", "source": {"id": "alice"},
        "data": {"content": {"values": {"item": "x".repeat(size)}}}});
    if let Some(t) = thred {
        e["thredId"] = json!(t);
    }
    e
}

#[test]
fn the_deployment_expression_budgets_apply_to_pattern_expressions() {
    use threds_patterns::expr::Limits;
    use threds_patterns::machine::Quotas;
    let big = json!({"name": "B", "reactions": [{"name": "b", "condition": {
        "type": "filter", "xpr": "$event.type = 'big' and $count([1..2000]) > 0",
        "transform": {"eventDataTemplate": {"title": "built"}},
        "publish": {"to": "$xpr($event.source.id)"}
    }}]});
    let event = json!({"id": "1", "type": "big", "source": {"id": "alice"}});
    let mut roomy = Simulator::new(engine(vec![big.clone()]), 0);
    assert_eq!(titles(&send(&mut roomy, event.clone())), ["built"]);
    let quotas = Quotas {
        expression: Limits {
            max_sequence_len: 1_000,
            ..Limits::default()
        },
        ..Quotas::default()
    };
    let mut tight = Simulator::new(engine(vec![big]).with_quotas(quotas), 0);
    let out = send(&mut tight, event);
    assert_eq!(codes(&out), [("alice".to_string(), 5000)]);
    let error = out[0].1["data"]["content"]["error"].to_string();
    assert!(
        error.contains("U1002") && error.contains("max_sequence_len"),
        "{error}"
    );
}

#[test]
fn a_refused_event_is_recorded_and_its_sender_told_with_4291() {
    let engine = timed();
    let event = Event::from_value(
        json!({"id": "big1", "type": "go", "source": {"id": "p"}, "thredId": "t_9"}),
    )
    .unwrap();
    let input = Input::Refused {
        event,
        reason: "an event of 2000000 bytes exceeds the limit".into(),
    };
    let out = engine.process(&Fixed::default(), &input, &mut Clock(5, 0));
    assert!(out.threds.is_empty(), "nothing is stepped");
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.messages[0].to, ["p"], "the sender");
    let told = out.messages[0].event.as_value();
    assert_eq!(told["re"], "big1");
    assert_eq!(told["data"]["content"]["error"]["code"], 4291);
    assert!(told["data"]["content"]["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("exceeds the limit")));
    assert!(matches!(&out.history[0], Record::Event { event, .. } if event.id() == "big1"));
    assert!(out.history.iter().any(|r| matches!(
        r,
        Record::Log {
            kind: LogKind::Error,
            ..
        }
    )));
}

/// `pattern` as version `version` of its id.
fn versioned(v: Value, version: u32) -> Arc<Pattern> {
    let mut p = threds_patterns::load::pattern("test", &v.to_string())
        .unwrap()
        .value;
    p.version = version;
    Arc::new(p)
}

#[test]
fn a_thred_runs_the_version_it_started_on_and_new_threds_the_active_one() {
    let v1 = json!({"name": "V", "reactions": [
        filter("first", "go", "v1 first", json!(["x"]), Some(json!({"name": "second"}))),
        filter("second", "go", "v1 second", json!(["x"]), None)
    ]});
    let v2 = json!({"name": "V", "reactions": [
        filter("start", "go", "v2 start", json!(["x"]), Some(json!({"name": "next"}))),
        filter("next", "go", "v2 next", json!(["x"]), None)
    ]});
    let mut set = PatternSet::new();
    set.insert(versioned(v1, 1));
    let sessions = SessionsModel::default();
    let mut sim = Simulator::new(
        Machine::new(set.clone(), sessions.clone(), Default::default()),
        0,
    );
    let out = send(
        &mut sim,
        json!({"id": "1", "type": "go", "source": {"id": "p"}}),
    );
    assert_eq!(titles(&out), ["v1 first"]);
    let old = out[0].1["thredId"].as_str().unwrap().to_string();

    // Version 2 becomes active; version 1 is kept for the thred that runs it.
    set.insert(versioned(v2, 2));
    assert_eq!(set.get("v").unwrap().version, 2);
    assert_eq!(set.version("v", 1).unwrap().version, 1);
    sim.replace_engine(Machine::new(set, sessions, Default::default()));
    let out = send(
        &mut sim,
        json!({"id": "2", "type": "go", "source": {"id": "p"}, "thredId": old}),
    );
    assert_eq!(
        titles(&out),
        ["v1 second"],
        "the live thred stays on version 1"
    );
    let out = send(
        &mut sim,
        json!({"id": "3", "type": "go", "source": {"id": "q"}}),
    );
    assert_eq!(
        titles(&out),
        ["v2 start"],
        "a new thred starts on version 2"
    );
}

#[test]
fn a_thred_migrates_only_to_a_version_that_has_its_current_reaction() {
    let v1 = json!({"name": "V", "reactions": [
        filter("first", "go", "v1 first", json!(["x"]), Some(json!({"name": "second"}))),
        filter("second", "go", "v1 second", json!(["x"]), None)
    ]});
    let v2 = json!({"name": "V", "reactions": [
        filter("first", "go", "v2 first", json!(["x"]), None)
    ]});
    let v3 = json!({"name": "V", "reactions": [
        filter("first", "go", "v3 first", json!(["x"]), Some(json!({"name": "second"}))),
        filter("second", "go", "v3 second", json!(["x"]), None)
    ]});
    let mut set = PatternSet::new();
    set.insert(versioned(v1, 1));
    let first = set.get("v").unwrap().clone();
    set.insert(versioned(v2, 2));
    set.insert(versioned(v3, 3));
    let engine = Machine::new(set, SessionsModel::default(), Default::default());
    let mut state = ThredState::new(&first, "v_1".into(), 0);
    state.reaction_store.as_mut().unwrap().reaction_name = "second".into();
    assert_eq!(state.pattern_version, Some(1));
    let view = Fixed {
        threds: vec![state],
        ..Fixed::default()
    };
    let migrate = |version| Input::Migrate {
        thred_id: "v_1".into(),
        version,
    };

    // Version 2 has no reaction `second`: refused, with the reason; nothing changes.
    let refused = engine.process(&view, &migrate(2), &mut Clock(10, 0));
    assert!(refused.threds.is_empty());
    let reason = format!("{:?}", refused.failures);
    assert!(reason.contains("does not have"), "{reason}");
    // Version 3 has it: the thred runs version 3 from now on.
    let moved = engine.process(&view, &migrate(3), &mut Clock(10, 0));
    let ThredChange::Saved { state, .. } = &moved.threds[0] else {
        panic!("saved")
    };
    assert_eq!(state.pattern_version, Some(3));
    assert_eq!(state.current_reaction(), Some("second"));
    // A version that is not loaded: refused.
    let missing = engine.process(&view, &migrate(9), &mut Clock(10, 0));
    assert!(format!("{:?}", missing.failures).contains("not loaded"));
}
