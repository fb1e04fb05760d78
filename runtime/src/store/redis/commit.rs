//! The commit script's arguments and answer (layout in `lua/commit.lua`).

use super::read::{number, text};
use crate::store::{Commit, Error, Lease, ThredWrite};
use deadpool_redis::redis::{ScriptInvocation, Value};

/// Adds the arguments of `commit` (made at `now`, under `lease`) to the commit script's call.
pub(super) fn arguments(
    call: &mut ScriptInvocation<'_>,
    prefix: &str,
    now: i64,
    lease: Option<&Lease>,
    commit: &Commit,
) -> Result<(), Error> {
    call.arg(prefix).arg(now);
    match lease {
        Some(lease) => call.arg(&lease.resource).arg(&lease.owner).arg(lease.token),
        None => call.arg("").arg("").arg(0),
    };
    call.arg(commit.threds.len());
    for write in &commit.threds {
        match write {
            ThredWrite::Save {
                state,
                expected,
                partition,
                timer,
                listens_unbound,
            } => {
                let json = serde_json::to_vec(state).map_err(|e| encode(&state.id, e))?;
                call.arg("s")
                    .arg(&state.id)
                    .arg(version(*expected))
                    .arg(*partition)
                    .arg(json);
                match timer {
                    Some(timer) => {
                        let json = serde_json::to_vec(timer).map_err(|e| encode(&state.id, e))?;
                        call.arg(timer.due).arg(json)
                    }
                    None => call.arg("").arg(""),
                };
                call.arg(if *listens_unbound { "1" } else { "0" });
                let participants = &state.thred_context.participant_ids;
                call.arg(participants.len());
                match participants.is_empty() {
                    true => call.arg(""),
                    false => call
                        .arg(serde_json::to_vec(participants).map_err(|e| encode(&state.id, e))?),
                };
            }
            ThredWrite::Remove {
                id,
                expected,
                partition,
            } => {
                call.arg("r")
                    .arg(id)
                    .arg(version(*expected))
                    .arg(*partition)
                    .arg("")
                    .arg("")
                    .arg("")
                    .arg("0")
                    .arg(0)
                    .arg("");
            }
        }
    }
    call.arg(commit.counters.len());
    for (pattern, expected, counter) in &commit.counters {
        let json = serde_json::to_vec(counter).map_err(|e| encode(pattern, e))?;
        call.arg(pattern).arg(*expected).arg(json);
    }
    call.arg(commit.applied.len());
    for (topic, partition, offset) in &commit.applied {
        call.arg(topic).arg(*partition).arg(*offset);
    }
    call.arg(commit.outbox.len());
    for record in &commit.outbox {
        call.arg(&record.topic);
        match &record.key {
            Some(key) => call.arg("1").arg(key),
            None => call.arg("0").arg(""),
        };
        call.arg(record.payload.as_slice());
        match record.partition {
            Some(p) => call.arg(p.to_string()),
            None => call.arg(""),
        };
    }
    Ok(())
}

/// The outbox seqs of an applied commit, or why it was refused.
pub(super) fn outcome(reply: Value, lease: Option<&Lease>) -> Result<Vec<u64>, Error> {
    let bad = |what: &str| Error::Backend(format!("redis commit: unexpected answer ({what})"));
    let Value::Array(items) = reply else {
        return Err(bad("not an array"));
    };
    let mut items = items.into_iter();
    let tag = items.next().and_then(text).ok_or_else(|| bad("no tag"))?;
    match tag.as_str() {
        "ok" => items
            .map(|v| {
                number(v)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad("seq"))
            })
            .collect(),
        "conflict" => Err(Error::Conflict(
            items.next().and_then(text).unwrap_or_default(),
        )),
        "fenced" => {
            let current = items
                .next()
                .and_then(number)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| bad("newest token"))?;
            let (resource, token) =
                lease.map_or((String::new(), 0), |l| (l.resource.clone(), l.token));
            Err(Error::Fenced {
                resource,
                token,
                current,
            })
        }
        other => Err(bad(other)),
    }
}

/// An expected version as the script takes it (`''` = must not exist).
fn version(expected: Option<u64>) -> String {
    expected.map_or_else(String::new, |v| v.to_string())
}

/// A value that could not be encoded.
fn encode(what: &str, e: serde_json::Error) -> Error {
    Error::Backend(format!("redis commit: encoding {what}: {e}"))
}
