//! Reads the sessions topic (every node in its own group, so every node sees every message) and
//! hands each message to the hub for the local connections of its recipients.
//!
//! The bus delivers at least once (a redelivered batch after a crash, an outbox entry republished
//! by the relay), and message ids are deterministic (derived from the record that produced them),
//! so the feed drops a message whose id it delivered recently: clients see each message once.

use super::hub::{Deliver, Hub, Origin};
use super::protocol::ServerFrame;
use actix::Addr;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use threds_patterns::model::Event;
use threds_runtime::bus::driver::{Fatal, Handler, TopicPartition};
use threds_runtime::bus::{Position, Record};
use threds_runtime::telemetry::traces;
use threds_runtime::trace::TraceParent;

/// The session feed (a consumer [`Handler`] of the sessions topic): hands each message to the hub
/// for its recipients' local connections, once per message id.
pub struct Feed {
    hub: Addr<Hub>,
    recent: Recent,
    /// Set while the feed holds a partition of the sessions topic (the node is ready to deliver).
    holds: Arc<AtomicBool>,
    held: usize,
}

impl Feed {
    /// The feed of `hub`; `holds` says whether it holds its partition.
    pub fn new(hub: Addr<Hub>, holds: Arc<AtomicBool>) -> Feed {
        holds.store(false, Ordering::Release);
        Feed {
            hub,
            recent: Recent::new(RECENT_IDS),
            holds,
            held: 0,
        }
    }
}

#[async_trait(?Send)]
impl Handler for Feed {
    fn assigned(&mut self, partitions: &[TopicPartition]) {
        self.held += partitions.len();
        self.holds.store(self.held > 0, Ordering::Release);
    }

    fn revoked(&mut self, partitions: &[TopicPartition]) {
        self.held = self.held.saturating_sub(partitions.len());
        self.holds.store(self.held > 0, Ordering::Release);
    }

    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        let mut handled = Vec::with_capacity(records.len());
        for record in records {
            match frame_of(&record.payload) {
                Some((id, _, _)) if !self.recent.first_time(&id) => {
                    tracing::debug!(id, position = ?record.position, "session feed: duplicate message dropped");
                }
                Some((id, to, frame)) => {
                    let origin = traces::exporting().then(|| Origin {
                        parent: TraceParent::of_headers(&record.headers),
                        position: record.position.clone(),
                        id,
                    });
                    let deliver = Deliver {
                        to,
                        frame: frame.into(),
                        origin,
                    };
                    if let Err(e) = self.hub.send(deliver).await {
                        return Err(Fatal::new(format!("the session hub is gone: {e}")));
                    }
                }
                None => {
                    tracing::warn!(position = ?record.position, "session feed: skipped a record that is not a message")
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

/// How many delivered message ids the feed remembers.
const RECENT_IDS: usize = 200_000;

/// The ids seen most recently (bounded; the oldest is forgotten first).
struct Recent {
    ids: HashSet<String>,
    order: VecDeque<String>,
    cap: usize,
}

impl Recent {
    fn new(cap: usize) -> Recent {
        Recent {
            ids: HashSet::new(),
            order: VecDeque::new(),
            cap,
        }
    }

    /// Remembers `id`; answers whether it was new.
    fn first_time(&mut self, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

/// `{"id", "to", "event", "cause"?}` → its id, recipients and the client frame
/// `{"message": {"to", "event", "cause"?}}`.
fn frame_of(payload: &[u8]) -> Option<(String, Vec<String>, String)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let to: Vec<String> = serde_json::from_value(value.get("to")?.clone()).ok()?;
    let event = Event::from_value(value.get("event")?.clone()).ok()?;
    let cause = value
        .get("cause")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let frame = ServerFrame::Message {
        to: to.clone(),
        event,
        cause,
    }
    .to_text();
    Some((id, to, frame))
}

#[cfg(test)]
mod tests {
    use super::Recent;

    #[test]
    fn recent_ids_drop_repeats_and_forget_the_oldest() {
        let mut recent = Recent::new(2);
        assert!(recent.first_time("a"));
        assert!(!recent.first_time("a"));
        assert!(recent.first_time("b"));
        assert!(recent.first_time("c"));
        assert!(recent.first_time("a"), "a was forgotten once c came");
        assert!(!recent.first_time("c"));
    }
}
