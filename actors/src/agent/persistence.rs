//! The persistence agent (spec §7): reads its agent topic, runs each message's tasks against the
//! documents store, and replies to the thred with the results (or the error).

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::model::Event;
use threds_runtime::bus::{Bus, Consumer, Position};
use threds_runtime::documents::Documents;
use threds_runtime::topology;
use tokio_util::sync::CancellationToken;

/// Who the agent is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Its node id (reply source id).
    pub node_id: String,
    /// Its node type (reply event type), e.g. `org.wt.persistence`.
    pub node_type: String,
    /// Display name.
    pub name: String,
}

/// Runs until `shutdown`: poll, execute, reply, commit.
pub async fn run(
    mut consumer: Box<dyn Consumer>,
    documents: Arc<dyn Documents>,
    bus: Arc<dyn Bus>,
    events_topic: String,
    me: Identity,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    shutdown: CancellationToken,
) {
    loop {
        let polled = tokio::select! {
            p = consumer.poll(64, Duration::from_millis(200)) => p,
            () = shutdown.cancelled() => break,
        };
        let polled = match polled {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "persistence agent: poll failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut commits: Vec<Position> = Vec::new();
        for record in &polled.records {
            let reply = match serde_json::from_slice::<Value>(&record.payload) {
                Ok(message) => handle(&message, documents.as_ref(), &me, clock()).await,
                Err(e) => {
                    tracing::warn!(position = ?record.position, error = %e, "persistence agent: skipped a record that is not JSON");
                    None
                }
            };
            if let Some(reply) = reply {
                let key = topology::event_key(reply.thred_id(), &me.node_id).to_owned();
                let payload = serde_json::to_vec(reply.as_value()).unwrap_or_default();
                if let Err(e) = bus
                    .append(&events_topic, None, Some(&key), payload, Vec::new())
                    .await
                {
                    tracing::error!(error = %e, "persistence agent: could not send a reply; the task will be redone");
                    break;
                }
            }
            commits.retain(|p| p.partition != record.position.partition);
            commits.push(Position {
                offset: record.position.offset + 1,
                ..record.position.clone()
            });
        }
        if !commits.is_empty() {
            if let Err(e) = consumer.commit(&commits).await {
                tracing::warn!(error = %e, "persistence agent: commit failed");
            }
        }
    }
    let _ = consumer.leave().await;
}

/// Runs the tasks of one message `{id, to, event}`; the reply event (None when the message has no event).
pub async fn handle(
    message: &Value,
    documents: &dyn Documents,
    me: &Identity,
    now: i64,
) -> Option<Event> {
    let request = Event::from_value(message.get("event")?.clone()).ok()?;
    let message_id = message
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(request.id());
    let content = match execute(&request, documents, now).await {
        Ok(results) => json!({"values": {"result": results}}),
        Err(error) => json!({"error": {
            "message": "PersistenceAgent: Error processing message",
            "code": 5200,
            "cause": {"message": error, "name": "Error"}
        }}),
    };
    let mut reply = json!({
        "id": format!("{}-{}", me.node_id, message_id),
        "type": me.node_type,
        "re": request.id(),
        "source": {"id": me.node_id, "name": me.name},
        "time": now,
        "data": {"title": format!("{} Result", me.node_id), "content": content}
    });
    if let Some(thred) = request.thred_id() {
        reply["thredId"] = json!(thred);
    }
    Event::from_value(reply).ok()
}

async fn execute(
    request: &Event,
    documents: &dyn Documents,
    now: i64,
) -> Result<Vec<Value>, String> {
    let tasks = request
        .content()
        .and_then(|c| c.get("tasks"))
        .and_then(Value::as_array)
        .ok_or("No tasks provided: data.content.tasks must be an array")?;
    let mut results = Vec::with_capacity(tasks.len());
    for (i, entry) in tasks.iter().enumerate() {
        let result = documents
            .run(entry, now)
            .await
            .map_err(|e| format!("tasks[{i}]: {e}"))?;
        results.push(result);
    }
    Ok(results)
}
