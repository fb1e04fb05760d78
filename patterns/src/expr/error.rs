//! The expression error type and small constructors for it.

/// An expression error: an official JSONata code, a position (char offset) and a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// Official JSONata error code (`S0201`, `T2001`, `D3001`, `U1001` for exceeded step/depth budgets, `U1002` for exceeded memory budgets, `H1001` for host function errors).
    pub code: String,
    /// Character offset in the source where the error was detected, when known.
    pub position: Option<usize>,
    /// The offending token, when known.
    pub token: Option<String>,
    /// Human-readable description.
    pub message: String,
}

/// The error type used inside the engine: boxed, so results stay small on the hot path.
pub type Fail = Box<Error>;

impl Error {
    /// An error with `code` and `message`, no position or token yet.
    pub fn new(code: &str, message: impl Into<String>) -> Fail {
        Box::new(Error {
            code: code.to_string(),
            position: None,
            token: None,
            message: message.into(),
        })
    }

    /// Sets the position.
    pub fn at(mut self: Box<Self>, position: usize) -> Fail {
        self.position = Some(position);
        self
    }

    /// Sets the position unless one is already known.
    pub fn or_at(mut self: Box<Self>, position: usize) -> Fail {
        if self.position.is_none() {
            self.position = Some(position);
        }
        self
    }

    /// Sets the token.
    pub fn with_token(mut self: Box<Self>, token: impl Into<String>) -> Fail {
        self.token = Some(token.into());
        self
    }

    /// Sets the token when one is given.
    pub fn with_token_opt(mut self: Box<Self>, token: Option<String>) -> Fail {
        if token.is_some() {
            self.token = token;
        }
        self
    }

    /// Sets the token unless one is already known.
    pub fn or_token(mut self: Box<Self>, token: &str) -> Fail {
        if self.token.is_none() {
            self.token = Some(token.to_string());
        }
        self
    }
}
