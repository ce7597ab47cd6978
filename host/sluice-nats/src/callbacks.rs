//! Task tokens over NATS: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat as
//! request/reply on `sluice.task.success`, `sluice.task.failure` and `sluice.task.heartbeat`
//! (the prefix is configurable), with AWS's request shapes:
//!
//! ```text
//! nats request sluice.task.success   '{"taskToken": "sl1....", "output": "{\"approved\": true}"}'
//! nats request sluice.task.failure   '{"taskToken": "sl1....", "error": "Order.Rejected", "cause": "too big"}'
//! nats request sluice.task.heartbeat '{"taskToken": "sl1...."}'
//! ```
//!
//! `output` is JSON text, as in AWS's API (a JSON value that is not a string is taken as the
//! output itself). The reply comes once the effect is committed: `{}`, or
//! `{"error": "<name>", "message": "..."}` with AWS's names (`TaskTimedOut`,
//! `TaskDoesNotExist`, `InvalidToken`, `InvalidOutput`, `InvalidArgument`, ...). Core NATS
//! delivers at most once: a caller that gets no reply sends again, and a repeat of a callback
//! that was applied is refused as `TaskTimedOut`, exactly as AWS refuses it. Hosts subscribe
//! in one queue group, so each request is handled by one of them.

use std::sync::Arc;

use async_nats::{Client, Message};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_durable::{Engine, EngineError};
use tokio::sync::{Semaphore, watch};

/// The default subject prefix.
pub const DEFAULT_PREFIX: &str = "sluice.task";

/// Requests handled at once (each holds a blocking thread until its commit).
const IN_FLIGHT: usize = 64;

/// The three requests, in AWS's field names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    task_token: String,
    #[serde(default)]
    output: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    cause: Option<String>,
}

/// Serves task-token callbacks for `engine` on `<prefix>.success|failure|heartbeat`.
pub struct TaskCallbacks {
    client: Client,
    engine: Arc<Engine>,
    prefix: String,
}

impl std::fmt::Debug for TaskCallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskCallbacks")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TaskCallbacks {
    /// Callbacks on `client` for `engine`, under `prefix` ([`DEFAULT_PREFIX`] by default).
    pub fn new(client: Client, engine: Arc<Engine>, prefix: &str) -> Self {
        Self {
            client,
            engine,
            prefix: prefix.to_owned(),
        }
    }

    /// Subscribe, then serve until `stop` turns true; requests in flight finish first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> Result<(), String> {
        let subject = format!("{}.*", self.prefix);
        let mut sub = self
            .client
            .queue_subscribe(subject.clone(), "sluice-task-callbacks".into())
            .await
            .map_err(|e| format!("subscribing to {subject}: {e}"))?;
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        loop {
            let msg = tokio::select! {
                m = sub.next() => m,
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(msg) = msg else { break };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (client, engine, prefix) = (
                self.client.clone(),
                self.engine.clone(),
                self.prefix.clone(),
            );
            tokio::spawn(async move {
                let reply = handle(&engine, &prefix, &msg).await;
                if let Some(to) = msg.reply.clone() {
                    let body = serde_json::to_vec(&reply).unwrap_or_default();
                    if let Err(e) = client.publish(to, body.into()).await {
                        tracing::debug!("replying to a task callback: {e}");
                    }
                }
                drop(slot);
            });
        }
        // Wait for the requests in flight.
        let _ = slots.acquire_many(IN_FLIGHT as u32).await;
        Ok(())
    }
}

/// What one request does, as its reply body.
async fn handle(engine: &Arc<Engine>, prefix: &str, msg: &Message) -> Value {
    let verb = msg
        .subject
        .as_str()
        .strip_prefix(prefix)
        .and_then(|s| s.strip_prefix('.'))
        .unwrap_or_default()
        .to_owned();
    let req: Request = match serde_json::from_slice(&msg.payload) {
        Ok(r) => r,
        Err(e) => {
            return refusal(
                "InvalidArgument",
                &format!("the request does not parse: {e}"),
            );
        }
    };
    let output = match (&verb[..], req.output) {
        ("success", Some(Value::String(text))) => match serde_json::from_str::<Value>(&text) {
            Ok(v) => Some(v),
            Err(e) => return refusal("InvalidOutput", &format!("output is not JSON text: {e}")),
        },
        ("success", Some(v)) => Some(v),
        ("success", None) => return refusal("InvalidOutput", "SendTaskSuccess needs an output"),
        (_, _) => None,
    };
    let engine = engine.clone();
    let token = req.task_token;
    let (error, cause) = (req.error, req.cause);
    let done = tokio::task::spawn_blocking(move || match &verb[..] {
        "success" => engine.send_task_success(&token, output.unwrap_or(Value::Null)),
        "failure" => engine.send_task_failure(&token, error.as_deref(), cause.as_deref()),
        "heartbeat" => engine.send_task_heartbeat(&token),
        other => Err(EngineError::Invalid(format!(
            "'{other}' is not a task callback: success, failure or heartbeat"
        ))),
    })
    .await;
    match done {
        Ok(Ok(())) => json!({}),
        Ok(Err(e)) => refusal(e.name(), &e.to_string()),
        Err(e) => refusal("ServiceUnavailable", &e.to_string()),
    }
}

fn refusal(name: &str, message: &str) -> Value {
    json!({"error": name, "message": message})
}
