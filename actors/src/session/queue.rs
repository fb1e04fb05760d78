//! A connection's outbound queue, bounded in messages (`[server] connection_queue`) and in bytes
//! (`[server] connection_queue_bytes`): a client that does not read cannot make the server hold
//! more than that for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a connection's writer sends to its client.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A text frame.
    Text(Arc<str>),
    /// A pong answering a ping.
    Pong(Vec<u8>),
    /// A ping (the heartbeat).
    Ping,
    /// Close with a code and reason.
    Close(u16, String),
}

/// Why a message was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds its most messages or bytes: the client is not reading.
    Full,
    /// The writer is gone (the connection closed).
    Closed,
}

/// The sending side (cheap to clone: the hub and the connection each hold one).
#[derive(Debug, Clone)]
pub struct Queue {
    tx: mpsc::Sender<Outgoing>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The writer's side.
#[derive(Debug)]
pub struct Drain {
    rx: mpsc::Receiver<Outgoing>,
    bytes: Arc<AtomicUsize>,
}

/// A queue of at most `messages` messages and `max_bytes` bytes of text (one message is always
/// let in, whatever its size).
pub fn bounded(messages: usize, max_bytes: usize) -> (Queue, Drain) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    let queue = Queue {
        tx,
        bytes: bytes.clone(),
        max_bytes,
    };
    (queue, Drain { rx, bytes })
}

/// The bytes an item counts for.
fn size(item: &Outgoing) -> usize {
    match item {
        Outgoing::Text(text) => text.len(),
        Outgoing::Pong(bytes) => bytes.len(),
        Outgoing::Ping | Outgoing::Close(..) => 0,
    }
}

impl Queue {
    /// Queues `item` without waiting.
    pub fn try_send(&self, item: Outgoing) -> Result<(), Refused> {
        let n = size(&item);
        let before = self.bytes.fetch_add(n, Ordering::AcqRel);
        if before > 0 && before + n > self.max_bytes {
            self.bytes.fetch_sub(n, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        self.tx.try_send(item).map_err(|e| {
            self.bytes.fetch_sub(n, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => Refused::Full,
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            }
        })
    }
}

impl Drain {
    /// The next item; `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Outgoing> {
        let item = self.rx.recv().await?;
        self.bytes.fetch_sub(size(&item), Ordering::AcqRel);
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(n: usize) -> Outgoing {
        Outgoing::Text("x".repeat(n).into())
    }

    #[tokio::test]
    async fn bounded_by_messages_and_by_bytes() {
        let (q, mut d) = bounded(3, 100);
        q.try_send(text(60)).unwrap();
        assert_eq!(q.try_send(text(60)), Err(Refused::Full), "over 100 bytes");
        q.try_send(text(40)).unwrap();
        q.try_send(Outgoing::Ping).unwrap();
        assert_eq!(q.try_send(Outgoing::Ping), Err(Refused::Full), "3 messages");
        d.recv().await.unwrap();
        q.try_send(text(60)).unwrap();
        // One message is let in whatever its size.
        let (big, _d) = bounded(3, 10);
        big.try_send(text(1000)).unwrap();
        assert_eq!(big.try_send(text(1)), Err(Refused::Full));
        let (gone, d) = bounded(3, 100);
        drop(d);
        assert_eq!(gone.try_send(text(1)), Err(Refused::Closed));
    }
}
