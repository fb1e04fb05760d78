//! Post-parse rewriting: builds location paths from `.` chains, attaches predicates, sorts,
//! group-bys and positional/focus bindings to their steps, and resolves `%` parent references
//! to ancestor labels bound by earlier steps.
//!
//! Each node kind is rewritten by its own small, non-inlined method: in debug builds a single
//! large `match` would reserve stack for every arm in every recursive frame.

use super::ast::{BinOp, Group, Kind, LambdaDef, Node, SortTerm, Stage};
use super::error::{Error, Fail};
use std::sync::Arc;

mod ancestry;

use ancestry::push_ancestry;

struct Slot {
    label: usize,
    level: i32,
}

/// Rewrites a raw AST into its evaluated form.
pub fn process(node: Node) -> Result<Node, Fail> {
    let mut opt = Optimizer {
        slots: Vec::new(),
        stack_base: super::eval::stack_position(),
    };
    let mut node = opt.process(node)?;
    if !node.seeking.is_empty() || matches!(node.kind, Kind::Parent(_)) {
        return Err(Error::new(
            "S0217",
            "The object representing the 'parent' cannot be derived from this expression",
        )
        .at(node.position));
    }
    opt.resolve_labels(&mut node);
    Ok(node)
}

struct Optimizer {
    slots: Vec<Slot>,
    stack_base: usize,
}

fn path(steps: Vec<Node>, position: usize) -> Node {
    Node::new(Kind::Path(steps), position)
}

fn path_last(node: &mut Node) -> Option<&mut Node> {
    match &mut node.kind {
        Kind::Path(steps) => steps.last_mut(),
        _ => None,
    }
}

fn empty_path() -> Fail {
    Error::new("S0201", "Syntax error: empty path")
}

/// A node of `kind` that inherits the unresolved parent references of `children`.
fn with_ancestry(kind: Kind, pos: usize, children: &[&Node]) -> Box<Node> {
    let mut n = Node::new(Kind::Null, pos);
    for child in children {
        push_ancestry(&mut n, child);
    }
    n.kind = kind;
    Box::new(n)
}

impl Optimizer {
    fn resolve_labels(&self, node: &mut Node) {
        if let Some(slot) = node.slot {
            let label = self.slots.get(slot).map_or(slot, |s| s.label);
            node.kind = Kind::Parent(format!("!{label}"));
        }
        if let Some(slot) = node.ancestor_slot {
            let label = self.slots.get(slot).map_or(slot, |s| s.label);
            node.ancestor = Some(format!("!{label}"));
        }
        node.for_each_child_mut(&mut |child| self.resolve_labels(child));
    }

    fn process_box(&mut self, node: Box<Node>) -> Result<Box<Node>, Fail> {
        Ok(Box::new(self.process(*node)?))
    }

    fn process_opt(&mut self, node: Option<Box<Node>>) -> Result<Option<Box<Node>>, Fail> {
        node.map(|n| self.process_box(n)).transpose()
    }

    fn process_all(&mut self, nodes: Vec<Node>) -> Result<Vec<Node>, Fail> {
        nodes.into_iter().map(|n| self.process(n)).collect()
    }

    fn process(&mut self, node: Node) -> Result<Node, Fail> {
        let used = super::eval::stack_position().abs_diff(self.stack_base);
        if used > super::parser::PARSE_STACK_BUDGET {
            return Err(Error::new("U1001", "Expression is nested too deeply").at(node.position));
        }
        let keep = node.keep_array;
        let pos = node.position;
        // Arms return without `?` so debug builds keep one result slot, not one per arm.
        let mut result = match node.kind {
            Kind::RawDot(lhs, rhs) => self.dot(*lhs, *rhs, pos),
            Kind::RawFilter(lhs, rhs) => self.filter(lhs, rhs, pos),
            Kind::RawGroup(lhs, pairs) => self.group_by(lhs, pairs, pos),
            Kind::RawSort(lhs, terms) => self.order_by(lhs, terms, pos),
            Kind::RawFocus(lhs, var) => self.focus(lhs, var, pos, keep),
            Kind::RawIndex(lhs, var) => self.index(lhs, var, pos),
            Kind::Apply(lhs, rhs) => self.apply(lhs, rhs, pos),
            Kind::Bind(name, rhs) => self.bind(name, rhs, pos),
            Kind::Binary(op, lhs, rhs) => self.binary(op, lhs, rhs, pos),
            Kind::Elvis(lhs, rhs) => self.default_op(lhs, rhs, pos, true),
            Kind::Coalesce(lhs, rhs) => self.default_op(lhs, rhs, pos, false),
            Kind::Array(items) => self.array(items, pos),
            Kind::Object(pairs) => self.object(pairs, pos),
            Kind::Neg(inner) => self.negation(inner, pos),
            Kind::Call {
                proc,
                args,
                partial,
            } => self.call(proc, args, partial, pos),
            Kind::Lambda(def) => self.lambda(def, pos),
            Kind::Condition(c, t, e) => self.condition(c, t, e, pos),
            Kind::Transform(p, u, d) => self.transform(p, u, d, pos),
            Kind::Block(items) => self.block(items, pos),
            Kind::Name(name) | Kind::RawOperatorName(name) => Ok(Self::name(name, pos, keep)),
            Kind::Parent(_) => Ok(self.parent(pos)),
            other => Ok(Box::new(Node::new(other, pos))),
        }?;
        if keep {
            result.keep_array = true;
        }
        Ok(*result)
    }

