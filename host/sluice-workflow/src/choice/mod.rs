//! Choice rules in the JSONPath query language: parse and validate a rule's JSON into a
//! [`Rule`], then evaluate it against a [`Scope`].
//!
//! A rule is a boolean combination (`And`, `Or`, `Not`) or a *data-test*: a `Variable` (a
//! reference path) and exactly one operator with its operand (a literal, or for the `...Path`
//! forms a reference path resolved through the same scope).
//!
//! Semantics, as AWS has them (the corpus's ~300 Choice cases are copied into the tests):
//! - a comparison whose values have the wrong type is false, not an error
//!   (`NumericEquals` on `"0"`, `BooleanEquals` on `1`, `StringEquals` on `null`);
//! - numbers compare by value (`0` equals `0.0`); strings by UTF-16 unit, as Java does;
//!   timestamps by instant (see `timestamp`);
//! - `IsPresent` is the only operator that tolerates a `Variable` that selects nothing; for
//!   every other one (and for a `...Path` operand that selects nothing) evaluation fails
//!   with `States.Runtime` and `Invalid path '$.x': The choice state's condition path
//!   references an invalid value.` (AWS's text, as Step Functions emulators reproduce it);
//! - `IsNull`/`IsNumeric`/`IsString`/`IsBoolean`/`IsTimestamp` with `false` hold for a value
//!   that is present and not of that kind (`IsNull: false` on `"x"` is true).
//!
//! `Next` (and `Assign`, `Comment`) on a top-level rule belong to the caller; parsing ignores
//! them there and refuses them on nested rules.

mod timestamp;

#[cfg(test)]
mod corpus_cases;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::Value;

use crate::error::{StatesError, names};
use crate::jsonpath::{Path, Scope, java_cmp, num_cmp};

/// A parsed Choice rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// True when every rule is (evaluated left to right, stopping at the first false).
    And(Vec<Rule>),
    /// True when some rule is (evaluated left to right, stopping at the first true).
    Or(Vec<Rule>),
    /// The negation of the rule.
    Not(Box<Rule>),
    /// `Variable` compared with `operand` by `op`.
    Compare {
        /// The value under test.
        variable: Path,
        /// The comparison.
        op: Op,
        /// What it is compared with.
        operand: Operand,
    },
    /// A type or presence test on `Variable`: `IsPresent`, `IsNull`, ... with its boolean.
    Test {
        /// The value under test.
        variable: Path,
        /// The test.
        test: TypeTest,
        /// The outcome that makes the rule true.
        expected: bool,
    },
}

/// A comparison operator (each has a `...Path` form except `StringMatches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "the variants are the ASL operator names")]
pub enum Op {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    /// `*` matches any run of characters, `\*` a literal `*`, `\\` a literal `\`.
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
}

/// The type and presence tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs, reason = "the variants are the ASL operator names")]
pub enum TypeTest {
    IsPresent,
    IsNull,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal, already checked to have the operator's type.
    Value(Value),
    /// A `...Path` operand: a reference path resolved when the rule is evaluated.
    Path(Path),
}

/// A rule that does not validate: `pointer` is the JSON pointer of the offending field (or
/// of the rule itself), `message` says what is wrong. The definition validator wraps it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at {pointer}")]
pub struct Invalid {
    /// JSON pointer into the definition, e.g. `/States/Choose/Choices/0/NumericEquals`.
    pub pointer: String,
    /// What is wrong, e.g. `NumericEquals must be a number`.
    pub message: String,
}

/// What kind of literal an operator takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Timestamp,
}

