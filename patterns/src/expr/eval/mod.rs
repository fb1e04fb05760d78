//! The tree-walking evaluator: evaluation context (budgets, environment arena) and the
//! per-node dispatcher. Paths, operators, calls, constructors, sorting and transforms live in
//! sibling modules.

mod apply;
mod constructors;
mod ops;
mod path;
mod sort;
mod transform;

pub use path::lookup_field;

use super::ast::{Kind, Node, Stage};
use super::budget::Meter;
use super::error::{Error, Fail};
use super::functions;
use super::value::{Env, Func, Str, Val};
use super::{Host, Limits};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

struct Frame<'a> {
    parent: Env,
    vars: Vec<(&'a str, Val<'a>)>,
}

/// Everything one evaluation needs: the host, budgets and the environment arena.
/// Frames are only freed when the evaluation ends, so closures never form `Rc` cycles.
pub struct Ctx<'a> {
    /// The host (input, variables, functions, clock).
    pub host: &'a dyn Host,
    limits: Limits,
    /// The memory budget (see `budget`).
    pub mem: Meter,
    depth: Cell<usize>,
    steps: Cell<u64>,
    frames: RefCell<Vec<Frame<'a>>>,
    /// One past the highest frame a closure has captured: frames above it may be reclaimed.
    pinned: Cell<usize>,
    root_vars: RefCell<Vec<(&'a str, Val<'a>)>>,
    stack_base: usize,
    stack_budget: usize,
    /// The input document as seen by `$$` (arrays wrapped in an outer sequence).
    pub root: Val<'a>,
    rng: Cell<u64>,
}

impl<'a> Ctx<'a> {
    /// A context for one evaluation; `with_input: false` leaves the input undefined without asking
    /// the host for it (the expression was shown not to read it).
    pub fn new(host: &'a dyn Host, with_input: bool) -> Self {
        let input = if with_input { host.input() } else { None };
        let root = match input {
            None => Val::Undef,
            Some(v @ Value::Array(_)) => Val::with_flags(
                vec![Val::Json(v)],
                super::value::Flags {
                    seq: true,
                    outer: true,
                    ..Default::default()
                },
            ),
            Some(v) => Val::from_json(v),
        };
        let seed = host.now_millis() as u64;
        let limits = host.limits();
        Ctx {
            host,
            mem: Meter::new(&limits),
            limits,
            depth: Cell::new(0),
            steps: Cell::new(0),
            frames: RefCell::new(Vec::new()),
            pinned: Cell::new(0),
            root_vars: RefCell::new(Vec::new()),
            stack_base: stack_position(),
            stack_budget: host.stack_budget(),
            root,
            rng: Cell::new(seed),
        }
    }

