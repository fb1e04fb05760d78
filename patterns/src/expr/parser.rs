//! Pratt (top-down operator precedence) parser producing the raw AST.

use super::ast::{BinOp, Kind, LambdaDef, Node, SortTerm};
use super::error::{Error, Fail};
use super::lexer::{Lexer, Tok, Token};
use super::regex::RegexDef;
use super::signature::Signature;
use serde_json::Value;
use std::sync::Arc;

/// Maximum syntactic nesting (and postfix chain length) accepted by the parser.
pub const MAX_PARSE_DEPTH: usize = 300;

/// Parses `source` into a raw AST (call `optimize::process` next).
pub fn parse(source: &str) -> Result<Node, Fail> {
    let mut p = Parser {
        lx: Lexer::new(source),
        cur: Token {
            tok: Tok::End,
            start: 0,
            end: 0,
        },
        depth: 0,
        stack_base: super::eval::stack_position(),
    };
    p.advance(false)?;
    let node = *p.expression(0)?;
    if p.cur.tok != Tok::End {
        return Err(
            Error::new("S0201", format!("Syntax error: {}", describe(&p.cur.tok)))
                .at(p.cur.end)
                .with_token(describe(&p.cur.tok)),
        );
    }
    Ok(node)
}

struct Parser {
    lx: Lexer,
    cur: Token,
    depth: usize,
    stack_base: usize,
}

/// Stack the parser and the AST rewriting may use (bytes).
pub const PARSE_STACK_BUDGET: usize = 512 << 10;

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Name(s) | Tok::Variable(s) | Tok::Str(s) => s.clone(),
        Tok::Num(n) => n.to_string(),
        Tok::Bool(b) => b.to_string(),
        Tok::Null => "null".into(),
        Tok::Regex(p, _) => p.clone(),
        Tok::Op(o) => (*o).to_string(),
        Tok::End => "(end)".into(),
    }
}

fn lbp(tok: &Tok) -> u32 {
    match tok {
        Tok::Op(op) => match *op {
            "." => 75,
            "[" | "(" | "@" | "#" => 80,
            "{" => 70,
            "?" => 20,
            "+" | "-" | "&" => 50,
            "*" | "/" | "%" => 60,
            "=" | "<" | ">" | "^" | "!=" | "<=" | ">=" | "~>" | "?:" | "??" | "in" => 40,
            ":=" => 10,
            "and" => 30,
            "or" => 25,
            _ => 0,
        },
        _ => 0,
    }
}

fn is_op(tok: &Tok, op: &str) -> bool {
    matches!(tok, Tok::Op(o) if *o == op)
}

impl Parser {
    /// Consumes the current token and lexes the next one (`infix`: an operand precedes it).
    fn advance(&mut self, infix: bool) -> Result<Token, Fail> {
        let next = self.lx.next(infix)?;
        Ok(std::mem::replace(&mut self.cur, next))
    }

    fn expect(&mut self, op: &str, infix: bool) -> Result<Token, Fail> {
        if !is_op(&self.cur.tok, op) {
            let found = describe(&self.cur.tok);
            let err = if self.cur.tok == Tok::End {
                Error::new(
                    "S0203",
                    format!("Expected \"{op}\" before end of expression"),
                )
            } else {
                Error::new("S0202", format!("Expected \"{op}\", got \"{found}\""))
            };
            return Err(err.at(self.cur.end).with_token(found));
        }
        self.advance(infix)
    }

    fn enter(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        let used = super::eval::stack_position().abs_diff(self.stack_base);
        if self.depth > MAX_PARSE_DEPTH || used > PARSE_STACK_BUDGET {
            return Err(Error::new("U1001", "Expression is nested too deeply").at(self.cur.start));
        }
        Ok(())
    }

    fn expression(&mut self, rbp: u32) -> Result<Box<Node>, Fail> {
        let saved = self.depth;
        self.enter()?;
        let t = self.advance(true)?;
        let mut left = self.nud(t)?;
        while rbp < lbp(&self.cur.tok) {
            self.enter()?;
            let t = self.advance(false)?;
            left = self.led(t, left)?;
        }
        self.depth = saved;
        Ok(left)
    }

