//! The engine process: the engine service (the events topic's consumer) and its partition workers.

pub mod service;
pub mod worker;

#[cfg(test)]
mod tests;
