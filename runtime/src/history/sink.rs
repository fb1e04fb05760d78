//! The history sink: reads the history topic and writes its documents to the documents store.
//!
//! Each poll's records are written together, one bulk write per collection, and handled (their
//! offsets committed by the driver) only once written. Every document carries the id its step
//! gave it and the store skips ids it holds, so a record delivered again — after a crash between
//! the write and the commit, or a rebalance — adds nothing. While the store fails, the sink tries
//! again after a backoff that doubles up to a limit, reading nothing more meanwhile; the engines
//! go on stepping, and their history waits in the topic. A record the store refuses for its
//! content (or that is not a history record) goes to the topic's dead letters, alone.

use super::{decode, save, Entry};
use crate::bus::driver::{Fatal, Handler};
use crate::bus::{self, Bus, Position, Record};
use crate::documents::{self, Documents};
use crate::metrics::metrics;
use crate::topology::Topology;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The first wait after a failed write; doubled after each further failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between failed writes.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Writes history records to the documents store (a [`Handler`] of the history topic).
pub struct Sink {
    documents: Arc<dyn Documents>,
    bus: Arc<dyn Bus>,
    topology: Topology,
    clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    shutdown: CancellationToken,
}

/// How a write ended.
enum Written {
    /// Every document is stored.
    Yes,
    /// The store refused the content: why.
    Refused(String),
    /// Shut down before the store took it.
    Stopped,
}

impl Sink {
    /// A sink writing to `documents`, dead-lettering on `bus` (of `topology`), until `shutdown`.
    pub fn new(
        documents: Arc<dyn Documents>,
        bus: Arc<dyn Bus>,
        topology: Topology,
        clock: Arc<dyn Fn() -> i64 + Send + Sync>,
        shutdown: CancellationToken,
    ) -> Sink {
        Sink {
            documents,
            bus,
            topology,
            clock,
            shutdown,
        }
    }

