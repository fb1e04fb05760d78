//! Backpressure from the engine to the clients: when the engines' consumer group lags on an events
//! partition by more than `[server] backpressure_lag_records` records (or, on the embedded bus,
//! `backpressure_lag_bytes` bytes), events for that partition wait before they are appended, up
//! to `backpressure_max_wait_ms`, and are then refused (code 4293) — intake slows down instead of
//! queueing without bound, and nothing acknowledged is lost to bus retention. This node's own
//! sessions feed is watched the same way (the messages the events cause flow through it).
//!
//! A WebSocket connection submits one event at a time, so a waiting event stops its connection's
//! reads: the client's socket fills and the client slows down (zero credits while the engine
//! catches up). The lag is read from the bus at most every `backpressure_check_ms`; when it
//! cannot be read, intake goes on (the failure is logged).

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use threds_runtime::bus::{partition_for, Bus, Lag};
use threds_runtime::config::ServerConfig;
use threds_runtime::metrics::metrics;

/// Why an event was refused: its partition still lagged when the wait ended.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the server is behind: group {group} has {records} records{bytes} of partition {partition} still to handle; not accepted, retry later")]
pub struct Busy {
    /// The group that lags.
    pub group: String,
    /// The partition.
    pub partition: u32,
    /// Its lag in records.
    pub records: u64,
    /// Its lag in bytes, as text (empty when unknown).
    bytes: String,
}

/// A consumer group whose lag slows intake.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The group.
    pub group: String,
    /// The topic it reads.
    pub topic: String,
    /// Whether intake appends to `topic` itself, keyed: then only the partition of an event's
    /// key counts for it, and what intake appended since the last reading is added to that
    /// reading (so a burst between two readings cannot overrun the threshold). Otherwise every
    /// partition counts for every event (a downstream topic such as this node's sessions feed),
    /// by bytes only: the danger downstream is the embedded bus's byte retention dropping what
    /// the group has not read, while a new session node on Kafka, whose feed starts at the
    /// earliest retained message, must not hold intake until it has read them all.
    pub keyed: bool,
}

/// One reading of every watched group's lag, plus what intake appended since.
struct Reading {
    at: Instant,
    lags: Vec<Vec<Lag>>,
    /// Records and bytes appended since `at`, per partition of the keyed topic.
    admitted: Vec<(u64, u64)>,
}

/// The latest reading, and whether a newer one is being read.
#[derive(Default)]
struct Last {
    reading: Option<Reading>,
    refreshing: bool,
}

/// Marks a read in progress; clears the mark when dropped (also when the read is abandoned).
struct Refreshing(Arc<Pressure>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        lock(&self.0.last).refreshing = false;
    }
}

/// How long the event that asks for a reading waits for it; a slower reading (a group
/// coordinator in the middle of a rebalance may hold the request for many seconds) goes on in the
/// background, one at a time, and the event goes by the previous reading.
const READING_WAIT: Duration = Duration::from_millis(500);

/// Locks `last`, whatever a panicking holder left (the reading is replaced whole).
fn lock(last: &Mutex<Last>) -> std::sync::MutexGuard<'_, Last> {
    last.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lag of the watched groups, read at most every `every`, one reading at a time: the event
/// that asks for a reading waits for it at most [`READING_WAIT`], the others go by the latest
/// reading meanwhile, so a slow read holds up no event for long.
pub struct Pressure {
    bus: Arc<dyn Bus>,
    watched: Vec<Watched>,
    max_records: u64,
    max_bytes: u64,
    every: Duration,
    max_wait: Duration,
    last: Mutex<Last>,
}

impl Pressure {
    /// Watches the groups of `watched` on `bus` against the thresholds of `server`.
    pub fn new(bus: Arc<dyn Bus>, watched: Vec<Watched>, server: &ServerConfig) -> Self {
        Pressure {
            bus,
            watched,
            max_records: server.backpressure_lag_records,
            max_bytes: server.backpressure_lag_bytes,
            every: Duration::from_millis(server.backpressure_check_ms.max(1)),
            max_wait: Duration::from_millis(server.backpressure_max_wait_ms),
            last: Mutex::new(Last::default()),
        }
    }

