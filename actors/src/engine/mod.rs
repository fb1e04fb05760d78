//! Engine actors: the consumer-group member and its per-partition workers.

pub mod service;
pub mod worker;
