//! The WebSocket wire protocol (docs/websocket-protocol.md): JSON text frames.

use serde::Serialize;
use serde_json::{json, Value};
use threds_patterns::model::Event;

/// Close code: the token is missing, invalid or expired.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code: the client did not read its messages fast enough.
pub const CLOSE_SLOW_CONSUMER: u16 = 4408;
/// Close code: a frame exceeded the size limit.
pub const CLOSE_TOO_LARGE: u16 = 1009;
/// Close code: the client stayed silent (no frame, no pong) past the ping timeout.
pub const CLOSE_PING_TIMEOUT: u16 = 4409;
/// Close code: the server is shutting down.
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// An error frame code: the frame is not JSON or not `{"event": {...}}`.
pub const ERR_BAD_FRAME: u16 = 4000;
/// An error frame code: the event is invalid (missing or mistyped fields).
pub const ERR_INVALID_EVENT: u16 = 4200;
/// An error frame code: the connection sent faster than its rate limit; the event was not
/// accepted (retry it after the time the message gives).
pub const ERR_RATE_LIMITED: u16 = 4290;
/// An error answer code: the client's address has `[server] max_connections_per_address` open
/// already (HTTP 429).
pub const ERR_TOO_MANY_CONNECTIONS: u16 = 4292;
/// An error answer code: `[server] max_requests_in_flight` requests are in flight already
/// (HTTP 503 with `Retry-After`).
pub const ERR_BUSY: u16 = 4293;
/// An error answer code: a browser origin not in `[server] allowed_origins` (HTTP 403).
pub const ERR_FORBIDDEN_ORIGIN: u16 = 4103;
/// An error frame code: the server could not accept the event right now.
pub const ERR_UNAVAILABLE: u16 = 5000;

/// A frame the server sends.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerFrame {
    /// A message for this participant.
    Message {
        /// Every recipient of the message.
        to: Vec<String>,
        /// The event.
        event: Event,
        /// The id of the event whose step sent it (absent for control replies and timers).
        #[serde(skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    /// Rejected input.
    Error {
        /// Stable code (see the constants).
        code: u16,
        /// What is wrong.
        message: String,
        /// The id of the client's event, when it could be read.
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// The event was accepted (appended to the events topic).
    Ack {
        /// The event id.
        id: String,
    },
}

impl ServerFrame {
    /// The frame as text.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            json!({"error": {"code": 5000, "message": e.to_string()}}).to_string()
        })
    }
}

/// Reads a client frame `{"event": {...}}` from `participant` (who becomes its source, whatever the
/// client wrote); the error frame to answer with otherwise.
pub fn read_client_frame(text: &str, participant: &str) -> Result<Event, ServerFrame> {
    let bad = |code, message: String, reference: Option<String>| ServerFrame::Error {
        code,
        message,
        reference,
    };
    let value: Value = serde_json::from_str(text)
        .map_err(|e| bad(ERR_BAD_FRAME, format!("not JSON: {e}"), None))?;
    let Some(Value::Object(event)) = value.get("event") else {
        return Err(bad(
            ERR_BAD_FRAME,
            "expected {\"event\": {...}}".into(),
            None,
        ));
    };
    let reference = event.get("id").and_then(Value::as_str).map(str::to_string);
    let mut event = event.clone();
    event.insert("source".into(), json!({ "id": participant }));
    Event::from_value(Value::Object(event))
        .map_err(|e| bad(ERR_INVALID_EVENT, e.to_string(), reference))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_read_and_render() {
        let e = read_client_frame(
            r#"{"event": {"id": "1", "type": "t", "source": {"id": "x"}}}"#,
            "p",
        )
        .unwrap();
        assert_eq!(e.id(), "1");
        assert_eq!(
            e.source_id(),
            "p",
            "the source is always the authenticated participant"
        );
        let err = read_client_frame("{", "p").unwrap_err();
        assert!(matches!(
            err,
            ServerFrame::Error {
                code: ERR_BAD_FRAME,
                ..
            }
        ));
        let err = read_client_frame(r#"{"event": {"id": "7", "type": 3}}"#, "p").unwrap_err();
        assert_eq!(
            err.to_text(),
            r#"{"error":{"code":4200,"message":"event field `type` must be a string","ref":"7"}}"#
        );
        let m = ServerFrame::Message {
            to: vec!["a".into()],
            event: e,
            cause: None,
        };
        assert!(m
            .to_text()
            .starts_with(r#"{"message":{"to":["a"],"event":{"id":"1""#));
    }
}
