//! Port contract suites: one suite per port, written against the traits of `threds_runtime` only,
//! run against every adapter by the runtime's integration tests (`runtime/tests/*_contract.rs`).

pub mod bus;
pub mod documents;
pub mod store;
