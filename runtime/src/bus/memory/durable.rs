//! The durable side of the embedded bus: a redb database (`bus.redb`) holding topics, records and
//! committed offsets, written by one writer thread that commits whatever requests queued up while
//! the previous transaction was being synced (group commit), so concurrent appends share fsyncs.

use super::codec;
use super::state::{lock, State, Topic, MAX_PARTITIONS};
use crate::bus::{Error, Record};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Topic name → partition count.
const TOPICS: TableDefinition<'_, &str, u32> = TableDefinition::new("topics");
/// (topic, partition, offset) → encoded record.
const RECORDS: TableDefinition<'_, (&str, u32, u64), &[u8]> = TableDefinition::new("records");
/// (group, topic, partition) → committed offset.
const OFFSETS: TableDefinition<'_, (&str, &str, u32), u64> = TableDefinition::new("offsets");

/// redb's page cache (its default, 1 GiB, is a lot for a dev tool; consumers mostly read the tail).
const CACHE_BYTES: usize = 64 << 20;

/// The most requests one transaction carries.
const MAX_BATCH: usize = 4096;

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

/// A write request for the writer thread.
enum Request {
    CreateTopic {
        topic: String,
        partitions: u32,
    },
    Append {
        topic: String,
        partition: u32,
        bytes: Vec<u8>,
    },
    Commit {
        group: String,
        offsets: Vec<(String, u32, u64)>,
    },
}

/// What a request achieved.
enum Ack {
    Done,
    Appended(u64),
}

struct Job {
    request: Request,
    reply: oneshot::Sender<Result<Ack, Error>>,
}

