//! The pure Threds pattern core: pattern model, JSONata expressions and the thred state machine.
//!
//! Nothing in this crate performs I/O, reads a clock or draws random numbers: time and ids come
//! in through the caller's environment, so the same input always gives the same output.
pub mod expr;
pub mod load;
pub mod machine;
pub mod model;
pub mod pattern;
pub mod sim;
pub mod thred;
