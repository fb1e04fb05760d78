//! The abstract syntax tree. The parser builds it (with a few "raw" kinds for postfix
//! operators), then `optimize` rewrites it into its evaluated form (paths, stages, tuple flags).

use super::regex::RegexDef;
use super::signature::Signature;
use serde_json::Value;
use std::sync::Arc;

/// Binary operators evaluated by the evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&`
    Concat,
    /// `and`
    And,
    /// `or`
    Or,
    /// `in`
    In,
    /// `..`
    Range,
}

/// A stage applied to each step result: a filter predicate or a positional binding.
#[derive(Debug, Clone)]
pub enum Stage {
    /// `[expr]`
    Filter(Box<Node>),
    /// `#$name` after a predicate.
    Index(String),
}

/// One `^(...)` sort term.
#[derive(Debug, Clone)]
pub struct SortTerm {
    /// Sort descending (`>`).
    pub descending: bool,
    /// The key expression.
    pub expr: Node,
}

/// A lambda definition (shared by every closure created from it).
#[derive(Debug, Clone)]
pub struct LambdaDef {
    /// Parameter names, without `$`.
    pub params: Vec<String>,
    /// The validated signature, when declared.
    pub signature: Option<Signature>,
    /// The body.
    pub body: Node,
}

/// The kinds of node.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A location path of steps.
    Path(Vec<Node>),
    /// A field name step.
    Name(String),
    /// A string literal (kept as a JSON value so host calls can borrow it).
    Str(Value),
    /// A number literal (kept as a JSON value too).
    Num(f64, Value),
    /// `true`/`false`.
    Bool(bool),
    /// `null`.
    Null,
    /// `*`
    Wildcard,
    /// `**`
    Descendant,
    /// `%`: the label of the ancestor binding (resolved by `optimize`).
    Parent(String),
    /// `$name` (`""` is the context, `"$"` the root).
    Variable(String),
    /// A regular expression literal.
    Regex(Arc<RegexDef>),
    /// A binary operator.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// Unary minus.
    Neg(Box<Node>),
    /// `[a, b, ...]`
    Array(Vec<Node>),
    /// `{k: v, ...}`, also used for the group-by of a step.
    Object(Vec<(Node, Node)>),
    /// `c ? a : b`
    Condition(Box<Node>, Box<Node>, Option<Box<Node>>),
    /// `a ?: b`
    Elvis(Box<Node>, Box<Node>),
    /// `a ?? b`
    Coalesce(Box<Node>, Box<Node>),
    /// `(a; b; ...)`
    Block(Vec<Node>),
    /// `$name := value`
    Bind(String, Box<Node>),
    /// A function call `proc(args)`; `partial` when some argument is `?`.
    Call {
        /// The expression giving the function.
        proc: Box<Node>,
        /// The arguments (`Placeholder` for `?`).
        args: Vec<Node>,
        /// True when an argument is a `?` placeholder.
        partial: bool,
    },
    /// `?` in a partial application.
    Placeholder,
    /// `function($a){ ... }`
    Lambda(Arc<LambdaDef>),
    /// `a ~> b`
    Apply(Box<Node>, Box<Node>),
    /// `| pattern | update, delete |`
    Transform(Box<Node>, Box<Node>, Option<Box<Node>>),
    /// A sort step (inside a path).
    Sort(Vec<SortTerm>),
    /// Raw `a.b` (removed by `optimize`).
    RawDot(Box<Node>, Box<Node>),
    /// Raw `a[b]` (removed by `optimize`).
    RawFilter(Box<Node>, Box<Node>),
    /// Raw `a{...}` (removed by `optimize`).
    RawGroup(Box<Node>, Vec<(Node, Node)>),
    /// Raw `a^(...)` (removed by `optimize`).
    RawSort(Box<Node>, Vec<SortTerm>),
    /// Raw `a@$v` (removed by `optimize`).
    RawFocus(Box<Node>, String),
    /// Raw `a#$i` (removed by `optimize`).
    RawIndex(Box<Node>, String),
    /// Raw `and`/`or`/`in` used where an operand is expected (becomes a name).
    RawOperatorName(String),
}