const OPS: [(&str, Op, Kind); 17] = [
    ("StringEquals", Op::StringEquals, Kind::String),
    ("StringLessThan", Op::StringLessThan, Kind::String),
    ("StringGreaterThan", Op::StringGreaterThan, Kind::String),
    (
        "StringLessThanEquals",
        Op::StringLessThanEquals,
        Kind::String,
    ),
    (
        "StringGreaterThanEquals",
        Op::StringGreaterThanEquals,
        Kind::String,
    ),
    ("StringMatches", Op::StringMatches, Kind::String),
    ("NumericEquals", Op::NumericEquals, Kind::Number),
    ("NumericLessThan", Op::NumericLessThan, Kind::Number),
    ("NumericGreaterThan", Op::NumericGreaterThan, Kind::Number),
    (
        "NumericLessThanEquals",
        Op::NumericLessThanEquals,
        Kind::Number,
    ),
    (
        "NumericGreaterThanEquals",
        Op::NumericGreaterThanEquals,
        Kind::Number,
    ),
    ("BooleanEquals", Op::BooleanEquals, Kind::Boolean),
    ("TimestampEquals", Op::TimestampEquals, Kind::Timestamp),
    ("TimestampLessThan", Op::TimestampLessThan, Kind::Timestamp),
    (
        "TimestampGreaterThan",
        Op::TimestampGreaterThan,
        Kind::Timestamp,
    ),
    (
        "TimestampLessThanEquals",
        Op::TimestampLessThanEquals,
        Kind::Timestamp,
    ),
    (
        "TimestampGreaterThanEquals",
        Op::TimestampGreaterThanEquals,
        Kind::Timestamp,
    ),
];

const TESTS: [(&str, TypeTest); 6] = [
    ("IsPresent", TypeTest::IsPresent),
    ("IsNull", TypeTest::IsNull),
    ("IsNumeric", TypeTest::IsNumeric),
    ("IsString", TypeTest::IsString),
    ("IsBoolean", TypeTest::IsBoolean),
    ("IsTimestamp", TypeTest::IsTimestamp),
];

/// The operator a field name denotes, and whether it is the `...Path` form.
enum Operator {
    Compare(Op, Kind, bool),
    Test(TypeTest),
}

fn operator(key: &str) -> Option<Operator> {
    if let Some((_, t)) = TESTS.iter().find(|(n, _)| *n == key) {
        return Some(Operator::Test(*t));
    }
    let (base, is_path) = match key.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (key, false),
    };
    let (_, op, kind) = OPS.iter().find(|(n, ..)| *n == base)?;
    // AWS has no StringMatchesPath.
    if is_path && *op == Op::StringMatches {
        return None;
    }
    Some(Operator::Compare(*op, *kind, is_path))
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn invalid(pointer: String, message: impl Into<String>) -> Invalid {
    Invalid {
        pointer,
        message: message.into(),
    }
}

/// Parses and validates the Choice rule `v` found at `pointer`. `top_level` says whether it
/// is an element of `Choices` (where `Next`, `Assign` and `Comment` are the caller's and
/// ignored here) or nested in `And`/`Or`/`Not` (where `Next` and `Assign` are refused).
pub fn parse_rule(v: &Value, pointer: &str, top_level: bool) -> Result<Rule, Invalid> {
    parse_at(v, pointer, top_level, 0)
}

/// How deep `And`/`Or`/`Not` may nest; deeper definitions are refused rather than risk
/// the stack.
const MAX_NESTING: usize = 64;

