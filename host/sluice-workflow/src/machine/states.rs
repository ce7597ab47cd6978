//! What each state type does when a run enters it, when its Task returns, when its children
//! finish, and how a failure meets Retry and Catch.

use serde_json::{Map, Value, json};

use super::io::{self, Ctx};
use super::{Children, Env, Execution, Phase, Run, TaskKind, type_name};
use crate::definition::{
    Condition, Dynamic, FailField, Items, Kind, Lang, Machine, MapState, State, Transition, WaitFor,
};
use crate::env::{TaskRequest, uuid_v4};
use crate::error::{StatesError, names};
use crate::resource::Resource;

/// Largest payload (input, result, output) a Task takes or gives, as AWS's 256 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// Whether `error` matches a rule's ErrorEquals (`retry`: States.ALL never retries
/// States.Runtime, which AWS treats as terminal).
fn matches(equals: &[String], error: &str, retry: bool) -> bool {
    equals.iter().any(|n| {
        n == error
            || (n == names::ALL && !(retry && error == names::RUNTIME))
            || (n == names::TASK_FAILED && error != names::TIMEOUT && error != names::RUNTIME)
    })
}

/// The start of the cause of a Map whose ItemReader would read an object: Sluice has no
/// object store to read from yet.
pub const ITEM_READER_UNSUPPORTED: &str =
    "ItemReader is not supported yet (Sluice has no object store to read items from): ";

