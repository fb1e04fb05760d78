//! The session directory port: which session-service node holds each connection of a
//! participant, and every participant ever connected (for `$all`).
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::sessions`):
//! - a participant's sessions are listed in the order they were added, removed ones left out;
//! - every participant that ever had a session stays listed, in first-seen order, after its
//!   sessions are gone.

use super::Error;
use async_trait::async_trait;

/// A connection of a participant, as the session directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Unique session id.
    pub id: String,
    /// The participant.
    pub participant: String,
    /// The session-service node holding the connection.
    pub node: String,
}

/// Where the sessions of each participant are.
#[async_trait]
pub trait SessionDirectory: Send + Sync + 'static {
    /// Records a session of a participant.
    async fn add_session(&self, session: Session) -> Result<(), Error>;

    /// Forgets a session.
    async fn remove_session(&self, session_id: &str) -> Result<(), Error>;

    /// The sessions of `participant`.
    async fn sessions_of(&self, participant: &str) -> Result<Vec<Session>, Error>;

    /// Every participant that ever had a session (for `$all`).
    async fn participants(&self) -> Result<Vec<String>, Error>;
}
