//! Agents hosted by Threds.

pub mod persistence;