    /// The same, reading the lag at most every `every`.
    #[cfg(test)]
    fn with_check_every(self, every: Duration) -> Self {
        Pressure { every, ..self }
    }

    /// Whether any threshold is set.
    fn enabled(&self) -> bool {
        self.max_records > 0 || self.max_bytes > 0
    }

    /// Waits until every watched group lags less than the thresholds for an event keyed `key`
    /// of `bytes` bytes, at most the longest wait, and counts it as appended; answers [`Busy`] if
    /// a group still lags then (nothing is counted).
    pub async fn admit(self: &Arc<Self>, key: &str, bytes: usize) -> Result<(), Busy> {
        if !self.enabled() {
            return Ok(());
        }
        let started = Instant::now();
        let mut counted = false;
        loop {
            let Some(over) = self.over_or_admit(key, bytes as u64).await else {
                return Ok(());
            };
            if started.elapsed() >= self.max_wait {
                metrics().backpressure_refused.inc();
                return Err(over);
            }
            if !counted {
                metrics().backpressure_delayed.inc();
                counted = true;
            }
            tokio::time::sleep(self.every.min(Duration::from_millis(20))).await;
        }
    }

    /// How a watched group is over a threshold for `key`, by the freshest reading; when none is,
    /// the event is counted as appended.
    async fn over_or_admit(self: &Arc<Self>, key: &str, bytes: u64) -> Option<Busy> {
        let refresh = {
            let mut last = lock(&self.last);
            let stale = last
                .reading
                .as_ref()
                .is_none_or(|r| r.at.elapsed() >= self.every);
            let mine = stale && !last.refreshing;
            last.refreshing |= mine;
            mine
        };
        if refresh {
            let mark = Refreshing(Arc::clone(self));
            let (done, read) = tokio::sync::oneshot::channel();
            actix_web::rt::spawn(async move {
                let reading = mark.0.read().await;
                lock(&mark.0.last).reading = Some(reading);
                drop(mark);
                let _ = done.send(());
            });
            let _ = tokio::time::timeout(READING_WAIT, read).await;
        }
        let mut last = lock(&self.last);
        // No reading yet (the first is being read): nothing to go by.
        let reading = last.reading.as_mut()?;
        let mut keyed_partition = None;
        for (watched, lags) in self.watched.iter().zip(&reading.lags) {
            let count = u32::try_from(lags.len()).unwrap_or(0);
            if count == 0 {
                continue;
            }
            let candidates: Vec<(&Lag, (u64, u64))> = if watched.keyed {
                let p = partition_for(key, count) as usize;
                keyed_partition = Some(p);
                let extra = reading.admitted.get(p).copied().unwrap_or_default();
                lags.get(p).map(|l| (l, extra)).into_iter().collect()
            } else {
                lags.iter().map(|l| (l, (0, 0))).collect()
            };
            for (lag, (extra_records, extra_bytes)) in candidates {
                let records = lag.records + extra_records;
                let bytes = lag.bytes.map(|b| b + extra_bytes);
                let over = (watched.keyed && self.max_records > 0 && records > self.max_records)
                    || (self.max_bytes > 0 && bytes.is_some_and(|b| b > self.max_bytes));
                if over {
                    return Some(Busy {
                        group: watched.group.clone(),
                        partition: lag.partition,
                        records,
                        bytes: bytes.map_or_else(String::new, |b| format!(", {b} bytes")),
                    });
                }
            }
        }
        if let Some(slot) = keyed_partition.and_then(|p| reading.admitted.get_mut(p)) {
            slot.0 += 1;
            slot.1 += bytes;
        }
        None
    }

