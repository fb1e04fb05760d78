//! Test support shared by the crates' tests: real servers spawned as child processes on free
//! loopback ports and killed on drop.

pub mod mongo;
pub mod redis;
