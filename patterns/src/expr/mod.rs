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
//!
//! ## How it works
//!
//! `lexer` → `parser` (Pratt, recursion-bounded) → `optimize` (builds location paths, attaches
//! predicates/sorts/group-bys/`@`/`#` to their steps, resolves `%` to ancestor labels) → an
//! immutable `ast::Node` tree behind an `Arc`. `eval` walks it with an evaluation-scoped `Ctx`:
//! values (`value::Val`) borrow the host's JSON (`&Value`) and the expression's literals, and own
//! only what they compute, so a path compared with a literal allocates nothing. Lambda
//! environments live in an arena inside `Ctx` (closures hold an index), so self-referencing
//! closures cannot form `Rc` cycles; everything is freed when the evaluation ends.
//!
//! ## Deviations and choices
//!
//! * `$eval` is not provided: calling it fails with code `U2001`.
//! * `$random()` and `$shuffle` draw from a splitmix64 generator seeded from
//!   [`Host::now_millis`], so the same host clock gives the same sequence.
//! * Runaway evaluations fail with `U1001`: `Limits::max_depth` bounds evaluation nesting,
//!   `Limits::max_steps` counts node evaluations, function applications and work proportional
//!   to the size of the values handled (so quadratic loops stop too), [`Host::stack_budget`]
//!   bounds the thread stack an evaluation may use, and constructed values may nest at most 256
//!   levels. No expression can overflow a 2 MiB worker stack in debug or release builds; the
//!   parser bounds nesting likewise.
//! * Memory is budgeted too, and an exceeded memory budget fails with `U1002` (distinct from
//!   `U1001`, so hosts can tell "too big" from "too long"), with a message naming the budget and
//!   its limit, e.g. `Memory budget exceeded: a sequence of 10000000 members is over
//!   max_sequence_len (1000000)`. `Limits::max_sequence_len` bounds the members of any one array,
//!   sequence or object built; `Limits::max_string_bytes` the UTF-8 length of any one string
//!   built (including `$string` output); `Limits::max_bytes` the approximate bytes of all values
//!   an evaluation constructs, cumulatively (temporary copies, tuple streams and the JSON
//!   materialised for the result or for host-function arguments included; nothing is credited
//!   back when a value is dropped, so this bounds peak memory from above and may refuse loops
//!   that churn through many short-lived values). Sizes are checked before the value is
//!   allocated wherever they are known in advance (range operator, `&`, `$pad`, `$join`,
//!   `$append`, `$zip`, path flattening, materialising borrowed JSON) and while it grows
//!   otherwise, so sharing one value many times by reference cannot multiply when it is
//!   flattened, serialised or returned. The range operator keeps JSONata's `D2014` for sizes
//!   over 1e7; values a host function returns are not charged. Error messages that show a value
//!   cut it at 1,000 bytes.
//! * Regular expressions use the `regex` crate: no look-around or back-references.
//! * A function result evaluates to `None`; inside results, functions are dropped from objects
//!   and become `null` in arrays (as `JSON.stringify` renders them).
//! * Objects enumerate like JavaScript objects: index-like keys (`"0"`, `"42"`) first, in
//!   numeric order, then the others in insertion order.
//! * For a call `$name(...)` that is not lexically bound, [`Host::call`] is tried first, then
//!   the builtin of that name; [`Host::has_function`] lets a host skip the first attempt.
//! * `$toMillis` with a time-only picture takes the date from [`Host::now_millis`] (the
//!   picture module has no clock).
//! * Strings are Unicode scalar values: `$length`/`$substring` count code points, and lone
//!   surrogates cannot be represented.

use serde_json::Value;
use std::sync::Arc;

mod ast;
mod budget;
mod error;
mod eval;
mod functions;
mod input;
mod lexer;
mod numfmt;
mod optimize;
mod parser;
mod regex;
mod signature;
mod value;

pub mod picture;

pub use error::Error;

