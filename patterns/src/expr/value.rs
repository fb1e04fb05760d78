//! The evaluator's value: borrows the host's JSON where possible and owns what it computes.
//! Values live only for one evaluation (`'a`), so `Rc` is fine here; closures refer to their
//! environment by arena index, so no reference cycle can form.

use super::ast::{LambdaDef, Node};
use super::budget::{Meter, JSON_ENTRY_BYTES, JSON_NODE_BYTES};
use super::error::Fail;
use super::functions::Builtin;
use super::numfmt::js_number_string;
use super::regex::RegexDef;
use indexmap::IndexMap;
use serde_json::Value;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::rc::Rc;

/// An environment frame index in the evaluation arena (`None` = the root scope).
pub type Env = Option<u32>;

/// A string: borrowed from the input or the expression, or owned.
#[derive(Clone)]
pub enum Str<'a> {
    /// Borrowed text.
    B(&'a str),
    /// Owned text.
    O(Rc<str>),
    /// A JSON string value borrowed from the host (kept whole so it can be passed back).
    V(&'a Value),
}

impl Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Str::B(s) => s,
            Str::O(s) => s,
            Str::V(v) => v.as_str().unwrap_or_default(),
        }
    }
}

impl Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        self
    }
}

impl PartialEq for Str<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}
impl Eq for Str<'_> {}

impl Hash for Str<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<String> for Str<'_> {
    fn from(s: String) -> Self {
        Str::O(s.into())
    }
}

impl From<&str> for Str<'_> {
    fn from(s: &str) -> Self {
        Str::O(s.into())
    }
}

/// Flags JSONata attaches to arrays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// A result sequence (flattened by paths, unwrapped when singleton).
    pub seq: bool,
    /// Keep a singleton sequence as an array (`[]`).
    pub keep: bool,
    /// Built by an array constructor (not flattened by a path step).
    pub cons: bool,
    /// The sequence wrapping an array input document.
    pub outer: bool,
    /// Nesting depth of this array (1 + deepest member), maintained by the constructors.
    pub depth: u32,
}

/// An owned array with its flags.
#[derive(Debug, Clone, Default)]
pub struct Arr<'a> {
    /// The members.
    pub items: Vec<Val<'a>>,
    /// Sequence flags.
    pub flags: Flags,
}

/// Deepest nesting of constructed values: deeper values fail with `U1001`, which keeps every
/// recursive walk over values (serialisation, equality, drop) shallow.
pub const MAX_NESTING: u32 = 256;

/// An owned object (insertion ordered) with its nesting depth.
#[derive(Debug, Clone, Default)]
pub struct Obj<'a> {
    map: IndexMap<Str<'a>, Val<'a>>,
    /// Nesting depth (1 + deepest value), set by [`Val::object`].
    pub depth: u32,
}

impl<'a> Obj<'a> {
    /// An empty object.
    pub fn new() -> Self {
        Obj::default()
    }

    /// An empty object with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Obj {
            map: IndexMap::with_capacity(n),
            depth: 0,
        }
    }
}

impl<'a> Deref for Obj<'a> {
    type Target = IndexMap<Str<'a>, Val<'a>>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl std::ops::DerefMut for Obj<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

fn max_nesting<'v, 'a: 'v>(items: impl Iterator<Item = &'v Val<'a>>) -> u32 {
    items.map(Val::nesting).max().unwrap_or(0)
}

/// One tuple of a tuple stream: the context value and its variable bindings.
#[derive(Debug, Clone)]
pub struct Tuple<'a> {
    /// The context (`@`).
    pub ctx: Val<'a>,
    /// Focus, index and ancestor bindings.
    pub binds: Vec<(&'a str, Val<'a>)>,
}

