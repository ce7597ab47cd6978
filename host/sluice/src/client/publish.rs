//! `sluice publish SUBJECT [DATA]`: one event to JetStream through `POST /v1/events/{subject}`.

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

use super::{Data, Remote};

/// `sluice publish`'s arguments.
#[derive(clap::Args)]
pub(crate) struct PublishArgs {
    /// The NATS subject, e.g. `orders.new` (a stream must capture it).
    subject: String,
    /// The event: JSON, `@FILE`, or `-` for stdin [default: {}].
    data: Option<String>,
    /// The event's id (its `Nats-Msg-Id`): a repeat within the stream's duplicate window is
    /// stored once [default: a random id].
    #[arg(long)]
    id: Option<String>,
    #[command(flatten)]
    remote: Remote,
}

/// The answer to a publish.
#[derive(Deserialize)]
struct Accepted {
    id: String,
    stream: String,
    seq: u64,
    duplicate: bool,
}

impl PublishArgs {
    /// Publish the event; the exit code.
    pub(crate) fn run(self) -> std::process::ExitCode {
        let remote = self.remote.clone();
        super::run(&remote, async |c| {
            // The API takes plain events as JSON only (anything else is a CloudEvent).
            let Data::Json(body) = super::read_data(self.data.as_deref(), false)? else {
                unreachable!("read_data takes only JSON without bytes_ok")
            };
            let mut req = c
                .request(Method::POST, &["v1", "events", &self.subject])
                .header(CONTENT_TYPE, "application/json")
                .body(body);
            if let Some(id) = &self.id {
                req = req.header("idempotency-key", id);
            }
            let v = c.json_of(req, None).await?;
            if c.json() {
                super::print_json(&v);
                return Ok(());
            }
            let a: Accepted = super::parse(&v)?;
            if a.duplicate {
                println!(
                    "{}: duplicate of event {}, already in {} at seq {} (not stored again)",
                    self.subject, a.id, a.stream, a.seq
                );
            } else {
                println!(
                    "{}: event {} stored in {} at seq {}",
                    self.subject, a.id, a.stream, a.seq
                );
            }
            Ok(())
        })
    }
}
