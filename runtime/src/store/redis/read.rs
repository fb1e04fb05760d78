//! Decoding what the Redis store reads back: thred rows, counter rows and outbox entries.

use crate::store::{Error, Outgoing, Pending, Stored, StoredCounter};
use deadpool_redis::redis::Value;

/// `HMGET thred:{id} s v t`: state JSON, version, token.
pub(super) type ThredRow = (Option<Vec<u8>>, Option<u64>, Option<u64>);

/// `HMGET counter:{pattern} v c`: version, counter JSON.
pub(super) type CounterRow = (Option<u64>, Option<Vec<u8>>);

/// The stored thred `id` from its row (`None` if absent).
pub(super) fn stored(id: &str, row: ThredRow) -> Result<Option<Stored>, Error> {
    let (Some(state), Some(version), token) = row else {
        return Ok(None);
    };
    let state = serde_json::from_slice(&state).map_err(|e| Error::Corrupt {
        key: format!("thred {id}"),
        reason: format!("state: {e}"),
    })?;
    Ok(Some(Stored {
        state,
        version,
        token: token.unwrap_or(0),
    }))
}

/// The counter of `pattern` from its row (version 0 and the default counter if never written).
pub(super) fn counter(pattern: &str, row: CounterRow) -> Result<StoredCounter, Error> {
    let (Some(version), Some(json)) = row else {
        return Ok(StoredCounter::default());
    };
    let counter = serde_json::from_slice(&json).map_err(|e| Error::Corrupt {
        key: format!("counter {pattern}"),
        reason: e.to_string(),
    })?;
    Ok(StoredCounter { counter, version })
}

/// The outbox entries answered by the outbox script: `{seq, at, topic, key or nil, payload,
/// partition or nil}`.
pub(super) fn pending(prefix: &str, rows: Vec<Value>) -> Result<Vec<Pending>, Error> {
    rows.into_iter()
        .map(|row| {
            let corrupt = |reason: &str| Error::Corrupt {
                key: format!("{prefix}outbox"),
                reason: reason.to_string(),
            };
            let Value::Array(fields) = row else {
                return Err(corrupt("entry is not an array"));
            };
            let mut fields = fields.into_iter();
            let mut next = || fields.next().unwrap_or(Value::Nil);
            let seq = number(next()).ok_or_else(|| corrupt("seq"))?;
            let at = number(next()).ok_or_else(|| corrupt("commit time"))?;
            let topic = text(next()).ok_or_else(|| corrupt("topic"))?;
            let key = text(next());
            let Value::BulkString(payload) = next() else {
                return Err(corrupt("payload"));
            };
            let partition = match text(next()) {
                Some(p) => Some(p.parse::<u32>().map_err(|_| corrupt("partition"))?),
                None => None,
            };
            Ok(Pending {
                seq: u64::try_from(seq).map_err(|_| corrupt("negative seq"))?,
                at,
                record: Outgoing {
                    topic,
                    key,
                    payload,
                    partition,
                },
            })
        })
        .collect()
}

/// A string reply as text.
pub(super) fn text(value: Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// An integer reply, or a string reply holding a decimal integer.
pub(super) fn number(value: Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(n),
        other => text(other).and_then(|s| s.parse().ok()),
    }
}