    /// A deterministic pseudo-random number in `[0, 1)` (splitmix64 seeded from the host clock).
    pub fn random(&self) -> f64 {
        let state = self.rng.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.rng.set(state);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts one step and enforces the step budget.
    pub fn tick(&self) -> Result<(), Fail> {
        let s = self.steps.get() + 1;
        self.steps.set(s);
        if s > self.limits.max_steps {
            return Err(timeout_error());
        }
        Ok(())
    }

    /// Counts `n` steps at once (for builtins doing proportional work).
    pub fn charge(&self, n: u64) -> Result<(), Fail> {
        let s = self.steps.get().saturating_add(n);
        self.steps.set(s);
        if s > self.limits.max_steps {
            return Err(timeout_error());
        }
        Ok(())
    }

    /// Charges for work proportional to the size of `v` (strings, arrays, objects), so loops
    /// over large values hit the step budget instead of running for minutes.
    pub fn charge_size(&self, v: &Val<'a>) -> Result<(), Fail> {
        let w = match v {
            Val::Str(s) => s.len() / 16,
            Val::Arr(a) => a.items.len() / 4,
            Val::Obj(o) => o.len() / 4,
            Val::Json(Value::Array(a)) => a.len() / 4,
            Val::Json(Value::Object(m)) => m.len() / 4,
            Val::Tuples(t) => t.len() / 4,
            _ => 0,
        };
        if w > 0 {
            self.charge(w as u64)?;
        }
        Ok(())
    }

    /// A charged copy of an array's members (or the value itself as one member; nothing for
    /// undefined): [`Val::members`] under the memory budget.
    pub fn members(&self, v: &Val<'a>) -> Result<Vec<Val<'a>>, Fail> {
        self.mem.seq(v.len().max(1))?;
        Ok(v.members())
    }

    /// A charged copy of an object's entries: [`Val::entries`] under the memory budget.
    pub fn entries(&self, v: &Val<'a>) -> Result<Vec<(Str<'a>, Val<'a>)>, Fail> {
        let n = match v {
            Val::Obj(o) => o.len(),
            Val::Json(Value::Object(m)) => m.len(),
            _ => 0,
        };
        self.mem.object(n)?;
        Ok(v.entries())
    }

    /// Converts an evaluation result to JSON under the memory budget.
    pub fn to_json(&self, v: &Val<'a>) -> Result<Option<Value>, Fail> {
        v.to_json_metered(&self.mem)
    }

    fn enter(&self) -> Result<(), Fail> {
        let d = self.depth.get() + 1;
        // The stack is sampled every fourth level: a few frames of slack are well within budget.
        if d > self.limits.max_depth
            || (d.is_multiple_of(4)
                && stack_position().abs_diff(self.stack_base) > self.stack_budget)
        {
            return Err(depth_error());
        }
        self.depth.set(d);
        self.tick()
    }

    fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }

    /// Creates a child frame of `parent`.
    pub fn new_frame(&self, parent: Env) -> Env {
        let mut frames = self.frames.borrow_mut();
        let id = frames.len() as u32;
        frames.push(Frame {
            parent,
            vars: Vec::new(),
        });
        Some(id)
    }

    /// Records that a closure keeps `env` alive.
    fn pin(&self, env: Env) {
        if let Some(id) = env {
            self.pinned.set(self.pinned.get().max(id as usize + 1));
        }
    }

    /// The current size of the frame arena (see [`Ctx::release`]).
    pub fn mark(&self) -> usize {
        self.frames.borrow().len()
    }

    /// Frees the frames created since `mark` unless a closure captured one of them, so long
    /// loops of calls do not grow the arena.
    pub fn release(&self, mark: usize) {
        if self.pinned.get() <= mark {
            self.frames.borrow_mut().truncate(mark);
        }
    }

    /// Binds `name` in frame `env`.
    pub fn bind(&self, env: Env, name: &'a str, value: Val<'a>) {
        match env {
            None => bind_in(&mut self.root_vars.borrow_mut(), name, value),
            Some(id) => {
                if let Some(f) = self.frames.borrow_mut().get_mut(id as usize) {
                    bind_in(&mut f.vars, name, value);
                }
            }
        }
    }

    /// Looks `name` up lexically from `env` outwards.
    pub fn lookup(&self, env: Env, name: &str) -> Option<Val<'a>> {
        let frames = self.frames.borrow();
        let mut cur = env;
        while let Some(id) = cur {
            let f = frames.get(id as usize)?;
            if let Some((_, v)) = f.vars.iter().rev().find(|(n, _)| *n == name) {
                return Some(v.clone());
            }
            cur = f.parent;
        }
        drop(frames);
        let root = self.root_vars.borrow();
        root.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }

