//! Recovery of the distributed deployment: poison events and restarts with timers pending.

#![allow(clippy::unwrap_used, clippy::expect_used)]
