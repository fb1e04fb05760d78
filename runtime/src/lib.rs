//! The Threds runtime: configuration and file loading, ports and their adapters.

pub mod files;