    /// `a[b]`: a predicate on the last step of a path, or on a plain expression.
    #[inline(never)]
    fn filter(&mut self, lhs: Box<Node>, rhs: Box<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let mut result = self.process(*lhs)?;
        let predicate = self.process(*rhs)?;
        let in_path = matches!(result.kind, Kind::Path(_));
        let step = if in_path {
            path_last(&mut result).ok_or_else(empty_path)?
        } else {
            &mut result
        };
        if step.group.is_some() {
            return Err(Error::new(
                "S0209",
                "A predicate cannot follow a grouping expression in a step",
            )
            .at(pos));
        }
        for &slot in &predicate.seeking {
            if self.level(slot) == 1 {
                self.seek_parent(step, slot)?;
            } else {
                self.add_level(slot, -1);
            }
        }
        push_ancestry(step, &predicate);
        let stage = Stage::Filter(Box::new(predicate));
        if in_path {
            step.stages.push(stage);
        } else {
            step.predicates.push(stage);
        }
        Ok(Box::new(result))
    }

    /// `a{k: v}`: a group-by on a step or expression.
    #[inline(never)]
    fn group_by(
        &mut self,
        lhs: Box<Node>,
        pairs: Vec<(Node, Node)>,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        let mut result = self.process(*lhs)?;
        if result.group.is_some() {
            return Err(
                Error::new("S0210", "Each step can only have one grouping expression").at(pos),
            );
        }
        let pairs = self.pairs(pairs, None)?;
        result.group = Some(Box::new(Group {
            pairs,
            position: pos,
        }));
        Ok(Box::new(result))
    }

    /// `a^(terms)`: a sort step appended to the path.
    #[inline(never)]
    fn order_by(
        &mut self,
        lhs: Box<Node>,
        terms: Vec<SortTerm>,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        let lhs = self.process(*lhs)?;
        let mut result = match lhs.kind {
            Kind::Path(_) => lhs,
            _ => path(vec![lhs], pos),
        };
        let mut sort = Node::new(Kind::Null, pos);
        let mut out = Vec::with_capacity(terms.len());
        for term in terms {
            let expr = self.process(term.expr)?;
            push_ancestry(&mut sort, &expr);
            out.push(SortTerm {
                descending: term.descending,
                expr,
            });
        }
        sort.kind = Kind::Sort(out);
        if let Kind::Path(steps) = &mut result.kind {
            steps.push(sort);
        }
        self.resolve_ancestry(&mut result)?;
        Ok(Box::new(result))
    }

    /// `a@$v`: binds the step's result to `$v` without changing the context.
    #[inline(never)]
    fn focus(
        &mut self,
        lhs: Box<Node>,
        var: String,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        let mut result = self.process(*lhs)?;
        let step = if matches!(result.kind, Kind::Path(_)) {
            path_last(&mut result).ok_or_else(empty_path)?
        } else {
            &mut result
        };
        if !step.stages.is_empty() || !step.predicates.is_empty() {
            return Err(Error::new(
                "S0215",
                "A context variable binding must precede any predicates on a step",
            )
            .at(pos));
        }
        if matches!(step.kind, Kind::Sort(_)) {
            return Err(Error::new(
                "S0216",
                "A context variable binding must precede the 'order-by' clause on a step",
            )
            .at(pos));
        }
        if keep {
            step.keep_array = true;
        }
        step.focus = Some(var);
        step.tuple = true;
        Ok(Box::new(result))
    }