/// Budgets that stop runaway expressions with a clear error instead of a hang or a stack overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum evaluation (and lambda call) nesting depth.
    pub max_depth: usize,
    /// Maximum number of evaluation steps for one evaluation.
    pub max_steps: u64,
    /// Most members one array, sequence or object built by an evaluation may have (`U1002`).
    pub max_sequence_len: usize,
    /// Longest string, in UTF-8 bytes, an evaluation may build (`U1002`).
    pub max_string_bytes: usize,
    /// Approximate bytes of values one evaluation may construct in total, cumulatively (`U1002`).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 200,
            max_steps: 10_000_000,
            max_sequence_len: DEFAULT_MAX_SEQUENCE_LEN,
            max_string_bytes: DEFAULT_MAX_STRING_BYTES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// Default for [`Limits::max_sequence_len`]: 1,000,000 members (32 MB of members).
pub const DEFAULT_MAX_SEQUENCE_LEN: usize = 1_000_000;
/// Default for [`Limits::max_string_bytes`]: 8 MiB.
pub const DEFAULT_MAX_STRING_BYTES: usize = 8 << 20;
/// Default for [`Limits::max_bytes`]: 128 MiB.
pub const DEFAULT_MAX_BYTES: usize = 128 << 20;

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
    /// Whether [`Host::call`] may provide `$name` (an optional hint: answering `false` lets the
    /// engine skip materialising arguments for names the host never provides, e.g. builtins).
    fn has_function(&self, _name: &str) -> bool {
        true
    }
    /// The clock read by `$now()` and `$millis()`, epoch milliseconds.
    fn now_millis(&self) -> i64 {
        0
    }
    /// Evaluation budgets.
    fn limits(&self) -> Limits {
        Limits::default()
    }
    /// Bytes of thread stack one evaluation may use before it stops with `U1001` (a guard on
    /// top of `max_depth`; the default suits the 2 MiB stacks of worker threads).
    fn stack_budget(&self) -> usize {
        DEFAULT_STACK_BUDGET
    }
}

/// Default for [`Host::stack_budget`]: 1 MiB.
pub const DEFAULT_STACK_BUDGET: usize = 1 << 20;

// Compile-time check: compiled expressions can be shared across worker threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expression>();
};

/// A compiled JSONata expression (immutable, `Send + Sync`, cheap to clone).
#[derive(Debug, Clone)]
pub struct Expression {
    source: Arc<str>,
    root: Arc<ast::Node>,
    reads_input: bool,
}

impl Expression {
    /// Parses `source` once; syntax errors carry their position.
    pub fn compile(source: &str) -> Result<Self, Error> {
        let raw = parser::parse(source).map_err(|e| *e)?;
        let root = optimize::process(raw).map_err(|e| *e)?;
        Ok(Expression {
            source: source.into(),
            reads_input: input::reads_input(&root),
            root: Arc::new(root),
        })
    }

    /// The source text this expression was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// False when the expression certainly does not read its input document, so the host's
    /// [`Host::input`] is not even asked for it (a conservative analysis: `true` when unsure).
    pub fn reads_input(&self) -> bool {
        self.reads_input
    }

    /// Evaluates against `host`; `Ok(None)` is JSONata's `undefined`.
    pub fn evaluate(&self, host: &dyn Host) -> Result<Option<Value>, Error> {
        let ctx = eval::Ctx::new(host, self.reads_input);
        let input = ctx.root.clone();
        let v = ctx.eval(&self.root, &input, None).map_err(|e| *e)?;
        ctx.to_json(&v).map_err(|e| *e)
    }

    /// Evaluates and returns the JavaScript truthiness of the result without materialising it
    /// (undefined, null, false, 0, NaN and "" are false; every array, object and function is true).
    pub fn evaluate_truthy(&self, host: &dyn Host) -> Result<bool, Error> {
        let ctx = eval::Ctx::new(host, self.reads_input);
        let input = ctx.root.clone();
        let v = ctx.eval(&self.root, &input, None).map_err(|e| *e)?;
        Ok(match v {
            value::Val::Undef | value::Val::Null => false,
            value::Val::Bool(b) => b,
            value::Val::Num(n) => n != 0.0 && !n.is_nan(),
            value::Val::Str(s) => !s.is_empty(),
            _ => true,
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
    fn has_function(&self, _name: &str) -> bool {
        false
    }
    fn now_millis(&self) -> i64 {
        self.now_millis
    }
    fn limits(&self) -> Limits {
        self.limits
    }
}
