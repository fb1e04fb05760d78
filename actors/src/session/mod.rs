//! The session service: WebSocket and HTTP clients, authenticated, sending events and receiving
//! their messages.

pub mod connection;
pub mod feed;
pub mod http;
pub mod hub;
pub mod intake;
pub mod protocol;
