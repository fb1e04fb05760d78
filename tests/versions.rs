//! Pattern versions end to end on `threds dev`: live threds keep the version they started on, new
//! threds take the pushed one, migrations are refused when the thred's reaction is missing, a
//! rollback brings the earlier version back, and `threds patterns push --check` refuses a version
//! whose scenarios fail.

#![allow(clippy::unwrap_used)]

mod support;

use serde_json::{json, Value};
use std::path::Path;
use support::{control, flow, pattern_dir, reply};
use threds_testkit::client::Client;

const SYS: &str = "org.wt.control.sysControl";

/// Sends an admin request and answers its reply's `data.content`.
async fn admin(client: &mut Client, id: &str, values: Value) -> Value {
    client.send(control(id, SYS, values)).await.unwrap();
    reply(client, id).await["data"]["content"].clone()
}

/// Sends `ty` (to thred `thred`, when given) and answers the thred of the reply titled `title`.
async fn step(client: &mut Client, id: &str, ty: &str, thred: Option<&str>, title: &str) -> String {
    let mut event = json!({"id": id, "type": ty});
    if let Some(t) = thred {
        event["thredId"] = json!(t);
    }
    client.send(event).await.unwrap();
    let m = client.message(title).await.unwrap();
    m["event"]["thredId"].as_str().unwrap().to_string()
}

