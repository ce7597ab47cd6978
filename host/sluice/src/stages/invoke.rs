//! Synchronous invocations with group commit: one lane (a thread with a warm worker) per
//! deployed stage version takes the invocations waiting for it, runs them as one batch and
//! commits them in one transaction (one fsync for many requests), as a trigger does with a
//! batch of messages.
//!
//! An invocation with an `Idempotency-Key` runs as the event of that id, and its outcome is
//! kept (`RecordTable::InvokeResults`) in the same commit as its effects and dedupe record,
//! so a repeat is answered from it without running again. A retryable error or a platform
//! fault is not kept: running again is what a retry is for. A repeat of a key that is still
//! in the same batch waits for the first and then meets its kept outcome.
//!
//! One without a key gets a fresh id and no dedupe record, so a batch of them that wrote no
//! state and emitted nothing commits nothing at all.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_api::{Invocation, Invoked, StageErrorInfo, StageFailure};
use sluice_model::Event;
use sluice_model::records::RecordTable;
use sluice_model::state::{CommitError, LockScope, StateBackend, StateSession};
use sluice_runtime::{Stage, Worker};
use sluice_store::Store;
use tokio::sync::oneshot;

/// The most invocations one batch runs.
const MAX_BATCH: usize = 64;
/// The most lanes (threads with a warm instance) at once; past it an idle one is dropped.
const MAX_LANES: usize = 64;

/// One invocation waiting for its lane.
struct Request {
    invocation: Invocation,
    reply: oneshot::Sender<Result<Invoked, StageFailure>>,
}

impl Request {
    fn id(&self) -> &str {
        self.invocation.key.as_deref().unwrap_or_default()
    }

    /// What identifies the request behind a key: the stage and the body.
    fn fingerprint(&self) -> String {
        let i = &self.invocation;
        let mut h = Sha256::new();
        h.update(i.stage.as_bytes());
        h.update([0]);
        h.update(i.content_type.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
        h.update(&i.data);
        hex::encode(h.finalize())
    }

    fn answer(self, r: Result<Invoked, StageFailure>) {
        // The client may have gone (timed out): its effects stand, a repeat finds them.
        let _ = self.reply.send(r);
    }
}

/// The kept outcome of a keyed invocation: a JSON header line, then the output's bytes.
#[derive(Debug, Serialize, Deserialize)]
struct Kept {
    fingerprint: String,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<(String, String, bool)>,
}

fn encode(kept: &Kept, output: &[u8]) -> Vec<u8> {
    let mut out = serde_json::to_vec(kept).expect("a header serializes");
    out.push(b'\n');
    out.extend_from_slice(output);
    out
}

fn decode(bytes: &[u8]) -> Option<(Kept, Vec<u8>)> {
    let nl = bytes.iter().position(|b| *b == b'\n')?;
    let kept = serde_json::from_slice(&bytes[..nl]).ok()?;
    Some((kept, bytes[nl + 1..].to_vec()))
}

/// (stage, version).
type VersionKey = (String, u64);

/// The lanes of the deployed versions.
pub(super) struct Lanes {
    store: Store,
    kick: Arc<tokio::sync::Notify>,
    lanes: Mutex<Vec<(VersionKey, Sender<Request>)>>,
}

impl Lanes {
    pub(super) fn new(store: Store, kick: Arc<tokio::sync::Notify>) -> Self {
        Self {
            store,
            kick,
            lanes: Mutex::new(Vec::new()),
        }
    }

    /// Run `invocation` on `stage` (its `version`).
    pub(super) async fn invoke(
        &self,
        stage: Arc<Stage>,
        version: u64,
        invocation: Invocation,
    ) -> Result<Invoked, StageFailure> {
        let (reply, answer) = oneshot::channel();
        let mut request = Request { invocation, reply };
        // A lane whose thread ended (it panicked) is replaced once.
        for _ in 0..2 {
            let lane = self.lane(&stage, version);
            match lane.send(request) {
                Ok(()) => {
                    return answer.await.map_err(|_| {
                        StageFailure::Unavailable("the invocation's lane stopped".into())
                    })?;
                }
                Err(std::sync::mpsc::SendError(back)) => {
                    request = back;
                    self.lanes
                        .lock()
                        .retain(|(k, _)| k != &(stage.name().to_owned(), version));
                }
            }
        }
        Err(StageFailure::Unavailable(
            "the invocation's lane cannot start".into(),
        ))
    }

