//! Function signatures (`<s-nn?:s>`): parsing and argument validation with context substitution.

use super::error::{Error, Fail};
use super::value::Val;

const ALL: &str = "asnblfom";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    One,
    Optional,
    Many,
}

#[derive(Debug, Clone)]
struct Param {
    /// Symbols accepted (`m` = missing).
    accepts: String,
    /// The declared type symbol (`a`, `f`, `(`...).
    kind: char,
    repeat: Repeat,
    /// `-`: use the context value when the argument is missing.
    context: bool,
    /// Array element type (`a<n>`).
    subtype: Option<String>,
}

/// A parsed function signature.
#[derive(Debug, Clone)]
pub struct Signature {
    params: Vec<Param>,
}

fn symbol_class(c: char) -> Option<&'static str> {
    Some(match c {
        'b' => "bm",
        's' => "sm",
        'n' => "nm",
        'l' => "lm",
        'o' => "om",
        'a' => ALL,
        'f' => "f",
        'j' => "asnblom",
        'x' => ALL,
        _ => return None,
    })
}

fn array_type_name(sub: &str) -> &'static str {
    match sub.chars().next() {
        Some('a') => "arrays",
        Some('b') => "booleans",
        Some('f') => "functions",
        Some('n') => "numbers",
        Some('o') => "objects",
        Some('s') => "strings",
        _ => "values",
    }
}

