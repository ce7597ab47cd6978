//! Filter expressions, `[?(...)]`, after Jayway's `FilterCompiler` and its evaluators.
//!
//! Grammar: `||` over `&&` over unary terms; a term is `!term`, `( expr )`, a comparison
//! `value op value`, or a lone path (an existence test, `!@.x` its negation). Values are
//! paths (`@...` relative to the item, `$...` to the document), quoted strings, numbers,
//! `true`/`false`/`null`, JSON-ish array/object literals (single quotes allowed, as Jayway's
//! lenient parser takes them), and regex literals `/re/flags`.
//!
//! Semantics kept from Jayway: a missing path is *undefined*, which equals nothing (so `!=`
//! holds); `<`-style operators compare only number with number and string with string; a
//! string compares equal to a number when the number's text equals it; `=~` must match the
//! whole string; `in`/`nin`/`subsetof`/`anyof`/`noneof`/`contains`/`size`/`empty` as Jayway.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::java::{java_cmp, num_cmp};
use super::parse::{Cursor, MAX_DEPTH, check_segments};
use super::{PathError, Segment, select};

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// A lone path: does it select something?
    Exists(Operand),
    Compare(Operand, Op, Operand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    TypeEq,
    TypeNe,
    Lt,
    Le,
    Gt,
    Ge,
    Regex,
    In,
    Nin,
    SubsetOf,
    AnyOf,
    NoneOf,
    Contains,
    Size,
    Empty,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    /// `@...` (relative to the item being filtered) or `$...` (the whole document).
    Path {
        relative: bool,
        segments: Vec<Segment>,
    },
    Literal(Value),
    Pattern(Pattern),
}

/// A compiled `/re/flags` literal; equal when written the same.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Parses the expression inside `[?( ... )]`; the cursor is after the `(`.
pub(super) fn parse_expr(c: &mut Cursor<'_>, depth: usize) -> Result<Expr, PathError> {
    or(c, depth)
}

fn or(c: &mut Cursor<'_>, depth: usize) -> Result<Expr, PathError> {
    let mut left = and(c, depth)?;
    loop {
        c.skip_ws();
        if !c.eat("||") {
            return Ok(left);
        }
        let right = and(c, depth)?;
        left = Expr::Or(Box::new(left), Box::new(right));
    }
}

fn and(c: &mut Cursor<'_>, depth: usize) -> Result<Expr, PathError> {
    let mut left = unary(c, depth)?;
    loop {
        c.skip_ws();
        if !c.eat("&&") {
            return Ok(left);
        }
        let right = unary(c, depth)?;
        left = Expr::And(Box::new(left), Box::new(right));
    }
}

fn unary(c: &mut Cursor<'_>, depth: usize) -> Result<Expr, PathError> {
    if depth >= MAX_DEPTH {
        return Err(c.error("Filter expression nests too deep"));
    }
    c.skip_ws();
    if c.peek() == Some('!') && c.peek_at(1) != Some('=') {
        c.bump();
        return Ok(Expr::Not(Box::new(unary(c, depth + 1)?)));
    }
    if c.peek() == Some('(') {
        c.bump();
        let e = or(c, depth + 1)?;
        c.expect(')')?;
        return Ok(e);
    }
    let left = operand(c, depth)?;
    c.skip_ws();
    match operator(c) {
        Some(op) => {
            c.skip_ws();
            let right = operand(c, depth)?;
            Ok(Expr::Compare(left, op, right))
        }
        None if matches!(left, Operand::Path { .. }) => Ok(Expr::Exists(left)),
        None => Err(c.error("Expected a comparison operator")),
    }
}

fn operator(c: &mut Cursor<'_>) -> Option<Op> {
    // Longest first, so `===` is not read as `==` and `<=` not as `<`.
    const SYMBOLS: [(&str, Op); 9] = [
        ("===", Op::TypeEq),
        ("!==", Op::TypeNe),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=~", Op::Regex),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    for (s, op) in SYMBOLS {
        if c.eat(s) {
            return Some(op);
        }
    }
    const WORDS: [(&str, Op); 8] = [
        ("subsetof", Op::SubsetOf),
        ("contains", Op::Contains),
        ("noneof", Op::NoneOf),
        ("anyof", Op::AnyOf),
        ("empty", Op::Empty),
        ("size", Op::Size),
        ("nin", Op::Nin),
        ("in", Op::In),
    ];
    for (w, op) in WORDS {
        let n = w.chars().count();
        let word_ends = !c
            .peek_at(n)
            .is_some_and(|ch| ch.is_alphanumeric() || ch == '_');
        if word_ends && c.eat(w) {
            return Some(op);
        }
    }
    None
}

