//! Our own JSONata engine: parse once to an AST, evaluate many times against `serde_json::Value`.
//!
//! PUBLIC API CONTRACT (the pattern machine depends on exactly this; internals are free):
//!
//! * [`Expression::compile`] parses and checks an expression once; the result is `Send + Sync` and
//!   cheap to clone, so one compiled pattern set serves every worker thread.
//! * [`Expression::evaluate`] / [`Expression::evaluate_truthy`] run it against a [`Host`], which
//!   supplies the input document, host variables (`$event`, ...), host functions (`$setLocal`, ...)
//!   and the clock used by `$now()`/`$millis()`. The engine never reads a clock itself.
//! * Errors carry the official JSONata code (`S0201`, `T2001`, ...), a character position when
//!   known, and a message.

use serde_json::Value;
use std::sync::Arc;

pub mod picture;

/// An expression error: an official JSONata code, a position (char offset) and a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// Official JSONata error code (`S0201`, `T2001`, `D3001`, `U1001` for exceeded budgets, `H1001` for host function errors).
    pub code: String,
    /// Character offset in the source where the error was detected, when known.
    pub position: Option<usize>,
    /// The offending token, when known.
    pub token: Option<String>,
    /// Human-readable description.
    pub message: String,
}

/// Budgets that stop runaway expressions with a clear error instead of a hang or a stack overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum evaluation (and lambda call) nesting depth.
    pub max_depth: usize,
    /// Maximum number of evaluation steps for one evaluation.
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 200,
            max_steps: 10_000_000,
        }
    }
}

/// A value returned by a host function: nothing, a borrow of host data, or a fresh value.
#[derive(Debug)]
pub enum HostValue<'h> {
    /// The function produced no value (JSONata `undefined`).
    Undefined,
    /// A value borrowed from the host (no copy).
    Borrowed(&'h Value),
    /// A value created by the call.
    Owned(Value),
}

/// What an evaluation can see outside the expression itself.
pub trait Host {
    /// The input document (`$$`, and the context of a leading path step). `None` = undefined input.
    fn input(&self) -> Option<&Value> {
        None
    }
    /// The value of host variable `$name` (without the `$`), or `None` when the host has none.
    fn variable(&self, _name: &str) -> Option<&Value> {
        None
    }
    /// Calls host function `$name(args)`; `None` when the host provides no function of that name.
    /// An `Err(message)` becomes an expression error with code `H1001`.
    fn call(&self, _name: &str, _args: &[Option<&Value>]) -> Option<Result<HostValue<'_>, String>> {
        None
    }
    /// The clock read by `$now()` and `$millis()`, epoch milliseconds.
    fn now_millis(&self) -> i64 {
        0
    }
    /// Evaluation budgets.
    fn limits(&self) -> Limits {
        Limits::default()
    }
}

/// A compiled JSONata expression (immutable, `Send + Sync`, cheap to clone).
#[derive(Debug, Clone)]
pub struct Expression {
    source: Arc<str>,
}

impl Expression {
    /// Parses `source` once; syntax errors carry their position.
    pub fn compile(source: &str) -> Result<Self, Error> {
        Ok(Expression {
            source: source.into(),
        })
    }

    /// The source text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `host`; `Ok(None)` is JSONata's `undefined`.
    pub fn evaluate(&self, _host: &dyn Host) -> Result<Option<Value>, Error> {
        Err(Error {
            code: "U0000".into(),
            position: None,
            token: None,
            message: "not yet implemented".into(),
        })
    }

    /// Evaluates and returns the JavaScript truthiness of the result without materialising it
    /// (undefined, null, false, 0, NaN and "" are false; every array, object and function is true).
    pub fn evaluate_truthy(&self, host: &dyn Host) -> Result<bool, Error> {
        Ok(match self.evaluate(host)? {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        })
    }
}

/// A simple [`Host`]: an input document and a map of variables (used by `threds eval` and tests).
#[derive(Debug, Default, Clone)]
pub struct Bindings {
    /// The input document.
    pub input: Option<Value>,
    /// Variables by name, without the `$`.
    pub variables: serde_json::Map<String, Value>,
    /// The clock for `$now()`/`$millis()`.
    pub now_millis: i64,
    /// Budgets.
    pub limits: Limits,
}

impl Host for Bindings {
    fn input(&self) -> Option<&Value> {
        self.input.as_ref()
    }
    fn variable(&self, name: &str) -> Option<&Value> {
        self.variables.get(name)
    }
    fn now_millis(&self) -> i64 {
        self.now_millis
    }
    fn limits(&self) -> Limits {
        self.limits
    }
}
