//! The session directory of the embedded store: sessions by id and by participant, and every
//! participant ever seen, in first-seen order.

use crate::store::Session;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// A session with the sequence number that orders it (also its durable record, keyed by id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SessionRecord {
    /// Order of addition.
    pub seq: u64,
    /// The participant.
    pub participant: String,
    /// The session-service node.
    pub node: String,
}

/// Sessions and participants.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    /// Sessions by id.
    by_id: HashMap<String, SessionRecord>,
    /// Per participant, its session ids by sequence number.
    by_participant: HashMap<String, BTreeMap<u64, String>>,
    /// Every participant ever seen, first-seen order.
    participants: Vec<String>,
    /// The same, for membership tests.
    known: HashSet<String>,
    /// The sequence number of the next session added.
    next_seq: u64,
}

impl Sessions {
    /// The record `session` gets when added now, and the participant's first-seen position if it
    /// is new.
    pub fn preview(&self, session: &Session) -> (SessionRecord, Option<u64>) {
        let record = SessionRecord {
            seq: self.next_seq,
            participant: session.participant.clone(),
            node: session.node.clone(),
        };
        let position = (!self.known.contains(&session.participant))
            .then(|| u64::try_from(self.participants.len()).unwrap_or(u64::MAX));
        (record, position)
    }

    /// Adds (or replaces) session `id`.
    pub fn insert(&mut self, id: String, record: SessionRecord) {
        self.remove(&id);
        self.next_seq = self.next_seq.max(record.seq.saturating_add(1));
        self.add_participant(record.participant.clone());
        self.by_participant
            .entry(record.participant.clone())
            .or_default()
            .insert(record.seq, id.clone());
        self.by_id.insert(id, record);
    }

    /// Records a participant as seen (no effect if it already was).
    pub fn add_participant(&mut self, participant: String) {
        if self.known.insert(participant.clone()) {
            self.participants.push(participant);
        }
    }

    /// Whether session `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// Forgets session `id`.
    pub fn remove(&mut self, id: &str) {
        let Some(old) = self.by_id.remove(id) else {
            return;
        };
        if let Some(ids) = self.by_participant.get_mut(&old.participant) {
            ids.remove(&old.seq);
            if ids.is_empty() {
                self.by_participant.remove(&old.participant);
            }
        }
    }

    /// The sessions of `participant`, in order of addition.
    pub fn sessions_of(&self, participant: &str) -> Vec<Session> {
        let Some(ids) = self.by_participant.get(participant) else {
            return Vec::new();
        };
        ids.values()
            .filter_map(|id| {
                self.by_id.get(id).map(|r| Session {
                    id: id.clone(),
                    participant: r.participant.clone(),
                    node: r.node.clone(),
                })
            })
            .collect()
    }

    /// Every participant ever seen, first-seen order.
    pub fn participants(&self) -> Vec<String> {
        self.participants.clone()
    }
}
