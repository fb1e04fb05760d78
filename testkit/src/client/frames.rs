//! The frames of the WebSocket protocol as this client sees them: an event goes out as
//! `{"event": …}`, every text frame that comes in is one JSON value.

use crate::Error;
use futures_util::{Stream, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

/// The frame that submits `event`.
pub fn event(event: &Value) -> Message {
    Message::text(json!({ "event": event }).to_string())
}

/// The JSON of a text frame; `None` for other frames (ping, pong, binary, close).
pub fn decode(message: &Message) -> Result<Option<Value>, Error> {
    match message {
        Message::Text(text) => Ok(Some(serde_json::from_str(text)?)),
        _ => Ok(None),
    }
}

/// `frames`, each cut to 300 characters, for error messages.
pub fn summary(frames: &[Value]) -> String {
    let cut: Vec<String> = frames
        .iter()
        .map(|v| v.to_string().chars().take(300).collect())
        .collect();
    format!("{} frame(s): {cut:?}", cut.len())
}

/// The next text frame of `stream`; `None` once the connection has ended. Cancel-safe.
pub(crate) async fn next<S>(stream: &mut S) -> Result<Option<Value>, Error>
where
    S: Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    while let Some(message) = stream.next().await {
        if let Some(frame) = decode(&message?)? {
            return Ok(Some(frame));
        }
    }
    Ok(None)
}
