//! Fan-out of operations every engine must apply, over the control topic ([`Topology::control`]).
//!
//! An admin request reaches one engine (the owner of its partition). What must happen on every
//! engine — pattern reloads, `watchThreds` registrations — that engine applies itself and then appends to the control
//! topic; every engine reads the control topic in a consumer group of its own and applies what
//! other engines announced. A reload announcement names the version of the pattern registry (in
//! the thred store) the announcing engine wrote, and the others load the patterns from there, so
//! every engine runs exactly what the announcing one loaded. Applying an announcement twice is
//! harmless, so the control topic is read at least once like any other.

use crate::bus::driver::{self, Fatal, Handler};
use crate::bus::{self, Bus, Consumer, Position, Record};
use crate::telemetry::Metered;
use crate::topology::Topology;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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
    /// A `watchThreds` registration (`directive` `start`, `renew` or `stop`): every engine tells
    /// the watcher about the threds it steps, so a watcher sees every partition's changes.
    #[serde(rename_all = "camelCase")]
    Watch {
        /// Who is told.
        participant: String,
        /// The registration request's id (the `re` of every notification).
        re: String,
        /// `start`, `renew` or `stop`.
        directive: String,
        /// When the announcing engine applied it, epoch ms (the registration lapses after
        /// [`super::watch::WATCH_TTL_MS`] from then).
        at: i64,
        /// The engine that applied it first.
        origin: String,
    },
}

impl Announcement {
    /// The engine that announced it.
    pub fn origin(&self) -> &str {
        match self {
            Announcement::Reload { origin, .. } | Announcement::Watch { origin, .. } => origin,
        }
    }
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

/// Applies the announcements of other engines with `apply` (the control topic's
/// [`Handler`]); its own announcements are skipped, and an announcement that cannot be applied is
/// logged and passed over (the next reload announcement supersedes it).
pub struct Listener<A> {
    node: String,
    apply: A,
}

impl<A> Listener<A> {
    /// The listener of engine `node`.
    pub fn new(node: impl Into<String>, apply: A) -> Listener<A> {
        Listener {
            node: node.into(),
            apply,
        }
    }
}

#[async_trait(?Send)]
impl<A, F, E> Handler for Listener<A>
where
    A: Fn(Announcement) -> F,
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        let mut handled = Vec::with_capacity(records.len());
        for record in records {
            match serde_json::from_slice::<Announcement>(&record.payload) {
                Ok(announcement) if announcement.origin() == self.node => {}
                Ok(announcement) => {
                    let shown = format!("{announcement:?}");
                    // Watch registrations are renewed every few seconds: not worth an info line.
                    let routine = matches!(announcement, Announcement::Watch { .. });
                    match (self.apply)(announcement).await {
                        Ok(()) if routine => {
                            tracing::debug!(announcement = %shown, "control: applied")
                        }
                        Ok(()) => tracing::info!(announcement = %shown, "control: applied"),
                        Err(e) => {
                            tracing::error!(code = crate::codes::RELOAD_FAILED, announcement = %shown, error = %e, "control: could not apply")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(position = ?record.position, error = %e, "control: not an announcement; skipped")
                }
            }
            handled.push(Position {
                offset: record.position.offset + 1,
                ..record.position
            });
        }
        Ok(handled)
    }
}

/// Applies the announcements of other engines read by `consumer` with `apply`, until `shutdown`.
pub async fn listen<A, F, E>(
    consumer: Box<dyn Consumer>,
    node: String,
    apply: A,
    shutdown: CancellationToken,
) -> Result<(), Fatal>
where
    A: Fn(Announcement) -> F,
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut listener = Listener::new(node, apply);
    let options = driver::Options::new("control");
    driver::run(consumer, &mut listener, &options, &Metered, &shutdown).await
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
        let watch = Announcement::Watch {
            participant: "admin".into(),
            re: "w1".into(),
            directive: "start".into(),
            at: 1_000,
            origin: "engine-a".into(),
        };
        let text = serde_json::to_string(&watch).unwrap();
        assert_eq!(
            text,
            r#"{"op":"watch","participant":"admin","re":"w1","directive":"start","at":1000,"origin":"engine-a"}"#
        );
        assert_eq!(serde_json::from_str::<Announcement>(&text).unwrap(), watch);
        assert_eq!(watch.origin(), "engine-a");
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

    #[tokio::test]
    async fn a_listener_applies_others_announcements_skips_its_own_and_handles_every_record() {
        let applied = std::cell::RefCell::new(Vec::new());
        let mut listener = Listener::new("engine-a", |a: Announcement| {
            applied.borrow_mut().push(a);
            async { Ok::<(), String>(()) }
        });
        let reload = |origin: &str| Announcement::Reload {
            pattern_id: None,
            origin: origin.into(),
            version: 1,
        };
        let record = |offset: u64, payload: Vec<u8>| Record {
            position: Position {
                topic: "control".into(),
                partition: 0,
                offset,
            },
            key: None,
            payload,
            headers: Vec::new(),
            timestamp: 0,
        };
        let records = vec![
            record(0, serde_json::to_vec(&reload("engine-a")).unwrap()),
            record(1, b"not json".to_vec()),
            record(2, serde_json::to_vec(&reload("engine-b")).unwrap()),
        ];
        let handled = listener.handle(records).await.unwrap();
        assert_eq!(*applied.borrow(), [reload("engine-b")]);
        let offsets: Vec<u64> = handled.iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [1, 2, 3], "every record is handled");
    }
}