    #[inline(never)]
    fn nud(&mut self, t: Token) -> Result<Box<Node>, Fail> {
        let pos = t.end;
        let kind = match t.tok {
            Tok::Name(n) => Kind::Name(n),
            Tok::Variable(v) => Kind::Variable(v),
            Tok::Str(s) => Kind::Str(Value::String(s)),
            Tok::Num(n) => Kind::Num(n, json_number(n)),
            Tok::Bool(b) => Kind::Bool(b),
            Tok::Null => Kind::Null,
            Tok::Regex(pattern, flags) => regex_kind(&pattern, &flags, pos)?,
            Tok::End => {
                return Err(Error::new("S0207", "Unexpected end of expression").at(pos));
            }
            Tok::Op(op) => return self.prefix(op, pos),
        };
        Ok(Box::new(Node::new(kind, pos)))
    }

    #[inline(never)]
    fn prefix(&mut self, op: &'static str, pos: usize) -> Result<Box<Node>, Fail> {
        let kind = match op {
            "and" | "or" | "in" => Kind::RawOperatorName(op.to_string()),
            "-" => Kind::Neg(self.expression(70)?),
            "*" => Kind::Wildcard,
            "**" => Kind::Descendant,
            "%" => Kind::Parent(String::new()),
            "(" => self.block()?,
            "[" => self.array()?,
            "{" => Kind::Object(self.object_pairs()?),
            "|" => self.transform()?,
            _ => return Err(unary_error(op, pos)),
        };
        Ok(Box::new(Node::new(kind, pos)))
    }

    #[inline(never)]
    fn block(&mut self) -> Result<Kind, Fail> {
        let mut items = Vec::new();
        while !is_op(&self.cur.tok, ")") {
            items.push(*self.expression(0)?);
            if !is_op(&self.cur.tok, ";") {
                break;
            }
            self.advance(false)?;
        }
        self.expect(")", true)?;
        Ok(Kind::Block(items))
    }

    #[inline(never)]
    fn array(&mut self) -> Result<Kind, Fail> {
        let mut items = Vec::new();
        if !is_op(&self.cur.tok, "]") {
            loop {
                let mut item = self.expression(0)?;
                if is_op(&self.cur.tok, "..") {
                    let rpos = self.cur.end;
                    self.advance(false)?;
                    let rhs = self.expression(0)?;
                    item = Box::new(Node::new(Kind::Binary(BinOp::Range, item, rhs), rpos));
                }
                items.push(*item);
                if !is_op(&self.cur.tok, ",") {
                    break;
                }
                self.advance(false)?;
            }
        }
        self.expect("]", true)?;
        Ok(Kind::Array(items))
    }

    #[inline(never)]
    fn transform(&mut self) -> Result<Kind, Fail> {
        let pattern = self.expression(0)?;
        self.expect("|", false)?;
        let update = self.expression(0)?;
        let delete = if is_op(&self.cur.tok, ",") {
            self.advance(false)?;
            Some(self.expression(0)?)
        } else {
            None
        };
        self.expect("|", false)?;
        Ok(Kind::Transform(pattern, update, delete))
    }

    fn object_pairs(&mut self) -> Result<Vec<(Node, Node)>, Fail> {
        let mut pairs = Vec::new();
        if !is_op(&self.cur.tok, "}") {
            loop {
                let k = self.expression(0)?;
                self.expect(":", false)?;
                let v = self.expression(0)?;
                pairs.push((*k, *v));
                if !is_op(&self.cur.tok, ",") {
                    break;
                }
                self.advance(false)?;
            }
        }
        self.expect("}", true)?;
        Ok(pairs)
    }

