//! The JSONata query language (`"QueryLanguage": "JSONata"`) on `jsonata-core`, with AWS's
//! added functions.
//!
//! A state's field holds a *template*: any JSON value whose strings may be `{% expression %}`
//! at any depth ([`Template`]). Each expression is parsed once, when the definition is loaded
//! ([`compile`]), and evaluated against [`Bindings`]: `$states` (`input`, `result`,
//! `errorOutput`, `context`) and the execution's variables (`$myVar`). Every evaluation gets
//! AWS's functions (`$partition`, `$range`, `$hash`, `$random`, `$uuid`, `$parse`, see
//! `functions.rs`), loses `$eval` as on AWS, and is bounded in time and depth
//! ([`TIMEOUT_MS`], [`MAX_STACK_DEPTH`]) so a hostile definition cannot hang or overflow the
//! host.
//!
//! Failures are `States.QueryEvaluationError` with AWS's cause text, without the interpreter's
//! `An error occurred while executing the state ...` prefix:
//! - `The JSONata expression '<expr>' specified for the field '<field>' returned nothing (undefined).`
//! - `The JSONata expression '<expr>' specified for the field '<field>' threw an error during
//!   evaluation. <CODE>: <message>` (or `: <message>` for an uncoded message).
//!
//! Numbers: jsonata-core has one number type (`f64`); see `convert.rs` for how `1` and `1.0`
//! come back as AWS shows them.

mod convert;
mod functions;
mod scan;
mod template;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_corpus;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;

use jsonata_core::ast::AstNode;
use jsonata_core::evaluator::{Context, Evaluator, EvaluatorError, EvaluatorOptions};
use jsonata_core::value::JValue;
use serde_json::{Map, Value};

use crate::env::{Random, SplitMix};
use crate::error::{StatesError, names};
use convert::{ConvertError, Origins};

pub use template::Template;

/// Wall-clock bound on one expression's evaluation. AWS gives an expression no documented time,
/// but a definition is someone else's code running in our host: 1 s is far beyond any honest
/// payload transformation and short enough that a loop (`$f := function(){ $f() }`) cannot tie
/// a worker up. jsonata-core checks it at every node and every callback, raising D1012.
pub const TIMEOUT_MS: u64 = 1_000;

/// Bound on evaluation depth (jsonata-core's `max_stack_depth`, raising D1011). A non-tail
/// recursive call costs about three levels, so this allows ~160 nested calls; AWS itself is
/// reported to stop at 100 levels. jsonata-core evaluates on heap-grown stack segments, so the
/// bound is about memory and time, not the native stack.
pub const MAX_STACK_DEPTH: usize = 500;

/// Bound on the length of a sequence an expression builds (jsonata-core's
/// `max_sequence_length`, raising D2015): with the depth and time bounds it keeps one
/// expression's memory in check. AWS bounds an expression's memory at about 7 MB (under a
/// million numbers).
pub const MAX_SEQUENCE_LENGTH: usize = 1_000_000;

/// Whether `s` is a JSONata template string: it starts with `{%` and ends with `%}` exactly,
/// the two not overlapping. AWS treats `" {% x %} "` (spaces outside) as a literal string.
pub fn is_template(s: &str) -> bool {
    s.len() >= 4 && s.starts_with("{%") && s.ends_with("%}")
}

/// A JSONata expression that does not parse (or is empty), with jsonata-core's message, e.g.
/// `S0203: Expected ")" before end of expression`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SyntaxError(pub String);