/// The durable store: the database for reads, the queue to the writer thread for writes.
pub(super) struct Durable {
    db: Arc<Database>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("commits", &self.commits.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Durable {
    /// Opens (or creates) `dir/bus.redb`, loads topics, end offsets and committed offsets into a
    /// fresh state, and starts the writer thread.
    pub fn open(dir: &Path) -> Result<(Durable, Arc<Mutex<State>>), Error> {
        let writer = Writer::open(dir)?;
        let (db, state, commits) = (
            writer.db.clone(),
            writer.state.clone(),
            writer.commits.clone(),
        );
        let (jobs, queue) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("threds-bus-writer".to_owned())
            .spawn(move || writer.run(queue))
            .map_err(backend)?;
        let durable = Durable {
            db,
            jobs: Some(jobs),
            writer: Some(handle),
            commits,
        };
        Ok((durable, state))
    }

    /// How many write transactions the writer has committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Durably creates a topic (the writer decides between concurrent creations).
    pub async fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), Error> {
        let request = Request::CreateTopic {
            topic: topic.to_owned(),
            partitions,
        };
        self.submit(request).await.map(|_| ())
    }

    /// Durably appends an encoded record; returns its offset.
    pub async fn append(&self, topic: &str, partition: u32, bytes: Vec<u8>) -> Result<u64, Error> {
        let request = Request::Append {
            topic: topic.to_owned(),
            partition,
            bytes,
        };
        match self.submit(request).await? {
            Ack::Appended(offset) => Ok(offset),
            Ack::Done => Err(Error::Backend("append was not acknowledged".to_owned())),
        }
    }

    /// Durably commits a group's offsets.
    pub async fn commit(&self, group: &str, offsets: Vec<(String, u32, u64)>) -> Result<(), Error> {
        let request = Request::Commit {
            group: group.to_owned(),
            offsets,
        };
        self.submit(request).await.map(|_| ())
    }

    async fn submit(&self, request: Request) -> Result<Ack, Error> {
        let (reply, done) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or(Error::Closed)?;
        jobs.send(Job { request, reply })
            .map_err(|_| Error::Closed)?;
        done.await.map_err(|_| Error::Closed)?
    }

    /// Reads `count` records of `topic`/`partition` from offset `from` (fewer if the log ends).
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        count: u64,
    ) -> Result<Vec<Record>, Error> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(RECORDS).map_err(backend)?;
        let until = from.saturating_add(count);
        let mut records = Vec::new();
        for item in table
            .range((topic, partition, from)..(topic, partition, until))
            .map_err(backend)?
        {
            let (key, value) = item.map_err(backend)?;
            let offset = key.value().2;
            records.push(codec::decode(value.value())?.into_record(topic, partition, offset));
        }
        Ok(records)
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        // Closing the queue lets the writer finish what is queued and exit; waiting for it
        // releases the database file, so the directory can be opened again right away.
        self.jobs = None;
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

/// Reads topics, end offsets and committed offsets into a fresh state.
fn load(db: &Database) -> Result<State, Error> {
    let mut state = State::new();
    let txn = db.begin_read().map_err(backend)?;
    let topics = txn.open_table(TOPICS).map_err(backend)?;
    let records = txn.open_table(RECORDS).map_err(backend)?;
    for item in topics.iter().map_err(backend)? {
        let (name, count) = item.map_err(backend)?;
        let (name, count) = (name.value(), count.value());
        if count == 0 || count > MAX_PARTITIONS {
            return Err(Error::Backend(format!(
                "topic {name} has an invalid partition count {count}"
            )));
        }
        let mut topic = Topic::new(count);
        for (partition, log) in (0u32..).zip(topic.partitions.iter_mut()) {
            let mut range = records
                .range((name, partition, 0)..=(name, partition, u64::MAX))
                .map_err(backend)?;
            let first = range.next().transpose().map_err(backend)?;
            let last = range.next_back().transpose().map_err(backend)?;
            log.start = first.as_ref().map_or(0, |(key, _)| key.value().2);
            log.end = last
                .or(first)
                .map_or(0, |(key, _)| key.value().2.saturating_add(1));
        }
        state.topics.insert(name.to_owned(), topic);
    }
    let offsets = txn.open_table(OFFSETS).map_err(backend)?;
    for item in offsets.iter().map_err(backend)? {
        let (key, offset) = item.map_err(backend)?;
        let (group, topic, partition) = key.value();
        state
            .groups
            .entry(group.to_owned())
            .or_default()
            .committed
            .insert((topic.to_owned(), partition), offset.value());
    }
    Ok(state)
}

/// The writer thread's view: the authoritative topic list and next offsets.
struct Writer {
    db: Arc<Database>,
    state: Arc<Mutex<State>>,
    topics: HashMap<String, u32>,
    next: HashMap<(String, u32), u64>,
    /// The oldest kept offset per partition (retention removes below it).
    start: HashMap<(String, u32), u64>,
    commits: Arc<AtomicU64>,
}

/// The planned effect of one job, applied to the shared state once the transaction committed.
enum Effect {
    Rejected(Error),
    Created(String, u32),
    Exists,
    Appended(String, u32, u64),
    Committed(String, Vec<(String, u32, u64)>),
    Trimmed(String, u32, u64),
}

impl Writer {
    /// Opens (or creates) the database and loads the state it holds.
    fn open(dir: &Path) -> Result<Writer, Error> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(dir.join("bus.redb"))
            .map_err(backend)?;
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(TOPICS).map_err(backend)?;
        txn.open_table(RECORDS).map_err(backend)?;
        txn.open_table(OFFSETS).map_err(backend)?;
        txn.commit().map_err(backend)?;
        let state = load(&db)?;
        Ok(Writer {
            db: Arc::new(db),
            topics: state
                .topics
                .iter()
                .map(|(name, t)| (name.clone(), t.count()))
                .collect(),
            next: state
                .topics
                .iter()
                .flat_map(|(name, t)| {
                    (0u32..)
                        .zip(&t.partitions)
                        .map(move |(p, log)| ((name.clone(), p), log.end))
                })
                .collect(),
            start: state
                .topics
                .iter()
                .flat_map(|(name, t)| {
                    (0u32..)
                        .zip(&t.partitions)
                        .map(move |(p, log)| ((name.clone(), p), log.start))
                })
                .collect(),
            state: Arc::new(Mutex::new(state)),
            commits: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Serves jobs until every sender is gone, committing each batch in one transaction.
    fn run(mut self, queue: mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.serve(batch);
        }
    }

    fn serve(&mut self, batch: Vec<Job>) {
        let (requests, replies): (Vec<Request>, Vec<_>) =
            batch.into_iter().map(|j| (j.request, j.reply)).unzip();
        match self.write(requests) {
            Ok(effects) => {
                self.commits.fetch_add(1, Ordering::Relaxed);
                let acks = self.publish(effects);
                for (reply, ack) in replies.into_iter().zip(acks) {
                    let _ = reply.send(ack);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Backend(message.clone())));
                }
            }
        }
    }

