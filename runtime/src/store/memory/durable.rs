//! Durability of the embedded store: a redb database (`store.redb`) holding one record per thred,
//! counter, watermark, lease, session and unacknowledged outbox entry. The in-memory [`State`] is rebuilt from it on open; every
//! change is one redb write transaction, durable when it commits.
//!
//! Tables (values are JSON unless noted):
//! - `threds`: thred id → [`Entry`] (state, version, token, partition, timer, unbound position);
//!   the timer sets and the unbound index are rebuilt from these;
//! - `counters`: pattern id → [`CounterRecord`];
//! - `applied`: (topic, partition) → highest applied offset (u64);
//! - `leases`: resource → [`LeaseRecord`] (newest token granted, holder);
//! - `sessions`: session id → [`SessionRecord`];
//! - `participants`: first-seen position (u64) → participant id (str);
//! - `outbox`: sequence number (u64) → (commit time, topic, key, payload bytes), a redb tuple, so
//!   payloads are kept byte for byte;
//! - `meta`: name (str) → u64; `last_outbox_seq` is the highest outbox sequence number ever given,
//!   so numbers keep rising after every entry was acknowledged.

use super::lease::LeaseRecord;
use super::sessions::SessionRecord;
use super::state::Plan;
use super::state::{CounterRecord, Entry, State};
use crate::store::{Error, Outgoing, Pending, Registry};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Display;
use std::path::Path;

const THREDS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("threds");
const COUNTERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("counters");
const APPLIED: TableDefinition<'_, (&str, u32), u64> = TableDefinition::new("applied");
const LEASES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("leases");
const SESSIONS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("sessions");
const PARTICIPANTS: TableDefinition<'_, u64, &str> = TableDefinition::new("participants");
/// The stored form of an outbox entry: (commit time, topic, key, payload).
type OutboxValue<'a> = (i64, &'a str, Option<&'a str>, &'a [u8]);
const OUTBOX: TableDefinition<'_, u64, OutboxValue<'_>> = TableDefinition::new("outbox");
/// The partition of an outbox entry addressed to one (absent: the key's partition); a table of
/// its own, so that stores written before it existed open unchanged.
const OUTBOX_PARTITION: TableDefinition<'_, u64, u32> = TableDefinition::new("outbox_partition");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// The pattern registry: one document (its version and JSON) under [`REGISTRY_KEY`].
const REGISTRY: TableDefinition<'_, &str, (u64, &[u8])> = TableDefinition::new("registry");
const REGISTRY_KEY: &str = "registry";

/// The `meta` key of the highest outbox sequence number ever given.
const LAST_OUTBOX_SEQ: &str = "last_outbox_seq";

/// The file name of the database inside the store directory.
const FILE: &str = "store.redb";

/// The open database.
pub(super) struct Durable {
    db: Database,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durable")
    }
}

