//! Task states: turning a state's arguments into a [`TaskRequest`] for the resource it names,
//! and what its result (or error) becomes: Lambda-shaped causes, the `lambda:invoke`
//! wrapper, the payload limit, the history events of each resource kind.

use serde_json::{Value, json};

use super::log;
use super::publish::{self, Built};
use super::states::{MAX_PAYLOAD_BYTES, now_of};
use super::{Env, Execution, Pending, Phase, TaskKind, Wait};
use crate::definition::{Kind, Lang, Machine, State};
use crate::env::{Target, TaskRequest, uuid_v4};
use crate::error::{StatesError, names};
use crate::resource::Resource;

impl Execution {
    #[allow(clippy::too_many_arguments, reason = "the pieces of one Task request")]
    pub(super) fn request(
        &mut self,
        id: u64,
        state: &State,
        resource: &str,
        args: Value,
        (timeout_seconds, heartbeat_seconds): (Option<u64>, Option<u64>),
        token: Option<String>,
        env: &Env<'_>,
        requests: &mut Vec<TaskRequest>,
    ) -> Result<(), StatesError> {
        let now = now_of(env);
        let parsed = Resource::parse(resource).map_err(|e| StatesError::new(names::RUNTIME, e))?;
        // A publication whose arguments make no message fails as the Task (catchable, as
        // AWS's integrations fail on a bad parameter), not as the state's processing.
        let run = self.runs.get_mut(&id).expect("run exists");
        run.attempt += 1;
        let task_id = format!("{}/{}{}/{}", self.name, run.label, state.name, run.attempt);
        let key = format!("{}/{task_id}", self.workflow);
        let built = match Self::build(&parsed, resource, &args, (&key, now)) {
            Err(e) if e.error == names::RUNTIME => return Err(e),
            r => r,
        };
        let null = Value::Null;
        let input = match &built {
            Ok((_, Some(input), ..)) => input,
            Ok((_, None, ..)) => &args,
            Err(_) => &null,
        };
        if json_len(input) > MAX_PAYLOAD_BYTES {
            return Err(StatesError::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state/task '{}' input is larger than the maximum size of {MAX_PAYLOAD_BYTES} bytes",
                    state.name
                ),
            ));
        }
        let kind = match &built {
            Ok(b) => b.2,
            Err(_) => publish_kind(&parsed),
        };
        match kind {
            TaskKind::Lambda => {
                self.push(
                    Some(id),
                    "LambdaFunctionScheduled",
                    log::LambdaScheduled { input, resource },
                    now,
                );
                self.push(Some(id), "LambdaFunctionStarted", json!({}), now);
            }
            _ => {
                let (resource_type, action) = resource_names(kind, resource);
                self.push(
                    Some(id),
                    "TaskScheduled",
                    log::TaskScheduled {
                        resource: &action,
                        resource_type,
                        parameters: &args,
                    },
                    now,
                );
                self.push(
                    Some(id),
                    "TaskStarted",
                    json!({"resource": action, "resourceType": resource_type}),
                    now,
                );
            }
        }
        let callback = token.clone().map(|token| Wait {
            token,
            timeout_due: timeout_seconds.map(|s| now.saturating_add(seconds_ms(s))),
            heartbeat_ms: heartbeat_seconds.map(seconds_ms),
        });
        let (target, input, event_ids) = match built {
            Ok((target, input, _, event_ids)) => (target, input.unwrap_or(args), event_ids),
            Err(e) => {
                self.runs.get_mut(&id).expect("run exists").phase = Phase::TaskDone {
                    resource_kind: kind,
                    result: Err(e),
                    pending: Pending::default(),
                };
                return Ok(());
            }
        };
        requests.push(TaskRequest {
            id: task_id.clone(),
            target,
            input,
            timeout_seconds,
            heartbeat_seconds,
            token,
        });
        self.runs.get_mut(&id).expect("run exists").phase = Phase::Task {
            id: task_id,
            resource_kind: kind,
            pending: Pending {
                callback,
                event_ids,
            },
        };
        Ok(())
    }

    /// The target of `resource` (written `raw`) with the Task's arguments `args`, for the
    /// Task `key` (`<workflow>/<task id>`).
    fn build(
        resource: &Resource,
        raw: &str,
        args: &Value,
        (key, now_ms): (&str, i64),
    ) -> Result<Built, StatesError> {
        let stage = |name: &str, input: Option<Value>, kind| {
            Ok((Target::Stage(name.to_owned()), input, kind, Vec::new()))
        };
        match resource {
            Resource::Stage { name, .. } if raw.starts_with("arn:") => {
                stage(name, None, TaskKind::Lambda)
            }
            Resource::Stage { name, .. } => stage(name, None, TaskKind::Stage),
            Resource::LambdaInvoke => {
                let f = args.get("FunctionName").and_then(Value::as_str).ok_or_else(|| {
                    StatesError::new(names::RUNTIME, "The lambda:invoke integration needs a FunctionName string in its Parameters")
                })?;
                match Resource::parse(f) {
                    Ok(Resource::Stage { name, .. }) => stage(
                        &name,
                        Some(args.get("Payload").cloned().unwrap_or(json!({}))),
                        TaskKind::Invoke,
                    ),
                    _ => Err(StatesError::new(
                        names::RUNTIME,
                        format!("The FunctionName '{f}' does not name a stage"),
                    )),
                }
            }
            Resource::NatsPublish => publish::nats(args),
            Resource::SnsPublish => publish::sns(args),
            Resource::PutEvents => publish::events(args, now_ms, key),
        }
    }

    /// A Task's result arrived. With `pending.callback`, it is the integration's result of a
    /// `.waitForTaskToken` Task: recorded as submitted, and the Task waits for its token.
    pub(super) fn after_task(
        &mut self,
        id: u64,
        kind: TaskKind,
        result: Result<Value, StatesError>,
        pending: Pending,
        def: &Machine,
        env: &Env<'_>,
    ) {
        let now = now_of(env);
        let state: &State = Self::state_of(def, &self.runs[&id]);
        let result = result.and_then(|v| {
            if json_len(&v) > MAX_PAYLOAD_BYTES {
                Err(StatesError::new(names::DATA_LIMIT_EXCEEDED, format!("The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.", state.name)))
            } else {
                Ok(v)
            }
        });
        let resource = match &state.kind {
            Kind::Task { resource, .. } => resource.as_str(),
            _ => "",
        };
        let (resource_type, action) = resource_names(kind, resource);
        match result {
            Ok(v) => {
                let v = match kind {
                    TaskKind::Lambda => v,
                    TaskKind::Stage => v,
                    TaskKind::Invoke => obj! {
                        "ExecutedVersion" => "$LATEST",
                        "Payload" => v,
                        "SdkHttpMetadata" => json!({"AllHttpHeaders": {}, "HttpHeaders": {}, "HttpStatusCode": 200}),
                        "SdkResponseMetadata" => obj! {"RequestId" => uuid_v4(env.random)},
                        "StatusCode" => 200,
                    },
                    TaskKind::Nats | TaskKind::Sns | TaskKind::Events => {
                        publish::result(kind, &v, &pending.event_ids, env.random)
                    }
                };
                if let Some(wait) = pending.callback {
                    self.push(
                        Some(id),
                        "TaskSubmitted",
                        obj! {"resource" => action, "resourceType" => resource_type, "output" => v, "outputDetails" => obj! {"truncated" => false}},
                        now,
                    );
                    let heartbeat_due = wait.heartbeat_ms.map(|ms| now.saturating_add(ms));
                    self.runs.get_mut(&id).expect("run exists").phase = Phase::Callback {
                        resource_kind: kind,
                        wait,
                        heartbeat_due,
                    };
                    return;
                }
                let event = if kind == TaskKind::Lambda {
                    "LambdaFunctionSucceeded"
                } else {
                    "TaskSucceeded"
                };
                let named = kind != TaskKind::Lambda;
                let details = log::Succeeded {
                    output: &v,
                    output_details: log::NOT_TRUNCATED,
                    resource: named.then_some(action.as_str()),
                    resource_type: named.then_some(resource_type),
                };
                self.push(Some(id), event, details, now);
                let context = self.context(&self.runs[&id], state, None);
                let r = if state.lang == Lang::JsonPath {
                    self.finish_jsonpath(id, state, v, env, &context)
                } else {
                    self.finish_jsonata(id, state, Some(v), env, &context)
                };
                if let Err(e) = r {
                    self.processing_failed(id, e, def, env);
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
                    // The lambda:invoke integration re-serializes the function's error
                    // payload compactly (a Lambda ARN Task passes the runtime's text as is).
                    TaskKind::Invoke => match serde_json::from_str::<Value>(&e.cause) {
                        Ok(v @ Value::Object(_)) => StatesError::new(e.error, v.to_string()),
                        _ => e,
                    },
                    _ => e,
                };
                if kind == TaskKind::Lambda {
                    self.push(
                        Some(id),
                        "LambdaFunctionFailed",
                        json!({"error": e.error, "cause": e.cause}),
                        now,
                    );
                } else {
                    self.push(
                        Some(id),
                        "TaskFailed",
                        json!({"error": e.error, "cause": e.cause, "resource": action, "resourceType": resource_type}),
                        now,
                    );
                }
                self.fail(id, e, true, def, env);
            }
        }
    }
}

