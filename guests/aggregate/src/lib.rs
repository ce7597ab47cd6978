//! `aggregate`: counts orders and revenue in the `stats` key-value bucket with atomic
//! increments: `orders/count` += 1, `revenue/cents` += `totals.totalCents`,
//! `user/<userId>/orders` += 1. Output: the order plus
//! `"stats":{"orderCount","revenueCents","userOrders"}` (the counters' new values).
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent), and `State.Error` for key-value
//! failures (retryable only for the `store` variant).

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::keyvalue;
use sluice::platform::types::{Event, StageError, StageResult};
use sluice_order_logic::{LogicError, Stats};

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

fn aggregate(data: &[u8]) -> Result<Vec<u8>, StageError> {
    let order = sluice_order_logic::parse_order(data).map_err(stage_error)?;
    let input = sluice_order_logic::aggregate_input(&order).map_err(stage_error)?;
    let stats = keyvalue::open("stats").map_err(state_error)?;
    let order_count = stats
        .increment(sluice_order_logic::ORDER_COUNT_KEY, 1)
        .map_err(state_error)?;
    let revenue_cents = stats
        .increment(sluice_order_logic::REVENUE_KEY, input.total_cents)
        .map_err(state_error)?;
    let user_orders = stats
        .increment(&sluice_order_logic::user_orders_key(&input.user_id), 1)
        .map_err(state_error)?;
    Ok(sluice_order_logic::with_stats(
        order,
        Stats {
            order_count,
            revenue_cents,
            user_orders,
        },
    ))
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        aggregate(&event.data)
    }
}

export!(Stage);