    /// Drop the lanes of `stage` (deleted): their threads end once their queues are empty.
    pub(super) fn forget(&self, stage: &str) {
        self.lanes.lock().retain(|(k, _)| k.0 != stage);
    }

    fn lane(&self, stage: &Arc<Stage>, version: u64) -> Sender<Request> {
        let key = (stage.name().to_owned(), version);
        let mut lanes = self.lanes.lock();
        if let Some((_, tx)) = lanes.iter().find(|(k, _)| *k == key) {
            return tx.clone();
        }
        let (tx, rx) = channel();
        let mut lane = Lane::new(stage.clone(), version, &self.store, self.kick.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("invoke-{}-v{version}", stage.name()))
            .spawn(move || lane.serve(&rx));
        if let Err(e) = spawned {
            tracing::warn!("starting an invocation lane: {e}");
        }
        lanes.push((key, tx.clone()));
        if lanes.len() > MAX_LANES {
            lanes.remove(0);
        }
        tx
    }
}

/// One stage version's worker and the session its batches commit through.
struct Lane {
    worker: Worker,
    session: Box<dyn StateSession>,
    version: u64,
    kick: Arc<tokio::sync::Notify>,
}

impl Lane {
    fn new(stage: Arc<Stage>, version: u64, store: &Store, kick: Arc<tokio::sync::Notify>) -> Self {
        let mut session = store.session();
        let grants = &stage.config().grants;
        session.set_lock_scope(Some(LockScope {
            buckets: grants.kv_buckets.clone(),
            tables: grants.tables.iter().map(|t| t.name.clone()).collect(),
        }));
        Self {
            worker: Worker::new(stage, store.session()),
            session,
            version,
            kick,
        }
    }

    fn serve(&mut self, rx: &Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.run(batch, false);
        }
    }

    /// The kept outcome of `key`, if there is one.
    fn kept(&mut self, key: &str) -> Result<Option<(Kept, Vec<u8>)>, StageFailure> {
        let row = self
            .session
            .get_record(RecordTable::InvokeResults, key)
            .map_err(|e| StageFailure::Unavailable(e.to_string()))?;
        Ok(row.as_deref().and_then(decode))
    }

    /// Answer `req` from its key's kept outcome, if there is one; otherwise give it back.
    fn answer_kept(&mut self, req: Request) -> Option<Request> {
        let Some(key) = req.invocation.key.clone() else {
            return Some(req);
        };
        match self.kept(&key) {
            Err(e) => req.answer(Err(e)),
            Ok(None) => return Some(req),
            Ok(Some((kept, _))) if kept.fingerprint != req.fingerprint() => {
                req.answer(Err(StageFailure::Conflict {
                    kind: "idempotency-key-reused",
                    detail: format!(
                        "the Idempotency-Key '{key}' was used for another request (another stage or body)"
                    ),
                }));
            }
            Ok(Some((kept, output))) => {
                let outcome = match kept.error {
                    None => Ok(output),
                    Some((name, cause, retryable)) => Err(StageErrorInfo {
                        name,
                        cause,
                        retryable,
                    }),
                };
                req.answer(Ok(Invoked {
                    version: kept.version,
                    event_id: key,
                    replayed: true,
                    outcome,
                }));
            }
        }
        None
    }