/// A parsed JSONata expression, compiled once per definition; cheap to clone (shared).
#[derive(Clone)]
pub struct Expr {
    /// The expression as written between `{%` and `%}`, trimmed: what AWS quotes in causes.
    source: Arc<str>,
    ast: Arc<AstNode>,
    /// The `$name` tokens of the source that are not only called (a superset of the
    /// variables it reads): only these are converted and bound at evaluation, so a large
    /// variable the expression never names costs nothing.
    tokens: Arc<[String]>,
    /// The variables the expression reads, best effort (see [`Template::referenced_variables`]).
    variables: Arc<[String]>,
    /// Whether the source can reach a function that draws randomness; only then is a seed
    /// drawn from [`Bindings::random`]. `$eval` is disabled, so a function can only be reached
    /// through its name written in the source.
    needs_random: bool,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

/// Parses `text`, the inside of `{% %}` (surrounding whitespace is ignored).
pub fn compile(text: &str) -> Result<Expr, SyntaxError> {
    let source = text.trim();
    if source.is_empty() {
        return Err(SyntaxError("The JSONata expression is empty".to_owned()));
    }
    // jsonata-core's parser bounds its own nesting (U1002); the catch is a backstop so a parser
    // bug on some input fails this definition instead of the host.
    let ast = match catch_unwind(|| jsonata_core::parser::parse(source)) {
        Ok(Ok(ast)) => ast,
        Ok(Err(e)) => return Err(SyntaxError(e.to_string())),
        Err(_) => {
            return Err(SyntaxError(
                "The JSONata expression could not be parsed (internal error of the parser)"
                    .to_owned(),
            ));
        }
    };
    let scanned = scan::scan(source);
    let needs_random = ["random", "uuid", "shuffle"]
        .iter()
        .any(|f| source.contains(f));
    Ok(Expr {
        source: source.into(),
        ast: Arc::new(ast),
        tokens: scanned.tokens.into(),
        variables: scanned.variables.into(),
        needs_random,
    })
}

/// What an expression can read: `$states` and the execution's variables, plus the randomness
/// that `$random()`, `$uuid()` and `$shuffle` draw from.
#[derive(Clone, Copy)]
pub struct Bindings<'a> {
    /// The `$states` object: `input`, and where the state has them `result`, `errorOutput`,
    /// `context`.
    pub states: &'a Value,
    /// The variables in scope, by name without the `$`.
    pub variables: &'a Map<String, Value>,
    /// Randomness; one draw seeds an evaluation that may call a random function.
    pub random: &'a dyn Random,
}

impl Expr {
    /// The expression's text as AWS quotes it in causes (trimmed, without `{% %}`).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables this expression reads, best effort (no `$states`, no local `:=` names
    /// or lambda parameters, no function names).
    pub fn referenced_variables(&self) -> &[String] {
        &self.variables
    }

    /// Evaluates; `Ok(None)` is undefined. A runtime failure is `States.QueryEvaluationError`
    /// whose cause names no field (use [`Expr::eval_field`] where a field is known).
    pub fn eval(&self, b: &Bindings<'_>) -> Result<Option<Value>, StatesError> {
        let mut session = Session::new(b, self.tokens.iter(), self.needs_random);
        session.eval(self, None)
    }

    /// Evaluates the expression of field `field` (AWS's path: `Choices[0]/Condition`,
    /// `Seconds`, ...): undefined fails with AWS's "returned nothing (undefined)" cause.
    pub fn eval_field(&self, field: &str, b: &Bindings<'_>) -> Result<Value, StatesError> {
        let mut session = Session::new(b, self.tokens.iter(), self.needs_random);
        session
            .eval(self, Some(field))?
            .ok_or_else(|| undefined(self, field))
    }
}

/// The cause for an expression of `field` that returned nothing.
fn undefined(expr: &Expr, field: &str) -> StatesError {
    StatesError::new(
        names::QUERY_EVALUATION_ERROR,
        format!(
            "The JSONata expression '{}' specified for the field '{field}' returned nothing (undefined).",
            expr.source
        ),
    )
}

/// `The JSONata expression '<expr>' specified for the field '<field>'` (AWS's opening).
fn opening(expr: &Expr, field: Option<&str>) -> String {
    match field {
        Some(f) => format!(
            "The JSONata expression '{}' specified for the field '{f}'",
            expr.source
        ),
        None => format!("The JSONata expression '{}'", expr.source),
    }
}

/// A failure inside the engine, worded as AWS words it: its sentence, then `. ` before a coded
/// JSONata message (`T2002: ...`) or `: ` before an uncoded one.
fn engine_failure(expr: &Expr, field: Option<&str>, e: &EvaluatorError) -> StatesError {
    let sep = if e.code().is_some() { ". " } else { ": " };
    StatesError::new(
        names::QUERY_EVALUATION_ERROR,
        format!(
            "{} threw an error during evaluation{sep}{}",
            opening(expr, field),
            e.message()
        ),
    )
}

