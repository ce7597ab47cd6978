//! Tests of the intrinsic functions, with the helpers they share:
//! - `syntax`: parsing, escapes, nesting, paths;
//! - `text`: `States.Format`, `States.JsonToString`, `States.StringToJson`, `States.JsonMerge`;
//! - `values`: the array, encoding, hashing, math, string and UUID functions;
//! - `corpus`: the conformance corpus's recorded AWS results, copied as literals (the tests
//!   never read the corpus);
//! - `proptests`: no input panics.

use serde_json::Value;

use super::*;
use crate::env::SplitMix;
use crate::error::names;

mod corpus;
mod proptests;
mod syntax;
mod text;
mod values;

/// A tiny resolver for tests: `$` and `$.a.b` read `input`, `$$.a.b` read `context`,
/// `$name.a` read `vars`; `[n]` steps are not needed here.
pub(super) fn resolver<'a>(
    input: &'a Value,
    context: &'a Value,
    vars: &'a Value,
) -> impl Fn(&str) -> Result<Value, StatesError> + 'a {
    move |path: &str| {
        let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
            (context, rest)
        } else if let Some(rest) = path.strip_prefix("$.") {
            (input, rest)
        } else if path == "$" {
            (input, "")
        } else {
            let name_end = path[1..].find('.').map_or(path.len(), |i| i + 1);
            let var = vars.get(&path[1..name_end]).ok_or_else(|| {
                StatesError::new(names::RUNTIME, format!("no variable in {path}"))
            })?;
            (var, &path[name_end..])
        };
        let mut v = root;
        for step in rest.split('.').filter(|s| !s.is_empty()) {
            v = v.get(step).ok_or_else(|| {
                StatesError::new(names::RUNTIME, format!("{path} selects nothing"))
            })?;
        }
        Ok(v.clone())
    }
}

pub(super) fn run_with(
    text: &str,
    input: &Value,
    context: &Value,
    vars: &Value,
) -> Result<Value, StatesError> {
    let call = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    call.eval(&resolver(input, context, vars), &SplitMix::new(1))
}

#[expect(
    clippy::needless_pass_by_value,
    reason = "the tests read better passing json!(..) by value"
)]
pub(super) fn run(text: &str, input: Value) -> Result<Value, StatesError> {
    run_with(text, &input, &Value::Null, &Value::Null)
}

pub(super) fn ok(text: &str, input: Value) -> Value {
    run(text, input).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// The cause of a run that must fail with `States.IntrinsicFailure`.
pub(super) fn fails(text: &str, input: Value) -> String {
    match run(text, input) {
        Ok(v) => panic!("{text} gave {v}"),
        Err(e) => {
            assert_eq!(e.error, names::INTRINSIC_FAILURE, "{text}: {e}");
            e.cause
        }
    }
}

pub(super) fn parse_fails(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("{text} parsed as {c:?}"),
        Err(e) => e.0,
    }
}
