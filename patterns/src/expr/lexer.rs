//! Tokenizer: turns JSONata source text into tokens on demand (the parser says whether a `/`
//! may start a regular expression, as in the reference implementation).

use super::error::{Error, Fail};

/// The kind of a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A field name (plain or back-quoted).
    Name(String),
    /// A variable reference `$name` (the name without `$`; `$` alone is the empty name).
    Variable(String),
    /// A string literal.
    Str(String),
    /// A number literal.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A regular expression literal: pattern and flags.
    Regex(String, String),
    /// An operator or punctuation symbol (`and`, `or`, `in` included).
    Op(&'static str),
    /// End of input.
    End,
}

/// A token with its position (char offset just past the token, as the reference reports).
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Character offset where the token starts.
    pub start: usize,
    /// Character offset just past the token.
    pub end: usize,
}

const OPERATORS: [&str; 36] = [
    "..", ":=", "!=", ">=", "<=", "**", "~>", "?:", "??", ".", "[", "]", "{", "}", "(", ")", ",",
    "@", "#", ";", ":", "?", "+", "-", "*", "/", "%", "|", "=", "<", ">", "^", "&", "!", "~", "$",
];

/// An on-demand tokenizer over the source characters.
pub struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    /// Creates a lexer over `source`.
    pub fn new(source: &str) -> Self {
        Lexer {
            chars: source.chars().collect(),
            pos: 0,
        }
    }

    /// The raw characters from `start` (used for function signatures).
    pub fn chars_from(&self, start: usize) -> &[char] {
        self.chars.get(start..).unwrap_or(&[])
    }

    /// Moves the read position (used after scanning a signature by hand).
    pub fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.chars.len());
    }

    fn peek(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn err(code: &str, pos: usize, token: Option<String>, message: &str) -> Fail {
        Error::new(code, message).at(pos).with_token_opt(token)
    }

    /// Reads the next token; `infix` is true when an operand precedes (so `/` is division).
    pub fn next(&mut self, infix: bool) -> Result<Token, Fail> {
        self.skip_space_and_comments()?;
        let start = self.pos;
        let Some(c) = self.peek(0) else {
            return Ok(Token {
                tok: Tok::End,
                start,
                end: start,
            });
        };
        if c == '/' && !infix {
            return self.regex(start);
        }
        if c == '"' || c == '\'' {
            return self.string(c, start);
        }
        if c.is_ascii_digit() {
            return self.number(start);
        }
        if c == '`' {
            let rest = &self.chars[self.pos + 1..];
            let Some(end) = rest.iter().position(|&ch| ch == '`') else {
                return Err(Self::err(
                    "S0105",
                    self.chars.len(),
                    None,
                    "Quoted property name must be terminated with a backquote (`)",
                ));
            };
            let name: String = rest[..end].iter().collect();
            self.pos += end + 2;
            return Ok(self.tok(Tok::Name(name), start));
        }
        if c == '$' {
            self.pos += 1;
            if self.peek(0) == Some('$') {
                self.pos += 1;
                return Ok(self.tok(Tok::Variable("$".into()), start));
            }
            let name = self.take_name();
            return Ok(self.tok(Tok::Variable(name), start));
        }
        for op in OPERATORS {
            if op == "$" {
                continue;
            }
            if self.matches(op) {
                if op == "!" || op == "~" {
                    return Err(Self::err(
                        "S0204",
                        start,
                        Some(op.to_string()),
                        &format!("Unknown operator: \"{op}\""),
                    ));
                }
                self.pos += op.chars().count();
                return Ok(self.tok(Tok::Op(op), start));
            }
        }
        let name = self.take_name();
        if name.is_empty() {
            self.pos += 1;
            return Err(Self::err(
                "S0204",
                start,
                Some(c.to_string()),
                &format!("Unknown operator: \"{c}\""),
            ));
        }
        let tok = match name.as_str() {
            "and" => Tok::Op("and"),
            "or" => Tok::Op("or"),
            "in" => Tok::Op("in"),
            "true" => Tok::Bool(true),
            "false" => Tok::Bool(false),
            "null" => Tok::Null,
            _ => Tok::Name(name),
        };
        Ok(self.tok(tok, start))
    }

    fn tok(&self, tok: Tok, start: usize) -> Token {
        Token {
            tok,
            start,
            end: self.pos,
        }
    }

    fn matches(&self, op: &str) -> bool {
        op.chars()
            .enumerate()
            .all(|(i, ch)| self.peek(i) == Some(ch))
    }

    fn take_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek(0) {
            if c.is_whitespace() || is_symbol_char(c) {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn skip_space_and_comments(&mut self) -> Result<(), Fail> {
        loop {
            while self.peek(0).is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
            if self.peek(0) == Some('/') && self.peek(1) == Some('*') {
                let start = self.pos;
                self.pos += 2;
                loop {
                    match self.peek(0) {
                        None => {
                            return Err(Self::err(
                                "S0106",
                                start,
                                None,
                                "Comment has no closing tag",
                            ))
                        }
                        Some('*') if self.peek(1) == Some('/') => {
                            self.pos += 2;
                            break;
                        }
                        Some(_) => self.pos += 1,
                    }
                }
            } else {
                return Ok(());
            }
        }
    }

    fn string(&mut self, quote: char, start: usize) -> Result<Token, Fail> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(Self::err(
                    "S0101",
                    self.pos,
                    None,
                    "String literal must be terminated by a matching quote",
                ));
            };
            self.pos += 1;
            if c == quote {
                return Ok(self.tok(Tok::Str(s), start));
            }
            if c != '\\' {
                s.push(c);
                continue;
            }
            let Some(e) = self.peek(0) else {
                continue;
            };
            self.pos += 1;
            match e {
                '"' | '\\' | '/' | '\'' => s.push(e),
                'b' => s.push('\u{8}'),
                'f' => s.push('\u{c}'),
                'n' => s.push('\n'),
                'r' => s.push('\r'),
                't' => s.push('\t'),
                'u' => {
                    let hex: String = (0..4).filter_map(|i| self.peek(i)).collect();
                    let code = (hex.len() == 4)
                        .then(|| u32::from_str_radix(&hex, 16).ok())
                        .flatten();
                    let Some(code) = code else {
                        return Err(Self::err(
                            "S0104",
                            self.pos,
                            None,
                            "The escape sequence \\u must be followed by 4 hex digits",
                        ));
                    };
                    self.pos += 4;
                    self.push_utf16(&mut s, code);
                }
                other => {
                    return Err(Self::err(
                        "S0103",
                        self.pos,
                        Some(other.to_string()),
                        &format!("Unsupported escape sequence: \\{other}"),
                    ))
                }
            }
        }
    }

    /// Appends a UTF-16 code unit, combining a following `\uDCxx` low surrogate when present.
    fn push_utf16(&mut self, s: &mut String, code: u32) {
        if (0xD800..0xDC00).contains(&code)
            && self.peek(0) == Some('\\')
            && self.peek(1) == Some('u')
        {
            let hex: String = (2..6).filter_map(|i| self.peek(i)).collect();
            if let Ok(low) = u32::from_str_radix(&hex, 16) {
                if hex.len() == 4 && (0xDC00..0xE000).contains(&low) {
                    let cp = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    if let Some(ch) = char::from_u32(cp) {
                        s.push(ch);
                        self.pos += 6;
                        return;
                    }
                }
            }
        }
        s.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
    }

    fn number(&mut self, start: usize) -> Result<Token, Fail> {
        let mut text = String::new();
        let digits = |lx: &mut Lexer, text: &mut String| {
            while let Some(c) = lx.peek(0).filter(char::is_ascii_digit) {
                text.push(c);
                lx.pos += 1;
            }
        };
        if self.peek(0) == Some('0') {
            text.push('0');
            self.pos += 1;
        } else {
            digits(self, &mut text);
        }
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            text.push('.');
            self.pos += 1;
            digits(self, &mut text);
        }
        if matches!(self.peek(0), Some('e' | 'E')) {
            let sign = matches!(self.peek(1), Some('+' | '-'));
            let first_digit = if sign { self.peek(2) } else { self.peek(1) };
            if first_digit.is_some_and(|c| c.is_ascii_digit()) {
                text.push('e');
                if sign {
                    text.push(self.peek(1).unwrap_or('+'));
                    self.pos += 1;
                }
                self.pos += 1;
                digits(self, &mut text);
            }
        }
        let value: f64 = text.parse().unwrap_or(f64::NAN);
        if !value.is_finite() {
            return Err(Self::err("S0102", start, Some(text), "Number out of range"));
        }
        Ok(self.tok(Tok::Num(value), start))
    }

    fn regex(&mut self, start: usize) -> Result<Token, Fail> {
        self.pos += 1;
        let mut pattern = String::new();
        let mut in_class = false;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(Self::err(
                    "S0302",
                    self.pos,
                    None,
                    "No terminating / in regular expression",
                ));
            };
            self.pos += 1;
            match c {
                '\\' => {
                    pattern.push(c);
                    if let Some(n) = self.peek(0) {
                        pattern.push(n);
                        self.pos += 1;
                    }
                }
                '[' => {
                    in_class = true;
                    pattern.push(c);
                }
                ']' => {
                    in_class = false;
                    pattern.push(c);
                }
                '/' if !in_class => break,
                _ => pattern.push(c),
            }
        }
        if pattern.is_empty() {
            return Err(Self::err(
                "S0301",
                self.pos,
                None,
                "Empty regular expressions are not allowed",
            ));
        }
        let mut flags = String::new();
        while let Some(c) = self.peek(0).filter(|c| c.is_ascii_alphabetic()) {
            flags.push(c);
            self.pos += 1;
        }
        Ok(self.tok(Tok::Regex(pattern, flags), start))
    }
}

