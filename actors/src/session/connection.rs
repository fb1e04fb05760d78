//! One actor per WebSocket connection: reads client frames in order, submits events, and feeds a
//! writer task that owns the socket.

use super::budget::ParticipantBudget;
use super::hub::{Connect, Disconnect, Hub, Outgoing};
use super::intake::Intake;
use super::limit::Limits;
use super::protocol::{self, read_client_frame, ServerFrame};
use super::queue::{Drain, Queue};
use actix::prelude::*;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use std::sync::Arc;
use std::time::{Duration, Instant};
use threds_patterns::model::Event;
use threds_runtime::metrics::metrics;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Who is connected.
pub struct Peer {
    /// The authenticated participant.
    pub participant: String,
    /// Its roles.
    pub roles: Vec<String>,
}

/// What a connection is attached to.
pub struct Link {
    /// Local connections.
    pub hub: Addr<Hub>,
    /// Where its events go.
    pub intake: Intake,
    /// Its outbound queue's most messages.
    pub queue: usize,
    /// Its outbound queue's most bytes.
    pub queue_bytes: usize,
    /// How often it is pinged.
    pub ping_interval: Duration,
    /// How long the client may stay silent before it is closed as dead.
    pub ping_timeout: Duration,
    /// Its rate limits.
    pub limits: Limits,
    /// Its participant's rate limit, shared with the participant's other connections.
    pub budget: Arc<ParticipantBudget>,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Its place among its address's open connections (freed when the socket closes).
    pub address: Option<super::addresses::Slot>,
}

/// A connected, authenticated client.
pub struct Connection {
    participant: String,
    hub: Addr<Hub>,
    /// The connection's events, in order, to its submitter task.
    submits: mpsc::Sender<Submit>,
    out: Queue,
    kick: CancellationToken,
    id: Option<u64>,
    /// When the client last sent anything (a frame, a ping, a pong).
    heard: Instant,
    ping_interval: Duration,
    ping_timeout: Duration,
    limits: Limits,
}

/// A client frame's way through the submitter, which answers frames in the order they came.
enum Submit {
    /// An event for the bus, with its frame's size in bytes (for the participant's byte budget).
    Event(Event, usize),
    /// A frame refused before the submitter: its answer.
    Refused(ServerFrame),
}

/// Most events one connection queues for its submitter: past them, reading its frames waits.
const SUBMIT_QUEUE: usize = 256;

/// Most events the submitter takes at once.
const SUBMIT_BATCH: usize = 64;

impl Connection {
    /// Starts the connection's actor (reading `stream`) and its writer task (owning `session`).
    pub fn start(
        who: Peer,
        link: Link,
        session: Session,
        stream: impl futures_util::Stream<Item = Result<AggregatedMessage, ProtocolError>> + 'static,
    ) -> Addr<Connection> {
        let Peer { participant, roles } = who;
        let Link {
            hub,
            intake,
            queue,
            queue_bytes,
            ping_interval,
            ping_timeout,
            limits,
            budget,
            shutdown,
            address,
        } = link;
        let (out, rx) = super::queue::bounded(queue, queue_bytes);
        let kick = CancellationToken::new();
        let writer = write(session, rx, kick.clone(), shutdown, (queue, queue_bytes));
        actix_web::rt::spawn(async move {
            writer.await;
            drop(address);
        });
        let (submits, queued) = mpsc::channel(SUBMIT_QUEUE);
        let submitter = Submitter {
            intake,
            budget,
            participant: participant.clone(),
            roles,
            out: out.clone(),
            kick: kick.clone(),
        };
        actix_web::rt::spawn(submitter.run(queued));
        Connection::create(move |ctx| {
            ctx.add_stream(stream);
            Connection {
                participant,
                hub,
                submits,
                out,
                kick,
                id: None,
                heard: Instant::now(),
                ping_interval,
                ping_timeout,
                limits,
            }
        })
    }