    /// `a#$i`: binds the position of each result of the step to `$i`.
    #[inline(never)]
    fn index(&mut self, lhs: Box<Node>, var: String, pos: usize) -> Result<Box<Node>, Fail> {
        let lhs = self.process(*lhs)?;
        let mut result = match lhs.kind {
            Kind::Path(_) => lhs,
            _ => {
                let mut step = lhs;
                step.stages = std::mem::take(&mut step.predicates);
                path(vec![step], pos)
            }
        };
        let step = path_last(&mut result).ok_or_else(empty_path)?;
        if step.stages.is_empty() {
            step.index = Some(var);
        } else {
            step.stages.push(Stage::Index(var));
        }
        step.tuple = true;
        Ok(Box::new(result))
    }

    #[inline(never)]
    fn apply(&mut self, lhs: Box<Node>, rhs: Box<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let lhs = self.process_box(lhs)?;
        let rhs = self.process_box(rhs)?;
        let keep = lhs.keep_array || rhs.keep_array;
        let mut n = Node::new(Kind::Apply(lhs, rhs), pos);
        n.keep_array = keep;
        Ok(Box::new(n))
    }

    #[inline(never)]
    fn bind(&mut self, name: String, rhs: Box<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let rhs = self.process_box(rhs)?;
        let mut n = Node::new(Kind::Null, pos);
        push_ancestry(&mut n, &rhs);
        n.kind = Kind::Bind(name, rhs);
        Ok(Box::new(n))
    }

    #[inline(never)]
    fn binary(
        &mut self,
        op: BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        let lhs = self.process_box(lhs)?;
        let rhs = self.process_box(rhs)?;
        let mut n = Node::new(Kind::Null, pos);
        push_ancestry(&mut n, &lhs);
        push_ancestry(&mut n, &rhs);
        n.kind = Kind::Binary(op, lhs, rhs);
        Ok(Box::new(n))
    }

    /// `a ?: b` (`elvis`) or `a ?? b`.
    #[inline(never)]
    fn default_op(
        &mut self,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
        elvis: bool,
    ) -> Result<Box<Node>, Fail> {
        let lhs = self.process_box(lhs)?;
        let rhs = self.process_box(rhs)?;
        let mut n = Node::new(Kind::Null, pos);
        push_ancestry(&mut n, &lhs);
        push_ancestry(&mut n, &rhs);
        n.kind = if elvis {
            Kind::Elvis(lhs, rhs)
        } else {
            Kind::Coalesce(lhs, rhs)
        };
        Ok(Box::new(n))
    }

    #[inline(never)]
    fn array(&mut self, items: Vec<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let items = self.process_all(items)?;
        let refs: Vec<&Node> = items.iter().collect();
        let mut n = with_ancestry(Kind::Null, pos, &refs);
        n.kind = Kind::Array(items);
        Ok(n)
    }

    #[inline(never)]
    fn object(&mut self, pairs: Vec<(Node, Node)>, pos: usize) -> Result<Box<Node>, Fail> {
        let mut n = Node::new(Kind::Null, pos);
        let pairs = self.pairs(pairs, Some(&mut n))?;
        n.kind = Kind::Object(pairs);
        Ok(Box::new(n))
    }

    /// Unary minus; folded into number literals.
    #[inline(never)]
    fn negation(&mut self, inner: Box<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let inner = self.process(*inner)?;
        if let Kind::Num(v, _) = inner.kind {
            if inner.predicates.is_empty() && inner.group.is_none() {
                let mut n = Node::new(
                    Kind::Num(-v, super::parser::json_number(-v)),
                    inner.position,
                );
                n.keep_array = inner.keep_array;
                return Ok(Box::new(n));
            }
        }
        let mut n = Node::new(Kind::Null, pos);
        push_ancestry(&mut n, &inner);
        n.kind = Kind::Neg(Box::new(inner));
        Ok(Box::new(n))
    }

    #[inline(never)]
    fn call(
        &mut self,
        proc: Box<Node>,
        args: Vec<Node>,
        partial: bool,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        let args = self.process_all(args)?;
        let proc = self.process_box(proc)?;
        let refs: Vec<&Node> = args.iter().collect();
        let mut n = with_ancestry(Kind::Null, pos, &refs);
        n.kind = Kind::Call {
            proc,
            args,
            partial,
        };
        Ok(n)
    }

    /// A lambda body is rewritten (and its `%` labels resolved) on its own.
    #[inline(never)]
    fn lambda(&mut self, def: Arc<LambdaDef>, pos: usize) -> Result<Box<Node>, Fail> {
        let mut def = Arc::try_unwrap(def).unwrap_or_else(|shared| (*shared).clone());
        let body = std::mem::replace(&mut def.body, Node::new(Kind::Null, pos));
        let mut body = self.process(body)?;
        self.resolve_labels(&mut body);
        def.body = body;
        Ok(Box::new(Node::new(Kind::Lambda(Arc::new(def)), pos)))
    }