    #[inline(never)]
    fn led(&mut self, t: Token, left: Box<Node>) -> Result<Box<Node>, Fail> {
        let pos = t.end;
        let Tok::Op(op) = t.tok else {
            return Err(Error::new("S0201", "Syntax error").at(pos));
        };
        let bin = |op: BinOp, l: Box<Node>, r: Box<Node>| Kind::Binary(op, l, r);
        let kind = match op {
            "." => Kind::RawDot(left, self.expression(75)?),
            "+" => bin(BinOp::Add, left, self.expression(50)?),
            "-" => bin(BinOp::Sub, left, self.expression(50)?),
            "*" => bin(BinOp::Mul, left, self.expression(60)?),
            "/" => bin(BinOp::Div, left, self.expression(60)?),
            "%" => bin(BinOp::Mod, left, self.expression(60)?),
            "=" => bin(BinOp::Eq, left, self.expression(40)?),
            "!=" => bin(BinOp::Ne, left, self.expression(40)?),
            "<" => bin(BinOp::Lt, left, self.expression(40)?),
            "<=" => bin(BinOp::Le, left, self.expression(40)?),
            ">" => bin(BinOp::Gt, left, self.expression(40)?),
            ">=" => bin(BinOp::Ge, left, self.expression(40)?),
            "&" => bin(BinOp::Concat, left, self.expression(50)?),
            "and" => bin(BinOp::And, left, self.expression(30)?),
            "or" => bin(BinOp::Or, left, self.expression(25)?),
            "in" => bin(BinOp::In, left, self.expression(40)?),
            "~>" => Kind::Apply(left, self.expression(40)?),
            "?:" => Kind::Elvis(left, self.expression(40)?),
            "??" => Kind::Coalesce(left, self.expression(40)?),
            ":=" => {
                let Kind::Variable(name) = left.kind else {
                    return Err(Error::new(
                        "S0212",
                        "The left side of := must be a variable name (start with $)",
                    )
                    .at(pos)
                    .with_token(left.describe()));
                };
                Kind::Bind(name, self.expression(9)?)
            }
            "?" => {
                let then = self.expression(0)?;
                let otherwise = if is_op(&self.cur.tok, ":") {
                    self.advance(false)?;
                    Some(self.expression(0)?)
                } else {
                    None
                };
                Kind::Condition(left, then, otherwise)
            }
            "@" | "#" => {
                let rhs = self.expression(80)?;
                let Kind::Variable(name) = rhs.kind else {
                    return Err(Error::new(
                        "S0214",
                        format!("The right side of {op} must be a variable name (start with $)"),
                    )
                    .at(pos)
                    .with_token(op));
                };
                if op == "@" {
                    Kind::RawFocus(left, name)
                } else {
                    Kind::RawIndex(left, name)
                }
            }
            "[" => {
                if is_op(&self.cur.tok, "]") {
                    self.advance(true)?;
                    let mut left = left;
                    mark_keep_array(&mut left);
                    return Ok(left);
                }
                let rhs = self.expression(0)?;
                self.expect("]", true)?;
                Kind::RawFilter(left, rhs)
            }
            "{" => Kind::RawGroup(left, self.object_pairs()?),
            "^" => Kind::RawSort(left, self.sort_terms()?),
            "(" => return self.call(left, pos),
            _ => {
                return Err(Error::new("S0201", format!("Syntax error: {op}"))
                    .at(pos)
                    .with_token(op))
            }
        };
        Ok(Box::new(Node::new(kind, pos)))
    }

    fn sort_terms(&mut self) -> Result<Vec<SortTerm>, Fail> {
        self.expect("(", false)?;
        let mut terms = Vec::new();
        loop {
            let mut descending = false;
            if is_op(&self.cur.tok, "<") {
                self.advance(false)?;
            } else if is_op(&self.cur.tok, ">") {
                descending = true;
                self.advance(false)?;
            }
            terms.push(SortTerm {
                descending,
                expr: *self.expression(0)?,
            });
            if !is_op(&self.cur.tok, ",") {
                break;
            }
            self.advance(false)?;
        }
        self.expect(")", true)?;
        Ok(terms)
    }