    /// Pings the client, or closes the connection when it has been silent past the timeout (a
    /// dead peer would otherwise hold its socket forever).
    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        if self.heard.elapsed() >= self.ping_timeout {
            tracing::debug!(participant = %self.participant, silent = ?self.heard.elapsed(), "websocket client silent past the ping timeout; closing");
            let _ = self.out.try_send(Outgoing::Close(
                protocol::CLOSE_PING_TIMEOUT,
                format!("no pong within {} ms", self.ping_timeout.as_millis()),
            ));
            ctx.stop();
            return;
        }
        let _ = self.out.try_send(Outgoing::Ping);
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let read = read_client_frame(text, &self.participant);
        // Every frame counts against the limits, a bad one too.
        let submit = match (self.limits.admit(text.len(), Instant::now()), read) {
            (Err(wait), read) => {
                metrics().rate_limited_frames.inc();
                let reference = match read {
                    Ok(event) => Some(event.id().to_string()),
                    Err(ServerFrame::Error { reference, .. }) => reference,
                    Err(_) => None,
                };
                Submit::Refused(rate_limited("this connection", wait, reference))
            }
            (Ok(()), Ok(event)) => Submit::Event(event, text.len()),
            (Ok(()), Err(frame)) => Submit::Refused(frame),
        };
        self.submit(submit, ctx);
    }

    /// Hands `submit` to the submitter, in order; `wait` holds the reading of further frames
    /// while its queue is full.
    fn submit(&self, submit: Submit, ctx: &mut Context<Self>) {
        let submits = self.submits.clone();
        ctx.wait(
            async move {
                // Closed only once the submitter stopped, with the connection.
                let _ = submits.send(submit).await;
            }
            .into_actor(self),
        );
    }
}

/// Queues `frame` for the client; a full queue means the client is not reading: the hub's
/// delivery path closes it.
fn send(out: &Queue, kick: &CancellationToken, frame: &ServerFrame) {
    if out
        .try_send(Outgoing::Text(frame.to_text().into()))
        .is_err()
    {
        kick.cancel();
    }
}

/// Submits one connection's events in the order the client sent them: takes what is queued (up to
/// [`SUBMIT_BATCH`]), charges each to the participant's budget, appends the admitted ones together
/// and answers each (ack or error) in order. Ends when the connection drops its sender.
struct Submitter {
    intake: Intake,
    budget: Arc<ParticipantBudget>,
    participant: String,
    roles: Vec<String>,
    out: Queue,
    kick: CancellationToken,
}

impl Submitter {
    async fn run(self, mut queued: mpsc::Receiver<Submit>) {
        let mut batch = Vec::with_capacity(SUBMIT_BATCH);
        while queued.recv_many(&mut batch, SUBMIT_BATCH).await > 0 {
            let mut answers: Vec<Option<ServerFrame>> = Vec::with_capacity(batch.len());
            let (mut admitted, mut ids) = (Vec::new(), Vec::new());
            for submit in batch.drain(..) {
                let (event, size) = match submit {
                    Submit::Event(event, size) => (event, size),
                    Submit::Refused(frame) => {
                        answers.push(Some(frame));
                        continue;
                    }
                };
                let id = event.id().to_string();
                match self
                    .budget
                    .admit(&self.participant, size, Instant::now())
                    .await
                {
                    Err(wait) => {
                        metrics().rate_limited_frames.inc();
                        answers.push(Some(rate_limited("this participant", wait, Some(id))));
                    }
                    Ok(()) => {
                        ids.push((answers.len(), id));
                        answers.push(None);
                        admitted.push(event);
                    }
                }
            }
            let outcomes = self
                .intake
                .submit_all(admitted, &self.participant, &self.roles, "websocket")
                .await;
            for ((at, id), outcome) in ids.into_iter().zip(outcomes) {
                answers[at] = Some(match outcome {
                    Ok(_) => ServerFrame::Ack { id },
                    Err(e) => ServerFrame::Error {
                        code: e.code(),
                        message: e.to_string(),
                        reference: Some(id),
                    },
                });
            }
            for frame in answers.into_iter().flatten() {
                send(&self.out, &self.kick, &frame);
            }
        }
    }
}

