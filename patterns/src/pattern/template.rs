//! Compiled data templates (spec §2.4): JSON with `"$xpr( ... )"` strings and `{"$xpr": "..."}`
//! spread keys, compiled once at load and expanded per step.
//!
//! Deliberate difference from the reference: a string *produced* by an expression is data, never
//! re-evaluated as another `$xpr(...)` (that would mean parsing per event).

use crate::expr::{self, Expression, Host};
use serde_json::{Map, Value};

/// A compiled template.
#[derive(Debug, Clone)]
pub enum Template {
    /// A constant subtree (no expressions inside); `null` expands to nothing.
    Literal(Value),
    /// `"$xpr( ... )"`.
    Expr(Expression),
    /// An array whose elements are expanded in order.
    Array(Vec<Template>),
    /// An object whose entries are expanded in order.
    Object(Vec<Entry>),
}

/// One entry of an object template.
#[derive(Debug, Clone)]
pub enum Entry {
    /// `"key": template`.
    Field(String, Template),
    /// `"$xpr": "expression"`: the resulting object's keys are spread into this object.
    Spread(Expression),
}

/// A template expression that failed to compile, with its JSON path relative to the template.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// Path below the template root, e.g. `.content.values.name` or `[0]`.
    pub path: String,
    /// The expression error.
    pub error: expr::Error,
}

const XPR_PREFIX: &str = "$xpr(";
const SPREAD_KEY: &str = "$xpr";

impl Template {
    /// Compiles a JSON template; every expression inside is parsed now.
    pub fn compile(value: &Value) -> Result<Template, CompileError> {
        compile_at(value, String::new())
    }

    /// Expands the template; `Ok(None)` when it expands to nothing (`null`/undefined).
    pub fn expand(&self, host: &dyn Host) -> Result<Option<Value>, expr::Error> {
        match self {
            Template::Literal(Value::Null) => Ok(None),
            Template::Literal(v) => Ok(Some(v.clone())),
            Template::Expr(e) => Ok(e.evaluate(host)?.filter(|v| !v.is_null())),
            Template::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    // JSON has no undefined: an element that expands to nothing becomes null.
                    out.push(item.expand(host)?.unwrap_or(Value::Null));
                }
                Ok(Some(Value::Array(out)))
            }
            Template::Object(entries) => {
                let mut out = Map::new();
                for entry in entries {
                    match entry {
                        Entry::Field(key, t) => match t.expand(host)? {
                            Some(v) => {
                                out.insert(key.clone(), v);
                            }
                            None => {
                                out.shift_remove(key);
                            }
                        },
                        Entry::Spread(e) => {
                            if let Some(Value::Object(obj)) = e.evaluate(host)? {
                                out.extend(obj);
                            }
                        }
                    }
                }
                Ok(Some(Value::Object(out)))
            }
        }
    }

    /// True when the template contains no expression at all.
    pub fn is_literal(&self) -> bool {
        matches!(self, Template::Literal(_))
    }
}

/// The expression inside `"$xpr( ... )"`, or `None` when `s` is not such a string.
pub fn xpr_source(s: &str) -> Option<&str> {
    let rest = s.strip_prefix(XPR_PREFIX)?;
    // Everything up to (excluding) the last character, which is assumed to be `)`.
    let mut chars = rest.char_indices();
    let end = chars.next_back().map_or(0, |(i, _)| i);
    Some(rest[..end].trim())
}

fn compile_at(value: &Value, path: String) -> Result<Template, CompileError> {
    match value {
        Value::String(s) => match xpr_source(s) {
            Some(src) => Expression::compile(src)
                .map(Template::Expr)
                .map_err(|error| CompileError { path, error }),
            None => Ok(Template::Literal(value.clone())),
        },
        Value::Array(items) => {
            let compiled = items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_at(v, format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            if compiled.iter().all(Template::is_literal) {
                return Ok(Template::Literal(value.clone()));
            }
            Ok(Template::Array(compiled))
        }
        Value::Object(obj) => {
            let mut entries = Vec::with_capacity(obj.len());
            let mut literal = true;
            for (key, v) in obj {
                let at = format!("{path}.{key}");
                if key == SPREAD_KEY {
                    let src = v.as_str().ok_or_else(|| CompileError {
                        path: at.clone(),
                        error: expr::Error {
                            code: "S0000".into(),
                            position: None,
                            token: None,
                            message: "a `$xpr` key must hold an expression string".into(),
                        },
                    })?;
                    let e = Expression::compile(src)
                        .map_err(|error| CompileError { path: at, error })?;
                    entries.push(Entry::Spread(e));
                    literal = false;
                } else {
                    let t = compile_at(v, at)?;
                    literal &= t.is_literal() && !v.is_null();
                    entries.push(Entry::Field(key.clone(), t));
                }
            }
            if literal {
                return Ok(Template::Literal(value.clone()));
            }
            Ok(Template::Object(entries))
        }
        _ => Ok(Template::Literal(value.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xpr_source_strips_prefix_and_last_char() {
        assert_eq!(xpr_source("$xpr( $a & 'b' )"), Some("$a & 'b'"));
        assert_eq!(xpr_source("$xpr("), Some(""));
        assert_eq!(xpr_source("$xpr(é)"), Some("é"));
        assert_eq!(xpr_source("plain"), None);
    }
}