/// The kind of a publishing resource (whose arguments could not be built).
fn publish_kind(r: &Resource) -> TaskKind {
    match r {
        Resource::NatsPublish => TaskKind::Nats,
        Resource::SnsPublish => TaskKind::Sns,
        Resource::PutEvents => TaskKind::Events,
        Resource::LambdaInvoke => TaskKind::Invoke,
        Resource::Stage { .. } => TaskKind::Stage,
    }
}

/// The `resourceType` and `resource` of a Task's history events, as AWS names them
/// (`lambda` / `invoke`, `sns` / `publish.waitForTaskToken`); a stage named directly is of
/// type `sluice`.
pub(super) fn resource_names(kind: TaskKind, resource: &str) -> (&'static str, String) {
    let action = |prefix: &str| resource.strip_prefix(prefix).unwrap_or(resource).to_owned();
    match kind {
        TaskKind::Invoke => ("lambda", action("arn:aws:states:::lambda:")),
        TaskKind::Nats => ("nats", action("arn:sluice:states:::nats:")),
        TaskKind::Sns => ("sns", action("arn:aws:states:::sns:")),
        TaskKind::Events => ("events", action("arn:aws:states:::events:")),
        TaskKind::Lambda | TaskKind::Stage => ("sluice", resource.to_owned()),
    }
}

/// `s` seconds in ms.
fn seconds_ms(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// The length of `v` as compact JSON, counted without writing it out.
pub(super) fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    serde_json::to_writer(&mut c, v).map_or(0, |()| c.0)
}
