//! Fan-out of operations every engine must apply, over the control topic ([`Topology::control`]).
//!
//! An admin request reaches one engine (the owner of its partition). What must happen on every
//! engine — today, pattern reloads — that engine applies itself and then appends to the control
//! topic; every engine reads the control topic in a consumer group of its own and applies what
//! other engines announced. A reload announcement names the version of the pattern registry (in
//! the thred store) the announcing engine wrote, and the others load the patterns from there, so
//! every engine runs exactly what the announcing one loaded. Applying an announcement twice is
//! harmless, so the control topic is read at least once like any other.

use crate::bus::{self, Bus, Consumer};
use crate::topology::Topology;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// An operation for every engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Announcement {
    /// Reload one pattern (`patternId`) or, without one, every pattern.
    #[serde(rename_all = "camelCase")]
    Reload {
        /// The pattern, or `None` for all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern_id: Option<String>,
        /// The engine that applied it first (it skips its own announcement).
        origin: String,
        /// The pattern registry's version holding the reloaded patterns.
        #[serde(default)]
        version: u64,
    },
}

/// Announces operations on the control topic.
#[derive(Clone)]
pub struct Announcer {
    bus: Arc<dyn Bus>,
    node: String,
}

impl Announcer {
    /// Announces as engine `node` on `bus`.
    pub fn new(bus: Arc<dyn Bus>, node: impl Into<String>) -> Announcer {
        Announcer {
            bus,
            node: node.into(),
        }
    }

    /// This engine's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Appends `announcement` to the control topic.
    pub async fn announce(&self, announcement: &Announcement) -> Result<(), bus::Error> {
        let payload =
            serde_json::to_vec(announcement).map_err(|e| bus::Error::Backend(e.to_string()))?;
        self.bus
            .append(
                Topology::default().control(),
                Some(0),
                None,
                payload,
                Vec::new(),
            )
            .await
            .map(|_| ())
    }
}

/// Applies the announcements of other engines read by `consumer` with `apply`, until `shutdown`
/// completes.
pub async fn listen<F>(
    mut consumer: Box<dyn Consumer>,
    node: String,
    apply: impl Fn(Announcement) -> F,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: std::future::Future<Output = Result<(), String>>,
{
    tokio::pin!(shutdown);
    loop {
        let polled = tokio::select! {
            p = consumer.poll(64, Duration::from_millis(200)) => p,
            () = &mut shutdown => break,
        };
        let polled = match polled {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "control: poll failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut commits = Vec::new();
        for record in polled.records {
            match serde_json::from_slice::<Announcement>(&record.payload) {
                Ok(Announcement::Reload { origin, .. }) if origin == node => {}
                Ok(announcement) => {
                    let shown = format!("{announcement:?}");
                    match apply(announcement).await {
                        Ok(()) => tracing::info!(announcement = %shown, "control: applied"),
                        Err(e) => {
                            tracing::error!(announcement = %shown, error = %e, "control: could not apply")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(position = ?record.position, error = %e, "control: not an announcement; skipped")
                }
            }
            let mut next = record.position.clone();
            next.offset += 1;
            commits.push(next);
        }
        if let Some(last) = commits.pop() {
            if let Err(e) = consumer.commit(&[last]).await {
                tracing::warn!(error = %e, "control: offset commit failed");
            }
        }
    }
    if let Err(e) = consumer.leave().await {
        tracing::warn!(error = %e, "control: leaving the group failed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn announcements_read_as_they_are_written() {
        let one = Announcement::Reload {
            pattern_id: Some("echo".into()),
            origin: "engine-a".into(),
            version: 3,
        };
        let text = serde_json::to_string(&one).unwrap();
        assert_eq!(
            text,
            r#"{"op":"reload","patternId":"echo","origin":"engine-a","version":3}"#
        );
        assert_eq!(serde_json::from_str::<Announcement>(&text).unwrap(), one);
        let all: Announcement = serde_json::from_str(r#"{"op":"reload","origin":"b"}"#).unwrap();
        assert_eq!(
            all,
            Announcement::Reload {
                pattern_id: None,
                origin: "b".into(),
                version: 0
            }
        );
    }
}
