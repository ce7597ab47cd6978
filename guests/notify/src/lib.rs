//! `notify`: publishes `notifications.order` for a priced order, with data
//! `{"orderId","userId","totalCents","message":"Order <id> confirmed: $<dollars>.<cents>"}` and
//! header `order-id`, and logs the message at `info`. The emit goes to the host's outbox and is
//! published only after the event commits.
//! Output: `{"orderId","notified":true,"subject":"notifications.order"}`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid`, `Emit.InvalidSubject`, `Emit.TooLarge` (all
//! permanent).

use sluice_order_logic::{LogicError, NOTIFY_SUBJECT};
use sluice_sdk::{Bytes, Context, Error, Stage, emit, export_stage, log};

struct Notify;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

impl Stage for Notify {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        let order = sluice_order_logic::parse_order(&data).map_err(logic_error)?;
        let n = sluice_order_logic::notification(&order).map_err(logic_error)?;
        // `?` names emit failures `Emit.InvalidSubject` / `Emit.TooLarge`, both permanent.
        emit::to(NOTIFY_SUBJECT)
            .header("order-id", n.order_id.as_str())
            .bytes(&n.data)?;
        log::info(format!("{} (sent to {NOTIFY_SUBJECT})", n.message));
        Ok(Bytes(sluice_order_logic::notify_output(&n.order_id)))
    }
}

export_stage!(Notify);
