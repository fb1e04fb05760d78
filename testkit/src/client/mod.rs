//! A WebSocket client of a Threds session endpoint (`/ws`) for tests and benchmarks: connects
//! with a bearer token, submits events (waiting for their ack or not), and waits with a deadline
//! for frames and messages. Frames that arrive while another is awaited stay in an inbox.

pub mod frames;
mod halves;

pub use halves::{Receiver, Sender};

use crate::Error;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The socket under a [`Client`].
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long [`Client::send`] waits for the ack of an event.
const ACK_WITHIN: Duration = Duration::from_secs(5);

/// How long [`Client::message`] waits.
const MESSAGE_WITHIN: Duration = Duration::from_secs(10);

/// A connected client.
pub struct Client {
    ws: Socket,
    inbox: Vec<Value>,
}

impl Client {
    /// Connects to `ws://addr/ws` (`addr` is `host:port`) with `token` as bearer.
    pub async fn connect(addr: &str, token: &str) -> Result<Client, Error> {
        let mut request = format!("ws://{addr}/ws").into_client_request()?;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|e| Error::Http(format!("token is no header value: {e}")))?;
        request.headers_mut().insert("authorization", bearer);
        // Small frames both ways: disable Nagle, as latency-sensitive clients do.
        let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
        Ok(Client {
            ws,
            inbox: Vec::new(),
        })
    }

    /// Connects to a raw URL (e.g. with `?token=`) and answers the bare socket, for refusal tests.
    pub async fn connect_url(url: &str) -> Result<Socket, Error> {
        Ok(tokio_tungstenite::connect_async(url).await?.0)
    }

    /// Submits `event` without waiting for its ack.
    pub async fn submit(&mut self, event: &Value) -> Result<(), Error> {
        Ok(self.ws.send(frames::event(event)).await?)
    }

    /// Submits `event` and waits for its ack (matched by the event's `id`).
    pub async fn send(&mut self, event: Value) -> Result<(), Error> {
        self.send_within(event, ACK_WITHIN).await
    }

    /// Submits `event` and waits up to `within` for its ack.
    pub async fn send_within(&mut self, event: Value, within: Duration) -> Result<(), Error> {
        self.submit(&event).await?;
        let id = event["id"].as_str().unwrap_or_default();
        self.frame(|f| f["ack"]["id"] == id, within).await?;
        Ok(())
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) -> Result<(), Error> {
        Ok(self.ws.send(Message::text(text.to_owned())).await?)
    }

    /// The next frame: the oldest in the inbox, else the next text frame to arrive; `None` once
    /// the connection has ended. Cancel-safe.
    pub async fn next_frame(&mut self) -> Result<Option<Value>, Error> {
        if !self.inbox.is_empty() {
            return Ok(Some(self.inbox.remove(0)));
        }
        self.receive().await
    }

    /// Waits up to `within` for a frame satisfying `pred`; frames that do not stay in the inbox.
    pub async fn frame(
        &mut self,
        pred: impl Fn(&Value) -> bool,
        within: Duration,
    ) -> Result<Value, Error> {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return Ok(self.inbox.remove(i));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.receive()).await {
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => {
                    return Err(Error::Closed {
                        inbox: frames::summary(&self.inbox),
                    })
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(Error::Timeout {
                        within,
                        inbox: frames::summary(&self.inbox),
                    })
                }
            };
            if pred(&frame) {
                return Ok(frame);
            }
            self.inbox.push(frame);
        }
    }

    /// The answer to each event of `ids`, in that order: its ack, or the error frame naming it
    /// (`ref`), all within `within`. Other frames stay in the inbox.
    pub async fn answers(&mut self, ids: &[String], within: Duration) -> Result<Vec<Value>, Error> {
        let deadline = tokio::time::Instant::now() + within;
        let mut answers = Vec::with_capacity(ids.len());
        for id in ids {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let answers_id =
                |f: &Value| f["ack"]["id"] == id.as_str() || f["error"]["ref"] == id.as_str();
            answers.push(self.frame(answers_id, left).await?);
        }
        Ok(answers)
    }

    /// The message whose event title is `title` (the `message` of its frame), within 10 s.
    pub async fn message(&mut self, title: &str) -> Result<Value, Error> {
        self.message_within(title, MESSAGE_WITHIN).await
    }

    /// The message whose event title is `title`, waiting up to `within`.
    pub async fn message_within(&mut self, title: &str, within: Duration) -> Result<Value, Error> {
        let mut frame = self
            .frame(|f| f["message"]["event"]["data"]["title"] == title, within)
            .await?;
        Ok(frame["message"].take())
    }

    /// Every message frame in the inbox or arriving within `window` (or until the connection
    /// ends); the inbox is emptied.
    pub async fn drain(&mut self, window: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Ok(Some(frame))) = tokio::time::timeout_at(deadline, self.receive()).await {
            self.inbox.push(frame);
        }
        std::mem::take(&mut self.inbox)
            .into_iter()
            .filter(|f| f.get("message").is_some())
            .collect()
    }

    /// The underlying socket (for close-frame checks); the inbox is dropped.
    pub fn into_inner(self) -> Socket {
        self.ws
    }

    /// A sending and a receiving half, to write and read side by side; the inbox is dropped.
    pub fn split(self) -> (Sender, Receiver) {
        let (sink, stream) = self.ws.split();
        (Sender(sink), Receiver(stream))
    }

    /// The next text frame from the socket; `None` once the connection has ended.
    async fn receive(&mut self) -> Result<Option<Value>, Error> {
        frames::next(&mut self.ws).await
    }
}
