//! The Threds runtime: ports (event bus, thred store, documents) with their adapters, plus
//! configuration and file loading.

pub mod bus;
pub mod codes;
pub mod config;
pub mod documents;
pub mod engine;
pub mod files;
pub mod history;
pub mod metrics;
pub mod millis;
pub mod store;
pub mod telemetry;
pub mod topology;
pub mod trace;
