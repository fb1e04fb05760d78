//! Post-parse rewriting: builds location paths from `.` chains, attaches predicates, sorts,
//! group-bys and positional/focus bindings to their steps, and resolves `%` parent references
//! to ancestor labels bound by earlier steps.

use super::ast::{Group, Kind, Node, SortTerm, Stage};
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

fn steps_mut(node: &mut Node) -> Option<&mut Vec<Node>> {
    match &mut node.kind {
        Kind::Path(steps) => Some(steps),
        _ => None,
    }
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

    fn process(&mut self, node: Node) -> Result<Node, Fail> {
        let used = super::eval::stack_position().abs_diff(self.stack_base);
        if used > super::parser::PARSE_STACK_BUDGET {
            return Err(Error::new("U1001", "Expression is nested too deeply").at(node.position));
        }
        let keep = node.keep_array;
        let pos = node.position;
        let mut result = match node.kind {
            Kind::RawDot(lhs, rhs) => self.dot(*lhs, *rhs, pos),
            Kind::RawFilter(lhs, rhs) => self.p_filter(lhs, rhs, pos, keep),
            Kind::RawGroup(lhs, pairs) => self.p_group(lhs, pairs, pos, keep),
            Kind::RawSort(lhs, terms) => self.p_sort(lhs, terms, pos, keep),
            Kind::RawFocus(lhs, var) => self.p_focus(lhs, var, pos, keep),
            Kind::RawIndex(lhs, var) => self.p_index(lhs, var, pos, keep),
            Kind::Apply(lhs, rhs) => self.p_apply(lhs, rhs, pos, keep),
            Kind::Bind(name, rhs) => self.p_bind(name, rhs, pos, keep),
            Kind::Binary(op, lhs, rhs) => self.p_binary(op, lhs, rhs, pos, keep),
            Kind::Elvis(lhs, rhs) => self.p_elvis(lhs, rhs, pos, keep),
            Kind::Coalesce(lhs, rhs) => self.p_coalesce(lhs, rhs, pos, keep),
            Kind::Array(items) => self.p_array(items, pos, keep),
            Kind::Object(pairs) => self.p_object(pairs, pos, keep),
            Kind::Neg(inner) => self.p_neg(inner, pos, keep),
            Kind::Call {
                proc,
                args,
                partial,
            } => self.p_call(proc, args, partial, pos),
            Kind::Lambda(def) => self.p_lambda(def, pos, keep),
            Kind::Condition(c, t, e) => self.p_condition(c, t, e, pos, keep),
            Kind::Transform(p, u, d) => self.p_transform(p, u, d, pos, keep),
            Kind::Block(items) => self.p_block(items, pos, keep),
            Kind::Name(name) => self.p_name(name, pos, keep),
            Kind::RawOperatorName(name) => self.p_name(name, pos, keep),
            Kind::Parent(_) => self.p_parent(pos, keep),
            other => Ok(Box::new(Node::new(other, pos))),
        }?;
        if keep {
            result.keep_array = true;
        }
        Ok(*result)
    }
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

impl Optimizer {
    #[inline(never)]
    #[allow(unused_variables)]
    fn p_filter(
        &mut self,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
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
                let level = self.slots.get(slot).map_or(0, |s| s.level);
                if level == 1 {
                    self.seek_parent(step, slot)?;
                } else if let Some(s) = self.slots.get_mut(slot) {
                    s.level -= 1;
                }
            }
            push_ancestry(step, &predicate);
            let stage = Stage::Filter(Box::new(predicate));
            if in_path {
                step.stages.push(stage);
            } else {
                step.predicates.push(stage);
            }
            result
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_group(
        &mut self,
        lhs: Box<Node>,
        pairs: Vec<(Node, Node)>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
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
            result
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_sort(
        &mut self,
        lhs: Box<Node>,
        terms: Vec<SortTerm>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let lhs = self.process(*lhs)?;
            let mut result = match lhs.kind {
                Kind::Path(_) => lhs,
                _ => path(vec![lhs], pos),
            };
            let mut sort = Node::new(Kind::Sort(Vec::new()), pos);
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
            if let Some(steps) = steps_mut(&mut result) {
                steps.push(sort);
            }
            self.resolve_ancestry(&mut result)?;
            result
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_focus(
        &mut self,
        lhs: Box<Node>,
        var: String,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
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
            result
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_index(
        &mut self,
        lhs: Box<Node>,
        var: String,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
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
            result
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_apply(
        &mut self,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let lhs = self.process_box(lhs)?;
            let rhs = self.process_box(rhs)?;
            let keep_both = lhs.keep_array || rhs.keep_array;
            let mut n = Node::new(Kind::Apply(lhs, rhs), pos);
            n.keep_array = keep_both;
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_bind(
        &mut self,
        name: String,
        rhs: Box<Node>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let rhs = self.process_box(rhs)?;
            let mut n = Node::new(Kind::Bind(name, Box::new(Node::new(Kind::Null, pos))), pos);
            push_ancestry(&mut n, &rhs);
            n.kind = Kind::Bind(
                match n.kind {
                    Kind::Bind(name, _) => name,
                    _ => String::new(),
                },
                rhs,
            );
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_binary(
        &mut self,
        op: super::ast::BinOp,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let lhs = self.process_box(lhs)?;
            let rhs = self.process_box(rhs)?;
            let mut n = Node::new(Kind::Null, pos);
            push_ancestry(&mut n, &lhs);
            push_ancestry(&mut n, &rhs);
            n.kind = Kind::Binary(op, lhs, rhs);
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_elvis(
        &mut self,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let (n, lhs, rhs) = self.pair_node(lhs, rhs, pos)?;
            Node {
                kind: Kind::Elvis(lhs, rhs),
                ..n
            }
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_coalesce(
        &mut self,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let (n, lhs, rhs) = self.pair_node(lhs, rhs, pos)?;
            Node {
                kind: Kind::Coalesce(lhs, rhs),
                ..n
            }
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_array(&mut self, items: Vec<Node>, pos: usize, keep: bool) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let mut n = Node::new(Kind::Null, pos);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let v = self.process(item)?;
                push_ancestry(&mut n, &v);
                out.push(v);
            }
            n.kind = Kind::Array(out);
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_object(
        &mut self,
        pairs: Vec<(Node, Node)>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let mut n = Node::new(Kind::Null, pos);
            let pairs = self.pairs(pairs, Some(&mut n))?;
            n.kind = Kind::Object(pairs);
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_neg(&mut self, inner: Box<Node>, pos: usize, keep: bool) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let inner = self.process(*inner)?;
            match inner.kind {
                Kind::Num(v, _) if inner.predicates.is_empty() && inner.group.is_none() => {
                    let mut n = Node::new(
                        Kind::Num(-v, super::parser::json_number(-v)),
                        inner.position,
                    );
                    n.keep_array = inner.keep_array;
                    n
                }
                _ => {
                    let mut n = Node::new(Kind::Null, pos);
                    push_ancestry(&mut n, &inner);
                    n.kind = Kind::Neg(Box::new(inner));
                    n
                }
            }
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_lambda(
        &mut self,
        def: Arc<super::ast::LambdaDef>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let mut def = Arc::try_unwrap(def).unwrap_or_else(|shared| (*shared).clone());
            let body = std::mem::replace(&mut def.body, Node::new(Kind::Null, pos));
            let mut body = self.process(body)?;
            self.resolve_labels(&mut body);
            def.body = body;
            Node::new(Kind::Lambda(Arc::new(def)), pos)
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_condition(
        &mut self,
        c: Box<Node>,
        t: Box<Node>,
        e: Option<Box<Node>>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let c = self.process_box(c)?;
            let t = self.process_box(t)?;
            let e = match e {
                Some(e) => Some(self.process_box(e)?),
                None => None,
            };
            let mut n = Node::new(Kind::Null, pos);
            push_ancestry(&mut n, &c);
            push_ancestry(&mut n, &t);
            if let Some(e) = &e {
                push_ancestry(&mut n, e);
            }
            n.kind = Kind::Condition(c, t, e);
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_transform(
        &mut self,
        p: Box<Node>,
        u: Box<Node>,
        d: Option<Box<Node>>,
        pos: usize,
        keep: bool,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let p = self.process_box(p)?;
            let u = self.process_box(u)?;
            let d = match d {
                Some(d) => Some(self.process_box(d)?),
                None => None,
            };
            Node::new(Kind::Transform(p, u, d), pos)
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_block(&mut self, items: Vec<Node>, pos: usize, keep: bool) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let mut n = Node::new(Kind::Null, pos);
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let part = self.process(item)?;
                push_ancestry(&mut n, &part);
                let first_cons = match &part.kind {
                    Kind::Path(steps) => steps.first().is_some_and(|s| s.consarray),
                    _ => false,
                };
                if part.consarray || first_cons {
                    n.consarray = true;
                }
                out.push(part);
            }
            n.kind = Kind::Block(out);
            n
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_name(&mut self, name: String, pos: usize, keep: bool) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let mut step = Node::new(Kind::Name(name), pos);
            step.keep_array = keep;
            let mut p = path(vec![step], pos);
            p.keep_singleton = keep;
            p
        }))
    }

    #[inline(never)]
    #[allow(unused_variables)]
    fn p_parent(&mut self, pos: usize, keep: bool) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let idx = self.slots.len();
            self.slots.push(Slot {
                label: idx,
                level: 1,
            });
            let mut n = Node::new(Kind::Parent(String::new()), pos);
            n.slot = Some(idx);
            n
        }))
    }

    #[inline(never)]
    fn p_call(
        &mut self,
        proc: Box<Node>,
        args: Vec<Node>,
        partial: bool,
        pos: usize,
    ) -> Result<Box<Node>, Fail> {
        Ok(Box::new({
            let mut n = Node::new(Kind::Null, pos);
            let mut out = Vec::with_capacity(args.len());
            for arg in args {
                let a = self.process(arg)?;
                push_ancestry(&mut n, &a);
                out.push(a);
            }
            let proc = self.process_box(proc)?;
            n.kind = Kind::Call {
                proc,
                args: out,
                partial,
            };
            n
        }))
    }

    fn pair_node(
        &mut self,
        lhs: Box<Node>,
        rhs: Box<Node>,
        pos: usize,
    ) -> Result<(Node, Box<Node>, Box<Node>), Fail> {
        let lhs = self.process_box(lhs)?;
        let rhs = self.process_box(rhs)?;
        let mut n = Node::new(Kind::Null, pos);
        push_ancestry(&mut n, &lhs);
        push_ancestry(&mut n, &rhs);
        Ok((n, lhs, rhs))
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
