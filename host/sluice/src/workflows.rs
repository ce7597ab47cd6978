//! The workflow routes on the host's durable engine ([`sluice_api::WorkflowService`]): a
//! workflow put over the API is validated, recorded in the registry and registered with the
//! running engine; executions, their history and the task-token callbacks are the engine's
//! own calls, run off the async runtime (each commits, or waits for one).

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_api::workflows::Reply;
use sluice_api::{Callback, Page, Problem, StatusCode, WorkflowService};
use sluice_durable::{Engine, EngineError, ExecutionType};
use sluice_workflow::machine::Status;

use crate::registry::{Kind, Record, Registry};
use crate::triggers::Triggers;
use crate::up::WorkflowDecl;

/// The workflow service of a running host.
pub(crate) struct HostWorkflows {
    pub engine: Arc<Engine>,
    pub registry: Arc<Registry>,
    pub triggers: Arc<Triggers>,
}

/// An engine refusal as a problem, by AWS's error name (also given as `error`).
fn problem(e: &EngineError) -> Problem {
    let status = match e {
        EngineError::WorkflowDoesNotExist(_)
        | EngineError::ExecutionDoesNotExist(_)
        | EngineError::TaskDoesNotExist(_) => StatusCode::NOT_FOUND,
        EngineError::ExecutionAlreadyExists(_) | EngineError::TaskTimedOut => StatusCode::CONFLICT,
        EngineError::ExecutionLimitExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
        EngineError::Invalid(_) | EngineError::InvalidOutput(_) => StatusCode::UNPROCESSABLE_ENTITY,
        EngineError::InvalidToken(_) => StatusCode::BAD_REQUEST,
        EngineError::Store(_) | EngineError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut p = Problem::new(status, &kebab(e.name()), e.to_string());
    p.extensions.insert("error".into(), e.name().into());
    p
}

/// `ExecutionAlreadyExists` → `execution-already-exists`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

/// Run `f` on the engine off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(unavailable)?
        .map_err(|e| problem(&e))
}

fn kind_name(k: ExecutionType) -> &'static str {
    match k {
        ExecutionType::Standard => "STANDARD",
        ExecutionType::Express => "EXPRESS",
    }
}

fn status(s: Option<&str>) -> Result<Status, Problem> {
    match s.unwrap_or("RUNNING") {
        "RUNNING" => Ok(Status::Running),
        "SUCCEEDED" => Ok(Status::Succeeded),
        "FAILED" => Ok(Status::Failed),
        "TIMED_OUT" => Ok(Status::TimedOut),
        "ABORTED" => Ok(Status::Aborted),
        other => Err(Problem::bad_request(format!(
            "'{other}' is not a status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED"
        ))
        .at("status")),
    }
}

/// A fresh execution name: 32 random hex digits.
fn fresh_name() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source");
    hex::encode(b)
}

impl HostWorkflows {
    fn record(&self, name: &str) -> Result<Option<Record>, Problem> {
        Ok(self
            .registry
            .records(Kind::Workflow)
            .map_err(unavailable)?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r))
    }

    fn known(&self, name: &str) -> Result<(), Problem> {
        if self.engine.workflows().iter().any(|(w, _)| w == name) {
            Ok(())
        } else {
            Err(problem(&EngineError::WorkflowDoesNotExist(name.to_owned())))
        }
    }
}

