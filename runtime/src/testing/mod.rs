//! Test support for adapters backed by real servers: spawning them on free loopback ports.

pub mod redis;