    /// Run `batch` and commit it once. `single`: it is one request re-run alone after its
    /// batch's commit found an event already committed.
    fn run(&mut self, batch: Vec<Request>, single: bool) {
        let mut runs: Vec<Request> = Vec::with_capacity(batch.len());
        let mut later = Vec::new();
        for req in batch {
            let Some(req) = self.answer_kept(req) else {
                continue;
            };
            if req.invocation.key.is_some() && runs.iter().any(|r| r.id() == req.id()) {
                later.push(req);
            } else {
                runs.push(req);
            }
        }
        if runs.is_empty() {
            return;
        }
        let events: Vec<Event> = runs.iter().map(|r| event(&r.invocation)).collect();
        let results = self.worker.run_in(&mut self.session, &events);
        // An invocation without a key runs under an id drawn for it here, which nothing can
        // present again: its dedupe record would never be read. Without it, a batch that
        // wrote no state and emitted nothing commits nothing (no fsync), and one that did
        // inserts no record at a random place in the dedupe table.
        for (req, ev) in runs.iter().zip(&events) {
            if req.invocation.key.is_none() {
                self.session.forget_outcome(&ev.id);
            }
        }
        let mut outcomes = Vec::with_capacity(runs.len());
        let mut emitted = false;
        for ((req, ev), inv) in runs.iter().zip(&events).zip(results) {
            emitted |= !inv.emitted.is_empty();
            let outcome = inv.outcome.map_err(|e| StageErrorInfo {
                name: e.name,
                cause: e.cause,
                retryable: e.retryable,
            });
            let keep = match &outcome {
                Ok(_) => true,
                Err(e) => !e.retryable && !sluice_model::names::is_platform_fault(&e.name),
            };
            if req.invocation.key.is_some() && keep {
                let kept = Kept {
                    fingerprint: req.fingerprint(),
                    version: self.version,
                    error: outcome
                        .as_ref()
                        .err()
                        .map(|e| (e.name.clone(), e.cause.clone(), e.retryable)),
                };
                let output = outcome.as_deref().unwrap_or_default();
                if let Err(e) = self.session.put_record(
                    RecordTable::InvokeResults,
                    &ev.id,
                    Some(encode(&kept, output)),
                ) {
                    tracing::warn!("keeping the outcome of {}: {e}", ev.id);
                }
            }
            outcomes.push(Invoked {
                version: self.version,
                event_id: ev.id.clone(),
                replayed: false,
                outcome,
            });
        }
        match self.session.commit() {
            Ok(()) => {
                if emitted {
                    self.kick.notify_one();
                }
                for (req, invoked) in runs.into_iter().zip(outcomes) {
                    req.answer(Ok(invoked));
                }
            }
            // An event of the batch was committed before (a keyed repeat that raced this
            // lane from another version's, or an event id a trigger already processed):
            // each request runs alone, and meets its record.
            Err(CommitError::Duplicate(_)) if !single => {
                for req in runs {
                    self.run(vec![req], true);
                }
            }
            Err(CommitError::Duplicate(id)) => {
                for req in runs {
                    req.answer(Err(StageFailure::Conflict {
                        kind: "already-processed",
                        detail: format!(
                            "the event '{id}' was already processed by another path (an event or a trigger with that id); its outcome is not kept"
                        ),
                    }));
                }
            }
            Err(CommitError::Store(e)) => {
                for req in runs.into_iter().chain(later.drain(..)) {
                    req.answer(Err(StageFailure::Unavailable(format!(
                        "the store did not commit the invocation (nothing was applied): {e}"
                    ))));
                }
            }
        }
        if !later.is_empty() {
            self.run(later, single);
        }
    }
}

/// The event an invocation runs as.
fn event(i: &Invocation) -> Event {
    let id = i.key.clone().unwrap_or_else(random_id);
    let mut headers = Vec::new();
    if let Some(ct) = &i.content_type {
        headers.push(("content-type".to_owned(), ct.clone()));
    }
    Event {
        id,
        kind: "sluice.invoke".into(),
        source: "sluice-api".into(),
        subject: String::new(),
        time: String::new(),
        data: i.data.clone(),
        attempt: 1,
        headers,
    }
}

/// A fresh event id: `inv-` and 128 random bits.
fn random_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source");
    format!("inv-{}", hex::encode(b))
}