fn operand(c: &mut Cursor<'_>, depth: usize) -> Result<Operand, PathError> {
    c.skip_ws();
    match c.peek() {
        Some(r @ ('@' | '$')) => {
            c.bump();
            let segments = c.segments(true, depth)?;
            check_segments(&segments).map_err(|m| c.error(&m))?;
            Ok(Operand::Path {
                relative: r == '@',
                segments,
            })
        }
        Some('/') => pattern(c).map(Operand::Pattern),
        _ => literal(c, depth).map(Operand::Literal),
    }
}

fn pattern(c: &mut Cursor<'_>) -> Result<Pattern, PathError> {
    c.bump(); // '/'
    let mut body = String::new();
    loop {
        match c.bump() {
            None => return Err(c.error("Regex literal not closed")),
            Some('\\') => {
                body.push('\\');
                match c.bump() {
                    Some(ch) => body.push(ch),
                    None => return Err(c.error("Regex literal not closed")),
                }
            }
            Some('/') => break,
            Some(ch) => body.push(ch),
        }
    }
    let mut flags = String::new();
    while let Some(f) = c.peek().filter(char::is_ascii_alphabetic) {
        if !matches!(f, 'i' | 'm' | 's' | 'x') {
            return Err(c.error(&format!("Unsupported regex flag '{f}'")));
        }
        flags.push(f);
        c.bump();
    }
    let source = format!("/{body}/{flags}");
    let prefix = if flags.is_empty() {
        String::new()
    } else {
        format!("(?{flags})")
    };
    // Jayway uses Matcher.matches(): the whole input must match.
    let regex = regex::RegexBuilder::new(&format!("{prefix}^(?:{body})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| c.error(&format!("Invalid regex {source}: {e}")))?;
    Ok(Pattern { source, regex })
}

/// A literal: string, number, boolean, null, or a JSON-ish array/object.
fn literal(c: &mut Cursor<'_>, depth: usize) -> Result<Value, PathError> {
    if depth >= MAX_DEPTH {
        return Err(c.error("Literal nests too deep"));
    }
    c.skip_ws();
    match c.peek() {
        Some(q @ ('\'' | '"')) => Ok(Value::String(unescape(&c.quoted(q)?))),
        Some('[') => {
            c.bump();
            let mut items = Vec::new();
            c.skip_ws();
            if c.eat("]") {
                return Ok(Value::Array(items));
            }
            loop {
                items.push(literal(c, depth + 1)?);
                c.skip_ws();
                match c.bump() {
                    Some(',') => continue,
                    Some(']') => return Ok(Value::Array(items)),
                    _ => return Err(c.error("Expected ',' or ']' in array literal")),
                }
            }
        }
        Some('{') => {
            c.bump();
            let mut map = Map::new();
            c.skip_ws();
            if c.eat("}") {
                return Ok(Value::Object(map));
            }
            loop {
                c.skip_ws();
                let key = match c.peek() {
                    Some(q @ ('\'' | '"')) => unescape(&c.quoted(q)?),
                    _ => return Err(c.error("Expected a quoted key in object literal")),
                };
                c.expect(':')?;
                map.insert(key, literal(c, depth + 1)?);
                c.skip_ws();
                match c.bump() {
                    Some(',') => continue,
                    Some('}') => return Ok(Value::Object(map)),
                    _ => return Err(c.error("Expected ',' or '}' in object literal")),
                }
            }
        }
        Some(ch) if ch == '-' || ch.is_ascii_digit() => {
            let mut text = String::new();
            while let Some(d) = c
                .peek()
                .filter(|d| d.is_ascii_digit() || matches!(d, '-' | '+' | '.' | 'e' | 'E'))
            {
                text.push(d);
                c.bump();
            }
            let n: Number = serde_json::from_str(&text)
                .map_err(|_| c.error(&format!("Invalid number '{text}'")))?;
            Ok(Value::Number(n))
        }
        _ => {
            for (w, v) in [
                ("true", Value::Bool(true)),
                ("false", Value::Bool(false)),
                ("null", Value::Null),
            ] {
                if c.eat(w) {
                    return Ok(v);
                }
            }
            Err(c.error("Expected a value"))
        }
    }
}

/// Java-style unescaping of a quoted filter string (`\'`, `\"`, `\\`, `\n`, `\t`, ...).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(ch) = it.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// What an operand evaluates to.
enum Val<'a> {
    Undefined,
    Json(Cow<'a, Value>),
    Pattern(&'a Pattern),
}

/// Whether `item` passes `expr`; `root` is the document `$` refers to.
pub(super) fn accept(expr: &Expr, item: &Value, root: &Value) -> bool {
    match expr {
        Expr::Or(a, b) => accept(a, item, root) || accept(b, item, root),
        Expr::And(a, b) => accept(a, item, root) && accept(b, item, root),
        Expr::Not(a) => !accept(a, item, root),
        Expr::Exists(o) => match value(o, item, root) {
            Val::Json(v) => match o {
                // An indefinite path "exists" when it matched something.
                Operand::Path { segments, .. } if !select::is_definite(segments) => {
                    v.as_array().is_some_and(|a| !a.is_empty())
                }
                _ => true,
            },
            _ => false,
        },
        Expr::Compare(l, op, r) => compare(&value(l, item, root), *op, &value(r, item, root)),
    }
}

fn value<'a>(o: &'a Operand, item: &'a Value, root: &'a Value) -> Val<'a> {
    match o {
        Operand::Literal(v) => Val::Json(Cow::Borrowed(v)),
        Operand::Pattern(p) => Val::Pattern(p),
        Operand::Path { relative, segments } => {
            let doc = if *relative { item } else { root };
            match select::select_with_root(segments, doc, root) {
                Ok(v) => Val::Json(Cow::Owned(v)),
                Err(_) => Val::Undefined,
            }
        }
    }
}

fn compare(l: &Val<'_>, op: Op, r: &Val<'_>) -> bool {
    use Val::{Json, Pattern as P};
    match op {
        Op::Eq => equals(l, r),
        Op::Ne => !equals(l, r),
        Op::TypeEq => same_type(l, r) && equals(l, r),
        Op::TypeNe => !(same_type(l, r) && equals(l, r)),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match (l, r) {
                (Json(a), Json(b)) => match (a.as_ref(), b.as_ref()) {
                    (Value::Number(x), Value::Number(y)) => Some(num_cmp(x, y)),
                    (Value::String(x), Value::String(y)) => Some(java_cmp(x, y)),
                    _ => None,
                },
                _ => None,
            };
            ord.is_some_and(|o| match op {
                Op::Lt => o == Ordering::Less,
                Op::Le => o != Ordering::Greater,
                Op::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            })
        }
        Op::Regex => match (l, r) {
            (Json(v), P(p)) | (P(p), Json(v)) => {
                regex_input(v).is_some_and(|s| p.regex.is_match(&s))
            }
            _ => false,
        },
        Op::In | Op::Nin => {
            let found = match r {
                Json(list) => list
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| equals(l, &Json(Cow::Borrowed(x))))),
                _ => false,
            };
            found == (op == Op::In)
        }
        Op::SubsetOf | Op::AnyOf | Op::NoneOf => match (l, r) {
            (Json(a), Json(b)) => match (a.as_array(), b.as_array()) {
                (Some(a), Some(b)) => {
                    let inb = |x: &Value| b.iter().any(|y| json_eq(x, y));
                    match op {
                        Op::SubsetOf => a.iter().all(inb),
                        Op::AnyOf => a.iter().any(inb),
                        _ => !a.iter().any(inb),
                    }
                }
                _ => false,
            },
            _ => false,
        },
        Op::Contains => match (l, r) {
            (Json(a), Json(b)) => match (a.as_ref(), b.as_ref()) {
                (Value::String(s), Value::String(t)) => s.contains(t.as_str()),
                (Value::Array(items), x) => items.iter().any(|i| json_eq(i, x)),
                _ => false,
            },
            _ => false,
        },
        Op::Size => match (l, r) {
            (Json(a), Json(b)) => {
                let len = match a.as_ref() {
                    Value::String(s) => Some(s.encode_utf16().count()),
                    Value::Array(items) => Some(items.len()),
                    _ => None,
                };
                match (len, b.as_ref()) {
                    (Some(n), Value::Number(want)) => want.as_u64() == u64::try_from(n).ok(),
                    _ => false,
                }
            }
            _ => false,
        },
        Op::Empty => match (l, r) {
            (Json(a), Json(b)) => {
                let empty = match a.as_ref() {
                    Value::String(s) => Some(s.is_empty()),
                    Value::Array(items) => Some(items.is_empty()),
                    _ => None,
                };
                matches!((empty, b.as_ref()), (Some(e), Value::Bool(want)) if e == *want)
            }
            _ => false,
        },
    }
}

fn regex_input(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn same_type(l: &Val<'_>, r: &Val<'_>) -> bool {
    match (l, r) {
        (Val::Json(a), Val::Json(b)) => {
            std::mem::discriminant(a.as_ref()) == std::mem::discriminant(b.as_ref())
        }
        _ => false,
    }
}

/// Jayway's `==`: undefined equals nothing; a string and a number are equal when the
/// number's text is the string (Jayway converts one to the other's node type).
fn equals(l: &Val<'_>, r: &Val<'_>) -> bool {
    match (l, r) {
        (Val::Json(a), Val::Json(b)) => match (a.as_ref(), b.as_ref()) {
            (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => s
                .parse::<Number>()
                .is_ok_and(|m| num_cmp(n, &m) == Ordering::Equal),
            (x, y) => json_eq(x, y),
        },
        _ => false,
    }
}

/// Structural equality with numbers compared by value (`1 == 1.0`).
pub(super) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
