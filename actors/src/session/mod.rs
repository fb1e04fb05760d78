//! The session service: WebSocket and HTTP clients, authenticated, sending events and receiving
//! their messages.

pub mod protocol;
