//! The trigger's three-stage pipeline: while the trigger collects batch N+2, the workers run
//! batch N+1 and batch N commits. These types hold a batch through those stages; the
//! [`Trigger`](super::Trigger) moves it along (`launch`, `land`, `flush`).

use std::sync::Arc;

use async_nats::jetstream::Message;
use sluice_model::Event;
use sluice_runtime::{Detached, Invocation, Worker};

/// The trigger's pipeline: a batch running on the workers, and the one before it committing.
/// Collecting the next batch overlaps both.
#[derive(Default)]
pub(super) struct Pipeline {
    pub(super) executing: Option<Executing>,
    pub(super) in_flight: Option<InFlight>,
}

/// What `Trigger::launch` started.
pub(super) struct Executing {
    /// The batch that was in flight; the workers finish it.
    pub(super) prev: Option<InFlight>,
    /// The batch the workers run.
    pub(super) next: Option<InFlight>,
    /// One per busy partition.
    pub(super) tasks: Vec<Task>,
}

/// A partition's share of an [`Executing`].
pub(super) enum Task {
    Running(tokio::task::JoinHandle<Ran>),
    /// Done (seen by [`finished`]).
    Done(Box<Result<Ran, tokio::task::JoinError>>),
}

/// What a partition's task hands back.
pub(super) struct Ran {
    pub(super) slot: usize,
    pub(super) worker: Worker,
    /// The events it ran (of the launched batch), and their commit.
    pub(super) run: Vec<Event>,
    pub(super) commit: Option<Commit>,
    /// The events and final results of its share of the batch that was in flight.
    pub(super) completed: Option<(Vec<Event>, Vec<Invocation>)>,
}

/// Resolves once every task of `executing` is done (at once without one). Cancel-safe: a
/// task seen done is kept as [`Task::Done`].
pub(super) async fn finished(executing: &mut Option<Executing>) {
    let Some(ex) = executing.as_mut() else { return };
    for task in &mut ex.tasks {
        if let Task::Running(handle) = task {
            let out = handle.await;
            *task = Task::Done(Box::new(out));
        }
    }
}

/// A batch that ran and is committing, with what settling it needs.
pub(super) struct InFlight {
    /// The batch's messages, in arrival order.
    pub(super) msgs: Arc<Vec<Message>>,
    /// How many.
    pub(super) total: usize,
    /// Each partition's share (empty for partitions without events).
    pub(super) parts: Vec<Part>,
    /// Sends in-progress acks until the batch is settled.
    pub(super) progress: tokio::task::JoinHandle<()>,
}

impl Drop for InFlight {
    /// However a batch leaves the pipeline — settled, or dropped on an error path — its
    /// in-progress acks stop, so JetStream can redeliver what was not acknowledged.
    fn drop(&mut self) {
        self.progress.abort();
    }
}

/// One partition's share of a batch.
pub(super) struct Part {
    /// Positions of the share's events in the batch.
    pub(super) indices: Vec<usize>,
    pub(super) events: Vec<Event>,
    /// The share's commit (none for an empty share).
    pub(super) commit: Option<Commit>,
}

/// A share's commit.
pub(super) enum Commit {
    /// Running on a blocking thread.
    Running(tokio::task::JoinHandle<Detached>),
    /// Done (seen by [`committed`]).
    Done(Detached),
}

impl Commit {
    /// The committed batch, waiting for it if need be. Blocks: call it off the async runtime.
    pub(super) fn wait(self) -> Detached {
        match self {
            Self::Running(task) => {
                futures::executor::block_on(task).expect("a commit task does not panic")
            }
            Self::Done(d) => d,
        }
    }
}

/// Resolves once every commit of the batch in flight is done; never without one.
/// Cancel-safe: a commit seen done is kept as [`Commit::Done`].
pub(super) async fn committed(in_flight: &mut Option<InFlight>) {
    let Some(batch) = in_flight.as_mut() else {
        return std::future::pending().await;
    };
    for part in &mut batch.parts {
        if let Some(Commit::Running(task)) = &mut part.commit {
            let detached = task.await.expect("a commit task does not panic");
            part.commit = Some(Commit::Done(detached));
        }
    }
}
