//! The live version of every stage, in memory, for what runs stages outside the triggers:
//! the workflow engine's Tasks look their stage up here at each Task, so a Task runs the
//! version live when it starts, and a stage uploaded over the API is there at once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use sluice_runtime::Stage;

/// A live stage and its component's bytes (to redeploy it under a Task's shorter deadline).
pub(crate) type LiveStage = (Arc<Stage>, Arc<Vec<u8>>);

/// Stage name (with `_` written `-`, as Task resources resolve) → its live version.
#[derive(Default)]
pub(crate) struct LiveStages(RwLock<HashMap<String, LiveStage>>);

fn key(name: &str) -> String {
    name.replace('_', "-")
}

impl LiveStages {
    pub(crate) fn set(&self, name: &str, stage: Arc<Stage>, bytes: Arc<Vec<u8>>) {
        self.0.write().insert(key(name), (stage, bytes));
    }

    pub(crate) fn remove(&self, name: &str) {
        self.0.write().remove(&key(name));
    }

    pub(crate) fn get(&self, name: &str) -> Option<LiveStage> {
        self.0.read().get(&key(name)).cloned()
    }
}