fn parse_at(v: &Value, pointer: &str, top_level: bool, depth: usize) -> Result<Rule, Invalid> {
    if depth > MAX_NESTING {
        return Err(invalid(pointer.into(), "Choice rules nest too deep"));
    }
    let Value::Object(map) = v else {
        return Err(invalid(pointer.into(), "A Choice Rule must be an object"));
    };
    let mut combinator: Option<(&str, &Value)> = None;
    let mut variable: Option<&Value> = None;
    let mut op: Option<(&str, Operator, &Value)> = None;
    for (key, value) in map {
        match key.as_str() {
            "Comment" => {}
            "Next" | "Assign" if top_level => {}
            "Next" | "Assign" => {
                return Err(invalid(
                    child(pointer, key),
                    format!("{key} is only allowed on a top-level Choice Rule"),
                ));
            }
            "And" | "Or" | "Not" => {
                if let Some((first, _)) = combinator {
                    return Err(invalid(
                        child(pointer, key),
                        format!(
                            "A Choice Rule can have only one of And, Or, Not (found {first} and {key})"
                        ),
                    ));
                }
                combinator = Some((key, value));
            }
            "Variable" => variable = Some(value),
            other => match operator(other) {
                Some(o) => {
                    if let Some((first, ..)) = op {
                        return Err(invalid(
                            child(pointer, key),
                            format!(
                                "A Choice Rule can have only one comparison operator (found {first} and {key})"
                            ),
                        ));
                    }
                    op = Some((key, o, value));
                }
                None => {
                    return Err(invalid(
                        child(pointer, key),
                        format!("Field '{key}' is not supported in a Choice Rule"),
                    ));
                }
            },
        }
    }
    if let Some((name, value)) = combinator {
        if variable.is_some() || op.is_some() {
            return Err(invalid(
                pointer.into(),
                format!(
                    "A Choice Rule with {name} can not also have Variable or a comparison operator"
                ),
            ));
        }
        let at = child(pointer, name);
        if name == "Not" {
            return Ok(Rule::Not(Box::new(parse_at(value, &at, false, depth + 1)?)));
        }
        let Value::Array(items) = value else {
            return Err(invalid(
                at,
                format!("{name} must be an array of Choice Rules"),
            ));
        };
        if items.is_empty() {
            return Err(invalid(
                at,
                format!("{name} must have at least one Choice Rule"),
            ));
        }
        let rules = items
            .iter()
            .enumerate()
            .map(|(i, r)| parse_at(r, &format!("{at}/{i}"), false, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if name == "And" {
            Rule::And(rules)
        } else {
            Rule::Or(rules)
        });
    }
    let Some(variable) = variable else {
        return Err(invalid(
            pointer.into(),
            "A Choice Rule must have And, Or, Not, or a Variable with a comparison operator",
        ));
    };
    let variable = reference_path(variable, child(pointer, "Variable"), "Variable")?;
    let Some((key, operator, value)) = op else {
        return Err(invalid(
            pointer.into(),
            "A Choice Rule with a Variable must have a comparison operator",
        ));
    };
    let at = child(pointer, key);
    match operator {
        Operator::Test(test) => match value {
            Value::Bool(expected) => Ok(Rule::Test {
                variable,
                test,
                expected: *expected,
            }),
            _ => Err(invalid(at, format!("{key} must be a boolean"))),
        },
        Operator::Compare(op, _, true) => Ok(Rule::Compare {
            variable,
            op,
            operand: Operand::Path(reference_path(value, at, key)?),
        }),
        Operator::Compare(op, kind, false) => {
            let ok = match kind {
                Kind::String => value.is_string(),
                Kind::Number => value.is_number(),
                Kind::Boolean => value.is_boolean(),
                Kind::Timestamp => value.as_str().and_then(timestamp::parse).is_some(),
            };
            if !ok {
                let what = match kind {
                    Kind::String => "a string",
                    Kind::Number => "a number",
                    Kind::Boolean => "a boolean",
                    Kind::Timestamp => "an RFC 3339 timestamp string (e.g. 2016-08-18T17:33:00Z)",
                };
                return Err(invalid(at, format!("{key} must be {what}")));
            }
            Ok(Rule::Compare {
                variable,
                op,
                operand: Operand::Value(value.clone()),
            })
        }
    }
}

/// A field that must hold a Reference Path (`Variable`, the `...Path` operands).
fn reference_path(v: &Value, pointer: String, field: &str) -> Result<Path, Invalid> {
    let Some(text) = v.as_str() else {
        return Err(invalid(pointer, format!("{field} must be a string")));
    };
    let path = Path::parse(text).map_err(|e| invalid(pointer.clone(), e.0))?;
    if !path.is_reference() {
        return Err(invalid(
            pointer,
            format!(
                "{field} must be a Reference Path (no wildcard, filter, slice, union or '..'): '{text}'"
            ),
        ));
    }
    Ok(path)
}

impl Rule {
    /// Evaluates the rule. Fails only when a path selects nothing (see the module docs).
    pub fn eval(&self, scope: &Scope<'_>) -> Result<bool, StatesError> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.eval(scope)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.eval(scope)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.eval(scope)?),
            Rule::Test {
                variable,
                test,
                expected,
            } => {
                if *test == TypeTest::IsPresent {
                    return Ok(scope.resolve(variable).is_ok() == *expected);
                }
                let v = resolve(scope, variable)?;
                let holds = match test {
                    TypeTest::IsNull => v.is_null(),
                    TypeTest::IsNumeric => v.is_number(),
                    TypeTest::IsString => v.is_string(),
                    TypeTest::IsBoolean => v.is_boolean(),
                    TypeTest::IsTimestamp => v.as_str().and_then(timestamp::parse).is_some(),
                    TypeTest::IsPresent => true,
                };
                Ok(holds == *expected)
            }
            Rule::Compare {
                variable,
                op,
                operand,
            } => {
                let v = resolve(scope, variable)?;
                let o = match operand {
                    Operand::Value(x) => Cow::Borrowed(x),
                    Operand::Path(p) => Cow::Owned(resolve(scope, p)?),
                };
                Ok(compare(*op, &v, &o))
            }
        }
    }
}

