//! `/metrics` of a running host: the `metrics` facade's Prometheus exporter, installed once
//! before anything is deployed (the stages take their metric handles when deployed), and the
//! gauges only a look at the broker, the store or the engine can tell, set at each scrape.
//!
//! What is measured, and where:
//! - `sluice_invocations_total{stage}`, `sluice_invocation_errors_total{stage,error}`,
//!   `sluice_invocation_seconds{stage}`, `sluice_batch_size{stage}`: every worker (triggers,
//!   invocations, workflow Tasks), in `sluice-runtime`;
//! - `sluice_commit_seconds`, `sluice_commit_failures_total`: every store commit;
//! - `sluice_executions_started_total{workflow}`, `sluice_executions_closed_total{workflow,status}`,
//!   `sluice_executions_open`: the durable engine;
//! - `sluice_http_requests_total{route,method,status}`, `sluice_http_request_seconds{route}`:
//!   the API, by route pattern;
//! - `sluice_consumer_pending{trigger}`, `sluice_consumer_ack_pending{trigger}`: each
//!   trigger's consumer lag, asked of JetStream at the scrape; `sluice_outbox_depth`.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sluice_api::MetricsSource;
use sluice_durable::Engine;
use sluice_store::Store;

use crate::triggers::Triggers;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the exporter (once per process); histograms get buckets, so they render as
/// Prometheus histograms rather than summaries.
pub(crate) fn install() -> anyhow::Result<()> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let seconds = [
        0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let sizes = [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)?
        .set_buckets_for_metric(Matcher::Full("sluice_batch_size".into()), &sizes)?
        .install_recorder()?;
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The host's metrics.
pub(crate) struct HostMetrics {
    pub triggers: Arc<Triggers>,
    pub store: Store,
    pub engine: Arc<Engine>,
}

impl MetricsSource for HostMetrics {
    fn render(&self) -> std::pin::Pin<Box<dyn Future<Output = String> + Send + '_>> {
        Box::pin(async move {
            for (name, state) in self.triggers.consumer_states().await {
                metrics::gauge!("sluice_consumer_pending", "trigger" => name.clone())
                    .set(state.pending as f64);
                metrics::gauge!("sluice_consumer_ack_pending", "trigger" => name)
                    .set(state.ack_pending as f64);
            }
            let store = self.store.clone();
            if let Ok(Ok(depth)) = tokio::task::spawn_blocking(move || store.outbox_depth()).await {
                metrics::gauge!("sluice_outbox_depth").set(depth as f64);
            }
            metrics::gauge!("sluice_executions_open").set(self.engine.open_executions() as f64);
            HANDLE
                .get()
                .map(PrometheusHandle::render)
                .unwrap_or_default()
        })
    }
}
