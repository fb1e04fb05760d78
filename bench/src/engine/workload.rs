//! What one engine measurement runs: the events and the engine's model.

use anyhow::bail;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A workload.
pub enum Workload {
    /// `config/patterns/echo.pattern.json`: `threds` threds, each event continuing one of them.
    Echo {
        /// Live threds the events go to.
        threds: usize,
    },
    /// The reference `downtime` pattern's first step: every event starts a thred (its tasks for
    /// the ERP agent and its question to the operator are the messages).
    Downtime {
        /// The reference system's directory (`srvthreds/`).
        reference: PathBuf,
    },
}

impl Workload {
    /// Its name in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Echo { .. } => "echo",
            Workload::Downtime { .. } => "downtime (first step)",
        }
    }

    /// The engine's `--patterns`, `--sessions` and `--resolver` arguments.
    pub fn model(&self) -> anyhow::Result<Vec<String>> {
        let text = |p: &Path| p.display().to_string();
        Ok(match self {
            Workload::Echo { .. } => vec![
                "--patterns".into(),
                "config/patterns/echo.pattern.json".into(),
            ],
            Workload::Downtime { reference } => {
                let config = reference.join("src/test/config");
                let pattern = config.join("patterns/downtime.pattern.json");
                if !pattern.is_file() {
                    bail!("{} not found (--reference names the srvthreds directory of ../shared/reference)", pattern.display());
                }
                vec![
                    "--patterns".into(),
                    text(&pattern),
                    "--sessions".into(),
                    text(&config.join("sessions/simple_test_sessions_model.json")),
                    "--resolver".into(),
                    text(&config.join("simple_test_resolver_config.json")),
                ]
            }
        })
    }

    /// The participants the workload's messages go to: the bench registers its delivery slot
    /// for them, as the session node holding their connections would (the engine drops messages
    /// for participants no session node holds).
    pub fn recipients(&self) -> &'static [&'static str] {
        match self {
            Workload::Echo { .. } => &["bench"],
            // The downtime pattern's first step publishes to these two addresses; the test
            // resolver config names no agent, so both are participants.
            Workload::Downtime { .. } => &["wonkaInc.erp.agent", "bOompa"],
        }
    }

    /// Event `n` of the run with its key; `threds` are the echo threds to continue.
    pub fn event(&self, n: usize, threds: &[String]) -> (Option<String>, Value) {
        match self {
            Workload::Echo { .. } => {
                let thred = &threds[n % threds.len()];
                let event = json!({"id": format!("bench-{n}"), "type": "org.wt.echo",
                    "thredId": thred, "source": {"id": "bench"},
                    "data": {"content": {"values": {"echoTo": ["bench"], "echoTitle": "b", "echoContent": n}}}});
                (Some(thred.clone()), event)
            }
            Workload::Downtime { .. } => {
                let source = format!("assembly-{}", n % 1000);
                let event = json!({"id": format!("downtime-{n}"), "type": "wonkaInc.downtime",
                    "source": {"id": source, "name": format!("Gobstopper Assembly {}", n % 1000)},
                    "data": {"description": "Widget Jam", "content": {"values": {"errorCode": "EC_1034"}}}});
                (Some(source), event)
            }
        }
    }
}
