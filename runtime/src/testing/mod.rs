//! Test support shared by the crates' tests: real servers spawned as child processes on free
//! loopback ports (or, for Kafka, librdkafka's mock cluster in this process) and stopped on drop.

pub mod kafka;
pub mod mongo;
pub mod redis;