fn resolve(scope: &Scope<'_>, path: &Path) -> Result<Value, StatesError> {
    scope.resolve(path).map_err(|_| {
        StatesError::new(
            names::RUNTIME,
            format!(
                "Invalid path '{}': The choice state's condition path references an invalid value.",
                path.text()
            ),
        )
    })
}

/// `op` applied to the variable's value `v` and the operand `o`; false on a type mismatch.
fn compare(op: Op, v: &Value, o: &Value) -> bool {
    use Ordering::{Equal, Greater, Less};
    let holds = |ord: Ordering, want: &[Ordering]| want.contains(&ord);
    match op {
        Op::StringMatches => match (v, o) {
            (Value::String(s), Value::String(p)) => matches_pattern(s, p),
            _ => false,
        },
        Op::BooleanEquals => matches!((v, o), (Value::Bool(a), Value::Bool(b)) if a == b),
        _ => {
            let ord = match (op, v, o) {
                (
                    Op::StringEquals
                    | Op::StringLessThan
                    | Op::StringGreaterThan
                    | Op::StringLessThanEquals
                    | Op::StringGreaterThanEquals,
                    Value::String(a),
                    Value::String(b),
                ) => java_cmp(a, b),
                (
                    Op::NumericEquals
                    | Op::NumericLessThan
                    | Op::NumericGreaterThan
                    | Op::NumericLessThanEquals
                    | Op::NumericGreaterThanEquals,
                    Value::Number(a),
                    Value::Number(b),
                ) => num_cmp(a, b),
                (_, Value::String(a), Value::String(b)) if is_timestamp_op(op) => {
                    match (timestamp::parse(a), timestamp::parse(b)) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        _ => return false,
                    }
                }
                _ => return false,
            };
            match op {
                Op::StringEquals | Op::NumericEquals | Op::TimestampEquals => ord == Equal,
                Op::StringLessThan | Op::NumericLessThan | Op::TimestampLessThan => ord == Less,
                Op::StringGreaterThan | Op::NumericGreaterThan | Op::TimestampGreaterThan => {
                    ord == Greater
                }
                Op::StringLessThanEquals
                | Op::NumericLessThanEquals
                | Op::TimestampLessThanEquals => holds(ord, &[Less, Equal]),
                _ => holds(ord, &[Greater, Equal]),
            }
        }
    }
}

fn is_timestamp_op(op: Op) -> bool {
    matches!(
        op,
        Op::TimestampEquals
            | Op::TimestampLessThan
            | Op::TimestampGreaterThan
            | Op::TimestampLessThanEquals
            | Op::TimestampGreaterThanEquals
    )
}

/// One element of a `StringMatches` pattern.
#[derive(Clone, Copy, PartialEq)]
enum Glob {
    Any,
    Char(char),
}

/// `StringMatches`: `*` matches any run (also empty); `\*` and `\\` are a literal `*` and
/// `\`; a backslash before anything else is kept as a literal backslash.
pub(crate) fn matches_pattern(s: &str, pattern: &str) -> bool {
    let mut pat = Vec::new();
    let mut it = pattern.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.peek() {
                Some(&n @ ('*' | '\\')) => {
                    it.next();
                    pat.push(Glob::Char(n));
                }
                _ => pat.push(Glob::Char('\\')),
            },
            '*' => pat.push(Glob::Any),
            c => pat.push(Glob::Char(c)),
        }
    }
    let text: Vec<char> = s.chars().collect();
    // Greedy matching with one backtrack point: linear in practice, O(n*m) at worst.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(Glob::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            Some(Glob::Any) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|g| *g == Glob::Any)
}