    /// Resolves `$name`: lexical, then host variable, then builtin function.
    pub fn variable(&self, env: Env, name: &str) -> Val<'a> {
        if let Some(v) = self.lookup(env, name) {
            return v;
        }
        if let Some(v) = self.host.variable(name) {
            return Val::from_json(v);
        }
        match functions::lookup(name) {
            Some(b) => Val::Func(Rc::new(Func::Builtin(b))),
            None => Val::Undef,
        }
    }

    /// Evaluates `node` against `input` in `env`.
    pub fn eval(&self, node: &'a Node, input: &Val<'a>, env: Env) -> Result<Val<'a>, Fail> {
        self.enter()?;
        let r = self.eval_kind(node, input, env);
        self.leave();
        let r = r?;
        if node.predicates.is_empty() && node.group.is_none() {
            if matches!(&r, Val::Arr(a) if a.flags.seq) {
                return unwrap_sequence(&self.mem, r, node.keep_array);
            }
            return Ok(r);
        }
        self.finish(node, r, env)
    }

    /// Applies predicates, a group-by and sequence unwrapping to a node's raw result.
    #[inline(never)]
    fn finish(&self, node: &'a Node, mut result: Val<'a>, env: Env) -> Result<Val<'a>, Fail> {
        for stage in &node.predicates {
            if let Stage::Filter(pred) = stage {
                result = self.filter(pred, result, env)?;
            }
        }
        if let Some(group) = &node.group {
            if !matches!(node.kind, Kind::Path(_)) {
                result = self
                    .group(&group.pairs, result, env)
                    .map_err(|e| e.or_at(group.position))?;
            }
        }
        unwrap_sequence(&self.mem, result, node.keep_array)
    }

    #[inline(never)]
    fn eval_kind(&self, node: &'a Node, input: &Val<'a>, env: Env) -> Result<Val<'a>, Fail> {
        match &node.kind {
            Kind::Path(steps) => self.eval_path(node, steps, input, env),
            Kind::Name(name) => {
                if input.is_array() {
                    self.charge_size(input)?;
                }
                path::lookup_field(self, input, name)
            }
            Kind::Str(v) => Ok(Val::Str(Str::B(v.as_str().unwrap_or_default()))),
            Kind::Num(n, _) => Ok(Val::Num(*n)),
            Kind::Bool(b) => Ok(Val::Bool(*b)),
            Kind::Null => Ok(Val::Null),
            Kind::Variable(name) => Ok(self.eval_variable(name, input, env)),
            Kind::Binary(op, lhs, rhs) => self.binary(*op, lhs, rhs, input, env),
            Kind::Call { .. } => self.call(node, input, env, None),
            Kind::Condition(c, t, e) => self.eval_condition(c, t, e.as_deref(), input, env),
            Kind::Block(items) => self.eval_block(items, input, env),
            Kind::Array(items) => self.array_constructor(node, items, input, env),
            Kind::Object(pairs) => self.group(pairs, input.clone(), env),
            Kind::Apply(lhs, rhs) => self.apply_chain(node, lhs, rhs, input, env),
            Kind::Sort(terms) => self.sort(node, terms, input.clone(), env),
            _ => self.eval_other(node, input, env),
        }
    }

    fn eval_variable(&self, name: &str, input: &Val<'a>, env: Env) -> Val<'a> {
        match name {
            "" => match input {
                Val::Arr(a) if a.flags.outer => a.items.first().cloned().unwrap_or_default(),
                other => other.clone(),
            },
            "$" => self.root.clone(),
            _ => self.variable(env, name),
        }
    }

    #[inline(never)]
    fn eval_condition(
        &self,
        c: &'a Node,
        t: &'a Node,
        e: Option<&'a Node>,
        input: &Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        let cond = self.eval(c, input, env)?;
        if functions::boolean::truthy(&cond) {
            self.eval(t, input, env)
        } else if let Some(e) = e {
            self.eval(e, input, env)
        } else {
            Ok(Val::Undef)
        }
    }

    #[inline(never)]
    fn eval_block(&self, items: &'a [Node], input: &Val<'a>, env: Env) -> Result<Val<'a>, Fail> {
        let frame = self.new_frame(env);
        let mut result = Val::Undef;
        for item in items {
            result = self.eval(item, input, frame)?;
        }
        Ok(result)
    }

    #[inline(never)]
    fn eval_other(&self, node: &'a Node, input: &Val<'a>, env: Env) -> Result<Val<'a>, Fail> {
        Ok(match &node.kind {
            Kind::Wildcard => {
                let v = path::wildcard(self, input)?;
                self.charge_size(&v)?;
                v
            }
            Kind::Descendant => {
                let v = path::descendants(self, input)?;
                self.charge_size(&v)?;
                v
            }
            Kind::Parent(label) => self.lookup(env, label).unwrap_or_default(),
            Kind::Regex(def) => Val::Func(Rc::new(Func::Regex(def))),
            Kind::Neg(inner) => match self.eval(inner, input, env)? {
                Val::Undef => Val::Undef,
                Val::Num(n) => Val::Num(-n),
                other => {
                    return Err(Error::new(
                        "D1002",
                        format!(
                            "Cannot negate a non-numeric value: {}",
                            functions::describe(&other)
                        ),
                    )
                    .at(node.position)
                    .with_token("-"))
                }
            },
            Kind::Elvis(lhs, rhs) => {
                let v = self.eval(lhs, input, env)?;
                if functions::boolean::truthy(&v) {
                    v
                } else {
                    self.eval(rhs, input, env)?
                }
            }
            Kind::Coalesce(lhs, rhs) => {
                let v = self.eval(lhs, input, env)?;
                if functions::boolean::exists(&v) {
                    v
                } else {
                    self.eval(rhs, input, env)?
                }
            }
            Kind::Bind(name, value) => {
                let v = self.eval(value, input, env)?;
                self.bind(env, name, v.clone());
                v
            }
            Kind::Lambda(def) => {
                self.pin(env);
                Val::Func(Rc::new(Func::Lambda {
                    def,
                    env,
                    input: input.clone(),
                }))
            }
            Kind::Transform(..) => {
                self.pin(env);
                Val::Func(Rc::new(Func::Transform(node, env)))
            }
            Kind::Placeholder => {
                return Err(Error::new("S0201", "Syntax error: ?")
                    .at(node.position)
                    .with_token("?"))
            }
            _ => return Err(Error::new("S0201", "Syntax error").at(node.position)),
        })
    }
}

