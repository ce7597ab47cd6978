//! `aggregate`: counts orders and revenue in the `stats` key-value bucket with atomic
//! increments: `orders/count` += 1, `revenue/cents` += `totals.totalCents`,
//! `user/<userId>/orders` += 1. Output: the order plus
//! `"stats":{"orderCount","revenueCents","userOrders"}` (the counters' new values).
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid` (permanent), and `State.Error` for key-value
//! failures (retryable only for the `store` variant).

use sluice_order_logic::{LogicError, Stats};
use sluice_sdk::{Bytes, Context, Error, Stage, export_stage, kv};

struct Aggregate;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

/// One name for every key-value failure, with the variant in the cause: this stage's contract
/// predates the SDK's per-variant names (`State.AccessDenied`, ...).
fn state_error(e: kv::Error) -> Error {
    Error::new(
        "State.Error",
        format_args!("{}: {}", e.kind(), e.message()),
        e.is_retryable(),
    )
}

impl Stage for Aggregate {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        let order = sluice_order_logic::parse_order(&data).map_err(logic_error)?;
        let input = sluice_order_logic::aggregate_input(&order).map_err(logic_error)?;
        let stats = kv::open("stats").map_err(state_error)?;
        let order_count = stats
            .increment(sluice_order_logic::ORDER_COUNT_KEY, 1)
            .map_err(state_error)?;
        let revenue_cents = stats
            .increment(sluice_order_logic::REVENUE_KEY, input.total_cents)
            .map_err(state_error)?;
        let user_orders = stats
            .increment(&sluice_order_logic::user_orders_key(&input.user_id), 1)
            .map_err(state_error)?;
        Ok(Bytes(sluice_order_logic::with_stats(
            order,
            Stats {
                order_count,
                revenue_cents,
                user_orders,
            },
        )))
    }
}

export_stage!(Aggregate);
