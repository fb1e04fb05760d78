//! Port contract suites: one suite per port, written against the trait only, run against every
//! adapter (the embedded ones here, the production ones in their own tests).

pub mod bus;
pub mod documents;
pub mod store;