impl WorkflowService for HostWorkflows {
    fn put(
        &self,
        name: String,
        definition: Value,
        kind: Option<String>,
    ) -> Reply<'_, (bool, Value)> {
        Box::pin(async move {
            let kind = match kind.as_deref().unwrap_or("STANDARD") {
                "STANDARD" => ExecutionType::Standard,
                "EXPRESS" => ExecutionType::Express,
                other => {
                    return Err(Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "invalid-body",
                        format!("'{other}' is not a type: STANDARD or EXPRESS"),
                    )
                    .at("/type"));
                }
            };
            let machine = sluice_workflow::definition::parse(&definition).map_err(|invalid| {
                let first = invalid.0.first();
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid-definition",
                    first.map_or_else(|| "the definition is invalid".into(), ToString::to_string),
                );
                if let Some(f) = first {
                    p.field = Some(format!("/definition{}", f.pointer));
                }
                let all: Vec<Value> = invalid
                    .0
                    .iter()
                    .map(|i| json!({"code": i.code, "message": i.message, "pointer": format!("/definition{}", i.pointer)}))
                    .collect();
                p.extensions.insert("problems".into(), all.into());
                p
            })?;
            let created = !self.engine.workflows().iter().any(|(w, _)| *w == name);
            let decl = WorkflowDecl {
                name: name.clone(),
                definition: definition.clone(),
                kind,
            };
            // Registered first (the engine checks the name and the type's limits), then
            // recorded: a refused workflow is not stored.
            self.engine
                .register(&name, machine, kind)
                .map_err(|e| problem(&e))?;
            let record = Record {
                source: "api".into(),
                definition: serde_json::to_value(&decl).map_err(unavailable)?,
            };
            self.registry
                .put(Kind::Workflow, &name, &record)
                .map_err(unavailable)?;
            eprintln!(
                "workflow {name} {} over the API",
                if created { "created" } else { "replaced" }
            );
            Ok((created, json!({"name": name, "type": kind_name(kind)})))
        })
    }

    fn list(&self) -> Reply<'_, Value> {
        Box::pin(async move {
            let workflows: Vec<Value> = self
                .engine
                .workflows()
                .into_iter()
                .map(|(n, k)| json!({"name": n, "type": kind_name(k)}))
                .collect();
            Ok(json!({ "workflows": workflows }))
        })
    }

    fn get(&self, name: String) -> Reply<'_, Value> {
        Box::pin(async move {
            self.known(&name)?;
            let (definition, kind) = match self.record(&name)? {
                Some(r) => (
                    r.definition["definition"].clone(),
                    r.definition["type"].clone(),
                ),
                None => (Value::Null, Value::Null),
            };
            Ok(json!({
                "name": name,
                "type": kind,
                "definition": definition,
                "triggers": self.triggers.starting(&name),
            }))
        })
    }

    fn delete(&self, name: String) -> Reply<'_, ()> {
        Box::pin(async move {
            self.known(&name)?;
            let triggers = self.triggers.starting(&name);
            if !triggers.is_empty() {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "in-use",
                    format!(
                        "the triggers [{}] start '{name}'; delete them first",
                        triggers.join(", ")
                    ),
                ));
            }
            let engine = self.engine.clone();
            let n = name.clone();
            let running = blocking(move || engine.list(&n, Status::Running, 1, None)).await?;
            if !running.executions.is_empty() {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "in-use",
                    format!("'{name}' has running executions; stop them or let them end first"),
                ));
            }
            self.registry
                .remove(Kind::Workflow, &name)
                .map_err(unavailable)?;
            self.engine.unregister(&name);
            Ok(())
        })
    }

    fn start(
        &self,
        workflow: String,
        name: Option<String>,
        input: Value,
    ) -> Reply<'_, (bool, Value)> {
        Box::pin(async move {
            let engine = self.engine.clone();
            let name = name.unwrap_or_else(fresh_name);
            let started = blocking(move || engine.start(&workflow, &name, input)).await?;
            Ok((
                started.created,
                json!({"id": started.id, "started_ms": started.started_ms, "created": started.created}),
            ))
        })
    }

    fn executions(&self, workflow: String, page: Page) -> Reply<'_, Value> {
        Box::pin(async move {
            self.known(&workflow)?;
            let status = status(page.status.as_deref())?;
            let engine = self.engine.clone();
            let listed = blocking(move || {
                engine.list(
                    &workflow,
                    status,
                    page.limit.unwrap_or(100),
                    page.next.as_deref(),
                )
            })
            .await?;
            Ok(json!({"executions": listed.executions, "next": listed.next}))
        })
    }

    fn describe(&self, workflow: String, execution: String) -> Reply<'_, Value> {
        Box::pin(async move {
            let engine = self.engine.clone();
            let d = blocking(move || engine.describe(&format!("{workflow}/{execution}"))).await?;
            serde_json::to_value(d).map_err(unavailable)
        })
    }

    fn history(&self, workflow: String, execution: String, page: Page) -> Reply<'_, Value> {
        Box::pin(async move {
            let engine = self.engine.clone();
            let h = blocking(move || {
                engine.history(
                    &format!("{workflow}/{execution}"),
                    page.reverse.unwrap_or(false),
                    page.limit.unwrap_or(100),
                    page.next.as_deref(),
                )
            })
            .await
            .map_err(|mut p| {
                // A page token the history does not know is the caller's to fix.
                if p.status == 422 {
                    p.status = 400;
                    p.field = Some("next".into());
                }
                p
            })?;
            Ok(json!({"events": h.events, "next": h.next}))
        })
    }

    fn stop(
        &self,
        workflow: String,
        execution: String,
        error: Option<String>,
        cause: Option<String>,
    ) -> Reply<'_, Value> {
        Box::pin(async move {
            let engine = self.engine.clone();
            let d = blocking(move || {
                engine.stop(
                    &format!("{workflow}/{execution}"),
                    error.as_deref(),
                    cause.as_deref(),
                )
            })
            .await?;
            serde_json::to_value(d).map_err(unavailable)
        })
    }

    fn callback(&self, token: String, callback: Callback) -> Reply<'_, ()> {
        Box::pin(async move {
            let engine = self.engine.clone();
            blocking(move || match callback {
                Callback::Success(output) => engine.send_task_success(&token, output),
                Callback::Failure(error, cause) => {
                    engine.send_task_failure(&token, error.as_deref(), cause.as_deref())
                }
                Callback::Heartbeat => engine.send_task_heartbeat(&token),
            })
            .await
        })
    }
}
