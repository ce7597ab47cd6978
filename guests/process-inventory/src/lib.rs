//! `process-inventory`: reserves stock for every item of an order in the `inventory` key-value
//! bucket. The stock of a SKU lives under `stock/<sku>` as a counter; a SKU without that key is
//! untracked (unlimited). A tracked SKU is decremented by the item's quantity with one atomic
//! `increment`; if that leaves it negative the stage fails with `Inventory.OutOfStock` and
//! relies on the host discarding the failed event's write set (it does not compensate).
//!
//! Output: the order plus `"inventory":{"reserved":[{"sku","qty","remaining"}]}` (`remaining`
//! is null for untracked SKUs) and `"status":"reserved"`.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid`, `Inventory.OutOfStock` (permanent), and
//! `State.Error` for key-value failures (retryable only for the `store` variant).

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::keyvalue;
use sluice::platform::types::{Event, StageError, StageResult};
use sluice_order_logic::{LogicError, Reservation};

struct Stage;

fn stage_error(e: LogicError) -> StageError {
    StageError {
        name: e.name.to_owned(),
        cause: e.cause,
        retryable: e.retryable,
    }
}

fn state_error(e: keyvalue::Error) -> StageError {
    let (variant, msg, retryable) = match e {
        keyvalue::Error::AccessDenied(m) => ("access-denied", m, false),
        keyvalue::Error::TooLarge(m) => ("too-large", m, false),
        keyvalue::Error::InvalidValue(m) => ("invalid-value", m, false),
        keyvalue::Error::Store(m) => ("store", m, true),
    };
    StageError {
        name: "State.Error".into(),
        cause: format!("{variant}: {msg}"),
        retryable,
    }
}

fn reserve(data: &[u8]) -> Result<Vec<u8>, StageError> {
    let order = sluice_order_logic::parse_order(data).map_err(stage_error)?;
    let items = sluice_order_logic::line_items(&order).map_err(stage_error)?;
    let bucket = keyvalue::open("inventory").map_err(state_error)?;
    let mut reserved = Vec::with_capacity(items.len());
    for item in items {
        let key = sluice_order_logic::stock_key(&item.sku);
        let remaining = if bucket.exists(&key).map_err(state_error)? {
            // `line_items` caps qty at 1_000_000, so the conversion cannot fail.
            let qty = i64::try_from(item.qty).expect("qty fits in i64");
            let remaining = bucket.increment(&key, -qty).map_err(state_error)?;
            if remaining < 0 {
                let available = remaining + qty;
                return Err(stage_error(sluice_order_logic::out_of_stock(
                    &item.sku, item.qty, available,
                )));
            }
            Some(remaining)
        } else {
            None
        };
        reserved.push(Reservation {
            sku: item.sku,
            qty: item.qty,
            remaining,
        });
    }
    Ok(sluice_order_logic::with_reservations(order, &reserved))
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        reserve(&event.data)
    }
}

export!(Stage);