/// An approximate address of the current stack top (the address of a local).
#[inline(never)]
pub fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

#[cold]
#[inline(never)]
fn timeout_error() -> Fail {
    Error::new(
        "U1001",
        "Expression evaluation timeout: Check for infinite loop",
    )
}

#[cold]
#[inline(never)]
fn depth_error() -> Fail {
    Error::new(
        "U1001",
        "Stack overflow error: Please check your expression. Possible infinite recursion.",
    )
}

fn bind_in<'a>(vars: &mut Vec<(&'a str, Val<'a>)>, name: &'a str, value: Val<'a>) {
    if let Some(slot) = vars.iter_mut().find(|(n, _)| *n == name) {
        slot.1 = value;
    } else {
        vars.push((name, value));
    }
}

/// JSONata's end-of-evaluate rule: empty sequences are undefined, singletons unwrap unless kept.
pub fn unwrap_sequence<'a>(
    mem: &Meter,
    result: Val<'a>,
    keep_array: bool,
) -> Result<Val<'a>, Fail> {
    Ok(match result {
        Val::Arr(mut a) if a.flags.seq => {
            if keep_array && !a.flags.keep {
                set_keep(mem, &mut a)?;
            }
            match a.items.len() {
                0 => Val::Undef,
                1 if !a.flags.keep => a.items.first().cloned().unwrap_or_default(),
                _ => Val::Arr(a),
            }
        }
        other => other,
    })
}

/// Sets the keep-singleton flag, charging the copy made when the array is shared.
pub fn set_keep(mem: &Meter, a: &mut Rc<super::value::Arr<'_>>) -> Result<(), Fail> {
    if Rc::strong_count(a) > 1 || Rc::weak_count(a) > 0 {
        mem.seq(a.items.len())?;
    }
    Rc::make_mut(a).flags.keep = true;
    Ok(())
}

#[cfg(test)]
mod tests;