fn is_symbol_char(c: char) -> bool {
    matches!(
        c,
        '.' | '['
            | ']'
            | '{'
            | '}'
            | '('
            | ')'
            | ','
            | '@'
            | '#'
            | ';'
            | ':'
            | '?'
            | '+'
            | '-'
            | '*'
            | '/'
            | '%'
            | '|'
            | '='
            | '<'
            | '>'
            | '^'
            | '&'
            | '!'
            | '~'
            | '"'
            | '\''
            | '`'
            | '$'
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn all(src: &str) -> Vec<Tok> {
        let mut lx = Lexer::new(src);
        let mut out = vec![];
        loop {
            let t = lx.next(true).unwrap();
            if t.tok == Tok::End {
                return out;
            }
            out.push(t.tok);
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            all("$a.b[0] != 'x\\n'"),
            vec![
                Tok::Variable("a".into()),
                Tok::Op("."),
                Tok::Name("b".into()),
                Tok::Op("["),
                Tok::Num(0.0),
                Tok::Op("]"),
                Tok::Op("!="),
                Tok::Str("x\n".into()),
            ]
        );
        assert_eq!(
            all("1..3"),
            vec![Tok::Num(1.0), Tok::Op(".."), Tok::Num(3.0)]
        );
        assert_eq!(all("1.5e3"), vec![Tok::Num(1500.0)]);
    }

    #[test]
    fn regex_only_in_prefix_position() {
        let mut lx = Lexer::new("/a\\/b[/]/i");
        let t = lx.next(false).unwrap();
        assert_eq!(t.tok, Tok::Regex("a\\/b[/]".into(), "i".into()));
    }
}
