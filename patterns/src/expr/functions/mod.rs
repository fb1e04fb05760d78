//! The JSONata standard function library: the builtin table and shared helpers. Each family of
//! functions lives in its own file.

pub mod aggregate;
pub mod array;
pub mod boolean;
pub mod datetime;
pub mod encoding;
pub mod hof;
pub mod numeric;
pub mod object;
pub mod regex_fns;
pub mod string;

use super::error::{Error, Fail};
use super::eval::Ctx;
use super::signature::Signature;
use super::value::{Func, Obj, Str, Val};
use serde_json::Value;
use std::sync::OnceLock;

/// A builtin implementation: `(ctx, validated args, context value)`.
pub type Imp = for<'a> fn(&Ctx<'a>, &[Val<'a>], &Val<'a>) -> Result<Val<'a>, Fail>;

/// A builtin function: name, signature and implementation.
pub struct Builtin {
    /// The name without `$`.
    pub name: &'static str,
    sig: &'static str,
    /// How many arguments higher-order functions pass to it.
    pub arity: usize,
    /// The implementation.
    pub imp: Imp,
    parsed: OnceLock<Signature>,
}

impl Builtin {
    const fn new(name: &'static str, sig: &'static str, arity: usize, imp: Imp) -> Self {
        Builtin {
            name,
            sig,
            arity,
            imp,
            parsed: OnceLock::new(),
        }
    }

    /// The parsed signature.
    pub fn signature(&self) -> &Signature {
        self.parsed
            .get_or_init(|| Signature::parse(self.sig).unwrap_or_else(|_| Signature::permissive()))
    }
}

macro_rules! count {
    () => { 0usize };
    ($head:literal $($tail:literal)*) => { 1usize + count!($($tail)*) };
}

macro_rules! builtins {
    ($($name:literal, $sig:literal, $arity:literal, $imp:path;)*) => {
        static BUILTINS: [Builtin; count!($($name)*)] = [$(Builtin::new($name, $sig, $arity, $imp)),*];
    };
}

builtins! {
    "sum", "<a<n>:n>", 1, aggregate::sum;
    "count", "<a:n>", 1, aggregate::count;
    "max", "<a<n>:n>", 1, aggregate::max;
    "min", "<a<n>:n>", 1, aggregate::min;
    "average", "<a<n>:n>", 1, aggregate::average;
    "string", "<x-b?:s>", 1, string::string;
    "substring", "<s-nn?:s>", 3, string::substring;
    "substringBefore", "<s-s:s>", 2, string::substring_before;
    "substringAfter", "<s-s:s>", 2, string::substring_after;
    "lowercase", "<s-:s>", 1, string::lowercase;
    "uppercase", "<s-:s>", 1, string::uppercase;
    "length", "<s-:n>", 1, string::length;
    "trim", "<s-:s>", 1, string::trim;
    "pad", "<s-ns?:s>", 3, string::pad;
    "match", "<s-f<s:o>n?:a<o>>", 3, regex_fns::match_fn;
    "contains", "<s-(sf):b>", 2, regex_fns::contains;
    "replace", "<s-(sf)(sf)n?:s>", 4, regex_fns::replace;
    "split", "<s-(sf)n?:a<s>>", 3, regex_fns::split;
    "join", "<a<s>s?:s>", 2, string::join;
    "formatNumber", "<n-so?:s>", 3, numeric::format_number;
    "formatBase", "<n-n?:s>", 2, numeric::format_base;
    "formatInteger", "<n-s:s>", 2, numeric::format_integer;
    "parseInteger", "<s-s:n>", 2, numeric::parse_integer;
    "number", "<(nsb)-:n>", 1, numeric::number;
    "floor", "<n-:n>", 1, numeric::floor;
    "ceil", "<n-:n>", 1, numeric::ceil;
    "round", "<n-n?:n>", 2, numeric::round;
    "abs", "<n-:n>", 1, numeric::abs;
    "sqrt", "<n-:n>", 1, numeric::sqrt;
    "power", "<n-n:n>", 2, numeric::power;
    "random", "<:n>", 0, numeric::random;
    "boolean", "<x-:b>", 1, boolean::boolean_fn;
    "not", "<x-:b>", 1, boolean::not;
    "exists", "<x:b>", 1, boolean::exists_fn;
    "map", "<af>", 2, hof::map;
    "filter", "<af>", 2, hof::filter;
    "single", "<af?>", 2, hof::single;
    "reduce", "<afj?:j>", 3, hof::reduce;
    "sift", "<o-f?:o>", 2, hof::sift;
    "each", "<o-f:a>", 2, hof::each;
    "zip", "<a+>", 1, array::zip;
    "keys", "<x-:a<s>>", 1, object::keys;
    "lookup", "<x-s:x>", 2, object::lookup;
    "append", "<xx:a>", 2, array::append;
    "spread", "<x-:a<o>>", 1, object::spread;
    "merge", "<a<o>:o>", 1, object::merge;
    "reverse", "<a:a>", 1, array::reverse;
    "sort", "<af?:a>", 2, array::sort;
    "shuffle", "<a:a>", 1, array::shuffle;
    "distinct", "<x:x>", 1, array::distinct;
    "error", "<s?:x>", 1, object::error;
    "assert", "<bs?:x>", 2, object::assert;
    "type", "<x:s>", 1, object::type_of;
    "base64encode", "<s-:s>", 1, encoding::base64encode;
    "base64decode", "<s-:s>", 1, encoding::base64decode;
    "encodeUrlComponent", "<s-:s>", 1, encoding::encode_url_component;
    "encodeUrl", "<s-:s>", 1, encoding::encode_url;
    "decodeUrlComponent", "<s-:s>", 1, encoding::decode_url_component;
    "decodeUrl", "<s-:s>", 1, encoding::decode_url;
    "eval", "<sx?:x>", 2, object::eval_unsupported;
    "now", "<s?s?:s>", 2, datetime::now;
    "millis", "<:n>", 0, datetime::millis;
    "fromMillis", "<n-s?s?:s>", 3, datetime::from_millis;
    "toMillis", "<s-s?:n>", 2, datetime::to_millis;
}

