//! History records a step produces for the durable log (spec §4.3, §7 `EventRecord`, `ThredLogRecord`).

use crate::model::Event;
use serde::{Deserialize, Serialize};

/// What happened to an event at a thred (`ThredLogRecord.type`, extended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogKind {
    /// A reaction matched (`m`).
    #[serde(rename = "m")]
    Match,
    /// The current reaction did not match (`nm`).
    #[serde(rename = "nm")]
    NoMatch,
    /// The bound thred does not exist (`nt`).
    #[serde(rename = "nt")]
    NoThred,
    /// No pattern or running thred took the unbound event (`np`).
    #[serde(rename = "np")]
    NoPattern,
    /// A thred start was vetoed by `maxInstances` or `instanceInterval` (`v`).
    #[serde(rename = "v")]
    Veto,
    /// A reaction expired (`x`).
    #[serde(rename = "x")]
    Expired,
    /// A spawn named a pattern that is not loaded (`s`).
    #[serde(rename = "s")]
    SpawnSkipped,
    /// The step failed and had no effect (`e`).
    #[serde(rename = "e")]
    Error,
}

/// One durable history record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "camelCase")]
pub enum Record {
    /// An event seen or sent (`EventRecord`): inbound events once, outbound events with their recipients.
    #[serde(rename_all = "camelCase")]
    Event {
        /// The event.
        event: Event,
        /// The thred it belongs to.
        #[serde(skip_serializing_if = "Option::is_none")]
        thred_id: Option<String>,
        /// Resolved recipients (outbound only).
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<Vec<String>>,
        /// When.
        timestamp: i64,
    },
    /// What a thred did with an event (`ThredLogRecord`).
    #[serde(rename_all = "camelCase")]
    Log {
        /// The kind.
        #[serde(rename = "type")]
        kind: LogKind,
        /// The event concerned.
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
        /// The thred concerned.
        #[serde(skip_serializing_if = "Option::is_none")]
        thred_id: Option<String>,
        /// The pattern concerned (vetoes, spawns).
        #[serde(skip_serializing_if = "Option::is_none")]
        pattern_id: Option<String>,
        /// Reaction before.
        #[serde(skip_serializing_if = "Option::is_none")]
        from_reaction: Option<String>,
        /// Reaction after.
        #[serde(skip_serializing_if = "Option::is_none")]
        to_reaction: Option<String>,
        /// Why, in words (vetoes, errors).
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// When.
        timestamp: i64,
    },
}

impl Record {
    /// A log record of `kind` at `timestamp` with nothing else set.
    pub fn log(kind: LogKind, timestamp: i64) -> Record {
        Record::Log {
            kind,
            event_id: None,
            thred_id: None,
            pattern_id: None,
            from_reaction: None,
            to_reaction: None,
            detail: None,
            timestamp,
        }
    }
}