/// A function value.
pub enum Func<'a> {
    /// A closure over a lambda definition.
    Lambda {
        /// The definition.
        def: &'a LambdaDef,
        /// The defining environment.
        env: Env,
        /// The context value at definition.
        input: Val<'a>,
    },
    /// A built-in library function.
    Builtin(&'static Builtin),
    /// A partially applied function (`None` marks a `?` placeholder).
    Partial(Val<'a>, Vec<Option<Val<'a>>>),
    /// A regular expression used as a matcher function.
    Regex(&'a RegexDef),
    /// `f ~> g` composition.
    Chain(Val<'a>, Val<'a>),
    /// A `|pattern|update,delete|` transform.
    Transform(&'a Node, Env),
}

impl fmt::Debug for Func<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Func::Lambda { .. } => f.write_str("<lambda>"),
            Func::Builtin(b) => write!(f, "<builtin {}>", b.name),
            Func::Partial(..) => f.write_str("<partial>"),
            Func::Regex(_) => f.write_str("<regex>"),
            Func::Chain(..) => f.write_str("<chain>"),
            Func::Transform(..) => f.write_str("<transform>"),
        }
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, Default)]
pub enum Val<'a> {
    /// JSONata `undefined`.
    #[default]
    Undef,
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A string.
    Str(Str<'a>),
    /// A borrowed JSON array or object.
    Json(&'a Value),
    /// An owned array.
    Arr(Rc<Arr<'a>>),
    /// An owned object.
    Obj(Rc<Obj<'a>>),
    /// A function.
    Func(Rc<Func<'a>>),
    /// A tuple stream (internal to paths with `@`, `#` or `%`).
    Tuples(Rc<Vec<Tuple<'a>>>),
}

/// Iterates the members of an array value.
pub enum Members<'a, 'v> {
    /// Borrowed JSON members.
    Json(std::slice::Iter<'a, Value>),
    /// Owned members.
    Own(std::slice::Iter<'v, Val<'a>>),
}

impl<'a> Iterator for Members<'a, '_> {
    type Item = Val<'a>;
    fn next(&mut self) -> Option<Val<'a>> {
        match self {
            Members::Json(it) => it.next().map(Val::from_json),
            Members::Own(it) => it.next().cloned(),
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Members::Json(it) => it.size_hint(),
            Members::Own(it) => it.size_hint(),
        }
    }
}

impl<'a> Val<'a> {
    /// Views a JSON value (scalars become native variants; containers stay borrowed).
    pub fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(_) => Val::Str(Str::V(v)),
            Value::Array(_) | Value::Object(_) => Val::Json(v),
        }
    }

    /// How deeply this value nests (0 for scalars; borrowed JSON counts as 1).
    pub fn nesting(&self) -> u32 {
        match self {
            Val::Arr(a) => a.flags.depth,
            Val::Obj(o) => o.depth,
            Val::Json(_) | Val::Tuples(_) => 1,
            _ => 0,
        }
    }

    /// Fails with `U1001` when this value nests deeper than [`MAX_NESTING`].
    pub fn check_nesting(self) -> Result<Self, super::error::Fail> {
        if self.nesting() > MAX_NESTING {
            return Err(super::Error::new("U1001", "Value nested too deeply"));
        }
        Ok(self)
    }

    /// An owned string value.
    pub fn string(s: impl Into<String>) -> Val<'a> {
        Val::Str(Str::O(s.into().into()))
    }

    /// A plain (non-sequence) array.
    pub fn array(items: Vec<Val<'a>>) -> Val<'a> {
        Val::with_flags(items, Flags::default())
    }

    /// A result sequence.
    pub fn seq(items: Vec<Val<'a>>) -> Val<'a> {
        Val::with_flags(
            items,
            Flags {
                seq: true,
                ..Flags::default()
            },
        )
    }

    /// An array with explicit flags.
    pub fn with_flags(items: Vec<Val<'a>>, mut flags: Flags) -> Val<'a> {
        flags.depth = 1 + max_nesting(items.iter());
        Val::Arr(Rc::new(Arr { items, flags }))
    }

    /// An owned object.
    pub fn object(mut obj: Obj<'a>) -> Val<'a> {
        obj.depth = 1 + max_nesting(obj.map.values());
        if obj.map.keys().any(|k| array_index(k).is_some()) {
            obj.map.sort_by(|a, _, b, _| js_key_order(a, b));
        }
        Val::Obj(Rc::new(obj))
    }

    /// True for `undefined`.
    pub fn is_undef(&self) -> bool {
        matches!(self, Val::Undef)
    }

    /// True for arrays (sequences included).
    pub fn is_array(&self) -> bool {
        matches!(self, Val::Arr(_) | Val::Json(Value::Array(_)))
    }

    /// True for objects.
    pub fn is_object(&self) -> bool {
        matches!(self, Val::Obj(_) | Val::Json(Value::Object(_)))
    }

    /// True for functions.
    pub fn is_func(&self) -> bool {
        matches!(self, Val::Func(_))
    }

    /// The array flags (default for non-owned arrays).
    pub fn flags(&self) -> Flags {
        match self {
            Val::Arr(a) => a.flags,
            _ => Flags::default(),
        }
    }

    /// True for a result sequence.
    pub fn is_seq(&self) -> bool {
        self.flags().seq
    }

    /// The number, if this is one.
    pub fn num(&self) -> Option<f64> {
        match self {
            Val::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Number of members of an array (0 otherwise).
    pub fn len(&self) -> usize {
        match self {
            Val::Arr(a) => a.items.len(),
            Val::Json(Value::Array(a)) => a.len(),
            _ => 0,
        }
    }

    /// True when an array has no members (or this is not an array).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Member `i` of an array.
    pub fn get(&self, i: usize) -> Val<'a> {
        match self {
            Val::Arr(a) => a.items.get(i).cloned().unwrap_or_default(),
            Val::Json(Value::Array(a)) => a.get(i).map(Val::from_json).unwrap_or_default(),
            _ => Val::Undef,
        }
    }

    /// Iterates an array's members (nothing for non-arrays).
    pub fn iter(&self) -> Members<'a, '_> {
        match self {
            Val::Arr(a) => Members::Own(a.items.iter()),
            Val::Json(Value::Array(a)) => Members::Json(a.iter()),
            _ => Members::Own([].iter()),
        }
    }

    /// Array members, or the value itself as a one-member list (nothing for undefined).
    pub fn members(&self) -> Vec<Val<'a>> {
        match self {
            Val::Undef => Vec::new(),
            v if v.is_array() => v.iter().collect(),
            v => vec![v.clone()],
        }
    }

    /// Field `key` of an object (undefined otherwise).
    pub fn field(&self, key: &str) -> Val<'a> {
        match self {
            Val::Json(Value::Object(m)) => {
                // Small objects: a linear scan beats hashing the key.
                let found = if m.len() <= 8 {
                    m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
                } else {
                    m.get(key)
                };
                found.map(Val::from_json).unwrap_or_default()
            }
            Val::Obj(o) => o.get(key).cloned().unwrap_or_default(),
            _ => Val::Undef,
        }
    }

    /// The entries of an object, in order.
    pub fn entries(&self) -> Vec<(Str<'a>, Val<'a>)> {
        match self {
            Val::Json(Value::Object(m)) => {
                let mut out: Vec<(Str<'a>, Val<'a>)> = m
                    .iter()
                    .map(|(k, v)| (Str::B(k.as_str()), Val::from_json(v)))
                    .collect();
                if m.keys().any(|k| array_index(k).is_some()) {
                    out.sort_by(|(a, _), (b, _)| js_key_order(a, b));
                }
                out
            }
            Val::Obj(o) => o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            _ => Vec::new(),
        }
    }

    /// The signature symbol of this value's type (`m` for undefined).
    pub fn type_symbol(&self) -> char {
        match self {
            Val::Undef => 'm',
            Val::Null => 'l',
            Val::Bool(_) => 'b',
            Val::Num(_) => 'n',
            Val::Str(_) => 's',
            Val::Func(_) => 'f',
            Val::Obj(_) | Val::Json(Value::Object(_)) => 'o',
            _ => 'a',
        }
    }

    /// Converts to JSON the way `JSON.stringify` treats JSONata results: `None` for undefined
    /// or a function, functions dropped from objects and `null` in arrays, non-finite
    /// numbers `null`. The JSON built is charged to `mem` as it is built (`U1002` when over).
    pub fn to_json_metered(&self, mem: &Meter) -> Result<Option<Value>, Fail> {
        mem.bytes(JSON_NODE_BYTES)?;
        Ok(Some(match self {
            Val::Undef | Val::Func(_) => return Ok(None),
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(*b),
            Val::Num(n) => number_to_json(*n),
            Val::Str(s) => {
                mem.bytes(s.len())?;
                Value::String(s.to_string())
            }
            Val::Json(v) => {
                let mut copy = copy_json(v, mem)?;
                js_order(&mut copy);
                copy
            }
            Val::Arr(a) => {
                let mut out = Vec::with_capacity(a.items.len());
                for m in &a.items {
                    out.extend(array_member_json(m, mem)?);
                }
                Value::Array(out)
            }
            Val::Obj(o) => {
                let mut out = serde_json::Map::with_capacity(o.len());
                for (k, v) in o.iter() {
                    if let Some(j) = v.to_json_metered(mem)? {
                        mem.bytes(JSON_ENTRY_BYTES + k.len())?;
                        out.insert(k.to_string(), j);
                    }
                }
                Value::Object(out)
            }
            Val::Tuples(t) => {
                let mut out = Vec::with_capacity(t.len());
                for t in t.iter() {
                    out.extend(array_member_json(&t.ctx, mem)?);
                }
                Value::Array(out)
            }
        }))
    }

    /// [`Val::to_json_metered`] without a budget.
    #[cfg(test)]
    pub fn to_json(&self) -> Option<Value> {
        self.to_json_metered(&Meter::unlimited()).ok().flatten()
    }
}

fn array_member_json(v: &Val<'_>, mem: &Meter) -> Result<Option<Value>, Fail> {
    match v {
        Val::Func(_) => {
            mem.bytes(JSON_NODE_BYTES)?;
            Ok(Some(Value::Null))
        }
        other => other.to_json_metered(mem),
    }
}

/// A deep copy of borrowed JSON: its size is measured and charged to `mem` first (a walk that
/// allocates nothing and stops once over the budget), then it is cloned.
fn copy_json(v: &Value, mem: &Meter) -> Result<Value, Fail> {
    let cap = mem.remaining();
    let mut size = 0u64;
    json_size(v, &mut size, cap);
    mem.bytes(usize::try_from(size).unwrap_or(usize::MAX))?;
    Ok(v.clone())
}

/// Adds the approximate bytes of a copy of `v` to `size`, stopping early once over `cap`.
fn json_size(v: &Value, size: &mut u64, cap: u64) {
    match v {
        Value::Array(a) => {
            *size += (JSON_NODE_BYTES * a.len()) as u64;
            for m in a {
                if *size > cap {
                    return;
                }
                json_size(m, size, cap);
            }
        }
        Value::Object(m) => {
            *size += ((JSON_NODE_BYTES + JSON_ENTRY_BYTES) * m.len()) as u64;
            for (k, e) in m {
                if *size > cap {
                    return;
                }
                *size += k.len() as u64;
                json_size(e, size, cap);
            }
        }
        Value::String(s) => *size += s.len() as u64,
        _ => {}
    }
}

/// The value of an "array index" property name (`"0"`, `"42"`; not `"01"`), which JavaScript
/// objects, and so JSONata, enumerate first and in numeric order.
fn array_index(key: &str) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key.starts_with('0')) {
        return None;
    }
    key.parse::<u32>().ok().filter(|n| *n < u32::MAX)
}

/// JavaScript property order: array indices ascending first, then insertion order (stable).
fn js_key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (array_index(a), array_index(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Reorders objects (deeply, in place) into JavaScript property order where they have
/// index-like keys; other objects are left untouched.
fn js_order(v: &mut Value) {
    match v {
        Value::Array(a) => a.iter_mut().for_each(js_order),
        Value::Object(m) => {
            m.values_mut().for_each(js_order);
            if m.keys().any(|k| array_index(k).is_some()) {
                let mut entries: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
                entries.sort_by(|(a, _), (b, _)| js_key_order(a, b));
                *m = entries.into_iter().collect();
            }
        }
        _ => {}
    }
}

/// A JSON number for `n` (integral values as integers; non-finite as `null`).
pub fn number_to_json(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 1e18 {
        Value::from(n as i64)
    } else {
        let rounded: f64 = js_number_string(n).parse().unwrap_or(n);
        serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
    }
}

/// Deep equality as JSONata's `=` defines it.
pub fn deep_equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Undef, Val::Undef) | (Val::Null, Val::Null) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => **x == **y,
        (Val::Func(x), Val::Func(y)) => Rc::ptr_eq(x, y),
        (Val::Json(x), Val::Json(y)) if std::ptr::eq(*x, *y) => true,
        _ if a.is_array() && b.is_array() => {
            a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| deep_equal(&x, &y))
        }
        _ if a.is_object() && b.is_object() => {
            let ea = a.entries();
            ea.len() == b.entries().len() && ea.iter().all(|(k, v)| deep_equal(v, &b.field(k)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_like_keys_come_first_like_javascript() {
        let mut o = Obj::new();
        o.insert("b".into(), Val::Num(1.0));
        o.insert("10".into(), Val::Num(2.0));
        o.insert("2".into(), Val::Num(3.0));
        o.insert("01".into(), Val::Num(4.0));
        let keys: Vec<String> = Val::object(o)
            .entries()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        assert_eq!(keys, ["2", "10", "b", "01"]);
        let j = serde_json::json!({"x": {"b": 1, "3": 2}});
        let out = Val::from_json(&j).to_json().unwrap_or_default();
        assert_eq!(out.to_string(), r#"{"x":{"3":2,"b":1}}"#);
    }

    #[test]
    fn equality_across_borrowed_and_owned() {
        let j = serde_json::json!({"a": [1, 2], "b": "x"});
        let mut o = Obj::new();
        o.insert("b".into(), Val::string("x"));
        o.insert("a".into(), Val::array(vec![Val::Num(1.0), Val::Num(2.0)]));
        assert!(deep_equal(&Val::from_json(&j), &Val::object(o)));
    }
}
