//! The platform API on the running host (`sluice-api`): its tokens in the data directory
//! (`tokens.json`, and the admin token in `admin.token`, both mode 0600), readiness from the
//! store and the NATS connection, events published through the host's JetStream context.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sluice_api::{
    Api, EventSink, Limits, MetricsSource, Outgoing, Problem, PublishFailure, Published, Readiness,
    StageService, StateService, StatusCode, TokenStore, TriggerService, WorkflowService,
};
use sluice_model::state::{
    KeyPage, LockScope, Query, QueryPage, StateBackend, StateSession, TableError,
};
use sluice_store::{Health, Store};

/// The store can commit; the NATS client is connected.
struct HostReadiness {
    store: Store,
    nats: async_nats::Client,
}

impl Readiness for HostReadiness {
    fn check(&self) -> Vec<(String, Result<(), String>)> {
        let store = match self.store.health() {
            Health::Healthy => Ok(()),
            Health::Down { cause, .. } => Err(cause),
        };
        let nats = match self.nats.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            other => Err(format!("{other:?}")),
        };
        vec![("store".into(), store), ("nats".into(), nats)]
    }
}

/// The state routes read the store in sessions scoped to what they read (so they wait only
/// for batches holding that bucket or table), and commit nothing.
struct HostState {
    store: Store,
}

impl HostState {
    fn read<T>(
        &self,
        scope: LockScope,
        f: impl FnOnce(&mut dyn StateSession) -> Result<T, Problem>,
    ) -> Result<T, Problem> {
        let mut session = self.store.session();
        session.set_lock_scope(Some(scope));
        let out = f(session.as_mut());
        session.rollback();
        out
    }
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

impl StateService for HostState {
    fn kv_get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, Problem> {
        let scope = LockScope {
            buckets: vec![bucket.to_owned()],
            tables: Vec::new(),
        };
        self.read(scope, |s| s.kv_get(bucket, key).map_err(unavailable))
    }

    fn kv_list(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<KeyPage, Problem> {
        let scope = LockScope {
            buckets: vec![bucket.to_owned()],
            tables: Vec::new(),
        };
        self.read(scope, |s| {
            s.kv_list(bucket, prefix, cursor, limit)
                .map_err(unavailable)
        })
    }

    fn query(&self, table: &str, query: Query) -> Result<QueryPage, Problem> {
        let scope = LockScope {
            buckets: Vec::new(),
            tables: vec![table.to_owned()],
        };
        self.read(scope, |s| {
            s.table_query(table, &query).map_err(|e| match e {
                TableError::NoSuchIndex(_) => Problem::not_found(e.to_string()).at("index"),
                TableError::InvalidArgument(_) | TableError::ConditionFailed(_) => {
                    Problem::bad_request(e.to_string())
                }
                TableError::Store(_) => unavailable(e),
            })
        })
    }
}

/// Events from the API go to JetStream with their id as `Nats-Msg-Id`.
struct HostEvents {
    js: async_nats::jetstream::Context,
}

impl EventSink for HostEvents {
    fn publish(
        &self,
        m: Outgoing,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Published, PublishFailure>> + Send + '_>>
    {
        use async_nats::jetstream::context::PublishErrorKind;
        Box::pin(async move {
            let mut headers = async_nats::HeaderMap::new();
            for (k, v) in &m.headers {
                headers.insert(k.as_str(), v.as_str());
            }
            headers.insert("Nats-Msg-Id", m.id.as_str());
            let failure = |e: async_nats::jetstream::context::PublishError| match e.kind() {
                PublishErrorKind::StreamNotFound => PublishFailure::NoStream,
                PublishErrorKind::MaxPayloadExceeded => PublishFailure::TooLarge(e.to_string()),
                _ => PublishFailure::Unavailable(e.to_string()),
            };
            let ack = self
                .js
                .publish_with_headers(m.subject, headers, m.payload.into())
                .await
                .map_err(failure)?
                .await
                .map_err(failure)?;
            Ok(Published {
                stream: ack.stream,
                seq: ack.sequence,
                duplicate: ack.duplicate,
            })
        })
    }
}

/// The API, serving until told to stop.
pub(crate) struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stop taking requests and finish the ones in flight.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("the API stopped with an error: {e}"),
            Err(e) => tracing::warn!("the API task failed: {e}"),
        }
    }
}

/// Serve the API on `listen` for the host on `data_dir`.
pub(crate) async fn start(
    listen: SocketAddr,
    data_dir: &Path,
    store: Store,
    (nats, js): (async_nats::Client, async_nats::jetstream::Context),
    stages: Arc<dyn StageService>,
    (triggers, workflows): (Arc<dyn TriggerService>, Arc<dyn WorkflowService>),
    metrics: Arc<dyn MetricsSource>,
) -> anyhow::Result<Running> {
    let state = Arc::new(HostState {
        store: store.clone(),
    });
    let tokens = Arc::new(TokenStore::open(&data_dir.join("tokens.json"))?);
    sluice_api::auth::admin_token(data_dir, &tokens, now_ms())?;
    let api = Api {
        tokens,
        readiness: Arc::new(HostReadiness { store, nats }),
        events: Arc::new(HostEvents { js }),
        stages,
        triggers,
        workflows,
        state,
        metrics,
    };
    let (listener, addr) = sluice_api::bind(listen)
        .await
        .with_context(|| format!("binding the API to {listen} (choose another with --listen)"))?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = sluice_api::router(api, &Limits::default());
    let task = tokio::spawn(sluice_api::serve(listener, router, async {
        let _ = stopped.await;
    }));
    Ok(Running { addr, stop, task })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
