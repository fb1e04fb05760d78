//! MongoDB driver errors as documents errors: a duplicate `_id` is [`Error::AlreadyExists`], a
//! write the server refuses for its content (wrong field type, path through a scalar, bad field
//! name, unsupported operator) is [`Error::Invalid`], anything else is [`Error::Backend`].

use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure, TRANSIENT_TRANSACTION_ERROR};

use crate::documents::Error;

/// MongoDB's duplicate key error code.
pub(super) const DUPLICATE_KEY: i32 = 11000;

/// MongoDB's "command not supported" code (what a server answers for an operator it lacks).
pub(super) const COMMAND_NOT_SUPPORTED: i32 = 115;

/// Error codes of requests the server refuses for what they ask, not for its own state: BadValue,
/// FailedToParse, TypeMismatch, PathNotViable, ConflictingUpdateOperators, DollarPrefixedFieldName,
/// EmptyFieldName, DottedFieldName, ImmutableField, InvalidOptions, CommandNotSupported,
/// InvalidIdField, BSONObjectTooLarge.
const REFUSED: [i32; 13] = [2, 9, 14, 28, 40, 52, 56, 57, 66, 72, 115, 53, 10334];

/// A failed step: the error to report, and whether the whole transaction may be retried.
#[derive(Debug)]
pub(super) struct Failure {
    /// What `run` reports.
    pub(super) error: Error,
    /// The server labelled it `TransientTransactionError`.
    pub(super) transient: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            transient: false,
        }
    }
}

/// The write error code of a failed write, if the server refused one document.
pub(super) fn write_code(e: &MongoError) -> Option<(i32, Option<usize>)> {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some((w.code, None)),
        ErrorKind::InsertMany(many) => many
            .write_errors
            .as_ref()
            .and_then(|errors| errors.first())
            .map(|w| (w.code, Some(w.index))),
        ErrorKind::Command(c) => Some((c.code, None)),
        _ => None,
    }
}

/// Whether an unordered `insertMany` failed only because some of its ids were stored already.
pub(super) fn only_duplicates(e: &MongoError) -> bool {
    match e.kind.as_ref() {
        ErrorKind::InsertMany(many) => {
            many.write_concern_error.is_none()
                && many
                    .write_errors
                    .as_ref()
                    .is_some_and(|errors| errors.iter().all(|w| w.code == DUPLICATE_KEY))
        }
        _ => false,
    }
}

/// Maps a driver error of an operation on `collection`; `ids` are the ids the operation wrote, in
/// order (a duplicate key names the one at the failing index, else the first).
pub(super) fn failure(e: MongoError, collection: &str, ids: &[String]) -> Failure {
    let transient = e.contains_label(TRANSIENT_TRANSACTION_ERROR);
    let error = match write_code(&e) {
        Some((DUPLICATE_KEY, index)) => match ids.get(index.unwrap_or(0)) {
            Some(id) => Error::AlreadyExists {
                collection: collection.to_owned(),
                id: id.clone(),
            },
            None => Error::Backend(format!("duplicate key in {collection}: {e}")),
        },
        Some((code, _)) if REFUSED.contains(&code) => {
            Error::Invalid(format!("MongoDB refused the change in {collection}: {e}"))
        }
        _ => Error::Unavailable {
            what: format!("MongoDB ({collection})"),
            source: Box::new(e),
        },
    };
    Failure { error, transient }
}

/// Maps a driver error outside any one collection.
pub(super) fn backend(e: MongoError) -> Error {
    Error::Unavailable {
        what: "MongoDB".into(),
        source: Box::new(e),
    }
}
