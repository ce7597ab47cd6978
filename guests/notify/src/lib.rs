//! `notify`: publishes `notifications.order` for a priced order, with data
//! `{"orderId","userId","totalCents","message":"Order <id> confirmed: $<dollars>.<cents>"}` and
//! header `order-id`, and logs the message at `info`. The emit goes to the host's outbox and is
//! published only after the event commits.
//! Output: `{"orderId","notified":true,"subject":"notifications.order"}`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid`, `Emit.InvalidSubject`, `Emit.TooLarge` (all
//! permanent).

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::types::{Event, StageError, StageResult};
use sluice::platform::{emit, log};
use sluice_order_logic::{LogicError, NOTIFY_SUBJECT};

struct Stage;

fn stage_error(e: LogicError) -> StageError {
    StageError {
        name: e.name.to_owned(),
        cause: e.cause,
        retryable: e.retryable,
    }
}

fn emit_error(e: emit::Error) -> StageError {
    let (name, cause) = match e {
        emit::Error::InvalidSubject(m) => ("Emit.InvalidSubject", m),
        emit::Error::TooLarge(m) => ("Emit.TooLarge", m),
    };
    StageError {
        name: name.into(),
        cause,
        retryable: false,
    }
}

fn notify(data: &[u8]) -> Result<Vec<u8>, StageError> {
    let order = sluice_order_logic::parse_order(data).map_err(stage_error)?;
    let n = sluice_order_logic::notification(&order).map_err(stage_error)?;
    let headers = [("order-id".to_owned(), n.order_id.clone())];
    emit::emit(NOTIFY_SUBJECT, &n.data, &headers).map_err(emit_error)?;
    log::log(
        log::Level::Info,
        &format!("{} (sent to {NOTIFY_SUBJECT})", n.message),
    );
    Ok(sluice_order_logic::notify_output(&n.order_id))
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        notify(&event.data)
    }
}

export!(Stage);
