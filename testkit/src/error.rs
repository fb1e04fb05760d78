//! What can go wrong with the rig, the clients and the helpers of this kit.

use std::time::Duration;

/// An error of the process rig, the WebSocket client, the HTTP helpers or token minting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system call failed (`what` says which).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The process ended before it said where it listens.
    #[error("{process} exited before listening; it said:\n{said}")]
    Exited {
        /// The process (`threds <command>`).
        process: String,
        /// Its log up to then.
        said: String,
    },
    /// The process did not say where it listens in time.
    #[error("{process} did not say where it listens within {within:?}; it said:\n{said}")]
    NotListening {
        /// The process.
        process: String,
        /// How long it was given.
        within: Duration,
        /// Its log up to then.
        said: String,
    },
    /// The process listens but `/readyz` did not answer 200 in time.
    #[error("{process} at {addr} was not ready within {within:?}; last answer: {last}")]
    NotReady {
        /// The process.
        process: String,
        /// Where it listens.
        addr: String,
        /// How long it was given.
        within: Duration,
        /// The last answer of `/readyz` (or why there was none).
        last: String,
    },
    /// The process did not exit after SIGTERM in time.
    #[error("{process} did not stop within {within:?} of SIGTERM")]
    NotStopped {
        /// The process.
        process: String,
        /// How long it was given.
        within: Duration,
    },
    /// The process is not running (it was killed or stopped).
    #[error("{0} is not running")]
    NotRunning(String),
    /// A WebSocket operation failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// The WebSocket connection ended while a frame was awaited.
    #[error("the connection ended while waiting; inbox: {inbox}")]
    Closed {
        /// The frames received but not asked for.
        inbox: String,
    },
    /// No frame matching what was awaited arrived in time.
    #[error("no matching frame within {within:?}; inbox: {inbox}")]
    Timeout {
        /// How long it waited.
        within: Duration,
        /// The frames received but not asked for.
        inbox: String,
    },
    /// A frame or body was not the JSON expected.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A token could not be minted.
    #[error("minting a token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// The mock Kafka cluster failed.
    #[error("mock Kafka cluster: {0}")]
    Kafka(#[from] threds_runtime::bus::Error),
    /// The Redis store failed.
    #[error("redis store: {0}")]
    Store(#[from] threds_runtime::store::Error),
    /// Every delivery slot of the sessions topic is held by another node.
    #[error("all {0} delivery slots are held")]
    NoSlot(u32),
    /// A test key file is not the PEM expected.
    #[error("test key {0}: not a PEM body")]
    Key(&'static str),
    /// An HTTP exchange was malformed.
    #[error("http: {0}")]
    Http(String),
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}
