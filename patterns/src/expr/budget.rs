//! The memory budget of one evaluation ([`Limits::max_sequence_len`],
//! [`Limits::max_string_bytes`], [`Limits::max_bytes`]).
//!
//! Every place that builds a value whose size depends on the data (arrays, sequences, objects,
//! strings, tuple streams, temporary copies of members, JSON materialised for the result or a
//! host call) asks the [`Meter`] first, with the size it is about to build whenever that is known
//! beforehand (the range operator, `&`, `$pad`, `$join`, `$append`, path flattening, ...), so
//! an oversized value is refused before it is allocated. Values whose size cannot be known
//! beforehand are checked while they grow. The byte count is cumulative (what the evaluation
//! has constructed so far; nothing is credited back when a value is dropped), so it is an upper
//! bound of the memory the evaluation's own values can occupy at any moment. Checks are integer
//! comparisons and additions on a `Cell`: no allocation, hashing or clock.

use super::error::{Error, Fail};
use super::value::{Str, Tuple, Val};
use super::Limits;
use std::cell::Cell;

/// Approximate bytes per member of an owned array or sequence.
pub const MEMBER_BYTES: usize = std::mem::size_of::<Val<'static>>();
/// Approximate bytes per entry of an owned object (key, value, hash and index slot).
pub const ENTRY_BYTES: usize =
    std::mem::size_of::<Str<'static>>() + MEMBER_BYTES + 2 * std::mem::size_of::<usize>();
/// Approximate bytes per tuple of a tuple stream (context plus its bindings vector).
pub const TUPLE_BYTES: usize = std::mem::size_of::<Tuple<'static>>();
/// Approximate bytes per binding inside a tuple.
pub const BINDING_BYTES: usize = std::mem::size_of::<(&str, Val<'static>)>();
/// Approximate bytes per node of materialised JSON (`serde_json::Value`).
pub const JSON_NODE_BYTES: usize = std::mem::size_of::<serde_json::Value>();
/// Approximate extra bytes per entry of a materialised JSON object (key `String`, map slot).
pub const JSON_ENTRY_BYTES: usize =
    std::mem::size_of::<String>() + 2 * std::mem::size_of::<usize>();

/// Counts the bytes one evaluation constructs and enforces the memory budgets.
#[derive(Debug)]
pub struct Meter {
    max_sequence_len: usize,
    max_string_bytes: usize,
    max_bytes: u64,
    used: Cell<u64>,
}

impl Meter {
    /// A meter for the memory budgets of `limits`, nothing used yet.
    pub fn new(limits: &Limits) -> Self {
        Meter {
            max_sequence_len: limits.max_sequence_len,
            max_string_bytes: limits.max_string_bytes,
            max_bytes: limits.max_bytes as u64,
            used: Cell::new(0),
        }
    }

    /// A meter that never refuses (for conversions outside an evaluation, e.g. tests).
    pub fn unlimited() -> Self {
        Meter {
            max_sequence_len: usize::MAX,
            max_string_bytes: usize::MAX,
            max_bytes: u64::MAX,
            used: Cell::new(0),
        }
    }

    /// A meter that only bounds string length (for rendering values into error messages).
    pub fn for_text(max_string_bytes: usize) -> Self {
        Meter {
            max_string_bytes,
            ..Meter::unlimited()
        }
    }

    /// Charges `n` bytes against `max_bytes`.
    #[inline]
    pub fn bytes(&self, n: usize) -> Result<(), Fail> {
        let used = self.used.get().saturating_add(n as u64);
        self.used.set(used);
        if used > self.max_bytes {
            return Err(bytes_error(self.max_bytes));
        }
        Ok(())
    }

    /// Bytes left before `max_bytes` is exceeded.
    #[inline]
    pub fn remaining(&self) -> u64 {
        self.max_bytes.saturating_sub(self.used.get())
    }

    /// Checks a sequence length against `max_sequence_len` without charging.
    #[inline]
    pub fn check_len(&self, len: usize) -> Result<(), Fail> {
        if len > self.max_sequence_len {
            return Err(sequence_error(len, self.max_sequence_len));
        }
        Ok(())
    }

    /// An array or sequence of `len` members is about to be built: checks and charges it.
    #[inline]
    pub fn seq(&self, len: usize) -> Result<(), Fail> {
        self.check_len(len)?;
        self.bytes(len.saturating_mul(MEMBER_BYTES))
    }

    /// A sequence that holds `have` (already charged) members gains `add` more.
    #[inline]
    pub fn grow(&self, have: usize, add: usize) -> Result<(), Fail> {
        self.check_len(have.saturating_add(add))?;
        self.bytes(add.saturating_mul(MEMBER_BYTES))
    }

    /// An object of `len` entries is about to be built: checks and charges it.
    #[inline]
    pub fn object(&self, len: usize) -> Result<(), Fail> {
        self.check_len(len)?;
        self.bytes(len.saturating_mul(ENTRY_BYTES))
    }

    /// A tuple stream of `len` tuples with `binds` bindings each is about to be built.
    #[inline]
    pub fn tuples(&self, len: usize, binds: usize) -> Result<(), Fail> {
        self.check_len(len)?;
        let each = TUPLE_BYTES.saturating_add(binds.saturating_mul(BINDING_BYTES));
        self.bytes(len.saturating_mul(each))
    }

    /// Checks a string length against `max_string_bytes` without charging.
    #[inline]
    pub fn check_text(&self, len: usize) -> Result<(), Fail> {
        if len > self.max_string_bytes {
            return Err(string_error(len, self.max_string_bytes));
        }
        Ok(())
    }

    /// A string of `len` bytes is about to be built: checks and charges it.
    #[inline]
    pub fn text(&self, len: usize) -> Result<(), Fail> {
        self.check_text(len)?;
        self.bytes(len)
    }
}

/// The error code of an exceeded memory budget.
pub const CODE: &str = "U1002";

#[cold]
#[inline(never)]
fn sequence_error(len: usize, max: usize) -> Fail {
    Error::new(
        CODE,
        format!(
            "Memory budget exceeded: a sequence of {len} members is over max_sequence_len ({max})"
        ),
    )
}

#[cold]
#[inline(never)]
fn string_error(len: usize, max: usize) -> Fail {
    Error::new(
        CODE,
        format!("Memory budget exceeded: a string of {len} bytes is over max_string_bytes ({max})"),
    )
}

#[cold]
#[inline(never)]
fn bytes_error(max: u64) -> Fail {
    Error::new(
        CODE,
        format!("Memory budget exceeded: the evaluation constructed more than max_bytes ({max}) bytes of values"),
    )
}