/// The builtin named `name`, if any (binary search over the names, sorted once).
pub fn lookup(name: &str) -> Option<&'static Builtin> {
    static SORTED: OnceLock<Vec<&'static Builtin>> = OnceLock::new();
    let sorted = SORTED.get_or_init(|| {
        let mut v: Vec<&'static Builtin> = BUILTINS.iter().collect();
        v.sort_by_key(|b| b.name);
        v
    });
    sorted
        .binary_search_by(|b| b.name.cmp(name))
        .ok()
        .and_then(|i| sorted.get(i).copied())
}

/// How many arguments a function value accepts (higher-order functions pass at most that many).
pub fn arity(f: &Val<'_>) -> usize {
    match f {
        Val::Func(func) => match &**func {
            Func::Lambda { def, .. } => def.params.len(),
            Func::Builtin(b) => b.arity,
            Func::Partial(_, args) => args.iter().filter(|a| a.is_none()).count(),
            _ => 1,
        },
        _ => 0,
    }
}

/// Argument `i` (undefined when absent).
pub fn arg<'a>(args: &[Val<'a>], i: usize) -> Val<'a> {
    args.get(i).cloned().unwrap_or_default()
}

/// Converts an owned JSON value into an evaluator value (nesting beyond the limit becomes null).
pub fn from_owned_json<'a>(v: Value) -> Val<'a> {
    owned_json(v, 0)
}

fn owned_json<'a>(v: Value, depth: u32) -> Val<'a> {
    if depth > super::value::MAX_NESTING {
        return Val::Null;
    }
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(b),
        Value::Number(n) => Val::Num(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => Val::Str(Str::from(s)),
        Value::Array(a) => Val::array(a.into_iter().map(|v| owned_json(v, depth + 1)).collect()),
        Value::Object(m) => {
            let mut o = Obj::with_capacity(m.len());
            for (k, v) in m {
                o.insert(Str::from(k), owned_json(v, depth + 1));
            }
            Val::object(o)
        }
    }
}

/// A short rendering of a value for error messages.
pub fn describe(v: &Val<'_>) -> String {
    match v {
        Val::Undef => "undefined".into(),
        Val::Func(_) => "function".into(),
        other => string::preview(other),
    }
}

/// Error helper for picture-string functions.
pub fn picture_error(e: super::picture::PictureError) -> Fail {
    Error::new(e.code, e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_found_by_name() {
        for b in &BUILTINS {
            assert!(
                lookup(b.name).is_some_and(|f| f.name == b.name),
                "{}",
                b.name
            );
        }
        assert!(lookup("nope").is_none());
    }

    #[test]
    fn all_signatures_parse() {
        for b in &BUILTINS {
            assert!(Signature::parse(b.sig).is_ok(), "{}", b.name);
        }
    }
}