/// A group-by clause attached to a step or path.
#[derive(Debug, Clone)]
pub struct Group {
    /// Key/value expression pairs.
    pub pairs: Vec<(Node, Node)>,
    /// Source position.
    pub position: usize,
}

/// An AST node with the annotations the evaluator needs.
#[derive(Debug, Clone)]
pub struct Node {
    /// What this node is.
    pub kind: Kind,
    /// Character offset in the source.
    pub position: usize,
    /// `[]` seen: keep singleton arrays.
    pub keep_array: bool,
    /// Path only: some step asked to keep singleton arrays.
    pub keep_singleton: bool,
    /// Predicates on a non-step expression.
    pub predicates: Vec<Stage>,
    /// Stages of a path step.
    pub stages: Vec<Stage>,
    /// Group-by clause.
    pub group: Option<Box<Group>>,
    /// `@$name` focus binding.
    pub focus: Option<String>,
    /// `#$name` index binding.
    pub index: Option<String>,
    /// Step participates in a tuple stream.
    pub tuple: bool,
    /// Ancestor label bound by this step (for `%`).
    pub ancestor: Option<String>,
    /// Array constructor that must not be flattened in a path.
    pub consarray: bool,
    /// Parse-time only: the ancestor slot of a `%` node.
    pub slot: Option<usize>,
    /// Parse-time only: the ancestor slot bound by this step.
    pub ancestor_slot: Option<usize>,
    /// Parse-time only: unresolved `%` slots below this node.
    pub seeking: Vec<usize>,
}

impl Node {
    /// A node of `kind` at `position` without annotations.
    pub fn new(kind: Kind, position: usize) -> Self {
        Node {
            kind,
            position,
            keep_array: false,
            keep_singleton: false,
            predicates: Vec::new(),
            stages: Vec::new(),
            group: None,
            focus: None,
            index: None,
            tuple: false,
            ancestor: None,
            consarray: false,
            slot: None,
            ancestor_slot: None,
            seeking: Vec::new(),
        }
    }

    /// Calls `f` on every direct child node (lambda bodies excluded).
    pub fn for_each_child_mut(&mut self, f: &mut dyn FnMut(&mut Node)) {
        for stage in self.predicates.iter_mut().chain(self.stages.iter_mut()) {
            if let Stage::Filter(n) = stage {
                f(n);
            }
        }
        if let Some(g) = &mut self.group {
            for (k, v) in &mut g.pairs {
                f(k);
                f(v);
            }
        }
        match &mut self.kind {
            Kind::Path(v) | Kind::Array(v) | Kind::Block(v) => v.iter_mut().for_each(f),
            Kind::Binary(_, a, b)
            | Kind::Elvis(a, b)
            | Kind::Coalesce(a, b)
            | Kind::Apply(a, b)
            | Kind::RawDot(a, b)
            | Kind::RawFilter(a, b) => {
                f(a);
                f(b);
            }
            Kind::Neg(a) | Kind::Bind(_, a) | Kind::RawFocus(a, _) | Kind::RawIndex(a, _) => f(a),
            Kind::Object(pairs) => {
                for (k, v) in pairs {
                    f(k);
                    f(v);
                }
            }
            Kind::RawGroup(a, pairs) => {
                f(a);
                for (k, v) in pairs {
                    f(k);
                    f(v);
                }
            }
            Kind::Condition(a, b, c) => {
                f(a);
                f(b);
                if let Some(c) = c {
                    f(c);
                }
            }
            Kind::Transform(a, b, c) => {
                f(a);
                f(b);
                if let Some(c) = c {
                    f(c);
                }
            }
            Kind::Call { proc, args, .. } => {
                f(proc);
                args.iter_mut().for_each(f);
            }
            Kind::Sort(terms) => terms.iter_mut().for_each(|t| f(&mut t.expr)),
            Kind::RawSort(a, terms) => {
                f(a);
                terms.iter_mut().for_each(|t| f(&mut t.expr));
            }
            _ => {}
        }
    }

    /// A short description used in error tokens.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Name(n) | Kind::Variable(n) => n.clone(),
            Kind::Path(steps) => steps.first().map(Node::describe).unwrap_or_default(),
            _ => String::new(),
        }
    }
}
