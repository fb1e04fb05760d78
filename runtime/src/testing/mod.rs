//! Support for tests of the adapters and of the crates above: servers to run tests against.

pub mod kafka;
