//! Serde for a [`Duration`] kept as whole milliseconds (`*_ms` settings).

use serde::{Deserialize, Deserializer, Serializer};
use std::time::Duration;

/// Writes `d` as milliseconds (saturating at `u64::MAX`).
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads milliseconds.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}