/// The error frame refusing event `reference` because `who` sends faster than its limit.
fn rate_limited(who: &str, wait: Duration, reference: Option<String>) -> ServerFrame {
    ServerFrame::Error {
        code: protocol::ERR_RATE_LIMITED,
        message: format!(
            "rate limited: {who} sends faster than its limit; not accepted, retry in {} ms",
            wait.as_millis().max(1)
        ),
        reference,
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.ping_interval, Self::heartbeat);
        let connect = Connect {
            participant: self.participant.clone(),
            tx: self.out.clone(),
            kick: self.kick.clone(),
        };
        ctx.wait(
            self.hub
                .send(connect)
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(id) => act.id = Some(id),
                    Err(_) => ctx.stop(),
                }),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(id) = self.id {
            self.hub.do_send(Disconnect {
                participant: self.participant.clone(),
                id,
            });
        }
    }
}

impl StreamHandler<Result<AggregatedMessage, ProtocolError>> for Connection {
    fn handle(&mut self, item: Result<AggregatedMessage, ProtocolError>, ctx: &mut Context<Self>) {
        self.heard = Instant::now();
        match item {
            Ok(AggregatedMessage::Text(text)) => self.on_text(&text, ctx),
            Ok(AggregatedMessage::Binary(_)) => {
                let refused = ServerFrame::Error {
                    code: protocol::ERR_BAD_FRAME,
                    message: "binary frames are not supported; send JSON text".into(),
                    reference: None,
                };
                self.submit(Submit::Refused(refused), ctx);
            }
            Ok(AggregatedMessage::Ping(bytes)) => {
                let _ = self.out.try_send(Outgoing::Pong(bytes.to_vec()));
            }
            Ok(AggregatedMessage::Pong(_)) => {}
            Ok(AggregatedMessage::Close(_)) => ctx.stop(),
            Err(ProtocolError::Overflow) => self.too_large("frame too large", ctx),
            // actix-ws reports a fragmented message over the limit only as an I/O error.
            Err(ProtocolError::Io(e)) if e.to_string().contains("continuation size") => {
                self.too_large("fragmented message too large", ctx);
            }
            Err(e) => {
                tracing::debug!(error = %e, participant = %self.participant, "websocket protocol error");
                ctx.stop();
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Connection {
    /// Closes with 1009: the client sent more than the frame limit.
    fn too_large(&mut self, what: &str, ctx: &mut Context<Self>) {
        let _ = self
            .out
            .try_send(Outgoing::Close(protocol::CLOSE_TOO_LARGE, what.into()));
        ctx.stop();
    }
}

fn reason(code: u16, text: impl Into<String>) -> Option<CloseReason> {
    Some(CloseReason {
        code: CloseCode::from(code),
        description: Some(text.into()),
    })
}

/// Owns the socket: writes queued frames in order; closes on request, on kick or on shutdown.
async fn write(
    mut session: Session,
    mut rx: Drain,
    kick: CancellationToken,
    shutdown: CancellationToken,
    (queue, queue_bytes): (usize, usize),
) {
    let slow = move || {
        reason(
            protocol::CLOSE_SLOW_CONSUMER,
            format!("slow consumer: more than {queue} messages or {queue_bytes} bytes waiting"),
        )
    };
    loop {
        let item = tokio::select! {
            item = rx.recv() => item,
            () = kick.cancelled() => { let _ = session.close(slow()).await; return; }
            () = shutdown.cancelled() => {
                let _ = session.close(reason(protocol::CLOSE_GOING_AWAY, "server shutting down")).await;
                return;
            }
        };
        let sent = match item {
            Some(Outgoing::Text(text)) => {
                tokio::select! {
                    r = session.text(text.to_string()) => r.is_ok(),
                    () = kick.cancelled() => { let _ = session.close(slow()).await; return; }
                }
            }
            Some(Outgoing::Pong(bytes)) => session.pong(&bytes).await.is_ok(),
            Some(Outgoing::Ping) => session.ping(b"threds").await.is_ok(),
            Some(Outgoing::Close(code, text)) => {
                let _ = session.close(reason(code, text)).await;
                return;
            }
            None => {
                let _ = session.close(None).await;
                return;
            }
        };
        if !sent {
            return;
        }
    }
}

/// Closes a just-upgraded socket at once with `code` and `text` (refused authentication).
pub async fn refuse(session: Session, code: u16, text: String) {
    let _ = session.close(reason(code, text)).await;
}
