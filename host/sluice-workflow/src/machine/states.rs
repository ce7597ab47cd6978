//! What each state type does when a run enters it, how a state's result becomes its output
//! and next transition, and how a failure meets Retry and Catch (Tasks: `task.rs`; Map and
//! Parallel: `map.rs`).

use serde_json::{Map, Value, json};

use super::io::{self, Ctx};
use super::log;
use super::{Children, Env, Execution, Phase, type_name};
use crate::definition::{
    Condition, Dynamic, FailField, Kind, Lang, Machine, State, Transition, WaitFor,
};
use crate::env::TaskRequest;
use crate::error::{StatesError, names};
use crate::resource::WAIT_FOR_TASK_TOKEN;

/// Largest payload (input, result, output) a Task takes or gives, as AWS's 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Errors States.ALL does not match (AWS: terminal; only a rule naming them does).
fn terminal(error: &str) -> bool {
    error == names::RUNTIME || error == names::DATA_LIMIT_EXCEEDED
}

/// Whether `error` matches a rule's ErrorEquals (`retry`: States.ALL never retries
/// States.Runtime, which AWS treats as terminal).
fn matches(equals: &[String], error: &str) -> bool {
    equals.iter().any(|n| {
        n == error
            || (n == names::ALL && !terminal(error))
            || (n == names::TASK_FAILED && error != names::TIMEOUT && !terminal(error))
    })
}

/// The start of the cause of a Map whose ItemReader Sluice cannot serve: a resource other
/// than `s3:getObject` (object listings) or an input type it does not read (MANIFEST,
/// PARQUET).
pub const ITEM_READER_UNSUPPORTED: &str = "This ItemReader is not supported by Sluice: ";

/// An integer read by a `*Path` field: a number, or a string holding one (AWS accepts
/// `"1"` from a variable).
pub(super) fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// An integer field in any of its forms: a literal, a `*Path` (a number, or a string
/// holding one), or a JSONata expression (`noun`: "positive" or "non-negative", as AWS words
/// the field's rule).
pub(super) fn eval_uint(
    d: &Dynamic<u64>,
    field: &str,
    noun: &str,
    effective: &Value,
    states: &Value,
    ctx: &Ctx<'_>,
) -> Result<u64, StatesError> {
    match d {
        Dynamic::Literal(n) => Ok(*n),
        Dynamic::Path(p) => {
            let v = io::select(p, effective, ctx)?;
            as_uint(&v).ok_or_else(|| integer_field(&format!("{field}Path"), p.text(), &v))
        }
        Dynamic::Expr(t) => {
            let v = io::template(t, field, states, ctx)?;
            as_uint(&v).ok_or_else(|| {
                StatesError::new(
                    names::QUERY_EVALUATION_ERROR,
                    format!("The {field} field must be a {noun} integer, not {v}"),
                )
            })
        }
    }
}

pub(super) fn integer_field(field: &str, path: &str, v: &Value) -> StatesError {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    StatesError::new(
        names::RUNTIME,
        format!(
            "The {field} field refers to value \"{shown}\" which is not a valid integer: {path}"
        ),
    )
}

impl Execution {
    /// A run enters its current state (or re-enters it after a retry delay).
    pub(super) fn enter(
        &mut self,
        id: u64,
        retry: bool,
        def: &Machine,
        env: &Env<'_>,
        requests: &mut Vec<TaskRequest>,
    ) {
        let now = env.clock.now_ms();
        let state: &State = Self::state_of(def, &self.runs[&id]);
        if !retry {
            // Numbered, then recorded from the run's input where it lies (no copy of it).
            let ev = match self.next_event(Some(id), now) {
                Ok(header) => {
                    let details = log::Entered {
                        name: &state.name,
                        input: &self.runs[&id].input,
                        input_details: log::NOT_TRUNCATED,
                    };
                    let kind = format!("{}StateEntered", type_name(&state.kind));
                    log::record(&mut self.history, &mut self.log, header, &kind, details);
                    header.0
                }
                Err(local) => local,
            };
            self.transitions += 1;
            let run = self.runs.get_mut(&id).expect("run exists");
            run.entered_event = ev;
            run.entered_ms = now;
            run.attempt = 0;
            run.retry_count = 0;
            run.retries = vec![0; state.retry.len()];
        }
        if let Err(e) = self.run_state(id, state, def, env, requests) {
            self.processing_failed(id, e, def, env);
        }
    }