    #[inline(never)]
    fn call(&mut self, left: Box<Node>, pos: usize) -> Result<Box<Node>, Fail> {
        let mut args = Vec::new();
        let mut partial = false;
        if !is_op(&self.cur.tok, ")") {
            loop {
                if is_op(&self.cur.tok, "?") {
                    partial = true;
                    let t = self.advance(false)?;
                    args.push(Node::new(Kind::Placeholder, t.end));
                } else {
                    args.push(*self.expression(0)?);
                }
                if !is_op(&self.cur.tok, ",") {
                    break;
                }
                self.advance(false)?;
            }
        }
        self.expect(")", true)?;
        let is_lambda = matches!(&left.kind, Kind::Name(n) if n == "function" || n == "\u{3bb}");
        if !is_lambda {
            let kind = Kind::Call {
                proc: left,
                args,
                partial,
            };
            return Ok(Box::new(Node::new(kind, pos)));
        }
        let mut params = Vec::with_capacity(args.len());
        for (i, arg) in args.into_iter().enumerate() {
            match arg.kind {
                Kind::Variable(v) => params.push(v),
                _ => {
                    return Err(Error::new(
                        "S0208",
                        format!("Parameter {} of function definition must be a variable name (start with $)", i + 1),
                    )
                    .at(arg.position)
                    .with_token(arg.describe()))
                }
            }
        }
        let mut signature = None;
        if is_op(&self.cur.tok, "<") {
            let start = self.cur.start;
            let chars = self.lx.chars_from(start);
            let mut depth = 0usize;
            let mut end = None;
            for (i, c) in chars.iter().enumerate() {
                match c {
                    '<' => depth += 1,
                    '>' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    '{' => break,
                    _ => {}
                }
            }
            let Some(end) = end else {
                return Err(Error::new("S0401", "Unterminated function signature").at(start));
            };
            let text: String = chars[..=end].iter().collect();
            signature = Some(Signature::parse(&text).map_err(|e| e.or_at(start))?);
            self.lx.seek(start + end + 1);
            self.cur = self.lx.next(false)?;
        }
        self.expect("{", false)?;
        let body = *self.expression(0)?;
        self.expect("}", true)?;
        let def = LambdaDef {
            params,
            signature,
            body,
        };
        Ok(Box::new(Node::new(Kind::Lambda(Arc::new(def)), pos)))
    }
}

#[cold]
#[inline(never)]
fn unary_error(op: &str, pos: usize) -> Fail {
    Error::new(
        "S0211",
        format!("The symbol {op} cannot be used as a unary operator"),
    )
    .at(pos)
    .with_token(op)
}

#[inline(never)]
fn regex_kind(pattern: &str, flags: &str, pos: usize) -> Result<Kind, Fail> {
    let def = RegexDef::new(pattern, flags).map_err(|e| e.or_at(pos))?;
    Ok(Kind::Regex(Arc::new(def)))
}

/// Marks the innermost step of a chain of predicates with `keep_array` (the `[]` suffix).
fn mark_keep_array(node: &mut Node) {
    let mut step = node;
    while let Kind::RawFilter(lhs, _) = &mut step.kind {
        step = lhs;
    }
    step.keep_array = true;
}

/// A JSON number for a literal (integers stay integers).
pub fn json_number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(src: &str) -> String {
        match parse(src).and_then(crate::expr::optimize::process) {
            Ok(_) => format!("no error for {src}"),
            Err(e) => e.code,
        }
    }

    #[test]
    fn syntax_errors_have_official_codes() {
        assert_eq!(code("1 2"), "S0201");
        assert_eq!(code("(1; 2"), "S0203");
        assert_eq!(code("[1, 2 3]"), "S0202");
        assert_eq!(code("1 ! 2"), "S0204");
        assert_eq!(code("1 +"), "S0207");
        assert_eq!(code("function(a){1}"), "S0208");
        assert_eq!(code("1 := 2"), "S0212");
        assert_eq!(code("a@b"), "S0214");
        assert_eq!(code("a.1"), "S0213");
        assert_eq!(code("[1, 2]{'n': $}[true]"), "S0209");
        assert_eq!(code("[1, 2]{'n': $}{'n': $}"), "S0210");
        assert_eq!(code("%"), "S0217");
        assert_eq!(code("'abc"), "S0101");
        assert_eq!(code("1e999"), "S0102");
        assert_eq!(code("'\\q'"), "S0103");
        assert_eq!(code("'\\u12'"), "S0104");
        assert_eq!(code("`abc"), "S0105");
        assert_eq!(code("/* abc"), "S0106");
        assert_eq!(code("+1"), "S0211");
    }

    #[test]
    fn paths_collect_steps_and_flags() {
        let node = crate::expr::optimize::process(parse("a.b[0].c[]").unwrap()).unwrap();
        let Kind::Path(steps) = &node.kind else {
            panic!("expected a path")
        };
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[1].stages.len(), 1);
        assert!(node.keep_singleton);
    }

    #[test]
    fn lambda_with_signature() {
        let node = parse("function($a, $b)<nn:n>{ $a + $b }").unwrap();
        let Kind::Lambda(def) = &node.kind else {
            panic!("expected a lambda")
        };
        assert_eq!(def.params, ["a", "b"]);
        assert!(def.signature.is_some());
    }
}