fn versions_of(listed: &Value) -> Vec<(u64, bool, u64)> {
    listed["values"]["patterns"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["active"].as_bool().unwrap(),
                v["liveThreds"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_threds_keep_their_version_while_new_ones_take_the_pushed_one() {
    let dir = pattern_dir(&[("flow", flow("v1"))]);
    let server = support::dev(&["--patterns", dir.path().to_str().unwrap()]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let mut root = server.connect("root", &["admin"]).await.unwrap();

    // Two threds on v1: `a` waits at `wait`, `b` goes on to `finish`.
    let a = step(&mut alice, "a1", "f.start", None, "v1 started").await;
    let b = step(&mut alice, "b1", "f.start", None, "v1 started").await;
    step(&mut alice, "b2", "f.next", Some(&b), "v1 waited").await;
    let listed = admin(&mut root, "l1", json!({"op": "listPatternVersions"})).await;
    assert_eq!(versions_of(&listed), vec![(1, true, 2)], "{listed}");
    assert!(
        listed["values"]["patterns"][0]["versions"][0]["origin"]
            .as_str()
            .unwrap()
            .starts_with("file:"),
        "{listed}"
    );

    // Push v2, which renames `wait` to `hold`.
    let pushed = admin(
        &mut root,
        "p1",
        json!({"op": "pushPatterns", "patterns": [flow("v2")]}),
    )
    .await;
    let p = &pushed["values"]["pushed"][0];
    assert_eq!(
        (&p["version"], &p["new"], &p["active"], &p["wasActive"]),
        (&json!(2), &json!(true), &json!(true), &json!(1)),
        "{pushed}"
    );
    // Pushing the same content again is not a new version.
    let again = admin(
        &mut root,
        "p2",
        json!({"op": "pushPatterns", "patterns": [flow("v2").to_string()]}),
    )
    .await;
    assert_eq!(again["values"]["pushed"][0]["new"], false, "{again}");

    // New threds run v2.
    let c = step(&mut alice, "c1", "f.start", None, "v2 started").await;

    // `a` is at `wait`, which v2 does not have: its migration is refused with the reason.
    let refused = admin(
        &mut root,
        "m1",
        json!({"op": "migrateThred", "thredId": a, "version": 2}),
    )
    .await;
    assert_eq!(refused["error"]["code"], 4200, "{refused}");
    let reason = refused["error"]["message"].as_str().unwrap();
    assert!(
        reason.contains("wait") && reason.contains("version 2"),
        "{refused}"
    );
    // The bulk form reports it too, and moves `b` (at `finish`, which v2 has).
    let bulk = admin(
        &mut root,
        "m2",
        json!({"op": "migrateThreds", "patternId": "flow", "version": 2, "fromVersion": 1}),
    )
    .await;
    assert_eq!(bulk["values"]["migrated"], 1, "{bulk}");
    assert_eq!(
        bulk["values"]["refused"][0]["thredId"],
        a.as_str(),
        "{bulk}"
    );

    // getThreds shows each thred's version.
    let listed = admin(
        &mut root,
        "g1",
        json!({"op": "getThreds", "thredIds": [a, b, c]}),
    )
    .await;
    let version_of = |id: &str| {
        listed["values"]["threds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["patternVersion"].clone())
    };
    assert_eq!(version_of(&a), Some(json!(1)), "{listed}");
    assert_eq!(version_of(&b), Some(json!(2)), "{listed}");
    assert_eq!(version_of(&c), Some(json!(2)), "{listed}");

    // `a` runs v1 to its end; `b` finishes on v2, where it was moved.
    step(&mut alice, "a2", "f.next", Some(&a), "v1 waited").await;
    step(&mut alice, "a3", "f.end", Some(&a), "v1 finished").await;
    step(&mut alice, "b3", "f.end", Some(&b), "v2 finished").await;
    step(&mut alice, "c2", "f.next", Some(&c), "v2 waited").await;
    let listed = admin(&mut root, "l2", json!({"op": "listPatternVersions"})).await;
    assert_eq!(
        versions_of(&listed),
        vec![(1, false, 0), (2, true, 1)],
        "{listed}"
    );

    // Rollback: v1 is active again for new threds; `c` stays on v2.
    let back = admin(
        &mut root,
        "r1",
        json!({"op": "rollbackPattern", "patternId": "flow"}),
    )
    .await;
    assert_eq!(
        (&back["values"]["active"], &back["values"]["wasActive"]),
        (&json!(1), &json!(2)),
        "{back}"
    );
    step(&mut alice, "d1", "f.start", None, "v1 started").await;
    step(&mut alice, "c3", "f.end", Some(&c), "v2 finished").await;
    let nothing = admin(
        &mut root,
        "r2",
        json!({"op": "rollbackPattern", "patternId": "flow"}),
    )
    .await;
    assert_eq!(nothing["error"]["code"], 5201, "{nothing}");
}

/// `threds patterns push` run against the dev server as `root` (an admin).
fn cli(server: &threds_testkit::rig::Process, args: &[&str]) -> (bool, String) {
    let token = server.token("root", &["admin"]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_threds"))
        .arg("patterns")
        .args(args)
        .args(["--url", &format!("http://{}", server.addr())])
        .env("THREDS_TOKEN", token)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A scenario for pattern `flow` that expects the title `said` after a start.
fn scenario(dir: &Path, said: &str) {
    let patterns = dir.join("patterns");
    std::fs::create_dir_all(&patterns).unwrap();
    std::fs::write(patterns.join("flow.pattern.json"), flow("v1").to_string()).unwrap();
    let text = json!({"name": "flow starts", "patterns": ["patterns/flow.pattern.json"], "steps": [
        {"send": {"id": "1", "type": "f.start", "source": {"id": "alice"}}},
        {"expect": [{"to": ["alice"], "event": {"data": {"title": said}}}]},
    ]});
    std::fs::write(dir.join("flow.scenario.json"), text.to_string()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_check_refuses_a_version_whose_scenarios_fail() {
    let dir = pattern_dir(&[("flow", flow("v1"))]);
    let server = support::dev(&["--patterns", dir.path().to_str().unwrap()]);
    let candidate = pattern_dir(&[("flow", flow("v2"))]);
    let candidate = candidate.path().join("flow.pattern.json");
    let candidate = candidate.to_str().unwrap();

    // The recorded scenario expects v1's greeting: v2 fails it and is not pushed.
    let old = tempfile::tempdir().unwrap();
    scenario(old.path(), "v1 started");
    let check = old.path().to_str().unwrap();
    let (ok, out) = cli(&server, &["push", candidate, "--check", check]);
    assert!(!ok, "a failing check must fail the push:\n{out}");
    assert!(out.contains("reactions removed: wait"), "{out}");
    assert!(out.contains("not pushed: 1 scenario(s) failed"), "{out}");
    let (ok, out) = cli(&server, &["list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("flow (active 1)"),
        "the active version is untouched:\n{out}"
    );
    assert!(!out.contains("   2  "), "no version 2:\n{out}");

    // The active version still runs.
    let mut alice = server.connect("alice", &[]).await.unwrap();
    step(&mut alice, "a1", "f.start", None, "v1 started").await;

    // With scenarios updated for v2 the push goes through and v2 is active.
    let new = tempfile::tempdir().unwrap();
    scenario(new.path(), "v2 started");
    let check = new.path().to_str().unwrap();
    let (ok, out) = cli(&server, &["push", candidate, "--check", check]);
    assert!(ok, "{out}");
    assert!(
        out.contains("flow: version 2 pushed, active (was active: 1)"),
        "{out}"
    );
    step(&mut alice, "a2", "f.start", None, "v2 started").await;
    let (ok, out) = cli(&server, &["diff", "flow"]);
    assert!(ok && out.contains("version 1 -> 2"), "{out}");
    let (ok, out) = cli(&server, &["rollback", "flow"]);
    assert!(ok && out.contains("rolled back to version 1"), "{out}");
    step(&mut alice, "a3", "f.start", None, "v1 started").await;
}

/// A reload keeps SrvThreds' meaning: live threds move to the reloaded definition — except one
/// whose current reaction it no longer has, which stays on its version and is named in the reply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moves_live_threds_along_unless_their_reaction_is_gone() {
    let dir = pattern_dir(&[("flow", flow("v1"))]);
    let server = support::dev(&["--patterns", dir.path().to_str().unwrap()]);
    let mut alice = server.connect("alice", &[]).await.unwrap();
    let mut root = server.connect("root", &["admin"]).await.unwrap();
    let waiting = step(&mut alice, "a1", "f.start", None, "v1 started").await;
    let finishing = step(&mut alice, "b1", "f.start", None, "v1 started").await;
    step(&mut alice, "b2", "f.next", Some(&finishing), "v1 waited").await;

    std::fs::write(dir.path().join("flow.pattern.json"), flow("v2").to_string()).unwrap();
    let reloaded = admin(
        &mut root,
        "r1",
        json!({"op": "reloadPattern", "patternId": "flow"}),
    )
    .await;
    let values = &reloaded["values"];
    assert_eq!(values["pushed"][0]["version"], 2, "{reloaded}");
    assert_eq!(
        values["notMoved"].as_array().unwrap().len(),
        1,
        "{reloaded}"
    );
    assert_eq!(
        values["notMoved"][0]["thredId"],
        waiting.as_str(),
        "{reloaded}"
    );

    // The thred at `finish` runs the reloaded definition; the one at `wait` keeps v1.
    step(&mut alice, "b3", "f.end", Some(&finishing), "v2 finished").await;
    step(&mut alice, "a2", "f.next", Some(&waiting), "v1 waited").await;
}
