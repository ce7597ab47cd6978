//! How the engine reaches the world: a Task runner, a clock, randomness and the objects a
//! Map's ItemReader reads, as traits, so
//! executions are deterministic under test and the durable layer above decides what is real.

use serde_json::Value;

use crate::error::StatesError;

/// One Task to run: a stage called with an input, or messages to publish, under the
/// execution's exactly-once id.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskRequest {
    /// `<execution>/<state path>/<attempt>`: the event id the stage runs under, so a
    /// redelivered or resumed attempt meets its dedupe record.
    pub id: String,
    /// What the Task does.
    pub target: Target,
    /// Its input (the event's data; for a publication, the arguments it was built from).
    pub input: Value,
    /// The Task's TimeoutSeconds, if any: past it the attempt fails with `States.Timeout`.
    pub timeout_seconds: Option<u64>,
    /// The Task's HeartbeatSeconds, if any. A stage sends no heartbeats, so past it the
    /// attempt fails with `States.HeartbeatTimeout` (when it comes before the timeout).
    #[serde(default)]
    pub heartbeat_seconds: Option<u64>,
    /// The task token (`$$.Task.Token`) of a `.waitForTaskToken` Task: its result is then
    /// only the integration's, and the Task waits for SendTaskSuccess or SendTaskFailure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl TaskRequest {
    /// The stage it runs, if it runs one.
    pub fn stage(&self) -> Option<&str> {
        match &self.target {
            Target::Stage(s) => Some(s),
            Target::Publish(_) => None,
        }
    }
}

/// What a Task does.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// Run this stage on the input.
    Stage(String),
    /// Publish these messages, exactly once (through the outbox, in the step's commit). The
    /// runner's result is the array of their message ids (`Nats-Msg-Id`), in order.
    Publish(Vec<Publication>),
}

/// One message a Task publishes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Publication {
    /// The NATS subject.
    pub subject: String,
    /// The body.
    pub data: String,
    /// Its headers.
    pub headers: Vec<(String, String)>,
}

/// Runs Tasks: the stage runtime in Sluice, a fake in unit tests.
pub trait TaskRunner: Send + Sync {
    /// Run `req` to its end. A stage's named error comes back as the error of that name; a
    /// publication returns its messages' ids (see [`Target::Publish`]).
    fn run(&self, req: &TaskRequest) -> Result<Value, StatesError>;
}

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// No object under that bucket and key.
    #[error("the object {key} does not exist in the bucket {bucket}")]
    NotFound {
        /// The bucket asked for.
        bucket: String,
        /// The key asked for.
        key: String,
    },
    /// There is no store to read from, or it failed.
    #[error("{0}")]
    Unavailable(String),
}

/// The objects a Map's ItemReader reads its items from (`arn:aws:states:::s3:getObject`:
/// a bucket and a key). A directory on the host in `sluice workflow run --objects`, a map
/// in tests.
pub trait Objects: Send + Sync {
    /// The bytes of the object `key` in `bucket`.
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError>;
}

/// No object store: every ItemReader fails with a clear error.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObjects;

impl Objects for NoObjects {
    fn get(&self, _bucket: &str, _key: &str) -> Result<Vec<u8>, ObjectError> {
        Err(ObjectError::Unavailable(
            "no object store is configured to read items from".into(),
        ))
    }
}

/// Objects held in memory, by bucket and key.
#[derive(Debug, Default, Clone)]
pub struct MemoryObjects(std::collections::BTreeMap<(String, String), Vec<u8>>);

impl MemoryObjects {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Put `body` under `bucket`/`key`.
    pub fn put(&mut self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.0.insert((bucket.into(), key.into()), body.into());
    }
}

impl Objects for MemoryObjects {
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ObjectError> {
        self.0
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| ObjectError::NotFound {
                bucket: bucket.into(),
                key: key.into(),
            })
    }
}

/// Milliseconds since the Unix epoch, injected so Wait states and timeouts are testable
/// without sleeping.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_ms(&self) -> i64;
}

/// Randomness for `States.UUID`, `States.MathRandom`, `$random` and `$uuid`.
pub trait Random: Send + Sync {
    /// 64 random bits.
    fn next_u64(&self) -> u64;
}

/// A version 4 UUID from `random`, in its canonical lower-case hyphenated form.
pub fn uuid_v4(random: &dyn Random) -> String {
    uuid_from(random.next_u64(), random.next_u64())
}

/// A version 4 UUID made of the 128 bits `hi`, `lo` (the version and variant bits set).
pub fn uuid_from(hi: u64, lo: u64) -> String {
    let mut b = [0_u8; 16];
    b[..8].copy_from_slice(&hi.to_be_bytes());
    b[8..].copy_from_slice(&lo.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A small deterministic generator (SplitMix64), for tests and for seeded functions.
#[derive(Debug)]
pub struct SplitMix(std::sync::atomic::AtomicU64);

impl SplitMix {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(std::sync::atomic::AtomicU64::new(seed))
    }
}

impl Random for SplitMix {
    fn next_u64(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9e37_79b9_7f4a_7c15, std::sync::atomic::Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_differ() {
        let r = SplitMix::new(7);
        let (a, b) = (uuid_v4(&r), uuid_v4(&r));
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }
}
