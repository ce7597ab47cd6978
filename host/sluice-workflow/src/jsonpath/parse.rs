//! Path text to segments, following Jayway's `PathCompiler` where AWS can see the difference.
//!
//! Jayway quirks kept: a dot name runs to the next `.`, `[` or `(` (so `$.delivery-partner`
//! and `$.a*b` are plain names) and may not contain a space; `.[` is allowed (`$.['a']`);
//! inside quotes a backslash only protects the next character from ending the name and is
//! kept as written (the corpus: `$['Test\""Name"']` names the key `Test\""Name"`).

use super::filter::{self, Expr};
use super::{Function, PathError, Root, Segment};

/// How deep filters and their literals may nest, so no input can exhaust the stack.
pub(super) const MAX_DEPTH: usize = 32;

/// Parses a whole path: an AWS root, then Jayway segments to the end of the text.
pub(super) fn parse(text: &str) -> Result<(Root, Vec<Segment>), PathError> {
    // Jayway trims the path before compiling it.
    let mut c = Cursor::new(text.trim());
    let root = c.root()?;
    let segments = c.segments(false, 0)?;
    c.skip_ws();
    if !c.at_end() {
        return Err(c.error("Could not parse token"));
    }
    check_segments(&segments).map_err(|m| c.error_msg(&m))?;
    Ok((root, segments))
}

/// Rules on the order of segments that the grammar alone does not enforce.
pub(super) fn check_segments(segments: &[Segment]) -> Result<(), String> {
    for (i, s) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match s {
            Segment::Scan if last => return Err("Path must not end with a '.' or '..'".into()),
            Segment::Scan if matches!(segments[i + 1], Segment::Function(_)) => {
                return Err("A function can not directly follow a deep scan '..'".into());
            }
            Segment::Function(_) if !last => {
                return Err("A function must be the last element of a path".into());
            }
            _ => {}
        }
    }
    Ok(())
}

pub(super) struct Cursor<'t> {
    text: &'t str,
    chars: Vec<char>,
    pos: usize,
}