fn closing(chars: &[char], open_at: usize, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in chars.iter().enumerate().skip(open_at) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

impl Signature {
    /// Parses a signature such as `<s-nn?:s>` (the angle brackets included).
    pub fn parse(text: &str) -> Result<Self, Fail> {
        let chars: Vec<char> = text.chars().collect();
        let mut params: Vec<Param> = Vec::new();
        let mut i = 1;
        while i + 1 < chars.len() {
            let c = chars[i];
            match c {
                ':' => break,
                '?' | '+' | '-' => {
                    let Some(p) = params.last_mut() else {
                        return Err(Error::new("S0401", "Invalid function signature"));
                    };
                    match c {
                        '?' => p.repeat = Repeat::Optional,
                        '+' => p.repeat = Repeat::Many,
                        _ => {
                            p.context = true;
                            p.repeat = Repeat::Optional;
                        }
                    }
                }
                '(' => {
                    let end = closing(&chars, i, '(', ')').ok_or_else(|| {
                        Error::new("S0401", "Unterminated choice in function signature")
                    })?;
                    let choice: String = chars[i + 1..end].iter().collect();
                    if choice.contains('<') {
                        return Err(Error::new(
                            "S0402",
                            "Choice groups containing parameterized types are not supported",
                        )
                        .at(i));
                    }
                    params.push(Param {
                        accepts: format!("{choice}m"),
                        kind: '(',
                        repeat: Repeat::One,
                        context: false,
                        subtype: None,
                    });
                    i = end;
                }
                '<' => {
                    let end = closing(&chars, i, '<', '>').ok_or_else(|| {
                        Error::new("S0401", "Unterminated type parameter in function signature")
                    })?;
                    match params.last_mut() {
                        Some(p) if p.kind == 'a' || p.kind == 'f' => {
                            if p.kind == 'a' {
                                p.subtype = Some(chars[i + 1..end].iter().collect());
                            }
                        }
                        _ => {
                            return Err(Error::new(
                                "S0401",
                                "Type parameters can only be applied to functions and arrays",
                            )
                            .at(i));
                        }
                    }
                    i = end;
                }
                _ => {
                    let accepts = symbol_class(c).ok_or_else(|| {
                        Error::new("S0401", format!("Invalid symbol {c} in function signature"))
                    })?;
                    params.push(Param {
                        accepts: accepts.to_string(),
                        kind: c,
                        repeat: Repeat::One,
                        context: false,
                        subtype: None,
                    });
                }
            }
            i += 1;
        }
        Ok(Signature { params })
    }

    /// A signature accepting up to eight arguments of any type.
    pub fn permissive() -> Self {
        let any = Param {
            accepts: ALL.to_string(),
            kind: 'x',
            repeat: Repeat::Optional,
            context: false,
            subtype: None,
        };
        Signature {
            params: vec![any; 8],
        }
    }

    /// True when each argument is accepted by the parameter at the same position and nothing
    /// needs substituting or wrapping (then the arguments pass unchanged, without allocating).
    fn simple_match(&self, args: &[Val<'_>]) -> bool {
        args.len() <= self.params.len()
            && self
                .params
                .iter()
                .enumerate()
                .all(|(i, p)| match args.get(i) {
                    Some(a) => {
                        let sym = a.type_symbol();
                        sym != 'm'
                            && p.accepts.contains(sym)
                            && (p.kind != 'a' || (sym == 'a' && p.subtype.is_none()))
                    }
                    None => p.repeat == Repeat::Optional && !p.context,
                })
    }

    /// Matches `symbols` against params from `pi`; fills `counts` (args consumed per param).
    fn matches(&self, symbols: &[char], pi: usize, pos: usize, counts: &mut Vec<usize>) -> bool {
        let Some(p) = self.params.get(pi) else {
            return pos == symbols.len();
        };
        let run = symbols[pos..]
            .iter()
            .take_while(|c| p.accepts.contains(**c))
            .count();
        let (min, max) = match p.repeat {
            Repeat::One => (1, 1),
            Repeat::Optional => (0, 1),
            Repeat::Many => (1, usize::MAX),
        };
        let mut n = run.min(max);
        loop {
            if n < min {
                return false;
            }
            counts.push(n);
            if self.matches(symbols, pi + 1, pos + n, counts) {
                return true;
            }
            counts.pop();
            if n == 0 {
                return false;
            }
            n -= 1;
        }
    }

    /// Validates the arguments of function `name` (substituting `context` for a missing `-` argument) and returns the
    /// arguments the implementation receives (non-array values wrapped where `a` is expected).
    pub fn validate<'a>(
        &self,
        args: Vec<Val<'a>>,
        context: &Val<'a>,
        name: &str,
    ) -> Result<Vec<Val<'a>>, Fail> {
        if self.simple_match(&args) {
            return Ok(args);
        }
        let symbols: Vec<char> = args.iter().map(Val::type_symbol).collect();
        let mut counts = Vec::with_capacity(self.params.len());
        if !self.matches(&symbols, 0, 0, &mut counts) {
            return Err(self.mismatch(&symbols, name));
        }
        let mut out = Vec::with_capacity(self.params.len());
        let mut ai = 0;
        for (p, &n) in self.params.iter().zip(counts.iter()) {
            if n == 0 {
                if p.context {
                    let sym = context.type_symbol();
                    if p.accepts.contains(sym) {
                        out.push(context.clone());
                    } else {
                        return Err(Error::new(
                            "T0411",
                            format!(
                                "Context value is not a compatible type with argument {} of function {name}",
                                ai + 1
                            ),
                        ));
                    }
                } else {
                    out.push(args.get(ai).cloned().unwrap_or(Val::Undef));
                    ai += 1;
                }
                continue;
            }
            for _ in 0..n {
                let arg = args.get(ai).cloned().unwrap_or(Val::Undef);
                let sym = arg.type_symbol();
                if p.kind == 'a' {
                    if sym == 'm' {
                        out.push(Val::Undef);
                        ai += 1;
                        continue;
                    }
                    if let Some(sub) = &p.subtype {
                        let ok = if sym == 'a' && arg.is_array() {
                            homogeneous(sub, arg.iter())
                        } else if sym == 'a' {
                            homogeneous(sub, std::iter::once(arg.clone()))
                        } else {
                            sub.len() == 1 && sub.starts_with(sym)
                        };
                        if !ok {
                            return Err(Error::new(
                                "T0412",
                                format!(
                                    "Argument {} of function {name} must be an array of {}",
                                    ai + 1,
                                    array_type_name(sub)
                                ),
                            ));
                        }
                    }
                    if sym == 'a' {
                        out.push(arg);
                    } else {
                        out.push(Val::array(vec![arg]));
                    }
                } else {
                    out.push(arg);
                }
                ai += 1;
            }
        }
        Ok(out)
    }

    fn mismatch(&self, symbols: &[char], name: &str) -> Fail {
        // Find the first argument that no prefix of the signature accepts.
        let mut good = 0;
        for k in 1..=self.params.len() {
            let prefix = Signature {
                params: self.params[..k].to_vec(),
            };
            let mut best = None;
            for end in (good..=symbols.len()).rev() {
                let mut counts = Vec::new();
                if prefix.matches(&symbols[..end], 0, 0, &mut counts) {
                    best = Some(end);
                    break;
                }
            }
            match best {
                Some(end) => good = end,
                None => break,
            }
        }
        Error::new(
            "T0410",
            format!(
                "Argument {} of function {name} does not match function signature",
                good + 1
            ),
        )
    }
}

/// Whether every member has the type of the first one, and `sub` allows that type.
fn homogeneous<'a>(sub: &str, mut items: impl Iterator<Item = Val<'a>>) -> bool {
    match items.next() {
        None => true,
        Some(first) => {
            let t = first.type_symbol();
            sub.starts_with(t) && items.all(|v| v.type_symbol() == t)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn context_substitution() {
        let sig = Signature::parse("<s-nn?:s>").unwrap();
        let ctx = Val::Str("hello".into());
        let out = sig.validate(vec![Val::Num(1.0)], &ctx, "f").unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].as_str(), Some("hello"));
    }

    #[test]
    fn mismatch_is_t0410() {
        let sig = Signature::parse("<n:n>").unwrap();
        let err = sig
            .validate(vec![Val::Str("x".into())], &Val::Undef, "f")
            .unwrap_err();
        assert_eq!(err.code, "T0410");
    }
}
