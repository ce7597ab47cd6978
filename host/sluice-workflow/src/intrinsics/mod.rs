//! The `States.*` intrinsic functions of the JSONPath query language.
//!
//! An intrinsic call is the value of a `.$` key in `Parameters`, `ResultSelector`,
//! `ItemSelector` (and a Fail state's `ErrorPath`/`CausePath`, or `Assign`), for example
//! `"x.$": "States.Format('Hello, {}!', $.name)"`. Calls nest:
//! `States.JsonToString(States.Array(1, $.a))`.
//!
//! The work is split in two so that a definition fails when it is created, not when it runs:
//! - [`parse`] turns the text into a [`Call`] and rejects bad syntax, unknown functions and
//!   wrong argument counts (the validator also checks every [`Call::paths`] parses);
//! - [`Call::eval`] runs it. Argument types and limits are checked here, because most
//!   arguments are paths whose values only exist at run time; a failure is a
//!   [`StatesError`] named `States.IntrinsicFailure`.
//!
//! The behaviour follows AWS Step Functions as recorded in the conformance corpus and as AWS
//! documents it. Where AWS shows its Java implementation (Java-style rounding in
//! `States.MathAdd`, `{k=v}` maps in `States.Format`, `1.0E20` doubles), we imitate Java.
//!
//! Submodules: `parse` (the call syntax), `functions` (the functions), `text` (how values
//! become text: `States.Format`, `States.JsonToString`, Java's number printing).

use serde_json::Value;

use crate::env::Random;
use crate::error::StatesError;

mod functions;
mod parse;
mod text;

#[cfg(test)]
mod tests;

/// The deepest nesting of calls in one field that AWS allows ("up to 10 intrinsic functions
/// within a field"); it also bounds the parser's and evaluator's recursion.
pub const MAX_NESTING: usize = 10;

/// An intrinsic function, by its `States.` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `States.Format(template, args...)`: `{}` replaced by the arguments.
    Format,
    /// `States.StringToJson(string)`: parses JSON text.
    StringToJson,
    /// `States.JsonToString(value)`: compact JSON text, key order kept.
    JsonToString,
    /// `States.Array(values...)`: the arguments as an array.
    Array,
    /// `States.ArrayPartition(array, size)`: chunks of `size` elements.
    ArrayPartition,
    /// `States.ArrayContains(array, value)`: whether `value` is an element.
    ArrayContains,
    /// `States.ArrayRange(first, last, step)`: integers from `first` to `last` inclusive.
    ArrayRange,
    /// `States.ArrayGetItem(array, index)`: the element at `index`.
    ArrayGetItem,
    /// `States.ArrayLength(array)`: the number of elements.
    ArrayLength,
    /// `States.ArrayUnique(array)`: the elements without duplicates, first occurrence kept.
    ArrayUnique,
    /// `States.Base64Encode(string)`: the UTF-8 bytes in Base64.
    Base64Encode,
    /// `States.Base64Decode(string)`: Base64 back to (UTF-8) text.
    Base64Decode,
    /// `States.Hash(string, algorithm)`: a lower-case hex digest.
    Hash,
    /// `States.JsonMerge(a, b, false)`: a shallow merge, `b` winning.
    JsonMerge,
    /// `States.MathRandom(start, end[, seed])`: an integer in `[start, end)`.
    MathRandom,
    /// `States.MathAdd(a, b)`: the sum of two (rounded) integers.
    MathAdd,
    /// `States.StringSplit(string, delimiters)`: split on any of the delimiter characters.
    StringSplit,
    /// `States.UUID()`: a random version 4 UUID.
    Uuid,
}

impl Function {
    /// Every function, in AWS's documentation order.
    pub const ALL: [Function; 18] = [
        Function::Format,
        Function::StringToJson,
        Function::JsonToString,
        Function::Array,
        Function::ArrayPartition,
        Function::ArrayContains,
        Function::ArrayRange,
        Function::ArrayGetItem,
        Function::ArrayLength,
        Function::ArrayUnique,
        Function::Base64Encode,
        Function::Base64Decode,
        Function::Hash,
        Function::JsonMerge,
        Function::MathRandom,
        Function::MathAdd,
        Function::StringSplit,
        Function::Uuid,
    ];