impl<'t> Cursor<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        Cursor {
            text,
            chars: text.chars().collect(),
            pos: 0,
        }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(super) fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    pub(super) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(super) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Consumes `s` if the text continues with it.
    pub(super) fn eat(&mut self, s: &str) -> bool {
        let n = s.chars().count();
        let matches = s
            .chars()
            .enumerate()
            .all(|(i, ch)| self.peek_at(i) == Some(ch));
        if matches {
            self.pos += n;
        }
        matches
    }

    pub(super) fn expect(&mut self, ch: char) -> Result<(), PathError> {
        self.skip_ws();
        if self.peek() == Some(ch) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("Expected '{ch}'")))
        }
    }

    pub(super) fn error(&self, what: &str) -> PathError {
        PathError(format!(
            "Invalid path '{}': {what} at position {}",
            self.text, self.pos
        ))
    }

    fn error_msg(&self, what: &str) -> PathError {
        PathError(format!("Invalid path '{}': {what}", self.text))
    }

    /// `$$` (context), `$` followed by the end, `.` or `[` (input), or `$name` (a variable).
    fn root(&mut self) -> Result<Root, PathError> {
        if self.bump() != Some('$') {
            return Err(self.error_msg("A path must start with '$'"));
        }
        if self.peek() == Some('$') {
            self.pos += 1;
            return Ok(Root::Context);
        }
        match self.peek() {
            None | Some('.' | '[') => Ok(Root::Input),
            Some(c) if c.is_whitespace() => Ok(Root::Input),
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().collect();
                let first_ok = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_');
                if !first_ok || !matches!(self.peek(), None | Some('.' | '[')) {
                    return Err(self.error("Not a valid variable name"));
                }
                Ok(Root::Variable(name))
            }
        }
    }

    /// Segments until the end of the text, or (`in_filter`) until a character that can not
    /// continue a path inside a filter expression.
    pub(super) fn segments(
        &mut self,
        in_filter: bool,
        depth: usize,
    ) -> Result<Vec<Segment>, PathError> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some('.') if self.peek_at(1) == Some('.') => {
                    self.pos += 2;
                    out.push(Segment::Scan);
                    match self.peek() {
                        Some('[') => out.push(self.bracket(depth)?),
                        Some('*') => {
                            self.pos += 1;
                            out.push(Segment::Wildcard);
                        }
                        Some('.') => return Err(self.error("Character '.' is not valid")),
                        None => return Err(self.error("Path must not end with a '.' or '..'")),
                        Some(_) => out.push(self.name(in_filter)?),
                    }
                }
                Some('.') => {
                    self.pos += 1;
                    match self.peek() {
                        None => return Err(self.error("Path must not end with a '.'")),
                        Some('.') => return Err(self.error("Character '.' is not valid")),
                        Some('[') => out.push(self.bracket(depth)?),
                        Some('*') => {
                            self.pos += 1;
                            out.push(Segment::Wildcard);
                        }
                        Some(_) => out.push(self.name(in_filter)?),
                    }
                }
                Some('[') => out.push(self.bracket(depth)?),
                None => break,
                Some(_) if in_filter => break,
                Some(c) if c.is_whitespace() => break,
                Some(_) => return Err(self.error("Could not parse token")),
            }
        }
        Ok(out)
    }

    /// A dot name, or a function call `name()`.
    fn name(&mut self, in_filter: bool) -> Result<Segment, PathError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            let ends = match c {
                '.' | '[' | '(' => true,
                // Inside a filter the name also ends where an operator or the expression
                // does (Jayway's filter reader cuts the path there before compiling it).
                ')' | ']' | '<' | '>' | '=' | '~' | '!' | '&' | '|' | ',' => in_filter,
                c if c.is_whitespace() => {
                    if in_filter {
                        true
                    } else {
                        return Err(self.error(
                            "Use bracket notion ['my prop'] if your property contains blank characters",
                        ));
                    }
                }
                _ => false,
            };
            if ends {
                break;
            }
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.is_empty() {
            return Err(self.error("Empty property name"));
        }
        if self.peek() == Some('(') {
            self.pos += 1;
            self.skip_ws();
            if self.bump() != Some(')') {
                return Err(self.error(&format!(
                    "Function '{name}' with arguments is not supported"
                )));
            }
            let f = match name.as_str() {
                "length" => Function::Length,
                "min" => Function::Min,
                "max" => Function::Max,
                "avg" => Function::Avg,
                "stddev" => Function::Stddev,
                "sum" => Function::Sum,
                "first" => Function::First,
                "last" => Function::Last,
                "keys" => Function::Keys,
                _ => return Err(self.error(&format!("Function with name: {name} does not exist."))),
            };
            return Ok(Segment::Function(f));
        }
        Ok(Segment::Child(vec![name]))
    }

    /// Anything in square brackets: names, indexes, a slice, `*`, or a filter.
    fn bracket(&mut self, depth: usize) -> Result<Segment, PathError> {
        self.pos += 1; // '['
        self.skip_ws();
        let seg = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                let mut names = Vec::new();
                loop {
                    self.skip_ws();
                    if self.peek() != Some(q) {
                        return Err(self.error(&format!("Expected a property in {q}quotes{q}")));
                    }
                    names.push(self.quoted(q)?);
                    self.skip_ws();
                    match self.bump() {
                        Some(',') => continue,
                        Some(']') => break,
                        _ => {
                            return Err(self.error(
                                "Property must be separated by comma or Property must be terminated close square bracket",
                            ))
                        }
                    }
                }
                return Ok(Segment::Child(names));
            }
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                self.expect('(')?;
                if depth >= MAX_DEPTH {
                    return Err(self.error("Filters nest too deep"));
                }
                let expr: Expr = filter::parse_expr(self, depth + 1)?;
                self.expect(')')?;
                Segment::Filter(Box::new(expr))
            }
            Some(c) if c.is_ascii_digit() || c == '-' || c == ':' => self.array()?,
            _ => return Err(self.error("Could not parse token. Expected ?, ', 0-9, *")),
        };
        self.expect(']')?;
        Ok(seg)
    }

    /// A quoted name; the cursor is on the opening quote. The text is kept as written: a
    /// backslash only stops the next character from closing the name.
    pub(super) fn quoted(&mut self, q: char) -> Result<String, PathError> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                let s: String = self.chars[start..self.pos].iter().collect();
                self.pos += 1;
                return Ok(s);
            }
            self.pos += 1;
        }
        Err(self.error(&format!(
            "Property has not been closed - missing closing {q}"
        )))
    }

    /// `[1]`, `[-1]`, `[0,2]`, `[1:3]`, `[:2]`, `[-2:]` (the cursor is after `[`).
    fn array(&mut self) -> Result<Segment, PathError> {
        let start = self.pos;
        while self.peek().is_some_and(|c| {
            c.is_ascii_digit() || matches!(c, '-' | ':' | ',') || c.is_whitespace()
        }) {
            self.pos += 1;
        }
        let body: String = self.chars[start..self.pos].iter().collect();
        let int = |s: &str| -> Result<i64, PathError> {
            s.trim()
                .parse::<i64>()
                .map_err(|_| self.error(&format!("Failed to parse array index '{}'", s.trim())))
        };
        if body.contains(':') {
            let parts: Vec<&str> = body.split(':').collect();
            if parts.len() != 2 || body.contains(',') {
                return Err(self.error("Failed to parse SliceOperation (no step, no union)"));
            }
            let end = |s: &str| -> Result<Option<i64>, PathError> {
                if s.trim().is_empty() {
                    Ok(None)
                } else {
                    int(s).map(Some)
                }
            };
            let (from, to) = (end(parts[0])?, end(parts[1])?);
            if from.is_none() && to.is_none() {
                return Err(self.error("Failed to parse SliceOperation ':'"));
            }
            return Ok(Segment::Slice(from, to));
        }
        let indexes = body.split(',').map(int).collect::<Result<Vec<_>, _>>()?;
        Ok(Segment::Index(indexes))
    }
}