    /// Writes a batch in one durable transaction; returns each request's effect.
    fn write(&self, requests: Vec<Request>) -> Result<Vec<Effect>, redb::Error> {
        let retain = lock(&self.state).retain.records;
        let mut created: HashMap<String, u32> = HashMap::new();
        let mut next: HashMap<(String, u32), u64> = HashMap::new();
        let mut effects = Vec::with_capacity(requests.len());
        let txn = self.db.begin_write()?;
        {
            let mut topics = txn.open_table(TOPICS)?;
            let mut records = txn.open_table(RECORDS)?;
            let mut offsets = txn.open_table(OFFSETS)?;
            for request in requests {
                let effect = match request {
                    Request::CreateTopic { topic, partitions } => {
                        match self.topics.get(&topic).or_else(|| created.get(&topic)) {
                            Some(&existing) if existing == partitions => Effect::Exists,
                            Some(&existing) => Effect::Rejected(Error::PartitionMismatch {
                                topic,
                                existing,
                                requested: partitions,
                            }),
                            None => {
                                topics.insert(topic.as_str(), partitions)?;
                                created.insert(topic.clone(), partitions);
                                Effect::Created(topic, partitions)
                            }
                        }
                    }
                    Request::Append {
                        topic,
                        partition,
                        bytes,
                    } => {
                        let tp = (topic, partition);
                        let offset = next
                            .get(&tp)
                            .or_else(|| self.next.get(&tp))
                            .copied()
                            .unwrap_or(0);
                        records.insert((tp.0.as_str(), partition, offset), bytes.as_slice())?;
                        next.insert(tp.clone(), offset.saturating_add(1));
                        Effect::Appended(tp.0, partition, offset)
                    }
                    Request::Commit {
                        group,
                        offsets: list,
                    } => {
                        for (topic, partition, offset) in &list {
                            offsets
                                .insert((group.as_str(), topic.as_str(), *partition), *offset)?;
                        }
                        Effect::Committed(group, list)
                    }
                };
                effects.push(effect);
            }
            if let Some(retain) = retain {
                for ((topic, partition), end) in &next {
                    let from = self.start.get(&(topic.clone(), *partition)).copied();
                    let cut = end.saturating_sub(retain);
                    let from = from.unwrap_or(0);
                    if cut > from {
                        for offset in from..cut {
                            records.remove((topic.as_str(), *partition, offset))?;
                        }
                        // After every request's effect, so replies still pair with the first ones.
                        effects.push(Effect::Trimmed(topic.clone(), *partition, cut));
                    }
                }
            }
        }
        txn.commit()?;
        Ok(effects)
    }

    /// Makes committed effects visible: topics, end offsets (waking readers), committed offsets.
    fn publish(&mut self, effects: Vec<Effect>) -> Vec<Result<Ack, Error>> {
        let mut state = lock(&self.state);
        let mut appended = BTreeSet::new();
        let acks = effects
            .into_iter()
            .map(|effect| match effect {
                Effect::Rejected(e) => Err(e),
                Effect::Exists => Ok(Ack::Done),
                Effect::Created(topic, count) => {
                    self.topics.insert(topic.clone(), count);
                    state.topics.insert(topic, Topic::new(count));
                    Ok(Ack::Done)
                }
                Effect::Appended(topic, partition, offset) => {
                    self.next
                        .insert((topic.clone(), partition), offset.saturating_add(1));
                    if let Some(log) = state
                        .topics
                        .get_mut(&topic)
                        .and_then(|t| t.partitions.get_mut(partition as usize))
                    {
                        log.end = log.end.max(offset.saturating_add(1));
                    }
                    appended.insert((topic, partition));
                    Ok(Ack::Appended(offset))
                }
                Effect::Committed(group, list) => {
                    let committed = &mut state.groups.entry(group).or_default().committed;
                    for (topic, partition, offset) in list {
                        committed.insert((topic, partition), offset);
                    }
                    Ok(Ack::Done)
                }
                Effect::Trimmed(topic, partition, start) => {
                    self.start.insert((topic.clone(), partition), start);
                    if let Some(log) = state
                        .topics
                        .get_mut(&topic)
                        .and_then(|t| t.partitions.get_mut(partition as usize))
                    {
                        log.start = log.start.max(start);
                    }
                    Ok(Ack::Done)
                }
            })
            .collect();
        for (topic, partition) in appended {
            state.wake_readers(&topic, partition);
        }
        acks
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn job(request: Request) -> (Job, oneshot::Receiver<Result<Ack, Error>>) {
        let (reply, done) = oneshot::channel();
        (Job { request, reply }, done)
    }

    #[test]
    fn queued_requests_share_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::open(dir.path()).unwrap();
        let commits = writer.commits.clone();
        let (jobs, queue) = mpsc::channel();
        let mut replies = Vec::new();
        let create = Request::CreateTopic {
            topic: "t".to_owned(),
            partitions: 2,
        };
        let (first, created) = job(create);
        jobs.send(first).unwrap();
        for i in 0..100u8 {
            let (append, done) = job(Request::Append {
                topic: "t".to_owned(),
                partition: u32::from(i % 2),
                bytes: vec![i],
            });
            jobs.send(append).unwrap();
            replies.push(done);
        }
        let (clash, mismatch) = job(Request::CreateTopic {
            topic: "t".to_owned(),
            partitions: 3,
        });
        jobs.send(clash).unwrap();
        drop(jobs);
        writer.run(queue);
        assert_eq!(commits.load(Ordering::Relaxed), 1);
        assert!(matches!(created.blocking_recv().unwrap(), Ok(Ack::Done)));
        assert!(matches!(
            mismatch.blocking_recv().unwrap(),
            Err(Error::PartitionMismatch { existing: 2, .. })
        ));
        for (i, done) in (0u64..).zip(replies) {
            match done.blocking_recv().unwrap() {
                Ok(Ack::Appended(offset)) => assert_eq!(offset, i / 2),
                _ => panic!("append {i} failed"),
            }
        }
    }
}
