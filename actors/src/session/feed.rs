//! Reads the sessions topic (every node in its own group, so every node sees every message) and
//! hands each message to the hub for the local connections of its recipients.

use super::hub::{Deliver, Hub};
use super::protocol::ServerFrame;
use actix::Addr;
use serde_json::Value;
use std::time::Duration;
use threds_patterns::model::Event;
use threds_runtime::bus::{Consumer, Position};
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown`: poll, deliver, commit.
pub async fn run(mut consumer: Box<dyn Consumer>, hub: Addr<Hub>, shutdown: CancellationToken) {
    loop {
        let polled = tokio::select! {
            p = consumer.poll(512, Duration::from_millis(200)) => p,
            () = shutdown.cancelled() => break,
        };
        let polled = match polled {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "session feed: poll failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut last: Vec<Position> = Vec::new();
        for record in &polled.records {
            match frame_of(&record.payload) {
                Some((to, frame)) => {
                    if hub
                        .send(Deliver {
                            to,
                            frame: frame.into(),
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                None => {
                    tracing::warn!(position = ?record.position, "session feed: skipped a record that is not a message")
                }
            }
            let next = Position {
                offset: record.position.offset + 1,
                ..record.position.clone()
            };
            match last
                .iter_mut()
                .find(|p| p.topic == next.topic && p.partition == next.partition)
            {
                Some(p) => *p = next,
                None => last.push(next),
            }
        }
        if !last.is_empty() {
            if let Err(e) = consumer.commit(&last).await {
                tracing::warn!(error = %e, "session feed: commit failed");
            }
        }
    }
    let _ = consumer.leave().await;
}

/// `{"id", "to", "event"}` → recipients and the client frame `{"message": {"to", "event"}}`.
fn frame_of(payload: &[u8]) -> Option<(Vec<String>, String)> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let to: Vec<String> = serde_json::from_value(value.get("to")?.clone()).ok()?;
    let event = Event::from_value(value.get("event")?.clone()).ok()?;
    let frame = ServerFrame::Message {
        to: to.clone(),
        event,
    }
    .to_text();
    Some((to, frame))
}