/// An integer read by a `*Path` field: a number, or a string holding one (AWS accepts
/// `"1"` from a variable).
fn as_uint(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn integer_field(field: &str, path: &str, v: &Value) -> StatesError {
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
    fn ctx_for<'a>(
        &self,
        run: &'a Run,
        context: &'a Value,
        random: &'a dyn crate::env::Random,
    ) -> Ctx<'a> {
        Ctx {
            context,
            vars: &run.vars,
            random,
        }
    }

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
            let input = self.runs[&id].input.clone();
            let ev = self.push(
                Some(id),
                &format!("{}StateEntered", type_name(&state.kind)),
                json!({"name": state.name, "input": input, "inputDetails": {"truncated": false}}),
                now,
            );
            self.transitions += 1;
            let run = self.runs.get_mut(&id).expect("run exists");
            run.entered_event = ev;
            run.entered_ms = now;
            run.attempt = 0;
            run.retries = vec![0; state.retry.len()];
        }
        if let Err(e) = self.run_state(id, state, env, requests) {
            let e = Self::prefixed(&self.runs[&id], e);
            self.fail(id, e, false, def, env);
        }
    }

    fn run_state(
        &mut self,
        id: u64,
        state: &State,
        env: &Env<'_>,
        requests: &mut Vec<TaskRequest>,
    ) -> Result<(), StatesError> {
        let run = self.runs[&id].clone();
        let context = self.context(&run, None);
        let ctx = self.ctx_for(&run, &context, env.random);
        let jp = state.lang == Lang::JsonPath;
        let effective = if jp {
            io::filter(state.input_path.as_ref(), run.input.clone(), &ctx)?
        } else {
            run.input.clone()
        };
        let states = io::states(&run.input, None, None, &context);
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
                resource, timeout, ..
            } => {
                let args = if jp {
                    match &state.parameters {
                        Some(p) => io::payload(p, &effective, &ctx)?,
                        None => effective.clone(),
                    }
                } else {
                    match &state.arguments {
                        Some(t) => io::template(t, "Arguments", &states, &ctx)?,
                        None => run.input.clone(),
                    }
                };
                let timeout_seconds = match timeout {
                    None => None,
                    Some(Dynamic::Literal(n)) => Some(*n),
                    Some(Dynamic::Path(p)) => {
                        let v = io::select(p, &effective, &ctx)?;
                        Some(
                            as_uint(&v)
                                .ok_or_else(|| integer_field("TimeoutSecondsPath", p.text(), &v))?,
                        )
                    }
                    Some(Dynamic::Expr(t)) => {
                        let v = io::template(t, "TimeoutSeconds", &states, &ctx)?;
                        Some(as_uint(&v).ok_or_else(|| {
                            StatesError::new(
                                names::QUERY_EVALUATION_ERROR,
                                format!(
                                    "The TimeoutSeconds field must be a positive integer, not {v}"
                                ),
                            )
                        })?)
                    }
                };
                self.request(id, state, resource, &args, timeout_seconds, env, requests)
            }
            Kind::Choice { choices, default } => {
                let mut chosen = None;
                for c in choices {
                    let hit = match &c.rule {
                        Condition::JsonPath(rule) => rule.eval(&crate::jsonpath::Scope {
                            input: &effective,
                            context: &context,
                            variables: &run.vars,
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
                let output = if jp {
                    io::filter(state.output_path.as_ref(), effective, &ctx)?
                } else {
                    match output_t {
                        Some(t) => io::template(t, "Output", &states, &ctx)?,
                        None => run.input.clone(),
                    }
                };
                self.leave_to(id, state, output, vars, Transition::Next(next), env);
                Ok(())
            }
            Kind::Wait(how) => {
                let due = self.wait_due(how, &effective, &states, &ctx, now_of(env))?;
                let vars = match &state.assign {
                    Some(a) => io::assign(a, &effective, &states, &ctx)?,
                    None => Map::new(),
                };
                let output = if jp {
                    io::filter(state.output_path.as_ref(), effective, &ctx)?
                } else {
                    match &state.output {
                        Some(t) => io::template(t, "Output", &states, &ctx)?,
                        None => run.input.clone(),
                    }
                };
                self.runs.get_mut(&id).expect("run exists").phase =
                    Phase::Waiting { due, output, vars };
                Ok(())
            }
            Kind::Succeed => {
                let output = if jp {
                    io::filter(state.output_path.as_ref(), effective, &ctx)?
                } else {
                    match &state.output {
                        Some(t) => io::template(t, "Output", &states, &ctx)?,
                        None => run.input.clone(),
                    }
                };
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
                                        variables: &run.vars,
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
                let args = if jp {
                    match &state.parameters {
                        Some(p) => io::payload(p, &effective, &ctx)?,
                        None => effective.clone(),
                    }
                } else {
                    match &state.arguments {
                        Some(t) => io::template(t, "Arguments", &states, &ctx)?,
                        None => run.input.clone(),
                    }
                };
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
                    }));
                Ok(())
            }
            Kind::Map(m) => self.start_map(id, state, m, effective, &states, &ctx, &context, env),
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the pieces of one state's evaluation"
    )]
    fn start_map(
        &mut self,
        id: u64,
        state: &State,
        m: &MapState,
        effective: Value,
        states: &Value,
        ctx: &Ctx<'_>,
        context: &Value,
        env: &Env<'_>,
    ) -> Result<(), StatesError> {
        let jp = state.lang == Lang::JsonPath;
        if let Some(reader) = &m.item_reader {
            // What AWS checks before it reads the object, then the refusal.
            if let Some(Dynamic::Path(p)) = &reader.max_items {
                let v = io::select(p, &effective, ctx)?;
                as_uint(&v).ok_or_else(|| integer_field("MaxItemsPath", p.text(), &v))?;
            }
            // AWS reports reader failures without the state prefix: the run fails here,
            // not through `enter`'s prefixing.
            let e = match &reader.csv_headers {
                Some(h) if h.iter().enumerate().any(|(i, a)| h[..i].contains(a)) => {
                    StatesError::new(
                        names::ITEM_READER_FAILED,
                        "CSV headers cannot contain duplicates.",
                    )
                }
                _ => StatesError::new(
                    names::ITEM_READER_FAILED,
                    format!("{ITEM_READER_UNSUPPORTED}{}", reader.resource),
                ),
            };
            self.runs.get_mut(&id).expect("run exists").phase = Phase::Done(Err(e));
            return Ok(());
        }
        let items_v = match &m.items {
            Items::Path(None) | Items::Template(None) => {
                if jp {
                    effective.clone()
                } else {
                    states["input"].clone()
                }
            }
            Items::Path(Some(p)) => io::select(p, &effective, ctx)?,
            Items::Template(Some(t)) => io::template(t, "Items", states, ctx)?,
        };
        let Value::Array(items) = items_v else {
            return Err(StatesError::new(
                if jp {
                    names::RUNTIME
                } else {
                    names::QUERY_EVALUATION_ERROR
                },
                format!(
                    "Map state input must be an array but was: {}",
                    serde_json::to_string(&items_v).unwrap_or_default()
                ),
            ));
        };
        let uint = |d: &Option<Dynamic<u64>>, field: &str| -> Result<Option<u64>, StatesError> {
            Ok(match d {
                None => None,
                Some(Dynamic::Literal(n)) => Some(*n),
                Some(Dynamic::Path(p)) => {
                    let v = io::select(p, &effective, ctx)?;
                    Some(
                        as_uint(&v)
                            .ok_or_else(|| integer_field(&format!("{field}Path"), p.text(), &v))?,
                    )
                }
                Some(Dynamic::Expr(t)) => {
                    let v = io::template(t, field, states, ctx)?;
                    Some(as_uint(&v).ok_or_else(|| {
                        StatesError::new(
                            names::QUERY_EVALUATION_ERROR,
                            format!("The {field} field must be a non-negative integer, not {v}"),
                        )
                    })?)
                }
            })
        };
        let concurrency = uint(&m.max_concurrency, "MaxConcurrency")?;
        let tolerated_count = uint(&m.tolerated_count, "ToleratedFailureCount")?;
        let tolerated_percentage = match &m.tolerated_percentage {
            None => None,
            Some(Dynamic::Literal(p)) => Some(*p),
            Some(Dynamic::Path(p)) => {
                let v = io::select(p, &effective, ctx)?;
                let f = v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).ok_or_else(|| {
                    let shown = match &v { Value::String(s) => s.clone(), o => o.to_string() };
                    StatesError::new(names::RUNTIME, format!("The ToleratedFailurePercentagePath field refers to value \"{shown}\" which is not a valid float: {}", p.text()))
                })?;
                Some(f)
            }
            Some(Dynamic::Expr(t)) => {
                io::template(t, "ToleratedFailurePercentage", states, ctx)?.as_f64()
            }
        };
        if tolerated_percentage.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
            return Err(StatesError::new(
                names::RUNTIME,
                "ToleratedFailurePercentage must be between 0 and 100.",
            ));
        }
        // The iterations' inputs: ItemSelector over each item (with `$$.Map.Item`), then
        // ItemBatcher's grouping.
        let run = self.runs[&id].clone();
        let mut inputs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let v = if let Some(sel) = &m.item_selector {
                let c = self.context(&run, Some((i, item)));
                io::payload(
                    sel,
                    &effective,
                    &Ctx {
                        context: &c,
                        vars: ctx.vars,
                        random: ctx.random,
                    },
                )?
            } else if let Some(t) = &m.item_selector_template {
                let c = self.context(&run, Some((i, item)));
                let st = io::states(&run.input, None, None, &c);
                io::template(
                    t,
                    "ItemSelector",
                    &st,
                    &Ctx {
                        context: &c,
                        vars: ctx.vars,
                        random: ctx.random,
                    },
                )?
            } else {
                item.clone()
            };
            inputs.push(v);
        }
        if let Some(b) = &m.batcher {
            let max_items = uint(&b.max_items, "MaxItemsPerBatch")?
                .unwrap_or(u64::MAX)
                .max(1);
            let max_bytes = uint(&b.max_bytes, "MaxInputBytesPerBatch")?.unwrap_or(u64::MAX);
            let mut batches = Vec::new();
            let mut cur: Vec<Value> = Vec::new();
            let mut bytes = 0_u64;
            for v in inputs {
                let n = serde_json::to_vec(&v).map_or(0, |b| b.len() as u64);
                if !cur.is_empty() && (cur.len() as u64 >= max_items || bytes + n > max_bytes) {
                    batches.push(std::mem::take(&mut cur));
                    bytes = 0;
                }
                bytes += n;
                cur.push(v);
            }
            if !cur.is_empty() {
                batches.push(cur);
            }
            inputs = batches
                .into_iter()
                .map(|items| {
                    let mut o = Map::new();
                    if let Some(bi) = &b.batch_input {
                        o.insert("BatchInput".into(), bi.clone());
                    }
                    o.insert("Items".into(), Value::Array(items));
                    Value::Object(o)
                })
                .collect();
        }
        self.push(
            Some(id),
            "MapStateStarted",
            json!({"length": inputs.len()}),
            now_of(env),
        );
        let _ = context;
        let n = inputs.len();
        self.runs.get_mut(&id).expect("run exists").phase = Phase::Children(Box::new(Children {
            map: true,
            effective,
            inputs: inputs.into_iter().map(Some).collect(),
            results: vec![None; n],
            running: 0,
            next: 0,
            concurrency: match concurrency {
                None | Some(0) => usize::MAX,
                Some(c) => usize::try_from(c).unwrap_or(usize::MAX),
            },
            tolerated_count,
            tolerated_percentage,
            failures: 0,
        }));
        Ok(())
    }

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

    #[allow(clippy::too_many_arguments, reason = "the pieces of one Task request")]
    fn request(
        &mut self,
        id: u64,
        state: &State,
        resource: &str,
        args: &Value,
        timeout_seconds: Option<u64>,
        env: &Env<'_>,
        requests: &mut Vec<TaskRequest>,
    ) -> Result<(), StatesError> {
        let now = now_of(env);
        let parsed = Resource::parse(resource).map_err(|e| StatesError::new(names::RUNTIME, e))?;
        let (stage, input, kind) = match &parsed {
            Resource::Stage { name, .. } if resource.starts_with("arn:") => {
                (name.clone(), args.clone(), TaskKind::Lambda)
            }
            Resource::Stage { name, .. } => (name.clone(), args.clone(), TaskKind::Stage),
            Resource::LambdaInvoke => {
                let f = args.get("FunctionName").and_then(Value::as_str).ok_or_else(|| {
                    StatesError::new(names::RUNTIME, "The lambda:invoke integration needs a FunctionName string in its Parameters")
                })?;
                let name = match Resource::parse(f) {
                    Ok(Resource::Stage { name, .. }) => name,
                    _ => {
                        return Err(StatesError::new(
                            names::RUNTIME,
                            format!("The FunctionName '{f}' does not name a stage"),
                        ));
                    }
                };
                (
                    name,
                    args.get("Payload").cloned().unwrap_or(json!({})),
                    TaskKind::Invoke,
                )
            }
        };
        if serde_json::to_vec(&input).map_or(0, |b| b.len()) > MAX_PAYLOAD_BYTES {
            return Err(StatesError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state/task '{}' input is larger than the maximum size of {MAX_PAYLOAD_BYTES} bytes",
                    state.name
                ),
            ));
        }
        let run = self.runs.get_mut(&id).expect("run exists");
        run.attempt += 1;
        let task_id = format!("{}/{}{}/{}", self.name, run.label, state.name, run.attempt);
        match kind {
            TaskKind::Lambda => {
                self.push(
                    Some(id),
                    "LambdaFunctionScheduled",
                    json!({"input": input, "resource": resource}),
                    now,
                );
                self.push(Some(id), "LambdaFunctionStarted", json!({}), now);
            }
            TaskKind::Stage | TaskKind::Invoke => {
                self.push(
                    Some(id),
                    "TaskScheduled",
                    json!({"resource": resource, "resourceType": "sluice", "parameters": args}),
                    now,
                );
                self.push(Some(id), "TaskStarted", json!({"resource": resource}), now);
            }
        }
        requests.push(TaskRequest {
            id: task_id.clone(),
            stage,
            input,
            timeout_seconds,
        });
        self.runs.get_mut(&id).expect("run exists").phase = Phase::Task {
            id: task_id,
            resource_kind: kind,
        };
        Ok(())
    }

    /// A Task's result arrived.
    pub(super) fn after_task(
        &mut self,
        id: u64,
        kind: TaskKind,
        result: Result<Value, StatesError>,
        def: &Machine,
        env: &Env<'_>,
    ) {
        let now = now_of(env);
        let state: &State = Self::state_of(def, &self.runs[&id]);
        let result = result.and_then(|v| {
            if serde_json::to_vec(&v).map_or(0, |b| b.len()) > MAX_PAYLOAD_BYTES {
                Err(StatesError::new(names::DATA_LIMIT_EXCEEDED, format!("The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.", state.name)))
            } else {
                Ok(v)
            }
        });
        match result {
            Ok(v) => {
                let v = match kind {
                    TaskKind::Lambda => {
                        self.push(
                            Some(id),
                            "LambdaFunctionSucceeded",
                            json!({"output": v, "outputDetails": {"truncated": false}}),
                            now,
                        );
                        v
                    }
                    TaskKind::Stage => {
                        self.push(
                            Some(id),
                            "TaskSucceeded",
                            json!({"output": v, "outputDetails": {"truncated": false}}),
                            now,
                        );
                        v
                    }
                    TaskKind::Invoke => {
                        let wrapped = json!({
                            "ExecutedVersion": "$LATEST",
                            "Payload": v,
                            "SdkHttpMetadata": {"AllHttpHeaders": {}, "HttpHeaders": {}, "HttpStatusCode": 200},
                            "SdkResponseMetadata": {"RequestId": uuid_v4(env.random)},
                            "StatusCode": 200,
                        });
                        self.push(
                            Some(id),
                            "TaskSucceeded",
                            json!({"output": wrapped, "outputDetails": {"truncated": false}}),
                            now,
                        );
                        wrapped
                    }
                };
                let context = self.context(&self.runs[&id], None);
                let r = if state.lang == Lang::JsonPath {
                    self.finish_jsonpath(id, state, v, env, &context)
                } else {
                    self.finish_jsonata(id, state, Some(v), env, &context)
                };
                if let Err(e) = r {
                    let e = Self::prefixed(&self.runs[&id], e);
                    self.fail(id, e, false, def, env);
                }
            }
            Err(e) => {
                let e = match kind {
                    // Lambda's causes are JSON objects; a stage's plain cause is wrapped so.
                    TaskKind::Lambda | TaskKind::Invoke
                        if e.error != names::TIMEOUT && !e.cause.trim_start().starts_with('{') =>
                    {
                        StatesError::new(
                            e.error.clone(),
                            json!({"errorMessage": e.cause, "errorType": e.error}).to_string(),
                        )
                    }
                    _ => e,
                };
                let kind_name = if kind == TaskKind::Lambda {
                    "LambdaFunctionFailed"
                } else {
                    "TaskFailed"
                };
                self.push(
                    Some(id),
                    kind_name,
                    json!({"error": e.error, "cause": e.cause}),
                    now,
                );
                self.fail(id, e, true, def, env);
            }
        }
    }

    /// JSONPath: ResultSelector, Assign, ResultPath and OutputPath over a state's result.
    fn finish_jsonpath(
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
        let combined = io::result_path(state.result_path.as_ref(), run.input.clone(), result)?;
        let output = io::filter(state.output_path.as_ref(), combined, &ctx)?;
        let next = state.transition.clone().unwrap_or(Transition::End);
        self.leave_to(id, state, output, vars, next, env);
        Ok(())
    }

    /// JSONata: Assign and Output over `$states` with the result.
    fn finish_jsonata(
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

    fn leave_to(
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
            json!({"name": state.name, "output": output, "outputDetails": {"truncated": false}}),
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
                .find(|(_, r)| matches(&r.error_equals, &e.error, true))
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
                    run.phase = Phase::Backoff {
                        due: now.saturating_add((delay * 1000.0) as i64),
                    };
                    return;
                }
            }
            if let Some(c) = state
                .catch
                .iter()
                .find(|c| matches(&c.error_equals, &e.error, false))
            {
                let error_output = json!({"Error": e.error, "Cause": e.cause});
                let run = self.runs[&id].clone();
                let context = self.context(&run, None);
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

    /// Drive a Parallel's branches or a Map's iterations; `true` if anything moved.
    pub(super) fn children(
        &mut self,
        id: u64,
        mut c: Children,
        def: &Machine,
        env: &Env<'_>,
    ) -> bool {
        let now = now_of(env);
        let state: &State = Self::state_of(def, &self.runs[&id]);
        let mut progressed = false;
        // A failure: Parallel fails at once; Map once past its tolerance.
        let failed: Vec<StatesError> = c
            .results
            .iter()
            .flatten()
            .filter_map(|r| r.as_ref().err().cloned())
            .collect();
        c.failures = failed.len() as u64;
        if let Some(first) = failed.first() {
            let total = c.results.len().max(1) as f64;
            let tolerated = c.map
                && (c.tolerated_count.is_some_and(|n| c.failures <= n)
                    || c.tolerated_percentage
                        .is_some_and(|p| (c.failures as f64) * 100.0 / total <= p));
            if !tolerated {
                self.cancel_children(id);
                let (kind, err) = if c.map {
                    let err = if c.tolerated_count.is_some() || c.tolerated_percentage.is_some() {
                        StatesError::new(
                            names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            "The specified tolerated failure threshold was exceeded",
                        )
                    } else {
                        first.clone()
                    };
                    ("MapStateFailed", err)
                } else {
                    ("ParallelStateFailed", first.clone())
                };
                self.push(Some(id), kind, json!({}), now);
                self.fail(id, err, true, def, env);
                return true;
            }
        }
        // Start what the concurrency allows.
        while c.running < c.concurrency && c.next < c.inputs.len() {
            let slot = c.next;
            c.next += 1;
            c.running += 1;
            let input = c.inputs[slot].take().unwrap_or(Value::Null);
            let run = &self.runs[&id];
            let (addr_idx, start, label) = match &state.kind {
                Kind::Parallel { branches } => (
                    slot,
                    branches[slot].start_at.clone(),
                    format!("{}{}/{slot}/", run.label, state.name),
                ),
                Kind::Map(m) => (
                    0,
                    m.processor.start_at.clone(),
                    format!("{}{}/{slot}/", run.label, state.name),
                ),
                _ => unreachable!("children belong to Parallel and Map states"),
            };
            let mut addr = run.addr.clone();
            addr.push((state.name.clone(), addr_idx));
            let vars = run.vars.clone();
            if c.map {
                self.push(
                    Some(id),
                    "MapIterationStarted",
                    json!({"index": slot, "name": state.name}),
                    now,
                );
            }
            self.spawn(addr, Some((id, slot)), label, start, input, vars);
            progressed = true;
        }
        if c.results.iter().all(Option::is_some) {
            let results: Vec<Value> = std::mem::take(&mut c.results)
                .into_iter()
                .map(|r| match r.expect("all present") {
                    Ok(v) => v,
                    Err(e) => json!({"Error": e.error, "Cause": e.cause}),
                })
                .collect();
            self.push(
                Some(id),
                if c.map {
                    "MapStateSucceeded"
                } else {
                    "ParallelStateSucceeded"
                },
                json!({}),
                now,
            );
            let context = self.context(&self.runs[&id], None);
            let r = if state.lang == Lang::JsonPath {
                self.finish_jsonpath(id, state, Value::Array(results), env, &context)
            } else {
                self.finish_jsonata(id, state, Some(Value::Array(results)), env, &context)
            };
            if let Err(e) = r {
                let e = Self::prefixed(&self.runs[&id], e);
                self.fail(id, e, false, def, env);
            }
            return true;
        }
        if let Some(run) = self.runs.get_mut(&id) {
            run.phase = Phase::Children(Box::new(c));
        }
        progressed
    }
}

fn now_of(env: &Env<'_>) -> i64 {
    env.clock.now_ms()
}
