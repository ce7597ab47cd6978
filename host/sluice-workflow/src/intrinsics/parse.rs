//! The intrinsic call syntax: `States.Name(arg, ...)`, where an argument is a `'string'`, a
//! JSON number, `true`, `false`, `null`, a path (`$...`, `$$...`, `$var...`) or a nested call.
//!
//! String literals use AWS's four escapes, `\'`, `\{`, `\}` and `\\`; any other backslash is
//! an error (AWS: "If an open escape backslash \ is found in the intrinsic invocation string,
//! the interpreter will return a runtime error"; we refuse it when the definition is made).
//! A path runs to the first `,`, `)` or white space outside brackets, quotes and
//! parentheses, so `$['a, b']`, `$[?(@.x == 1)]` and `$.a.length()` stay whole; the
//! JSONPath module decides whether it is a valid path.

use serde_json::Value;

use super::{Arg, Call, Function, MAX_NESTING, ParseError};

/// Parses a whole call; nothing but white space may follow it.
pub(super) fn parse(text: &str) -> Result<Call, ParseError> {
    let mut p = Parser { text, pos: 0 };
    let call = p.call(1)?;
    p.skip_ws();
    if p.pos < text.len() {
        return Err(p.error("unexpected text after the call"));
    }
    Ok(call)
}

/// `s` as the body of a string literal: the reserved characters escaped.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '\'' | '{' | '}') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

struct Parser<'a> {
    text: &'a str,
    /// A byte offset, always on a character boundary.
    pos: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> ParseError {
        // Positions in characters, which is what a person counts in the definition.
        let at = self.text[..self.pos].chars().count();
        ParseError(format!(
            "Invalid intrinsic function call '{}': {what} at character {at}",
            self.text
        ))
    }

    /// `States.Name(args)`; `depth` is this call's nesting level, 1 for the outermost.
    fn call(&mut self, depth: usize) -> Result<Call, ParseError> {
        if depth > MAX_NESTING {
            return Err(self.error(&format!(
                "more than {MAX_NESTING} nested intrinsic functions"
            )));
        }
        if !self.rest().starts_with("States.") {
            return Err(self.error("expected a function name starting with 'States.'"));
        }
        let start = self.pos;
        self.pos += "States.".len();
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        let name = &self.text[start..self.pos];
        let function = Function::from_name(name)
            .ok_or_else(|| self.error(&format!("unknown intrinsic function '{name}'")))?;
        self.skip_ws();
        if self.bump() != Some('(') {
            return Err(self.error("expected '('"));
        }
        let mut args = Vec::new();
        let mut raw_template = None;
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                let (arg, raw) = self.arg(depth)?;
                if args.is_empty() && function == Function::Format {
                    raw_template = raw;
                }
                args.push(arg);
                self.skip_ws();
                match self.bump() {
                    Some(',') => self.skip_ws(),
                    Some(')') => break,
                    _ => return Err(self.error("expected ',' or ')' after an argument")),
                }
            }
        }
        let (least, most) = function.arity();
        if args.len() < least || most.is_some_and(|m| args.len() > m) {
            let wanted = match most {
                Some(m) if m == least => format!("{least}"),
                Some(m) => format!("{least} to {m}"),
                None => format!("at least {least}"),
            };
            return Err(ParseError(format!(
                "Invalid intrinsic function call '{}': {name} takes {wanted} argument{}, but got {}",
                self.text,
                if wanted == "1" { "" } else { "s" },
                args.len()
            )));
        }
        Ok(Call {
            function,
            args,
            raw_template,
        })
    }

    /// One argument, and for a string literal also its text as written.
    fn arg(&mut self, depth: usize) -> Result<(Arg, Option<String>), ParseError> {
        match self.peek() {
            Some('\'') => {
                let (value, raw) = self.string()?;
                Ok((Arg::Literal(Value::String(value)), Some(raw)))
            }
            Some('$') => Ok((Arg::Path(self.path()?), None)),
            Some(c) if c == '-' || c.is_ascii_digit() => Ok((Arg::Literal(self.number()?), None)),
            Some('S') if self.rest().starts_with("States.") => {
                Ok((Arg::Call(self.call(depth + 1)?), None))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                match &self.text[start..self.pos] {
                    "true" => Ok((Arg::Literal(Value::Bool(true)), None)),
                    "false" => Ok((Arg::Literal(Value::Bool(false)), None)),
                    "null" => Ok((Arg::Literal(Value::Null), None)),
                    word => {
                        self.pos = start;
                        Err(self.error(&format!("unexpected '{word}'")))
                    }
                }
            }
            Some(_) => Err(self.error("expected an argument")),
            None => Err(self.error("unexpected end, expected an argument")),
        }
    }

    /// A `'...'` literal: (its value, its body as written).
    fn string(&mut self) -> Result<(String, String), ParseError> {
        self.pos += 1; // the opening quote
        let body_start = self.pos;
        let mut value = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => {
                    self.pos = body_start - 1;
                    return Err(self.error("unterminated string literal"));
                }
                Some('\'') => break,
                Some('\\') => match self.bump() {
                    Some(c @ ('\'' | '{' | '}' | '\\')) => value.push(c),
                    _ => {
                        self.pos = at;
                        return Err(self
                            .error("a backslash in a string literal must escape one of ' { } \\"));
                    }
                },
                Some(c) => value.push(c),
            }
        }
        let raw = self.text[body_start..self.pos - 1].to_string();
        Ok((value, raw))
    }

    /// A path's text, balanced brackets, parentheses and quotes included.
    fn path(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        let (mut brackets, mut parens) = (0_usize, 0_usize);
        let mut quote: Option<char> = None;
        while let Some(c) = self.peek() {
            if let Some(q) = quote {
                self.pos += c.len_utf8();
                if c == '\\' {
                    self.bump();
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            let nested = brackets > 0 || parens > 0;
            match c {
                '[' => brackets += 1,
                ']' if brackets > 0 => brackets -= 1,
                '(' => parens += 1,
                ')' if parens > 0 => parens -= 1,
                '\'' | '"' if nested => quote = Some(c),
                ',' | ')' if !nested => break,
                c if c.is_ascii_whitespace() && !nested => break,
                _ => {}
            }
            self.pos += c.len_utf8();
        }
        if quote.is_some() || brackets > 0 || parens > 0 {
            self.pos = start;
            return Err(self.error("unbalanced brackets, parentheses or quotes in a path"));
        }
        Ok(self.text[start..self.pos].to_string())
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos - from
        };
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = digits(self);
        let bad = |p: &mut Self| {
            p.pos = start;
            Err(p.error("invalid number"))
        };
        if n == 0 || (n > 1 && self.text.as_bytes()[int_start] == b'0') {
            return bad(self);
        }
        if self.peek() == Some('.') {
            self.pos += 1;
            if digits(self) == 0 {
                return bad(self);
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return bad(self);
            }
        }
        // Integers stay integers (i64, or u64 above i64::MAX, as serde_json keeps them);
        // the rest are f64, parsed by Rust's correctly rounded parser (serde_json's default
        // one can be off by an ulp). A number too large even for f64 is refused.
        let t = &self.text[start..self.pos];
        let value = if t.contains(['.', 'e', 'E']) {
            None
        } else if let Ok(i) = t.parse::<i64>() {
            Some(Value::from(i))
        } else {
            t.parse::<u64>().ok().map(Value::from)
        };
        match value {
            Some(v) => Ok(v),
            None => match t.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::from(f)),
                _ => bad(self),
            },
        }
    }
}
