//! Deployment quotas: limits every host enforces the same way, so `threds test` sees the refusals
//! a deployment would make.
//!
//! Live threds are counted per pattern (spec §4.4's counter) and per participant that started
//! them, and per pattern version (what retention must keep); those counts live beside the pattern
//! counters, under keys no pattern id can take ([`participant_key`], [`version_key`]). A refusal fails the unit that wanted the thred (or the bigger
//! state) with [`Code::QuotaExceeded`](super::Code::QuotaExceeded): the sender is told and the
//! history records the error; nothing else changes.

/// Limits on what one deployment stores (0 = no limit) and on what one expression evaluation
/// may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quotas {
    /// Live threds of a pattern that sets no `maxInstances` of its own.
    pub default_max_instances: u64,
    /// Live threds started by the events of one participant (engine events are not counted).
    pub max_threds_per_participant: u64,
    /// Bytes of one thred's stored state (its JSON form: locals, participants, children).
    pub max_state_bytes: u64,
    /// Budgets of every expression evaluation (depth, steps, sequence, string and value bytes).
    pub expression: crate::expr::Limits,
}

/// The first character of participant counter keys; pattern ids may not start with it.
pub const PARTICIPANT_KEY_PREFIX: char = '@';

/// The counter key of `participant`'s live threds.
pub fn participant_key(participant: &str) -> String {
    let mut key = String::with_capacity(participant.len() + 1);
    key.push(PARTICIPANT_KEY_PREFIX);
    key.push_str(participant);
    key
}

/// The participant a counter key counts for, if it is a participant key.
pub fn participant_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(PARTICIPANT_KEY_PREFIX)
}

/// The first character of version counter keys; pattern ids may not start with it.
pub const VERSION_KEY_PREFIX: char = '#';

/// The counter key of the live threds running version `version` of pattern `pattern_id`.
pub fn version_key(pattern_id: &str, version: u32) -> String {
    format!("{VERSION_KEY_PREFIX}{version}{VERSION_KEY_PREFIX}{pattern_id}")
}

/// The pattern id and version a counter key counts for, if it is a version key.
pub fn version_of_key(key: &str) -> Option<(&str, u32)> {
    let (version, pattern_id) = key
        .strip_prefix(VERSION_KEY_PREFIX)?
        .split_once(VERSION_KEY_PREFIX)?;
    Some((pattern_id, version.parse().ok()?))
}

/// The pattern a counter key counts for, if it is a pattern's own counter (not a participant's,
/// nor a version's).
pub fn pattern_of_key(key: &str) -> Option<&str> {
    (!key.starts_with(PARTICIPANT_KEY_PREFIX) && !key.starts_with(VERSION_KEY_PREFIX))
        .then_some(key)
}

/// The size of `value`'s JSON form, in bytes, without building it.
pub fn json_size(value: &impl serde::Serialize) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing our own types into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_keys_round_trip_and_json_size_counts_bytes() {
        assert_eq!(participant_key("alice"), "@alice");
        assert_eq!(participant_of_key("@alice"), Some("alice"));
        assert_eq!(participant_of_key("echo"), None);
        assert_eq!(version_of_key(&version_key("a#b", 12)), Some(("a#b", 12)));
        assert_eq!(version_of_key("echo"), None);
        assert_eq!(pattern_of_key(&version_key("echo", 1)), None);
        assert_eq!(pattern_of_key("echo"), Some("echo"));
        let v = serde_json::json!({"a": "é", "b": [1, 2]});
        assert_eq!(
            json_size(&v),
            serde_json::to_vec(&v).map_or(0, |b| b.len() as u64)
        );
    }
}
