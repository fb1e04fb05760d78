//! Time and ids for one input, derived from its record position so that a redelivered record
//! produces the same thred ids and event ids (consumers deduplicate by event id).

use crate::bus::{partition_for, Position};
use threds_patterns::machine::Env;
use threds_patterns::pattern::Pattern;

/// The environment of one input read from `position`.
#[derive(Debug, Clone)]
pub struct RecordEnv {
    now: i64,
    base: String,
    partitions: u32,
    partition: u32,
    next: u32,
}

impl RecordEnv {
    /// Ids derived from `position` (within a topic of `partitions` partitions), time `now`.
    pub fn new(position: &Position, partitions: u32, now: i64) -> RecordEnv {
        RecordEnv {
            now,
            base: format!("{}-{}", position.partition, position.offset),
            partitions,
            partition: position.partition,
            next: 0,
        }
    }

    /// Ids derived from a timer (`thred id` and due time) firing in `partition`.
    pub fn for_timer(
        thred_id: &str,
        due: i64,
        partition: u32,
        partitions: u32,
        now: i64,
    ) -> RecordEnv {
        RecordEnv {
            now,
            base: format!("{thred_id}-x{due}"),
            partitions,
            partition,
            next: 0,
        }
    }

    /// The seed of every id this environment makes (the same each time its input runs).
    pub fn ids(&self) -> &str {
        &self.base
    }

    fn seq(&mut self) -> u32 {
        self.next += 1;
        self.next
    }
}

impl Env for RecordEnv {
    fn now(&self) -> i64 {
        self.now
    }

    /// `<patternId>_<partition>-<offset>-<n>[.<k>]`, with `k` chosen so the id hashes to the
    /// partition that created it: its bound events then come back to the same partition.
    fn thred_id(&mut self, pattern: &Pattern) -> String {
        let n = self.seq();
        let id = format!("{}_{}-{}", pattern.id, self.base, n);
        if self.partitions <= 1 || partition_for(&id, self.partitions) == self.partition {
            return id;
        }
        (1u32..)
            .map(|k| format!("{id}.{k}"))
            .find(|candidate| partition_for(candidate, self.partitions) == self.partition)
            .unwrap_or(id)
    }

    fn event_id(&mut self) -> String {
        let n = self.seq();
        format!("evt-{}-{}", self.base, n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use threds_patterns::pattern::PatternSet;

    #[test]
    fn thred_ids_hash_to_their_partition_and_repeat_on_redelivery() {
        let p = threds_patterns::load::pattern(
            "t",
            r#"{"name": "Echo", "reactions": [{"condition": {"type": "filter", "xpr": "true"}}]}"#,
        )
        .unwrap()
        .value;
        let mut set = PatternSet::new();
        set.insert(Arc::new(p));
        let pattern = set.get("echo").unwrap();
        for offset in 0..50 {
            let pos = Position {
                topic: crate::topology::Topology::default().events().into(),
                partition: 3,
                offset,
            };
            let mut env = RecordEnv::new(&pos, 8, 0);
            let id = env.thred_id(pattern);
            assert_eq!(partition_for(&id, 8), 3, "{id}");
            assert_eq!(RecordEnv::new(&pos, 8, 0).thred_id(pattern), id);
        }
    }
}
