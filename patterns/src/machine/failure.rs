//! Step failures and the error codes of spec §1.5.

use serde_json::{json, Value};

/// The error codes of spec §1.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Code {
    /// 5000.
    ServerError = 5000,
    /// 5200.
    TaskError = 5200,
    /// 5201.
    ObjectNotFound = 5201,
    /// 5202.
    ObjectAlreadyExists = 5202,
    /// 5203.
    ThredDoesNotExist = 5203,
    /// 4000.
    ClientError = 4000,
    /// 4101.
    Unauthorized = 4101,
    /// 4102.
    InvalidLogin = 4102,
    /// 4200.
    ArgumentValidation = 4200,
    /// 4202.
    MissingArgument = 4202,
    /// 4291: a deployment quota (live threds per pattern or per participant, thred state size)
    /// refused the step. Not in the reference; 4290 is the session's rate limit.
    QuotaExceeded = 4291,
}

impl Code {
    /// The numeric code.
    pub fn number(self) -> u16 {
        self as u16
    }

    /// The reference's default message for the code.
    pub fn default_message(self) -> &'static str {
        match self {
            Code::ServerError => "Server Error",
            Code::TaskError => "Task Error",
            Code::ObjectNotFound => "Object Not Found",
            Code::ObjectAlreadyExists => "Object Already Exists",
            Code::ThredDoesNotExist => "Thred Does Not Exist",
            Code::ClientError => "Client Error",
            Code::Unauthorized => "Unauthorized",
            Code::InvalidLogin => "Invalid Login",
            Code::ArgumentValidation => "Argument Validation Error",
            Code::MissingArgument => "Missing Argument",
            Code::QuotaExceeded => "Quota Exceeded",
        }
    }
}

/// Who is told about a failure (spec §4.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The sender of the event.
    Sender,
    /// Every participant of the thred.
    Thred,
}

/// Why a step failed. A failed step has no effect but its error notification.
/// (Boxed: failures are rare and results carrying them stay small.)
#[derive(Debug, Clone, PartialEq)]
pub struct Failure(Box<FailureData>);

impl std::ops::Deref for Failure {
    type Target = FailureData;
    fn deref(&self) -> &FailureData {
        &self.0
    }
}

impl From<FailureData> for Failure {
    fn from(data: FailureData) -> Self {
        Failure(Box::new(data))
    }
}

/// The content of a [`Failure`].
#[derive(Debug, Clone, PartialEq)]
pub struct FailureData {
    /// The `content.error` object sent to the recipients (`{message, code, cause?}`).
    pub error: Value,
    /// Who is told.
    pub scope: Scope,
    /// The thred concerned, when there is one.
    pub thred_id: Option<String>,
    /// A one-line description for logs: what failed and where.
    pub detail: String,
}

impl Failure {
    /// A failure the client caused or may act on (`EventThrowable` in the reference).
    pub fn client(code: Code, message: impl Into<String>) -> Failure {
        let message = message.into();
        FailureData {
            error: json!({"message": message, "code": code.number()}),
            scope: Scope::Sender,
            thred_id: None,
            detail: message,
        }
        .into()
    }

    /// An internal failure: reported as `Server Error` (5000) with the detail as its cause.
    pub fn server(detail: impl Into<String>) -> Failure {
        let detail = detail.into();
        FailureData {
            error: json!({
                "message": Code::ServerError.default_message(),
                "code": Code::ServerError.number(),
                "cause": {"message": detail, "name": "Error"}
            }),
            scope: Scope::Sender,
            thred_id: None,
            detail,
        }
        .into()
    }

    /// An error an agent reported in `content.error`, passed on unchanged to the thred's participants.
    pub fn reported(error: Value, thred_id: &str) -> Failure {
        let detail = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("an agent reported an error")
            .to_string();
        FailureData {
            error,
            scope: Scope::Thred,
            thred_id: Some(thred_id.to_string()),
            detail,
        }
        .into()
    }

    /// Several failures for one input, wrapped as one `Server Error` whose cause lists them.
    pub fn many(failures: Vec<Failure>) -> Failure {
        let detail = failures
            .iter()
            .map(|f| f.detail.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        FailureData {
            error: json!({
                "message": Code::ServerError.default_message(),
                "code": Code::ServerError.number(),
                "cause": failures.into_iter().map(|f| f.0.error).collect::<Vec<_>>()
            }),
            scope: Scope::Sender,
            thred_id: None,
            detail,
        }
        .into()
    }

    /// The `message` of the error object.
    pub fn message(&self) -> &str {
        self.error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Server Error")
    }

    /// Attaches the thred concerned.
    pub fn in_thred(mut self, thred_id: &str) -> Failure {
        self.0.thred_id.get_or_insert_with(|| thred_id.to_string());
        self
    }
}