    /// Reads every watched group's lag (a group whose lag cannot be read counts as not lagging).
    async fn read(&self) -> Reading {
        let mut lags = Vec::with_capacity(self.watched.len());
        let mut partitions = 0;
        for w in &self.watched {
            match self.bus.lag(&w.group, &w.topic).await {
                Ok(l) => {
                    if w.keyed {
                        partitions = l.len();
                    }
                    lags.push(l);
                }
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, group = %w.group, topic = %w.topic, "could not read a group's lag; intake goes on without its backpressure");
                    lags.push(Vec::new());
                }
            }
        }
        Reading {
            at: Instant::now(),
            lags,
            admitted: vec![(0, 0); partitions],
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use threds_runtime::bus::memory::MemoryBus;

    fn settings(records: u64, wait_ms: u64) -> ServerConfig {
        ServerConfig {
            backpressure_lag_records: records,
            backpressure_lag_bytes: 0,
            backpressure_check_ms: 10 + wait_ms / 10,
            backpressure_max_wait_ms: wait_ms,
            ..ServerConfig::default()
        }
    }

    #[actix_rt::test]
    async fn events_wait_while_their_partition_lags_and_go_once_it_catches_up() {
        let bus = Arc::new(MemoryBus::new());
        bus.create_topic("events", 1).await.unwrap();
        for _ in 0..5 {
            bus.append("events", None, Some("k"), b"{}".to_vec(), vec![])
                .await
                .unwrap();
        }
        let shared: Arc<dyn Bus> = bus.clone();
        // Lagging 5 records, over a threshold of 3: refused after the wait.
        let events = |group: &str| {
            vec![Watched {
                group: group.into(),
                topic: "events".into(),
                keyed: true,
            }]
        };
        let strict = Arc::new(Pressure::new(shared.clone(), events("g"), &settings(3, 30)));
        let busy = strict.admit("k", 2).await.unwrap_err();
        assert_eq!((busy.partition, busy.records), (0, 5));
        // Under a threshold of 10: admitted at once.
        // What it lets in counts until the next reading (none within this case).
        let loose = Pressure::new(shared.clone(), events("g"), &settings(7, 0));
        let loose = Arc::new(loose.with_check_every(Duration::from_secs(3600)));
        for _ in 0..3 {
            loose.admit("k", 2).await.unwrap();
        }
        let busy = loose.admit("k", 2).await.unwrap_err();
        assert_eq!(busy.records, 8, "5 read + 3 let in");
        // The group catches up while an event waits: the event goes.
        let patient = Arc::new(Pressure::new(
            shared.clone(),
            events("g"),
            &settings(3, 10_000),
        ));
        let mut reader = shared.join("g", &["events"], "m").await.unwrap();
        let waiting = actix_web::rt::spawn(async move { patient.admit("k", 2).await });
        let mut read = Vec::new();
        while read.len() < 5 {
            read.extend(
                reader
                    .poll(10, Duration::from_millis(20))
                    .await
                    .unwrap()
                    .records,
            );
        }
        let last = read.last().unwrap().position.clone();
        reader
            .commit(&[threds_runtime::bus::Position {
                offset: last.offset + 1,
                ..last
            }])
            .await
            .unwrap();
        waiting.await.unwrap().unwrap();
        // No thresholds: nothing is read.
        let off = Arc::new(Pressure::new(shared, events("missing"), &settings(0, 0)));
        off.admit("k", 2).await.unwrap();
    }

    #[actix_rt::test]
    async fn a_downstream_group_counts_by_bytes_only() {
        let bus = Arc::new(MemoryBus::new());
        bus.create_topic("sessions", 1).await.unwrap();
        for _ in 0..5 {
            bus.append("sessions", None, None, vec![b'x'; 100], vec![])
                .await
                .unwrap();
        }
        let shared: Arc<dyn Bus> = bus;
        let downstream = |bytes| {
            let server = ServerConfig {
                backpressure_lag_bytes: bytes,
                ..settings(3, 0)
            };
            let watched = vec![Watched {
                group: "feed".into(),
                topic: "sessions".into(),
                keyed: false,
            }];
            Arc::new(Pressure::new(shared.clone(), watched, &server))
        };
        // Five records behind, over 3 records, yet admitted: records do not count downstream.
        downstream(0).admit("k", 2).await.unwrap();
        // Over 200 bytes: refused.
        let busy = downstream(200).admit("k", 2).await.unwrap_err();
        assert_eq!(busy.group, "feed");
    }
}