    #[inline(never)]
    fn condition(
        &mut self,
        c: Box<Node>,
        t: Box<Node>,
        e: Option<Box<Node>>,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        let c = self.process_box(c)?;
        let t = self.process_box(t)?;
        let e = self.process_opt(e)?;
        let mut n = Node::new(Kind::Null, pos);
        push_ancestry(&mut n, &c);
        push_ancestry(&mut n, &t);
        if let Some(e) = &e {
            push_ancestry(&mut n, e);
        }
        n.kind = Kind::Condition(c, t, e);
        Ok(Box::new(n))
    }

    #[inline(never)]
    fn transform(
        &mut self,
        p: Box<Node>,
        u: Box<Node>,
        d: Option<Box<Node>>,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        let p = self.process_box(p)?;
        let u = self.process_box(u)?;
        let d = self.process_opt(d)?;
        Ok(Box::new(Node::new(Kind::Transform(p, u, d), pos)))
    }

    #[inline(never)]
    fn block(&mut self, items: Vec<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let items = self.process_all(items)?;
        let refs: Vec<&Node> = items.iter().collect();
        let mut n = with_ancestry(Kind::Null, pos, &refs);
        n.consarray = items.iter().any(|part| {
            part.consarray
                || matches!(&part.kind, Kind::Path(steps) if steps.first().is_some_and(|s| s.consarray))
        });
        n.kind = Kind::Block(items);
        Ok(n)
    }

    /// A field name is a one-step path.
    fn name(name: String, pos: usize, keep: bool) -> Box<Node> {
        let mut step = Node::new(Kind::Name(name), pos);
        step.keep_array = keep;
        let mut p = path(vec![step], pos);
        p.keep_singleton = keep;
        Box::new(p)
    }

    /// `%`: a new ancestor slot, resolved when the enclosing path is built.
    fn parent(&mut self, pos: usize) -> Box<Node> {
        let idx = self.slots.len();
        self.slots.push(Slot {
            label: idx,
            level: 1,
        });
        let mut n = Node::new(Kind::Parent(String::new()), pos);
        n.slot = Some(idx);
        Box::new(n)
    }

    fn pairs(
        &mut self,
        pairs: Vec<(Node, Node)>,
        mut owner: Option<&mut Node>,
    ) -> Result<Vec<(Node, Node)>, Fail> {
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let k = self.process(k)?;
            let v = self.process(v)?;
            if let Some(o) = owner.as_deref_mut() {
                push_ancestry(o, &k);
                push_ancestry(o, &v);
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// `a.b`: concatenates steps into one path and flags array constructors and literals.
    #[inline(never)]
    fn dot(&mut self, lhs: Node, rhs: Node, pos: usize) -> Result<Box<Node>, Fail> {
        let lstep = self.process(lhs)?;
        let lslot = match lstep.kind {
            Kind::Parent(_) => lstep.slot,
            _ => None,
        };
        let mut result = match lstep.kind {
            Kind::Path(_) => lstep,
            _ => path(vec![lstep], pos),
        };
        if let Some(slot) = lslot {
            result.seeking = vec![slot];
        }
        let mut rest = self.process(rhs)?;
        let Kind::Path(steps) = &mut result.kind else {
            return Ok(Box::new(result));
        };
        match rest.kind {
            Kind::Path(more) => steps.extend(more),
            _ => {
                rest.stages.append(&mut rest.predicates);
                steps.push(rest);
            }
        }
        for step in steps.iter_mut() {
            match &step.kind {
                Kind::Num(..) | Kind::Bool(_) | Kind::Null => {
                    return Err(Error::new(
                        "S0213",
                        "The literal value cannot be used as a step within a path expression",
                    )
                    .at(step.position));
                }
                Kind::Str(v) => {
                    let name = v.as_str().unwrap_or_default().to_string();
                    step.kind = Kind::Name(name);
                }
                _ => {}
            }
        }
        if steps.iter().any(|s| s.keep_array) {
            result.keep_singleton = true;
        }
        if let Some(first) = steps.first_mut() {
            if matches!(first.kind, Kind::Array(_)) {
                first.consarray = true;
            }
        }
        if let Some(last) = steps.last_mut() {
            if matches!(last.kind, Kind::Array(_)) {
                last.consarray = true;
            }
        }
        self.resolve_ancestry(&mut result)?;
        Ok(Box::new(result))
    }
}