impl Durable {
    /// Opens (or creates) the database in `dir` and loads its content.
    pub fn open(dir: &Path) -> Result<(Durable, State), Error> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let db = Database::create(dir.join(FILE)).map_err(backend)?;
        let durable = Durable { db };
        durable.write(|txn| {
            txn.open_table(THREDS)?;
            txn.open_table(COUNTERS)?;
            txn.open_table(APPLIED)?;
            txn.open_table(LEASES)?;
            txn.open_table(SESSIONS)?;
            txn.open_table(PARTICIPANTS)?;
            txn.open_table(OUTBOX)?;
            txn.open_table(OUTBOX_PARTITION)?;
            txn.open_table(META)?;
            txn.open_table(REGISTRY)?;
            Ok(())
        })?;
        let state = durable.load()?;
        Ok((durable, state))
    }

    /// Reads every record into a fresh [`State`].
    fn load(&self) -> Result<State, Error> {
        let txn = self.db.begin_read().map_err(backend)?;
        let mut state = State::default();
        for row in txn
            .open_table(THREDS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (key, value) = row.map_err(backend)?;
            let entry: Entry = decode("thred", key.value(), value.value())?;
            state.insert_thred(key.value().to_string(), entry);
        }
        for row in txn
            .open_table(COUNTERS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (key, value) = row.map_err(backend)?;
            let record: CounterRecord = decode("counter", key.value(), value.value())?;
            state.insert_counter(key.value().to_string(), record);
        }
        for row in txn
            .open_table(APPLIED)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (key, value) = row.map_err(backend)?;
            let (topic, partition) = key.value();
            state.insert_applied(topic.to_string(), partition, value.value());
        }
        for row in txn
            .open_table(LEASES)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (key, value) = row.map_err(backend)?;
            let record: LeaseRecord = decode("lease", key.value(), value.value())?;
            state.leases.insert(key.value().to_string(), record);
        }
        // Participants first (by position), so sessions do not reorder them.
        for row in txn
            .open_table(PARTICIPANTS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (_, value) = row.map_err(backend)?;
            state.sessions.add_participant(value.value().to_string());
        }
        for row in txn
            .open_table(SESSIONS)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (key, value) = row.map_err(backend)?;
            let record: SessionRecord = decode("session", key.value(), value.value())?;
            state.sessions.insert(key.value().to_string(), record);
        }
        if let Some(last) = txn
            .open_table(META)
            .map_err(backend)?
            .get(LAST_OUTBOX_SEQ)
            .map_err(backend)?
        {
            state.note_outbox_seq(last.value());
        }
        let partitions = txn.open_table(OUTBOX_PARTITION).map_err(backend)?;
        for row in txn
            .open_table(OUTBOX)
            .map_err(backend)?
            .iter()
            .map_err(backend)?
        {
            let (key, value) = row.map_err(backend)?;
            let (at, topic, record_key, payload) = value.value();
            let partition = partitions
                .get(key.value())
                .map_err(backend)?
                .map(|p| p.value());
            state.insert_outbox(Pending {
                seq: key.value(),
                at,
                record: Outgoing {
                    topic: topic.to_string(),
                    key: record_key.map(str::to_string),
                    payload: payload.to_vec(),
                    partition,
                },
            });
        }
        Ok(state)
    }

    /// Writes a validated commit in one transaction.
    pub fn commit(&self, plan: &Plan) -> Result<(), Error> {
        let threds = plan
            .threds
            .iter()
            .map(|(id, entry)| Ok((id, entry.as_ref().map(encode).transpose()?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let counters = plan
            .counters
            .iter()
            .map(|(id, record)| Ok((id, encode(record)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        self.write(|txn| {
            let mut table = txn.open_table(THREDS)?;
            for (id, bytes) in &threds {
                match bytes {
                    Some(bytes) => table.insert(id.as_str(), bytes.as_slice())?,
                    None => table.remove(id.as_str())?,
                };
            }
            let mut table = txn.open_table(COUNTERS)?;
            for (id, bytes) in &counters {
                table.insert(id.as_str(), bytes.as_slice())?;
            }
            let mut table = txn.open_table(APPLIED)?;
            for ((topic, partition), offset) in &plan.applied {
                table.insert((topic.as_str(), *partition), *offset)?;
            }
            if let Some(last) = plan.outbox.last() {
                let mut table = txn.open_table(OUTBOX)?;
                for pending in &plan.outbox {
                    let record = &pending.record;
                    let value = (
                        pending.at,
                        record.topic.as_str(),
                        record.key.as_deref(),
                        record.payload.as_slice(),
                    );
                    table.insert(pending.seq, value)?;
                }
                let mut partitions = txn.open_table(OUTBOX_PARTITION)?;
                for pending in &plan.outbox {
                    if let Some(p) = pending.record.partition {
                        partitions.insert(pending.seq, p)?;
                    }
                }
                txn.open_table(META)?.insert(LAST_OUTBOX_SEQ, last.seq)?;
            }
            Ok(())
        })
    }

    /// Deletes acknowledged outbox entries in one transaction.
    pub fn ack_outbox(&self, seqs: &[u64]) -> Result<(), Error> {
        self.write(|txn| {
            let mut table = txn.open_table(OUTBOX)?;
            let mut partitions = txn.open_table(OUTBOX_PARTITION)?;
            for seq in seqs {
                table.remove(*seq)?;
                partitions.remove(*seq)?;
            }
            Ok(())
        })
    }

    /// Writes the lease record of `resource`.
    pub fn put_lease(&self, resource: &str, record: &LeaseRecord) -> Result<(), Error> {
        let bytes = encode(record)?;
        self.write(|txn| {
            txn.open_table(LEASES)?.insert(resource, bytes.as_slice())?;
            Ok(())
        })
    }

    /// Writes session `id`, and its participant at `position` when first seen.
    pub fn put_session(
        &self,
        id: &str,
        record: &SessionRecord,
        position: Option<u64>,
    ) -> Result<(), Error> {
        let bytes = encode(record)?;
        self.write(|txn| {
            txn.open_table(SESSIONS)?.insert(id, bytes.as_slice())?;
            if let Some(position) = position {
                txn.open_table(PARTICIPANTS)?
                    .insert(position, record.participant.as_str())?;
            }
            Ok(())
        })
    }

    /// Deletes session `id`.
    pub fn remove_session(&self, id: &str) -> Result<(), Error> {
        self.write(|txn| {
            txn.open_table(SESSIONS)?.remove(id)?;
            Ok(())
        })
    }

    /// The stored pattern registry (empty at version 0 when none was stored).
    pub fn registry(&self) -> Result<Registry, Error> {
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(REGISTRY).map_err(backend)?;
        let Some(entry) = table.get(REGISTRY_KEY).map_err(backend)? else {
            return Ok(Registry::default());
        };
        let (version, bytes) = entry.value();
        let mut registry: Registry = decode("registry", REGISTRY_KEY, bytes)?;
        registry.version = version;
        Ok(registry)
    }

    /// Writes the pattern registry at `version`.
    pub fn put_registry(&self, version: u64, registry: &Registry) -> Result<(), Error> {
        let bytes = encode(registry)?;
        self.write(|txn| {
            txn.open_table(REGISTRY)?
                .insert(REGISTRY_KEY, (version, bytes.as_slice()))?;
            Ok(())
        })
    }

    /// Runs `f` in a write transaction and commits it (aborted if `f` fails).
    fn write(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), Error> {
        let txn = self.db.begin_write().map_err(backend)?;
        f(&txn).map_err(backend)?;
        txn.commit().map_err(backend)
    }
}

/// A backend error.
fn backend(error: impl Display) -> Error {
    Error::Backend(error.to_string())
}

/// The JSON of a record.
fn encode(record: &impl Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(record).map_err(backend)
}

/// A record from its JSON.
fn decode<T: DeserializeOwned>(kind: &str, key: &str, bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        key: format!("{kind} {key}"),
        reason: e.to_string(),
    })
}