    /// The state's own input/output processing failed: prefixed as AWS words it (and an
    /// `EvaluationFailed` event for a JSONata failure), not caught, the run fails.
    pub(super) fn processing_failed(
        &mut self,
        id: u64,
        e: StatesError,
        def: &Machine,
        env: &Env<'_>,
    ) {
        let e = Self::prefixed(&self.runs[&id], e);
        if e.error == names::QUERY_EVALUATION_ERROR {
            let state = self.runs[&id].state.clone();
            self.push(
                Some(id),
                "EvaluationFailed",
                json!({"error": e.error, "cause": e.cause, "state": state}),
                now_of(env),
            );
        }
        self.fail(id, e, false, def, env);
    }

    fn run_state(
        &mut self,
        id: u64,
        state: &State,
        def: &Machine,
        env: &Env<'_>,
        requests: &mut Vec<TaskRequest>,
    ) -> Result<(), StatesError> {
        // The input and variables only, not the whole run: a clone per state is the price.
        let (input, vars) = {
            let r = &self.runs[&id];
            (r.input.clone(), r.vars.clone())
        };
        let mut context = self.context(&self.runs[&id], state, None);
        // A `.waitForTaskToken` Task's token exists before its arguments are evaluated, so
        // they can pass it on (`$$.Task.Token`).
        let token = match &state.kind {
            Kind::Task { resource, .. } if resource.ends_with(WAIT_FOR_TASK_TOKEN) => {
                let t = crate::token::new(&self.workflow, &self.name, env.random);
                if let Value::Object(c) = &mut context {
                    c.insert("Task".into(), json!({ "Token": t }));
                }
                Some(t)
            }
            _ => None,
        };
        let ctx = Ctx {
            context: &context,
            vars: &vars,
            random: env.random,
        };
        let jp = state.lang == Lang::JsonPath;
        // A JSONPath state reads only its effective input from here on (the raw input serves
        // JSONata's `$states.input`): the input moves into it, uncopied.
        let (input, effective) = if jp {
            let effective = io::filter(state.input_path.as_ref(), input, &ctx)?;
            (Value::Null, effective)
        } else {
            let effective = input.clone();
            (input, effective)
        };
        // `$states` exists in JSONata only (a JSONPath state cannot hold a JSONata field:
        // validation refuses it), and building it copies the input and the context.
        let states = if jp {
            Value::Null
        } else {
            io::states(&input, None, None, &context)
        };
        match &state.kind {
            Kind::Pass { result } => {
                if jp {
                    let r = match (&state.parameters, result) {
                        (Some(p), _) => io::payload(p, &effective, &ctx)?,
                        (None, Some(r)) => r.clone(),
                        (None, None) => effective,
                    };
                    self.finish_jsonpath(id, state, r, env, &context)
                } else {
                    self.finish_jsonata(id, state, None, env, &context)
                }
            }
            Kind::Task {
                resource,
                timeout,
                heartbeat,
                ..
            } => {
                let args = io::arguments(state, &effective, &input, &states, &ctx)?;
                let seconds = |d: &Option<Dynamic<u64>>, field: &str| {
                    d.as_ref()
                        .map(|d| eval_uint(d, field, "positive", &effective, &states, &ctx))
                        .transpose()
                };
                let timeout_seconds = seconds(timeout, "TimeoutSeconds")?;
                let heartbeat_seconds = seconds(heartbeat, "HeartbeatSeconds")?;
                let limits = (timeout_seconds, heartbeat_seconds);
                self.request(id, state, resource, args, limits, token, env, requests)
            }
            Kind::Choice { choices, default } => {
                let mut chosen = None;
                for c in choices {
                    let hit = match &c.rule {
                        Condition::JsonPath(rule) => rule.eval(&crate::jsonpath::Scope {
                            input: &effective,
                            context: &context,
                            variables: &vars,
                        })?,
                        Condition::Jsonata(t) => match io::template(t, "Condition", &states, &ctx)?
                        {
                            Value::Bool(b) => b,
                            other => {
                                return Err(StatesError::new(
                                    names::QUERY_EVALUATION_ERROR,
                                    format!(
                                        "The Condition must evaluate to a boolean, not {other}"
                                    ),
                                ));
                            }
                        },
                    };
                    if hit {
                        chosen = Some(c);
                        break;
                    }
                }
                let (next, output_t, assign) = match chosen {
                    Some(c) => (
                        c.next.clone(),
                        c.output.as_ref().or(state.output.as_ref()),
                        c.assign.as_ref().or(state.assign.as_ref()),
                    ),
                    None => match default {
                        Some(d) => (d.clone(), state.output.as_ref(), state.assign.as_ref()),
                        None => {
                            return Err(StatesError::new(
                                names::NO_CHOICE_MATCHED,
                                "No Choice rule matched and there is no Default",
                            ));
                        }
                    },
                };
                let vars = match assign {
                    Some(a) => io::assign(a, &effective, &states, &ctx)?,
                    None => Map::new(),
                };
                let output = io::plain_output(state, output_t, effective, &input, &states, &ctx)?;
                self.leave_to(id, state, output, vars, Transition::Next(next), env);
                Ok(())
            }
            Kind::Wait(how) => {
                let due = self.wait_due(how, &effective, &states, &ctx, now_of(env))?;
                let vars = match &state.assign {
                    Some(a) => io::assign(a, &effective, &states, &ctx)?,
                    None => Map::new(),
                };
                let output = io::plain_output(
                    state,
                    state.output.as_ref(),
                    effective,
                    &input,
                    &states,
                    &ctx,
                )?;
                self.runs.get_mut(&id).expect("run exists").phase =
                    Phase::Waiting { due, output, vars };
                Ok(())
            }
            Kind::Succeed => {
                let output = io::plain_output(
                    state,
                    state.output.as_ref(),
                    effective,
                    &input,
                    &states,
                    &ctx,
                )?;
                self.leave_to(id, state, output, Map::new(), Transition::End, env);
                Ok(())
            }
            Kind::Fail { error, cause } => {
                let field = |f: &Option<FailField>, name: &str| -> Result<String, StatesError> {
                    Ok(match f {
                        None => String::new(),
                        Some(FailField::Literal(s)) => s.clone(),
                        Some(FailField::Path(n)) => {
                            let v = n.eval(
                                Some(&format!("{name}Path")),
                                &crate::definition::payload::Env {
                                    scope: crate::jsonpath::Scope {
                                        input: &effective,
                                        context: &context,
                                        variables: &vars,
                                    },
                                    random: env.random,
                                },
                            )?;
                            match v {
                                Value::String(s) => s,
                                other => other.to_string(),
                            }
                        }
                        Some(FailField::Expr(t)) => match io::template(t, name, &states, &ctx)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        },
                    })
                };
                let e = StatesError::new(field(error, "Error")?, field(cause, "Cause")?);
                self.runs.get_mut(&id).expect("run exists").phase = Phase::Done(Err(e));
                Ok(())
            }
            Kind::Parallel { branches } => {
                let args = io::arguments(state, &effective, &input, &states, &ctx)?;
                self.push(Some(id), "ParallelStateStarted", json!({}), now_of(env));
                let n = branches.len();
                self.runs.get_mut(&id).expect("run exists").phase =
                    Phase::Children(Box::new(Children {
                        map: false,
                        effective,
                        inputs: vec![Some(args); n],
                        results: vec![None; n],
                        running: 0,
                        next: 0,
                        concurrency: usize::MAX,
                        tolerated_count: None,
                        tolerated_percentage: None,
                        failures: 0,
                        finished: 0,
                        distributed: false,
                    }));
                Ok(())
            }
            Kind::Map(m) => {
                self.start_map(id, state, m, effective, &states, &ctx, &context, def, env)
            }
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the pieces of one state's evaluation"
    )]
    fn wait_due(
        &self,
        how: &WaitFor,
        effective: &Value,
        states: &Value,
        ctx: &Ctx<'_>,
        now: i64,
    ) -> Result<i64, StatesError> {
        match how {
            WaitFor::Seconds(d) => {
                let secs = match d {
                    Dynamic::Literal(s) => *s,
                    Dynamic::Path(p) => {
                        let v = io::select(p, effective, ctx)?;
                        let s = v.as_i64().ok_or_else(|| StatesError::new(names::RUNTIME, format!("The SecondsPath parameter cannot be parsed as a long value: {} == {v}", p.text())))?;
                        if s < 0 {
                            return Err(StatesError::new(
                                names::RUNTIME,
                                format!(
                                    "The SecondsPath parameter references a negative value: {} == {v}",
                                    p.text()
                                ),
                            ));
                        }
                        s
                    }
                    Dynamic::Expr(t) => {
                        let v = io::template(t, "Seconds", states, ctx)?;
                        v.as_i64().filter(|s| *s >= 0).ok_or_else(|| {
                            StatesError::new(
                                names::QUERY_EVALUATION_ERROR,
                                format!(
                                    "The Seconds field must be a non-negative integer, not {v}"
                                ),
                            )
                        })?
                    }
                };
                Ok(now.saturating_add(secs.saturating_mul(1000)))
            }
            WaitFor::Timestamp(d) => {
                let (text, name) = match d {
                    Dynamic::Literal(s) => (s.clone(), names::RUNTIME),
                    Dynamic::Path(p) => match io::select(p, effective, ctx)? {
                        Value::String(s) => (s, names::RUNTIME),
                        other => (other.to_string(), names::RUNTIME),
                    },
                    Dynamic::Expr(t) => match io::template(t, "Timestamp", states, ctx)? {
                        Value::String(s) => (s, names::QUERY_EVALUATION_ERROR),
                        other => (other.to_string(), names::QUERY_EVALUATION_ERROR),
                    },
                };
                crate::time::parse_rfc3339(&text).ok_or_else(|| {
                    StatesError::new(name, format!("The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format string: {text}"))
                })
            }
        }
    }

    /// JSONPath: ResultSelector, Assign, ResultPath and OutputPath over a state's result.
    pub(super) fn finish_jsonpath(
        &mut self,
        id: u64,
        state: &State,
        result: Value,
        env: &Env<'_>,
        context: &Value,
    ) -> Result<(), StatesError> {
        let run = &self.runs[&id];
        let ctx = Ctx {
            context,
            vars: &run.vars,
            random: env.random,
        };
        let result = match &state.result_selector {
            Some(s) => io::payload(s, &result, &ctx)?,
            None => result,
        };
        let vars = match &state.assign {
            Some(a) => io::assign(a, &result, &Value::Null, &ctx)?,
            None => Map::new(),
        };
        // Without a ResultPath the result replaces the input: no copy of the input for that.
        let input = match state.result_path {
            None => Value::Null,
            Some(_) => run.input.clone(),
        };
        let combined = io::result_path(state.result_path.as_ref(), input, result)?;
        let output = io::filter(state.output_path.as_ref(), combined, &ctx)?;
        let next = state.transition.clone().unwrap_or(Transition::End);
        self.leave_to(id, state, output, vars, next, env);
        Ok(())
    }

    /// JSONata: Assign and Output over `$states` with the result.
    pub(super) fn finish_jsonata(
        &mut self,
        id: u64,
        state: &State,
        result: Option<Value>,
        env: &Env<'_>,
        context: &Value,
    ) -> Result<(), StatesError> {
        let run = &self.runs[&id];
        let ctx = Ctx {
            context,
            vars: &run.vars,
            random: env.random,
        };
        let states = io::states(&run.input, result.as_ref(), None, context);
        let vars = match &state.assign {
            Some(a) => io::assign(a, &Value::Null, &states, &ctx)?,
            None => Map::new(),
        };
        let output = match &state.output {
            Some(t) => io::template(t, "Output", &states, &ctx)?,
            None => result.unwrap_or_else(|| run.input.clone()),
        };
        let next = state.transition.clone().unwrap_or(Transition::End);
        self.leave_to(id, state, output, vars, next, env);
        Ok(())
    }

    /// A Wait's timer fired.
    pub(super) fn leave(
        &mut self,
        id: u64,
        state: &State,
        output: Value,
        vars: Map<String, Value>,
        env: &Env<'_>,
    ) {
        let next = state.transition.clone().unwrap_or(Transition::End);
        self.leave_to(id, state, output, vars, next, env);
    }

    pub(super) fn leave_to(
        &mut self,
        id: u64,
        state: &State,
        output: Value,
        vars: Map<String, Value>,
        next: Transition,
        env: &Env<'_>,
    ) {
        self.push(
            Some(id),
            &format!("{}StateExited", type_name(&state.kind)),
            log::Exited {
                name: Some(&state.name),
                output: &output,
                output_details: log::NOT_TRUNCATED,
            },
            now_of(env),
        );
        let run = self.runs.get_mut(&id).expect("run exists");
        run.vars.extend(vars);
        match next {
            Transition::Next(n) => {
                run.state = n;
                run.input = output;
                run.phase = Phase::Enter { retry: false };
            }
            Transition::End => run.phase = Phase::Done(Ok(output)),
        }
    }

    /// A state failed with `e`: retry it, catch it, or fail the run. Only a Task's own
    /// failure, a branch's or an iteration's (`catchable`) meets Retry and Catch; a failure of
    /// the state's own input/output processing ends the run, as AWS does.
    pub(super) fn fail(
        &mut self,
        id: u64,
        e: StatesError,
        catchable: bool,
        def: &Machine,
        env: &Env<'_>,
    ) {
        let now = now_of(env);
        let state: &State = Self::state_of(def, &self.runs[&id]);
        if catchable {
            let run = self.runs.get_mut(&id).expect("run exists");
            if let Some((i, r)) = state
                .retry
                .iter()
                .enumerate()
                .find(|(_, r)| matches(&r.error_equals, &e.error))
                // The first retrier that matches decides, even when it is used up.
                && run.retries[i] < r.max_attempts
            {
                {
                    let exp = i32::try_from(run.retries[i]).unwrap_or(i32::MAX);
                    let mut delay = (r.interval_seconds as f64) * r.backoff_rate.powi(exp);
                    if let Some(max) = r.max_delay_seconds {
                        delay = delay.min(max as f64);
                    }
                    if r.full_jitter {
                        delay *= (env.random.next_u64() >> 11) as f64 / (1_u64 << 53) as f64;
                    }
                    run.retries[i] += 1;
                    run.retry_count += 1;
                    run.phase = Phase::Backoff {
                        due: now.saturating_add((delay * 1000.0) as i64),
                    };
                    return;
                }
            }
            // Not retried: a Map or Parallel records its failure before any Catch.
            match state.kind {
                Kind::Map(_) => {
                    self.push(Some(id), "MapStateFailed", json!({}), now);
                }
                Kind::Parallel { .. } => {
                    self.push(Some(id), "ParallelStateFailed", json!({}), now);
                }
                _ => {}
            }
            if let Some(c) = state
                .catch
                .iter()
                .find(|c| matches(&c.error_equals, &e.error))
            {
                let error_output = json!({"Error": e.error, "Cause": e.cause});
                let run = self.runs[&id].clone();
                let context = self.context(&run, state, None);
                let ctx = Ctx {
                    context: &context,
                    vars: &run.vars,
                    random: env.random,
                };
                let caught = (|| -> Result<(Value, Map<String, Value>), StatesError> {
                    if state.lang == Lang::JsonPath {
                        let vars = match &c.assign {
                            Some(a) => io::assign(a, &error_output, &Value::Null, &ctx)?,
                            None => Map::new(),
                        };
                        Ok((
                            io::result_path(
                                c.result_path.as_ref(),
                                run.input.clone(),
                                error_output.clone(),
                            )?,
                            vars,
                        ))
                    } else {
                        let states = io::states(&run.input, None, Some(&error_output), &context);
                        let vars = match &c.assign {
                            Some(a) => io::assign(a, &Value::Null, &states, &ctx)?,
                            None => Map::new(),
                        };
                        let out = match &c.output {
                            Some(t) => io::template(t, "Output", &states, &ctx)?,
                            None => error_output.clone(),
                        };
                        Ok((out, vars))
                    }
                })();
                match caught {
                    Ok((output, vars)) => self.leave_to(
                        id,
                        state,
                        output,
                        vars,
                        Transition::Next(c.next.clone()),
                        env,
                    ),
                    Err(e) => {
                        let e = Self::prefixed(&run, e);
                        self.runs.get_mut(&id).expect("run exists").phase = Phase::Done(Err(e));
                    }
                }
                return;
            }
        }
        if let Kind::Fail { .. } = state.kind {
        } else if catchable {
            // Nothing caught it: the state is left failed (no StateExited, as AWS).
        }
        self.runs.get_mut(&id).expect("run exists").phase = Phase::Done(Err(e));
    }
}

pub(super) fn now_of(env: &Env<'_>) -> i64 {
    env.clock.now_ms()
}
