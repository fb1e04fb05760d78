//! The engine's traffic: events produced straight to the events topic, messages read back from
//! the sessions topic.

use super::workload::Workload;
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use threds_runtime::bus::{Append, Bus, Consumer};
use threds_runtime::topology::{event_key, Topology};

/// Events produced per `append_all`.
const CHUNK: usize = 2_000;
/// Most events produced and not yet answered: the producer is far faster than any engine, and
/// the mock cluster keeps only the newest records of a partition (an engine further behind would
/// find its records gone).
const MAX_LAG: usize = 20_000;

/// An append of `event` under `key` to the events topic.
fn append(topology: &Topology, key: Option<String>, event: &Value) -> Append {
    Append {
        topic: topology.events().into(),
        partition: None,
        key,
        payload: event.to_string().into_bytes(),
        headers: Vec::new(),
    }
}

/// Reads messages until `want` arrived or nothing came for `idle`, counting them in `count`;
/// answers their payloads and when the last arrived.
pub async fn read(
    reader: &mut Box<dyn Consumer>,
    want: usize,
    idle: Duration,
    count: &AtomicUsize,
) -> anyhow::Result<(Vec<Value>, Instant)> {
    let (mut got, mut last, mut quiet) = (Vec::new(), Instant::now(), Instant::now());
    while got.len() < want && quiet.elapsed() < idle {
        let polled = reader.poll(10_000, Duration::from_millis(100)).await?;
        if polled.records.is_empty() {
            continue;
        }
        quiet = Instant::now();
        last = Instant::now();
        for r in polled.records {
            got.push(serde_json::from_slice(&r.payload).unwrap_or(Value::Null));
        }
        count.store(got.len(), Ordering::Relaxed);
    }
    Ok((got, last))
}

/// Produces events `range`, never more than [`MAX_LAG`] ahead of the `answered` messages (of
/// which each event makes `per_event`).
pub async fn produce(
    bus: &dyn Bus,
    topology: &Topology,
    workload: &Workload,
    range: std::ops::Range<usize>,
    threds: &[String],
    answered: (&AtomicUsize, usize),
) -> anyhow::Result<()> {
    let events: Vec<usize> = range.collect();
    let (answered, per_event) = answered;
    for (i, chunk) in events.chunks(CHUNK).enumerate() {
        while i * CHUNK > answered.load(Ordering::Relaxed) / per_event.max(1) + MAX_LAG {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let appends = chunk
            .iter()
            .map(|n| {
                let (key, event) = workload.event(*n, threds);
                append(topology, key, &event)
            })
            .collect();
        for result in bus.append_all(appends).await {
            result.context("producing an event")?;
        }
    }
    Ok(())
}

/// Starts `n` echo threds: one unbound event each; answers their ids.
pub async fn start_threds(
    bus: &dyn Bus,
    topology: &Topology,
    reader: &mut Box<dyn Consumer>,
    n: usize,
) -> anyhow::Result<Vec<String>> {
    let appends = (0..n)
        .map(|i| {
            let source = format!("bench{i}");
            let event = json!({"id": format!("start-{i}"), "type": "org.wt.echo", "source": {"id": source},
                "data": {"content": {"values": {"echoTo": ["bench"], "echoTitle": "start", "echoContent": i}}}});
            append(topology, Some(event_key(None, &source).to_owned()), &event)
        })
        .collect();
    for result in bus.append_all(appends).await {
        result.context("producing an event")?;
    }
    let (messages, _) = read(reader, n, Duration::from_secs(30), &AtomicUsize::new(0)).await?;
    let threds: Vec<String> = messages
        .iter()
        .filter_map(|m| m["event"]["thredId"].as_str().map(String::from))
        .collect();
    if threds.len() < n {
        bail!("only {} of {n} echo threds started", threds.len());
    }
    Ok(threds)
}

/// Sends echo events to `threds` at `rate` per second for `seconds` (each carrying its send time)
/// and answers the produce → message latencies, µs, sorted.
pub async fn paced(
    bus: &dyn Bus,
    topology: &Topology,
    reader: &mut Box<dyn Consumer>,
    threds: &[String],
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Vec<u64>> {
    let epoch = Instant::now();
    let micros = move || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
    let total = usize::try_from(rate * seconds).unwrap_or(usize::MAX);
    let sending = async {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
        for n in 0..total {
            tick.tick().await;
            let thred = &threds[n % threds.len()];
            let event = json!({"id": format!("paced-{n}"), "type": "org.wt.echo", "thredId": thred,
                "source": {"id": "bench"},
                "data": {"content": {"values": {"echoTo": ["bench"], "echoTitle": "p", "echoContent": micros()}}}});
            bus.append(
                topology.events(),
                None,
                Some(event_key(Some(thred), "bench")),
                event.to_string().into_bytes(),
                Vec::new(),
            )
            .await
            .context("producing an event")?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let receiving = async {
        let mut latencies = Vec::with_capacity(total);
        let deadline = Instant::now() + Duration::from_secs(seconds + 10);
        while latencies.len() < total && Instant::now() < deadline {
            for r in reader.poll(1_000, Duration::from_millis(50)).await?.records {
                let m: Value = serde_json::from_slice(&r.payload).unwrap_or(Value::Null);
                if let Some(sent) = m["event"]["data"]["content"]["values"]["echo"].as_u64() {
                    latencies.push(micros().saturating_sub(sent));
                }
            }
        }
        Ok::<_, anyhow::Error>(latencies)
    };
    let (sent, latencies) = tokio::join!(sending, receiving);
    sent?;
    let mut latencies = latencies?;
    latencies.sort_unstable();
    Ok(latencies)
}
