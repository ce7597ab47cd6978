//! Task states: turning a state's arguments into a [`TaskRequest`] for the resource it names,
//! and what its result (or error) becomes: Lambda-shaped causes, the `lambda:invoke`
//! wrapper, the payload limit, the history events of each resource kind.

use serde_json::{Value, json};

use super::states::{MAX_PAYLOAD_BYTES, now_of};
use super::{Env, Execution, Phase, TaskKind};
use crate::definition::{Lang, Machine, State};
use crate::env::{TaskRequest, uuid_v4};
use crate::error::{StatesError, names};
use crate::resource::Resource;

impl Execution {
    #[allow(clippy::too_many_arguments, reason = "the pieces of one Task request")]
    pub(super) fn request(
        &mut self,
        id: u64,
        state: &State,
        resource: &str,
        args: &Value,
        (timeout_seconds, heartbeat_seconds): (Option<u64>, Option<u64>),
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
            heartbeat_seconds,
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
}
