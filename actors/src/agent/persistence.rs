//! The persistence agent (spec §7): reads its agent topic, runs each message's tasks against the
//! documents store, and replies to the thred with the results (or the error).

use async_trait::async_trait;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::model::Event;
use threds_runtime::bus::driver::{Fatal, Handler};
use threds_runtime::bus::{Bus, Position, Record};
use threds_runtime::documents::Documents;
use threds_runtime::telemetry::spans;
use threds_runtime::topology;
use threds_runtime::trace::TraceParent;
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

/// The persistence agent on its topic (a consumer [`Handler`]): runs each message's tasks and
/// appends the reply to the events topic before the message counts as handled. A reply that
/// cannot be appended is retried (with backoff) until it is, or until shutdown — then the message
/// is left unhandled, to be redelivered.
pub struct Agent {
    /// Where the tasks run.
    pub documents: Arc<dyn Documents>,
    /// Where replies go.
    pub bus: Arc<dyn Bus>,
    /// The events topic (replies).
    pub events_topic: String,
    /// Who the agent is.
    pub me: Identity,
    /// Now, epoch ms.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// Stops reply retries.
    pub shutdown: CancellationToken,
}

#[async_trait(?Send)]
impl Handler for Agent {
    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        let mut handled = Vec::with_capacity(records.len());
        for record in records {
            let parent = TraceParent::of_headers(&record.headers);
            let (reply, span) = match serde_json::from_slice::<Value>(&record.payload) {
                Ok(message) => {
                    let id = message
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let span = spans::agent_task(&record.position, &self.me.node_type, id, parent);
                    let reply =
                        handle(&message, self.documents.as_ref(), &self.me, (self.clock)()).await;
                    (reply, span)
                }
                Err(e) => {
                    tracing::warn!(position = ?record.position, error = %e, "persistence agent: skipped a record that is not JSON");
                    (None, tracing::Span::none())
                }
            };
            if let Some(reply) = reply {
                if let Some(error) = reply
                    .as_value()
                    .pointer("/data/content/error/cause/message")
                {
                    spans::fail(&span, error);
                }
                // The reply continues the task's trace.
                let context = spans::traceparent(&span).or(parent);
                if !self.reply(&reply, context).await {
                    break;
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

impl Agent {
    /// Appends `reply` (with trace context `trace`), retrying until it is appended (`true`) or the
    /// agent shuts down (`false`).
    async fn reply(&self, reply: &Event, trace: Option<TraceParent>) -> bool {
        let key = topology::event_key(reply.thred_id(), &self.me.node_id).to_owned();
        let payload = match serde_json::to_vec(reply.as_value()) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "persistence agent: reply not encodable; dropped");
                return true;
            }
        };
        let mut wait = Duration::from_millis(100);
        loop {
            match self
                .bus
                .append(
                    &self.events_topic,
                    None,
                    Some(&key),
                    payload.clone(),
                    trace.iter().map(TraceParent::to_header).collect(),
                )
                .await
            {
                Ok(_) => return true,
                Err(e) => {
                    tracing::error!(error = %e, retry_in = ?wait, "persistence agent: could not send a reply");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }
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
