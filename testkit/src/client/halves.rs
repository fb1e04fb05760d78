//! The two halves of a [`super::Client`], for a writer and a reader that run side by side.

use super::{frames, Socket};
use crate::Error;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::SinkExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The sending half.
pub struct Sender(pub(super) SplitSink<Socket, Message>);

/// The receiving half.
pub struct Receiver(pub(super) SplitStream<Socket>);

impl Sender {
    /// Submits `event` without waiting for its ack.
    pub async fn submit(&mut self, event: &Value) -> Result<(), Error> {
        Ok(self.0.send(frames::event(event)).await?)
    }
}

impl Receiver {
    /// The next text frame; `None` once the connection has ended. Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Option<Value>, Error> {
        frames::next(&mut self.0).await
    }
}
