//! Function calls: host functions, builtins, lambdas (with signatures and tail calls),
//! partial application, regex matchers, `~>` chains.

use super::{Ctx, Error, Fail};
use crate::expr::ast::{Kind, Node};
use crate::expr::functions;
use crate::expr::value::{Env, Func, Str, Val};
use crate::expr::HostValue;
use serde_json::Value;
use std::rc::Rc;

/// The result of evaluating a lambda body: a value, or a call in tail position to trampoline.
pub enum Ret<'a> {
    /// A finished value.
    Val(Val<'a>),
    /// A tail call still to be applied (function, arguments, name for errors).
    Tail(Val<'a>, Vec<Val<'a>>, &'a str),
}

/// A call whose function and arguments are evaluated.
enum Prepared<'a> {
    Done(Val<'a>),
    Apply(Val<'a>, Vec<Val<'a>>, &'a str),
    Builtin(&'static functions::Builtin, Vec<Val<'a>>),
}

static TRUE: Value = Value::Bool(true);
static FALSE: Value = Value::Bool(false);
static NULL: Value = Value::Null;

fn literal_json(node: &Node) -> Option<&Value> {
    if !node.predicates.is_empty() || node.group.is_some() || node.keep_array {
        return None;
    }
    match &node.kind {
        Kind::Str(v) | Kind::Num(_, v) => Some(v),
        Kind::Bool(true) => Some(&TRUE),
        Kind::Bool(false) => Some(&FALSE),
        Kind::Null => Some(&NULL),
        _ => None,
    }
}

fn proc_name(proc: &Node) -> &str {
    let node = match &proc.kind {
        Kind::Path(steps) => steps.first().unwrap_or(proc),
        _ => proc,
    };
    match &node.kind {
        Kind::Name(n) | Kind::Variable(n) => n,
        _ => "",
    }
}

impl<'a> Ctx<'a> {
    fn host_result(&self, r: Result<HostValue<'a>, String>) -> Result<Val<'a>, Fail> {
        match r {
            Ok(HostValue::Undefined) => Ok(Val::Undef),
            Ok(HostValue::Borrowed(v)) => Ok(Val::from_json(v)),
            Ok(HostValue::Owned(v)) => Ok(functions::from_owned_json(v)),
            Err(msg) => Err(Error::new("H1001", msg)),
        }
    }

    /// Calls host function `name` with already evaluated arguments (JSON-backed arguments are
    /// passed by reference; others are materialised into temporaries).
    fn call_host_vals(&self, name: &str, argv: &[Val<'a>]) -> Option<Result<Val<'a>, Fail>> {
        fn borrowed<'v>(v: &Val<'v>) -> Option<&'v Value> {
            match v {
                Val::Json(j) => Some(*j),
                Val::Str(Str::V(j)) => Some(*j),
                _ => None,
            }
        }
        if argv.len() <= 4 {
            let mut temps: [Option<Value>; 4] = Default::default();
            for (t, v) in temps.iter_mut().zip(argv) {
                if borrowed(v).is_none() {
                    *t = match self.to_json(v) {
                        Ok(j) => j,
                        Err(e) => return Some(Err(e)),
                    };
                }
            }
            let mut refs: [Option<&Value>; 4] = [None; 4];
            for ((r, v), t) in refs.iter_mut().zip(argv).zip(temps.iter()) {
                *r = borrowed(v).or(t.as_ref());
            }
            let r = self.host.call(name, &refs[..argv.len()])?;
            return Some(self.host_result(r));
        }
        let temps: Result<Vec<Option<Value>>, Fail> = argv
            .iter()
            .map(|v| {
                if borrowed(v).is_some() {
                    Ok(None)
                } else {
                    self.to_json(v)
                }
            })
            .collect();
        let temps = match temps {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let refs: Vec<Option<&Value>> = argv
            .iter()
            .zip(temps.iter())
            .map(|(v, t)| borrowed(v).or(t.as_ref()))
            .collect();
        let r = self.host.call(name, &refs)?;
        Some(self.host_result(r))
    }

    #[inline(never)]
    fn prepare(
        &self,
        node: &'a Node,
        input: &Val<'a>,
        env: Env,
        applyto: Option<Val<'a>>,
    ) -> Result<Prepared<'a>, Fail> {
        let Kind::Call {
            proc,
            args,
            partial,
        } = &node.kind
        else {
            return Ok(Prepared::Done(self.eval(node, input, env)?));
        };
        let host_name = match &proc.kind {
            Kind::Variable(name)
                if !name.is_empty()
                    && name != "$"
                    && proc.predicates.is_empty()
                    && self.lookup(env, name).is_none() =>
            {
                Some(name.as_str())
            }
            _ => None,
        };
        if let Some(name) = host_name {
            if !*partial && applyto.is_none() && args.len() <= 4 && self.host.has_function(name) {
                if let Some(v) = self.host_literal_call(node, name, args)? {
                    return Ok(Prepared::Done(v));
                }
            }
        }
        let token = proc_name(proc);
        let mut argv = Vec::with_capacity(args.len() + 1);
        if let Some(a) = applyto {
            argv.push(a);
        }
        if *partial {
            let f = self.eval(proc, input, env)?;
            if !f.is_func() {
                let code = if self.forgot_dollar(proc) {
                    "T1007"
                } else {
                    "T1008"
                };
                return Err(
                    Error::new(code, "Attempted to partially apply a non-function")
                        .at(node.position)
                        .with_token(token),
                );
            }
            let mut pargs: Vec<Option<Val<'a>>> = argv.into_iter().map(Some).collect();
            for a in args {
                if matches!(a.kind, Kind::Placeholder) {
                    pargs.push(None);
                } else {
                    pargs.push(Some(self.eval(a, input, env)?));
                }
            }
            return Ok(Prepared::Done(Val::Func(Rc::new(Func::Partial(f, pargs)))));
        }
        for a in args {
            argv.push(self.eval(a, input, env)?);
        }
        if let Some(name) = host_name {
            let offered = if self.host.has_function(name) {
                self.call_host_vals(name, &argv)
            } else {
                None
            };
            if let Some(r) = offered {
                return Ok(Prepared::Done(
                    r.map_err(|e| e.or_at(node.position).or_token(name))?,
                ));
            }
            if let Some(b) = functions::lookup(name) {
                return Ok(Prepared::Builtin(b, argv));
            }
        }
        let f = self.eval(proc, input, env)?;
        if !f.is_func() {
            let (code, msg) = if f.is_undef() && self.forgot_dollar(proc) {
                (
                    "T1005",
                    format!("Attempted to invoke a non-function. Did you mean ${token}?"),
                )
            } else {
                ("T1006", "Attempted to invoke a non-function".to_string())
            };
            return Err(Error::new(code, msg).at(node.position).with_token(token));
        }
        Ok(Prepared::Apply(f, argv, token))
    }

    /// A host function call whose arguments are all literals: no allocation at all.
    #[inline(never)]
    fn host_literal_call(
        &self,
        node: &'a Node,
        name: &str,
        args: &'a [Node],
    ) -> Result<Option<Val<'a>>, Fail> {
        let mut lits: [Option<&Value>; 4] = [None; 4];
        for (i, a) in args.iter().enumerate() {
            match (literal_json(a), lits.get_mut(i)) {
                (Some(v), Some(slot)) => *slot = Some(v),
                _ => return Ok(None),
            }
        }
        let Some(r) = self.host.call(name, &lits[..args.len()]) else {
            return Ok(None);
        };
        self.tick()?;
        self.host_result(r)
            .map(Some)
            .map_err(|e| e.or_at(node.position).or_token(name))
    }

    fn forgot_dollar(&self, proc: &Node) -> bool {
        match &proc.kind {
            Kind::Path(steps) => match steps.first().map(|s| &s.kind) {
                Some(Kind::Name(n)) => functions::lookup(n).is_some(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Evaluates a call node (`applyto` is the left side of `~>`).
    pub(super) fn call(
        &self,
        node: &'a Node,
        input: &Val<'a>,
        env: Env,
        applyto: Option<Val<'a>>,
    ) -> Result<Val<'a>, Fail> {
        match self.prepare(node, input, env, applyto)? {
            Prepared::Done(v) => Ok(v),
            Prepared::Apply(f, argv, token) => self
                .apply(&f, argv, input)
                .map_err(|e| e.or_at(node.position).or_token(token)),
            Prepared::Builtin(b, argv) => self
                .apply_builtin(b, argv, input)
                .map_err(|e| e.or_at(node.position)),
        }
    }

    /// Applies function `f` to `args` (`input` is the caller's context), trampolining tail calls.
    pub fn apply(&self, f: &Val<'a>, args: Vec<Val<'a>>, input: &Val<'a>) -> Result<Val<'a>, Fail> {
        let mut ret = self.apply_once(f, args, input)?;
        loop {
            match ret {
                Ret::Val(v) => return Ok(v),
                Ret::Tail(g, a, token) => {
                    self.tick()?;
                    ret = self
                        .apply_once(&g, a, input)
                        .map_err(|e| e.or_token(token))?;
                }
            }
        }
    }

    #[inline(never)]
    fn apply_once(
        &self,
        f: &Val<'a>,
        args: Vec<Val<'a>>,
        input: &Val<'a>,
    ) -> Result<Ret<'a>, Fail> {
        let Val::Func(func) = f else {
            return Err(Error::new("T1006", "Attempted to invoke a non-function"));
        };
        match &**func {
            Func::Lambda {
                def,
                env,
                input: closure_input,
            } => self.apply_lambda(def, *env, closure_input, args, input),
            Func::Builtin(b) => Ok(Ret::Val(self.apply_builtin(b, args, input)?)),
            Func::Partial(g, pargs) => {
                let mut supplied = args.into_iter();
                let full: Vec<Val<'a>> = pargs
                    .iter()
                    .map(|p| match p {
                        Some(v) => v.clone(),
                        None => supplied.next().unwrap_or_default(),
                    })
                    .collect();
                self.apply_once(g, full, input)
            }
            Func::Regex(def) => Ok(Ret::Val(functions::regex_fns::matcher_call(def, &args))),
            Func::Chain(first, second) => {
                let r = self.apply(first, args, input)?;
                self.apply_once(second, vec![r], input)
            }
            Func::Transform(node, env) => Ok(Ret::Val(self.transform(
                node,
                *env,
                args.into_iter().next().unwrap_or_default(),
            )?)),
        }
    }

    /// Validates arguments against a builtin's signature and runs it.
    #[inline(never)]
    fn apply_builtin(
        &self,
        b: &'static functions::Builtin,
        args: Vec<Val<'a>>,
        input: &Val<'a>,
    ) -> Result<Val<'a>, Fail> {
        let args = b
            .signature()
            .validate(args, input, b.name)
            .map_err(|e| e.or_token(b.name))?;
        for a in &args {
            self.charge_size(a)?;
        }
        let r = (b.imp)(self, &args, input).map_err(|e| e.or_token(b.name))?;
        if let Val::Str(Str::O(s)) = &r {
            // Every builtin that builds a string is charged here; those that can grow one
            // beyond their inputs (`$pad`, `$join`, `$replace`, `$string`) check it first.
            self.mem.text(s.len()).map_err(|e| e.or_token(b.name))?;
        }
        self.charge_size(&r)?;
        Ok(r)
    }

    #[inline(never)]
    fn apply_lambda(
        &self,
        def: &'a crate::expr::ast::LambdaDef,
        env: Env,
        closure_input: &Val<'a>,
        args: Vec<Val<'a>>,
        input: &Val<'a>,
    ) -> Result<Ret<'a>, Fail> {
        let args = match &def.signature {
            Some(sig) => sig.validate(args, input, "lambda")?,
            None => args,
        };
        let mark = self.mark();
        let frame = self.new_frame(env);
        let mut args = args.into_iter();
        for p in &def.params {
            self.bind(frame, p, args.next().unwrap_or_default());
        }
        let r = self.eval_body(&def.body, closure_input, frame);
        self.release(mark);
        r
    }

    /// Evaluates a lambda body, returning calls in tail position unapplied.
    #[inline(never)]
    fn eval_body(&self, node: &'a Node, input: &Val<'a>, env: Env) -> Result<Ret<'a>, Fail> {
        if !node.predicates.is_empty() || node.group.is_some() || node.keep_array {
            return Ok(Ret::Val(self.eval(node, input, env)?));
        }
        match &node.kind {
            Kind::Call { partial: false, .. } => {
                self.enter()?;
                let r = self.prepare(node, input, env, None);
                self.leave();
                Ok(match r? {
                    Prepared::Done(v) => Ret::Val(super::unwrap_sequence(&self.mem, v, false)?),
                    Prepared::Apply(f, argv, token) => Ret::Tail(f, argv, token),
                    Prepared::Builtin(b, argv) => Ret::Val(self.apply_builtin(b, argv, input)?),
                })
            }
            Kind::Condition(c, t, e) => {
                self.enter()?;
                let r = (|| {
                    let cond = self.eval(c, input, env)?;
                    if functions::boolean::truthy(&cond) {
                        self.eval_body(t, input, env)
                    } else if let Some(e) = e {
                        self.eval_body(e, input, env)
                    } else {
                        Ok(Ret::Val(Val::Undef))
                    }
                })();
                self.leave();
                r
            }
            Kind::Block(items) if !items.is_empty() => {
                self.enter()?;
                let r = (|| {
                    let frame = self.new_frame(env);
                    let last = items.len() - 1;
                    for item in &items[..last] {
                        self.eval(item, input, frame)?;
                    }
                    self.eval_body(&items[last], input, frame)
                })();
                self.leave();
                r
            }
            _ => Ok(Ret::Val(self.eval(node, input, env)?)),
        }
    }

    pub(super) fn apply_chain(
        &self,
        node: &'a Node,
        lhs: &'a Node,
        rhs: &'a Node,
        input: &Val<'a>,
        env: Env,
    ) -> Result<Val<'a>, Fail> {
        let l = self.eval(lhs, input, env)?;
        if matches!(rhs.kind, Kind::Call { partial: false, .. }) && rhs.predicates.is_empty() {
            let v = self.call(rhs, input, env, Some(l))?;
            return self.finish(rhs, v, env);
        }
        let f = self.eval(rhs, input, env)?;
        if !f.is_func() {
            return Err(Error::new(
                "T2006",
                "The right side of the function application operator ~> must be a function",
            )
            .at(node.position));
        }
        if l.is_func() {
            return Ok(Val::Func(Rc::new(Func::Chain(l, f))));
        }
        self.apply(&f, vec![l], input)
    }
}
