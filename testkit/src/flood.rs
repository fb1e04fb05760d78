//! The worst-case steady load of the memory test and benchmark: one participant sends events of
//! the largest size a frame allows, as fast as the server takes them, each advancing one of ten
//! echo threds, which echo it to a second participant that reads them.

use crate::rig::Process;
use crate::Error;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How long a frame may take before the load counts as stuck.
const STUCK: Duration = Duration::from_secs(30);

/// What the load did.
#[derive(Debug, Clone, Copy)]
pub struct Flooded {
    /// Events sent, each acknowledged and echoed.
    pub events: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// An echo event from the sender to `to`, titled `title`, with `content` (bound to `thred`).
fn echo(id: &str, to: &str, title: &str, content: &Value, thred: Option<&str>) -> Value {
    let values = json!({"echoTo": [to], "echoTitle": title, "echoContent": content});
    let mut event =
        json!({"id": id, "type": "org.wt.echo", "data": {"content": {"values": values}}});
    if let Some(thred) = thred {
        event["thredId"] = json!(thred);
    }
    event
}

/// The next frame of `client`, within [`STUCK`], that satisfies `wanted`; anything else fails
/// (`what` names the count so far).
async fn expect(
    next: impl std::future::Future<Output = Result<Option<Value>, Error>>,
    wanted: &str,
    what: &str,
) -> Result<(), Error> {
    match tokio::time::timeout(STUCK, next).await {
        Ok(Ok(Some(frame))) if frame.get(wanted).is_some() => Ok(()),
        Ok(Ok(Some(frame))) => Err(Error::Http(format!("{what}: unexpected frame {frame}"))),
        Ok(Ok(None)) => Err(Error::Closed {
            inbox: what.to_owned(),
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::Timeout {
            within: STUCK,
            inbox: what.to_owned(),
        }),
    }
}

/// Sends `events` events of `bytes` bytes of content from participant `heavy` of `server`,
/// echoed to participant `reader`; answers once every one is acknowledged and echoed.
pub async fn max_size_echoes(
    server: &Process,
    events: usize,
    bytes: usize,
) -> Result<Flooded, Error> {
    let mut client = server.connect("heavy", &[]).await?;
    let mut reader = server.connect("reader", &[]).await?;
    let mut threds = Vec::new();
    for t in 0..10 {
        let id = format!("start{t}");
        client
            .send(echo(&id, "reader", &id, &json!(1), None))
            .await?;
        let message = reader.message(&format!("{id} 1")).await?;
        let thred = message["event"]["thredId"].as_str().unwrap_or_default();
        threds.push(thred.to_owned());
    }
    let content = json!("x".repeat(bytes));
    let (mut to_server, mut acks_in) = client.split();
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for n in 0..events {
            let thred = threds[n % threds.len()].as_str();
            let event = echo(&format!("big{n}"), "reader", "big", &content, Some(thred));
            to_server.submit(&event).await?;
        }
        Ok::<_, Error>(to_server)
    });
    let acks = async move {
        for n in 0..events {
            expect(acks_in.next_frame(), "ack", &format!("after {n} acks")).await?;
        }
        Ok::<_, Error>(())
    };
    let messages = async move {
        for n in 0..events {
            expect(
                reader.next_frame(),
                "message",
                &format!("after {n} messages"),
            )
            .await?;
        }
        Ok::<_, Error>(())
    };
    // The first failure of either side is the answer.
    tokio::try_join!(acks, messages)?;
    let joined = |e: tokio::task::JoinError| Error::Http(format!("the writer failed: {e}"));
    let _sender = writer.await.map_err(joined)??;
    Ok(Flooded {
        events,
        elapsed: started.elapsed(),
    })
}