    /// Writes `entries`, trying again after a backoff while the store fails for any reason but
    /// their content.
    async fn write(&self, entries: &[&Entry]) -> Written {
        let mut wait = FIRST_BACKOFF;
        let mut failures = 0u32;
        loop {
            match save(self.documents.as_ref(), entries, (self.clock)()).await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(
                            failures,
                            documents = entries.len(),
                            "history sink: the documents store took the history again"
                        );
                    }
                    metrics()
                        .history_documents_written
                        .inc_by(u64::try_from(entries.len()).unwrap_or(u64::MAX));
                    return Written::Yes;
                }
                Err(documents::Error::Invalid(why)) => return Written::Refused(why),
                Err(e) => {
                    failures += 1;
                    metrics().history_write_failures.inc();
                    let why = crate::codes::chain(&e);
                    tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, error = %why, failures, retry_in = ?wait, documents = entries.len(), "history sink: could not write history; it waits in the topic");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Written::Stopped,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    /// Dead-letters `record` (trying again until it is appended); `false` if shut down first.
    async fn dead_letter(&self, record: &Record, why: &str) -> bool {
        let mut wait = FIRST_BACKOFF;
        loop {
            match bus::dead_letter(self.bus.as_ref(), &self.topology, record, why, 1).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(error = %e, position = ?record.position, "history sink: could not dead-letter a record; trying again");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    /// Writes the entries of `records` (those decoded), record by record once the store refuses
    /// them together; `false` if shut down before all are written or dead-lettered.
    async fn write_records(&self, records: &[(&Record, Vec<Entry>)]) -> bool {
        let all: Vec<&Entry> = records.iter().flat_map(|(_, e)| e).collect();
        match self.write(&all).await {
            Written::Yes => return true,
            Written::Stopped => return false,
            Written::Refused(why) if records.len() == 1 => {
                return self.dead_letter(records[0].0, &why).await;
            }
            Written::Refused(_) => {}
        }
        for (record, entries) in records {
            let entries: Vec<&Entry> = entries.iter().collect();
            match self.write(&entries).await {
                Written::Yes => {}
                Written::Stopped => return false,
                Written::Refused(why) => {
                    if !self.dead_letter(record, &why).await {
                        return false;
                    }
                }
            }
        }
        true
    }
}

#[async_trait(?Send)]
impl Handler for Sink {
    async fn handle(&mut self, records: Vec<Record>) -> Result<Vec<Position>, Fatal> {
        let mut decoded = Vec::with_capacity(records.len());
        for record in &records {
            match decode(&record.payload) {
                Ok(entries) => decoded.push((record, entries)),
                Err(why) => {
                    if !self.dead_letter(record, &why).await {
                        return Ok(Vec::new());
                    }
                }
            }
        }
        if !self.write_records(&decoded).await {
            return Ok(Vec::new());
        }
        // The next offset to read, per partition.
        let mut next: BTreeMap<(String, u32), u64> = BTreeMap::new();
        for r in &records {
            let at = next
                .entry((r.position.topic.clone(), r.position.partition))
                .or_default();
            *at = (*at).max(r.position.offset + 1);
        }
        Ok(next
            .into_iter()
            .map(|((topic, partition), offset)| Position {
                topic,
                partition,
                offset,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bus::memory::MemoryBus;
    use crate::documents::MemoryDocuments;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Documents that fail `save_all` (as unavailable) the first `failures` times.
    struct Flaky {
        inner: MemoryDocuments,
        failures: AtomicU32,
    }

    #[async_trait]
    impl Documents for Flaky {
        async fn run(&self, entry: &Value, now: i64) -> Result<Value, documents::Error> {
            self.inner.run(entry, now).await
        }

        async fn save_all(
            &self,
            collection: &str,
            docs: &[Value],
            now: i64,
        ) -> Result<(), documents::Error> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(documents::Error::Backend("down".into()));
            }
            self.inner.save_all(collection, docs, now).await
        }
    }

    fn record(offset: u64, payload: Value) -> Record {
        Record {
            position: Position {
                topic: Topology::default().history().into(),
                partition: 0,
                offset,
            },
            key: Some("t1".into()),
            payload: serde_json::to_vec(&payload).unwrap(),
            headers: Vec::new(),
            timestamp: 0,
        }
    }

    fn entry(collection: &str, id: &str) -> Value {
        json!({"collection": collection, "document": {"id": id, "thredId": "t1"}})
    }

    async fn count(docs: &MemoryDocuments, collection: &str) -> u64 {
        let task =
            json!({"op": "count", "params": {"type": collection, "matcher": {"thredId": "t1"}}});
        docs.run(&task, 0).await.unwrap().as_u64().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn records_are_handled_once_written_after_failures_and_twice_written_once() {
        let docs = MemoryDocuments::new();
        let flaky = Arc::new(Flaky {
            inner: docs.clone(),
            failures: AtomicU32::new(3),
        });
        let bus = Arc::new(MemoryBus::new());
        let topology = Topology::default();
        for t in topology.topics() {
            bus.create_topic(&t.name, t.partitions).await.unwrap();
        }
        let mut sink = Sink::new(
            flaky.clone(),
            bus.clone(),
            topology.clone(),
            Arc::new(|| 7),
            CancellationToken::new(),
        );
        let batch = vec![
            record(
                4,
                json!([
                    entry("EventRecord", "a/h1"),
                    entry("ThredLogRecord", "a/h2")
                ]),
            ),
            record(5, json!({"not": "history"})),
            record(6, json!([entry("EventRecord", "b/h1")])),
        ];
        let handled = sink.handle(batch.clone()).await.unwrap();
        assert_eq!(handled.len(), 1);
        assert_eq!(handled[0].offset, 7, "handled through the last record");
        assert_eq!(
            flaky.failures.load(Ordering::SeqCst),
            0,
            "tried until it went through"
        );
        assert_eq!(count(&docs, "EventRecord").await, 2);
        assert_eq!(count(&docs, "ThredLogRecord").await, 1);
        // Delivered again (a crash before the commit): nothing new is stored.
        sink.handle(batch).await.unwrap();
        assert_eq!(count(&docs, "EventRecord").await, 2);
        // The record that is not history went to the dead letters, with why.
        let lag = bus
            .lag("nobody", &topology.dead_letter(topology.history()))
            .await
            .unwrap();
        assert_eq!(
            lag.iter().map(|l| l.records).sum::<u64>(),
            2,
            "once per delivery"
        );
    }

    #[tokio::test]
    async fn a_sink_shut_down_while_the_store_fails_handles_nothing() {
        let flaky = Arc::new(Flaky {
            inner: MemoryDocuments::new(),
            failures: AtomicU32::new(u32::MAX),
        });
        let stop = CancellationToken::new();
        let mut sink = Sink::new(
            flaky,
            Arc::new(MemoryBus::new()),
            Topology::default(),
            Arc::new(|| 7),
            stop.clone(),
        );
        stop.cancel();
        let handled = sink
            .handle(vec![record(0, json!([entry("EventRecord", "a/h1")]))])
            .await
            .unwrap();
        assert!(handled.is_empty(), "nothing written, nothing handled");
    }
}
