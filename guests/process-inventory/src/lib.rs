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

use sluice_order_logic::{LogicError, Reservation};
use sluice_sdk::{Bytes, Context, Error, Stage, export_stage, kv};

struct ProcessInventory;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

/// One name for every key-value failure, with the variant in the cause: this stage's contract
/// predates the SDK's per-variant names (`State.AccessDenied`, ...), and tests match on it.
fn state_error(e: kv::Error) -> Error {
    Error::new(
        "State.Error",
        format_args!("{}: {}", e.kind(), e.message()),
        e.is_retryable(),
    )
}

impl Stage for ProcessInventory {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        let order = sluice_order_logic::parse_order(&data).map_err(logic_error)?;
        let items = sluice_order_logic::line_items(&order).map_err(logic_error)?;
        let bucket = kv::open("inventory").map_err(state_error)?;
        let mut reserved = Vec::with_capacity(items.len());
        for item in items {
            let key = sluice_order_logic::stock_key(&item.sku);
            let remaining = if bucket.exists(&key).map_err(state_error)? {
                // `line_items` caps qty at 1_000_000, so the conversion cannot fail.
                let qty = i64::try_from(item.qty).expect("qty fits in i64");
                let remaining = bucket.increment(&key, -qty).map_err(state_error)?;
                if remaining < 0 {
                    let available = remaining + qty;
                    return Err(logic_error(sluice_order_logic::out_of_stock(
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
        Ok(Bytes(sluice_order_logic::with_reservations(
            order, &reserved,
        )))
    }
}

export_stage!(ProcessInventory);
