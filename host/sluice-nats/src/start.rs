//! A workflow trigger: a durable pull consumer whose messages each start one durable workflow
//! execution, named after the message's event id, so a redelivered or republished message
//! never starts a second one.
//!
//! A batch of messages becomes one [`Engine::start_many`] call (one commit), and the messages
//! are acknowledged only after it: a crash before the commit redelivers them, a crash after
//! it redelivers them into starts that already exist (acknowledged at once). The execution's
//! end publishes through the outbox, in the commit that closes it: the output to the
//! trigger's `output_subject`, or the input with the error to its dead-letter subject.
//!
//! An input that is not JSON cannot start an execution: it is dead-lettered at once with
//! `Sluice.InvalidInput`. Content patterns filter as for stage triggers; start order does not
//! matter, so partitions do not apply.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::{Context, Message};
use futures::StreamExt;
use serde_json::Value;
use sluice_durable::{Completion, Engine, EngineError, Start};
use sluice_model::names;
use tokio::sync::watch;

use crate::pattern::EventPattern;
use crate::trigger::{TriggerConfig, TriggerError, TriggerStats, ensure_consumer};
use crate::{DLQ_ORIGINAL_SUBJECT, to_event};

/// The error of a message whose data is not JSON, so no execution can take it as input.
pub const INVALID_INPUT: &str = "Sluice.InvalidInput";

/// A running binding of a stream to a workflow.
pub struct WorkflowTrigger {
    js: Context,
    config: TriggerConfig,
    workflow: String,
    engine: Arc<Engine>,
}

impl std::fmt::Debug for WorkflowTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowTrigger")
            .field("config", &self.config)
            .field("workflow", &self.workflow)
            .finish_non_exhaustive()
    }
}

/// The execution name of an event id: the id itself when it is a valid name, else its
/// valid characters (at most 60) and a hash of the whole id, so distinct ids stay distinct.
pub fn execution_name(event_id: &str) -> String {
    if sluice_durable::keys::valid_name(event_id) {
        return event_id.to_owned();
    }
    let kept: String = event_id
        .chars()
        .map(|c| {
            if c == '/' || c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(60)
        .collect();
    format!(
        "{kept}-{}",
        sluice_runtime::fingerprint(event_id.as_bytes())
    )
}

impl WorkflowTrigger {
    /// A trigger starting `workflow` on `engine` for the messages `config` selects.
    pub fn new(js: Context, config: TriggerConfig, workflow: &str, engine: Arc<Engine>) -> Self {
        Self {
            js,
            config,
            workflow: workflow.to_owned(),
            engine,
        }
    }

    fn completion(&self, subject: &str) -> Completion {
        Completion {
            output_subject: self.config.output_subject.clone(),
            dead_letter_subject: Some(self.config.dead_letter_subject()),
            headers: vec![(DLQ_ORIGINAL_SUBJECT.to_owned(), subject.to_owned())],
        }
    }

    /// Consume until `shutdown` becomes true; the batch in hand is started and acknowledged
    /// first.
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<TriggerStats, TriggerError> {
        let pattern = match &self.config.pattern {
            None => None,
            Some(p) => Some(
                EventPattern::parse(p).map_err(|source| TriggerError::Pattern {
                    trigger: self.config.name.clone(),
                    source,
                })?,
            ),
        };
        let consumer = loop {
            match ensure_consumer(&self.js, &self.config).await {
                Ok(c) => break c,
                Err(e @ TriggerError::Conflict { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!("{e}; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.changed() => return Ok(TriggerStats::default()),
                    }
                }
            }
        };
        let mut stats = TriggerStats::default();
        while !*shutdown.borrow() {
            let batch = consumer
                .fetch()
                .max_messages(self.config.batch_size.max(1))
                .expires(Duration::from_millis(self.config.max_wait_ms.max(100)))
                .messages()
                .await;
            let mut messages = match batch {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!("workflow trigger {}: {e}; retrying", self.config.name);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            };
            let mut got = Vec::new();
            while let Some(m) = messages.next().await {
                match m {
                    Ok(m) => got.push(m),
                    Err(e) => {
                        tracing::warn!("workflow trigger {}: {e}", self.config.name);
                        break;
                    }
                }
            }
            if got.is_empty() {
                continue;
            }
            stats.batches += 1;
            self.batch(got, pattern.as_ref(), &mut stats).await;
        }
        Ok(stats)
    }

    /// Start one batch's executions in one commit, then settle its messages.
    async fn batch(
        &self,
        got: Vec<Message>,
        pattern: Option<&EventPattern>,
        stats: &mut TriggerStats,
    ) {
        let mut starts = Vec::new();
        let mut kept = Vec::new();
        for m in got {
            let event = to_event(&m);
            if pattern.is_some_and(|p| !p.matches(&event)) {
                stats.filtered += 1;
                let _ = m.ack().await;
                continue;
            }
            let input: Value = match serde_json::from_slice(&m.payload) {
                Ok(v) => v,
                Err(e) => {
                    self.dead_letter(&m, &format!("the message data is not JSON: {e}"))
                        .await;
                    stats.dead_lettered += 1;
                    continue;
                }
            };
            starts.push(Start {
                name: execution_name(&event.id),
                input,
                completion: Some(self.completion(m.subject.as_str())),
            });
            kept.push(m);
        }
        if kept.is_empty() {
            return;
        }
        let engine = self.engine.clone();
        let workflow = self.workflow.clone();
        let started =
            tokio::task::spawn_blocking(move || engine.start_many(&workflow, starts)).await;
        let results = match started {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(
                    "workflow trigger {}: starting a batch: {e}; it will be redelivered",
                    self.config.name
                );
                for m in &kept {
                    let _ = m
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(
                            self.config.backoff_ms,
                        ))))
                        .await;
                    stats.retried += 1;
                }
                return;
            }
            Err(e) => {
                tracing::error!("workflow trigger {}: {e}", self.config.name);
                return;
            }
        };
        for (m, r) in kept.iter().zip(results) {
            match r {
                // Started, already running (a redelivery), or already closed: done either way.
                Ok(_) | Err(EngineError::ExecutionAlreadyExists(_)) => {
                    let _ = m.double_ack().await;
                    stats.acked += 1;
                }
                Err(EngineError::ExecutionLimitExceeded(_)) => {
                    let _ = m
                        .ack_with(AckKind::Nak(Some(Duration::from_millis(
                            self.config.backoff_ms,
                        ))))
                        .await;
                    stats.retried += 1;
                }
                Err(e) => {
                    self.dead_letter(m, &e.to_string()).await;
                    stats.dead_lettered += 1;
                }
            }
        }
    }

    /// Publish `m` to the dead-letter subject with `cause`, then terminate it.
    async fn dead_letter(&self, m: &Message, cause: &str) {
        let mut headers = HeaderMap::new();
        headers.insert(names::DLQ_ERROR_NAME, INVALID_INPUT);
        headers.insert(
            names::DLQ_ERROR_CAUSE,
            cause.replace(['\r', '\n'], " ").as_str(),
        );
        headers.insert(DLQ_ORIGINAL_SUBJECT, m.subject.as_str());
        let id = format!("{}/dead-letter", to_event(m).id);
        headers.insert("Nats-Msg-Id", id.as_str());
        let published = self
            .js
            .publish_with_headers(
                self.config.dead_letter_subject(),
                headers,
                m.payload.clone(),
            )
            .await;
        let acked = match published {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if acked {
            let _ = m.ack_with(AckKind::Term).await;
        } else {
            // Not dead-lettered: let it come back rather than lose it.
            let _ = m.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
        }
    }
}
