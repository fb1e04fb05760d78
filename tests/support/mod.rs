//! What the end-to-end tests share beyond `threds-testkit`: the `threds` binary under test,
//! started from the repository root, the distributed deployment's infrastructure, pattern
//! directories, and the reference material.

#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use threds_runtime::topology::Topology;
use threds_testkit::deployment::Infrastructure;
use threds_testkit::rig::{Launcher, Process};
use threds_testkit::token::Secret;

/// The secret every test server and token uses.
pub const SECRET: &str = "e2e-test-secret";

/// Partitions of the events topic of the distributed deployment under test.
pub const PARTITIONS: u32 = 4;

/// The names of the distributed deployment under test.
pub const TOPOLOGY: Topology = Topology::new(PARTITIONS);

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shared reference material, when present.
pub fn reference() -> Option<PathBuf> {
    let p = repo().join("../shared/reference/srvthreds");
    p.is_dir().then_some(p)
}

/// Starts the `threds` under test: from the repository root, with [`SECRET`], no configuration
/// file unless a test names one, logging at `$E2E_LOG` (default `info`) echoed to stderr.
pub fn threds() -> Launcher {
    Launcher::new(env!("CARGO_BIN_EXE_threds"), Secret::new(SECRET))
        .dir(repo())
        .config("/nonexistent/threds.toml")
        .log_filter(std::env::var("E2E_LOG").unwrap_or_else(|_| "info".into()))
}

/// A ready `threds dev` with `args`.
pub fn dev(args: &[&str]) -> Process {
    threds().start("dev", args, &[]).unwrap()
}

/// A ready `threds <command>` of the distributed deployment on `infra`, as node `node`.
pub fn node(infra: &Infrastructure, command: &str, node: &str, args: &[&str]) -> Process {
    threds().start(command, args, &infra.env(node)).unwrap()
}

/// The mock Kafka cluster (in this process) with every topic of [`TOPOLOGY`], and a
/// `redis-server`.
pub fn infrastructure() -> Infrastructure {
    Infrastructure::start(PARTITIONS).unwrap()
}

/// A temporary directory of patterns for one test.
pub fn pattern_dir(patterns: &[(&str, Value)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, p) in patterns {
        std::fs::write(
            dir.path().join(format!("{name}.pattern.json")),
            p.to_string(),
        )
        .unwrap();
    }
    dir
}

/// Pattern `flow`, version `tag` (`v1` or `v2`): `start` → `middle` → `finish`; v2 calls its
/// middle reaction `hold` instead of `wait`. Every reaction tells the sender which version ran
/// it (`<tag> started`, `<tag> waited`, `<tag> finished`).
pub fn flow(tag: &str) -> Value {
    let middle = if tag == "v1" { "wait" } else { "hold" };
    let step = |name: &str, ty: &str, said: &str, transition: Value| {
        json!({"name": name, "condition": {"type": "filter", "xpr": format!("$event.type = '{ty}'"),
            "transform": {"eventDataTemplate": {"title": format!("{tag} {said}")}},
            "publish": {"to": ["$xpr( $event.source.id )"]},
            "transition": transition}})
    };
    json!({"id": "flow", "name": "Flow", "reactions": [
        step("start", "f.start", "started", json!({"name": "$next"})),
        step(middle, "f.next", "waited", json!({"name": "$next"})),
        step("finish", "f.end", "finished", json!({"name": "$terminate"})),
    ]})
}

/// A control event (`kind`, e.g. `org.wt.control.sysControl`) with `values`, as clients send it.
pub fn control(id: &str, kind: &str, values: Value) -> Value {
    json!({"id": id, "type": kind, "thredId": "SYSTEM", "data": {"content": {"values": values}}})
}

/// The reply to control request `id` (the event).
pub async fn reply(client: &mut threds_testkit::client::Client, id: &str) -> Value {
    let id = id.to_string();
    client
        .frame(
            move |f| f["message"]["event"]["re"] == id.as_str(),
            std::time::Duration::from_secs(10),
        )
        .await
        .unwrap()["message"]["event"]
        .clone()
}

/// Wall-clock time, epoch ms (the processes run on this machine's clock).
pub fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// The engine holding the lease of events partition `partition`, if any.
pub fn owner_of(redis: &threds_testkit::redis::RedisServer, partition: u32) -> Option<String> {
    lease_of(redis, partition).map(|(owner, _)| owner)
}

/// The holder of events partition `partition`'s lease and the lease's fencing token, if held.
pub fn lease_of(
    redis: &threds_testkit::redis::RedisServer,
    partition: u32,
) -> Option<(String, u64)> {
    let fence =
        threds_runtime::topology::StoreKeys::default().fence(&TOPOLOGY.partition_lease(partition));
    let field = |name: &str| {
        let value = redis.command(&format!("HGET {fence} {name}")).ok()?;
        Some(value.trim().to_string()).filter(|v| !v.is_empty())
    };
    Some((field("owner")?, field("token")?.parse().ok()?))
}