/// A failure of ours around the engine (uncoded, so after `: `).
fn host_failure(expr: &Expr, field: Option<&str>, why: &str) -> StatesError {
    StatesError::new(
        names::QUERY_EVALUATION_ERROR,
        format!(
            "{} threw an error during evaluation: {why}",
            opening(expr, field)
        ),
    )
}

fn options() -> EvaluatorOptions {
    EvaluatorOptions {
        timeout_ms: Some(TIMEOUT_MS),
        max_stack_depth: Some(MAX_STACK_DEPTH),
        max_sequence_length: Some(MAX_SEQUENCE_LENGTH),
        ..EvaluatorOptions::default()
    }
}

/// One evaluation of a template (or of one expression): the bindings converted once, the
/// evaluator built once, shared by every expression in it. `jsonata_core::Evaluator::evaluate`
/// pushes a fresh scope per call, so one expression's `:=` does not leak into the next.
struct Session<'a> {
    /// Keeps the converted bindings' allocations alive, so the addresses in `origins` stay
    /// theirs for the whole session (see `convert.rs`).
    origins: Origins<'a>,
    /// Built on first use, and only if the bindings converted (`Err` is kept to report it).
    evaluator: Result<Evaluator, ConvertError>,
}

impl<'a> Session<'a> {
    /// Converts and binds the variables named in `tokens` (and `$states` if named).
    fn new<'t>(
        b: &Bindings<'a>,
        tokens: impl Iterator<Item = &'t String>,
        needs_random: bool,
    ) -> Self {
        let mut origins = Origins::default();
        let evaluator = Self::build(b, tokens, needs_random, &mut origins);
        Self { origins, evaluator }
    }

    fn build<'t>(
        b: &Bindings<'a>,
        tokens: impl Iterator<Item = &'t String>,
        needs_random: bool,
        origins: &mut Origins<'a>,
    ) -> Result<Evaluator, ConvertError> {
        let mut context = Context::new();
        for name in tokens {
            // `$states` is the reserved name; a user variable cannot shadow it.
            let value = if name == "states" {
                Some(b.states)
            } else {
                b.variables.get(name.as_str())
            };
            if let Some(v) = value {
                context.bind(name.clone(), origins.bind(v)?);
            }
        }
        let mut ev = Evaluator::with_options(context, options());
        // Host functions must be 'static, so they cannot borrow `b.random`: they draw from a
        // generator seeded by one draw of it (only when the expression can reach one).
        let seed = if needs_random { b.random.next_u64() } else { 0 };
        let rng = Rc::new(SplitMix::new(seed));
        // Fails only if a name clashes with a compilable built-in, which tests rule out.
        functions::register(&mut ev, &rng).map_err(|_| ConvertError::Unsupported)?;
        Ok(ev)
    }

    /// Evaluates `expr`; `Ok(None)` is undefined.
    fn eval(&mut self, expr: &Expr, field: Option<&str>) -> Result<Option<Value>, StatesError> {
        let ev = match &mut self.evaluator {
            Ok(ev) => ev,
            Err(ConvertError::TooDeep) => {
                return Err(host_failure(
                    expr,
                    field,
                    "a bound variable is nested too deep to convert",
                ));
            }
            Err(ConvertError::Unsupported) => {
                return Err(host_failure(
                    expr,
                    field,
                    "the functions could not be set up",
                ));
            }
        };
        // jsonata-core is panic-free on the official suite but not on every input (2.2.13
        // panics on `$substring('abc', 1e300)`, found by the fuzz test): the catch makes such
        // a panic fail this state instead of the worker. The evaluator is not reused after a
        // panic: the error ends the template's evaluation.
        let ast = &expr.ast;
        let out = catch_unwind(AssertUnwindSafe(|| ev.evaluate(ast, &JValue::Undefined)));
        let value = match out {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(engine_failure(expr, field, &e)),
            Err(_) => {
                return Err(host_failure(
                    expr,
                    field,
                    "internal error of the JSONata engine",
                ));
            }
        };
        match self.origins.result(&value) {
            Ok(v) => Ok(v),
            Err(ConvertError::Unsupported) => Err(StatesError::new(
                names::QUERY_EVALUATION_ERROR,
                format!(
                    "{} returned an unsupported result type.",
                    opening(expr, field)
                ),
            )),
            Err(ConvertError::TooDeep) => Err(host_failure(
                expr,
                field,
                "the result is nested too deep to convert",
            )),
        }
    }
}
