//! The memory an embedded deployment (`threds dev`) is bounded by under a steady load of
//! maximum-size events, from its settings (docs/operations.md, "Memory").

use super::Config;

/// What the process needs besides the bounded buffers: code, runtimes, the allocator's slack,
/// loaded patterns, metrics.
pub const BASE_BYTES: u64 = 128 * 1024 * 1024;

/// Payload bytes the engine holds polled and not yet applied, at most.
pub const ENGINE_BUFFER_BYTES: u64 = 16 * 1024 * 1024;

impl Config {
    /// The resident memory `threds dev` stays under with `connections` open WebSockets, however
    /// many and however large the events (up to the frame limit): the base, the embedded bus's
    /// retention per partition, the embedded history's retention per collection, the engine's
    /// buffer, the bodies of requests in flight, and each connection's queue and frames. Not
    /// counted: thred states (bounded by the quotas) and expression evaluations in progress (each
    /// bounded by `[engine] expression_max_bytes`).
    pub fn memory_bound(&self, connections: u64) -> u64 {
        let partitions: u64 = self
            .topology()
            .topics()
            .iter()
            .map(|t| u64::from(t.partitions))
            .sum();
        let frame = self.server.max_frame_bytes as u64;
        let bus = partitions * self.storage.bus_retention_bytes;
        let history = 2 * self.storage.history_retention_bytes;
        let requests = self.server.max_requests_in_flight as u64 * frame;
        let per_connection = self.server.connection_queue_bytes as u64 + 2 * frame;
        BASE_BYTES + bus + history + ENGINE_BUFFER_BYTES + requests + connections * per_connection
    }
}
