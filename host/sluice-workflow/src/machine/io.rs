//! Input and output processing of one state, in both query languages: InputPath,
//! Parameters, ResultSelector, ResultPath and OutputPath for JSONPath; Arguments, Output and
//! `$states` for JSONata; Assign for both.

use serde_json::{Map, Value, json};

use crate::definition::payload::{Env as PayloadEnv, Payload};
use crate::definition::{Assign, Lang, NullablePath, State};
use crate::env::Random;
use crate::error::{StatesError, names};
use crate::jsonata::{Bindings, Template};
use crate::jsonpath::{Path, Root, Scope};

/// What a state's expressions are evaluated against.
pub(crate) struct Ctx<'a> {
    /// `$$`.
    pub(crate) context: &'a Value,
    /// Variables in scope.
    pub(crate) vars: &'a Map<String, Value>,
    /// For intrinsics and JSONata's `$random`/`$uuid`.
    pub(crate) random: &'a dyn Random,
}

/// Select `path` over `doc` (`$`), the context or the variables.
pub(crate) fn select(path: &Path, doc: &Value, ctx: &Ctx<'_>) -> Result<Value, StatesError> {
    let scope = Scope {
        input: doc,
        context: ctx.context,
        variables: ctx.vars,
    };
    scope
        .resolve(path)
        .map_err(|e| StatesError::new(names::RUNTIME, e.to_string()))
}

/// InputPath or OutputPath: absent keeps the value, `null` gives `{}`.
pub(crate) fn filter(
    p: Option<&NullablePath>,
    v: Value,
    ctx: &Ctx<'_>,
) -> Result<Value, StatesError> {
    match p {
        None => Ok(v),
        Some(NullablePath::Null) => Ok(json!({})),
        Some(NullablePath::Path(p)) => select(p, &v, ctx),
    }
}

/// Evaluate a JSONPath payload template over `doc`.
pub(crate) fn payload(t: &Payload, doc: &Value, ctx: &Ctx<'_>) -> Result<Value, StatesError> {
    t.eval(&PayloadEnv {
        scope: Scope {
            input: doc,
            context: ctx.context,
            variables: ctx.vars,
        },
        random: ctx.random,
    })
}

/// ResultPath: where `result` goes in `input`. Absent: the result replaces the input;
/// `null`: the input passes through.
pub(crate) fn result_path(
    p: Option<&NullablePath>,
    input: Value,
    result: Value,
) -> Result<Value, StatesError> {
    match p {
        None => Ok(result),
        Some(NullablePath::Null) => Ok(input),
        Some(NullablePath::Path(p)) => {
            if !matches!(p.root(), Root::Input) {
                return Err(StatesError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!("The ResultPath '{}' must refer to the input ($)", p.text()),
                ));
            }
            let mut out = input;
            p.write(&mut out, result).map_err(|e| {
                StatesError::new(
                    names::RESULT_PATH_MATCH_FAILURE,
                    format!(
                        "Unable to apply ResultPath '{}' to the input: {e}",
                        p.text()
                    ),
                )
            })?;
            Ok(out)
        }
    }
}

/// The `$states` object of JSONata.
pub(crate) fn states(
    input: &Value,
    result: Option<&Value>,
    error_output: Option<&Value>,
    context: &Value,
) -> Value {
    let mut m = Map::new();
    m.insert("input".into(), input.clone());
    if let Some(r) = result {
        m.insert("result".into(), r.clone());
    }
    if let Some(e) = error_output {
        m.insert("errorOutput".into(), e.clone());
    }
    m.insert("context".into(), context.clone());
    Value::Object(m)
}

/// Evaluate a JSONata template for `field`.
pub(crate) fn template(
    t: &Template,
    field: &str,
    states: &Value,
    ctx: &Ctx<'_>,
) -> Result<Value, StatesError> {
    t.eval(
        field,
        &Bindings {
            states,
            variables: ctx.vars,
            random: ctx.random,
        },
    )
}

/// The variables an `Assign` sets: evaluated over `doc` (JSONPath: the state's result, or
/// its input when it has none) or `states` (JSONata), all against the variables as they were
/// before the state, as AWS does.
pub(crate) fn assign(
    a: &Assign,
    doc: &Value,
    states: &Value,
    ctx: &Ctx<'_>,
) -> Result<Map<String, Value>, StatesError> {
    let v = match a {
        Assign::JsonPath(p) => payload(p, doc, ctx)?,
        Assign::Jsonata(t) => template(t, "Assign", states, ctx)?,
    };
    match v {
        Value::Object(m) => Ok(m),
        other => Err(StatesError::new(
            names::RUNTIME,
            format!("Assign must give an object, not {other}"),
        )),
    }
}

/// The arguments a Task or Parallel hands on: Parameters over the effective input
/// (JSONPath) or Arguments (JSONata), else the input itself.
pub(crate) fn arguments(
    state: &State,
    effective: &Value,
    input: &Value,
    states: &Value,
    ctx: &Ctx<'_>,
) -> Result<Value, StatesError> {
    match (state.lang, &state.parameters, &state.arguments) {
        (Lang::JsonPath, Some(p), _) => payload(p, effective, ctx),
        (Lang::JsonPath, None, _) => Ok(effective.clone()),
        (Lang::Jsonata, _, Some(t)) => template(t, "Arguments", states, ctx),
        (Lang::Jsonata, _, None) => Ok(input.clone()),
    }
}

/// The output of a state without a result (Choice, Wait, Succeed): OutputPath over the
/// effective input (JSONPath), or the `Output` template given (JSONata), else the input.
pub(crate) fn plain_output(
    state: &State,
    output: Option<&Template>,
    effective: Value,
    input: &Value,
    states: &Value,
    ctx: &Ctx<'_>,
) -> Result<Value, StatesError> {
    match (state.lang, output) {
        (Lang::JsonPath, _) => filter(state.output_path.as_ref(), effective, ctx),
        (Lang::Jsonata, Some(t)) => template(t, "Output", states, ctx),
        (Lang::Jsonata, None) => Ok(input.clone()),
    }
}