    /// The full name, e.g. `States.Format`.
    pub fn name(self) -> &'static str {
        match self {
            Function::Format => "States.Format",
            Function::StringToJson => "States.StringToJson",
            Function::JsonToString => "States.JsonToString",
            Function::Array => "States.Array",
            Function::ArrayPartition => "States.ArrayPartition",
            Function::ArrayContains => "States.ArrayContains",
            Function::ArrayRange => "States.ArrayRange",
            Function::ArrayGetItem => "States.ArrayGetItem",
            Function::ArrayLength => "States.ArrayLength",
            Function::ArrayUnique => "States.ArrayUnique",
            Function::Base64Encode => "States.Base64Encode",
            Function::Base64Decode => "States.Base64Decode",
            Function::Hash => "States.Hash",
            Function::JsonMerge => "States.JsonMerge",
            Function::MathRandom => "States.MathRandom",
            Function::MathAdd => "States.MathAdd",
            Function::StringSplit => "States.StringSplit",
            Function::Uuid => "States.UUID",
        }
    }

    /// The function named `name` (with its `States.` prefix), if there is one.
    pub fn from_name(name: &str) -> Option<Function> {
        Function::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How many arguments the function takes: (least, most), `None` for no upper bound.
    pub fn arity(self) -> (usize, Option<usize>) {
        match self {
            Function::Format => (1, None),
            Function::Array => (0, None),
            Function::Uuid => (0, Some(0)),
            Function::StringToJson
            | Function::JsonToString
            | Function::ArrayLength
            | Function::ArrayUnique
            | Function::Base64Encode
            | Function::Base64Decode => (1, Some(1)),
            Function::ArrayPartition
            | Function::ArrayContains
            | Function::ArrayGetItem
            | Function::Hash
            | Function::MathAdd
            | Function::StringSplit => (2, Some(2)),
            Function::MathRandom => (2, Some(3)),
            Function::ArrayRange | Function::JsonMerge => (3, Some(3)),
        }
    }
}

impl std::fmt::Display for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed intrinsic call: the function and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    function: Function,
    args: Vec<Arg>,
    /// For `States.Format` with a literal template: the template as written between the
    /// quotes, escapes and all. `\{` must stay a literal brace while `{}` is a placeholder,
    /// a difference the unescaped [`Arg::Literal`] no longer shows.
    raw_template: Option<String>,
}

/// One argument of a [`Call`].
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A literal: `'string'` (unescaped), a number, `true`, `false` or `null`.
    Literal(Value),
    /// A path, as written: `$...` (the input), `$$...` (the context object) or `$name...`
    /// (a variable). The interpreter resolves it.
    Path(String),
    /// A nested call.
    Call(Call),
}

/// Why an intrinsic call's text is not a valid call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Whether a `.$` value is an intrinsic call rather than a path (it starts with `States.`).
pub fn is_call(text: &str) -> bool {
    text.starts_with("States.")
}

/// Parses an intrinsic call; fails on bad syntax, an unknown function, a wrong number of
/// arguments, an unknown escape in a string literal, or nesting deeper than [`MAX_NESTING`].
pub fn parse(text: &str) -> Result<Call, ParseError> {
    parse::parse(text)
}

impl Call {
    /// The function called.
    pub fn function(&self) -> Function {
        self.function
    }

    /// The arguments, in order.
    pub fn args(&self) -> &[Arg] {
        &self.args
    }

    /// Every path argument (also nested), in order of appearance, so the validator can check
    /// each parses.
    pub fn paths(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_paths(&mut out);
        out
    }

    fn collect_paths<'a>(&'a self, out: &mut Vec<&'a str>) {
        for arg in &self.args {
            match arg {
                Arg::Literal(_) => {}
                Arg::Path(p) => out.push(p),
                Arg::Call(c) => c.collect_paths(out),
            }
        }
    }

    /// Evaluates the call. `resolve` gives a path argument's value (its error is passed on
    /// unchanged); `random` feeds `States.UUID` and unseeded `States.MathRandom`. Arguments
    /// are evaluated left to right before the function runs; a function's own failure is a
    /// `States.IntrinsicFailure`.
    pub fn eval(
        &self,
        resolve: &dyn Fn(&str) -> Result<Value, StatesError>,
        random: &dyn Random,
    ) -> Result<Value, StatesError> {
        let mut values = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            values.push(match arg {
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => resolve(p)?,
                Arg::Call(c) => c.eval(resolve, random)?,
            });
        }
        functions::apply(self, values, random)
    }
}

impl std::fmt::Display for Call {
    /// The call in intrinsic syntax (string literals re-escaped), so a parsed call can be
    /// shown in messages and parses back to itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}(", self.function.name())?;
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match arg {
                Arg::Literal(Value::String(s)) => {
                    match (&self.raw_template, i) {
                        (Some(raw), 0) => write!(f, "'{raw}'")?,
                        _ => write!(f, "'{}'", parse::escape(s))?,
                    };
                }
                Arg::Literal(v) => write!(f, "{v}")?,
                Arg::Path(p) => f.write_str(p)?,
                Arg::Call(c) => write!(f, "{c}")?,
            }
        }
        f.write_str(")")
    }
}
