//! `store-order`: stores an order in the `orders` table at (`ORDER#<orderId>`, `META`) with
//! condition `must-not-exist` and no TTL. The document is
//! `{"orderId","userId","status":"stored","createdAt","totalCents","itemCount"}`, which the
//! host's `by-user` (userId/createdAt) and `by-status` (status/createdAt) indexes pick up.
//! Output: the order plus `"stored":{"pk","sk","version"}` and `"status":"stored"`.
//!
//! When the event data is `{"query":{"index":..,"pk":..,"forward":..,"limit":..,"cursor":..}}`
//! it runs that table query instead and returns `{"items":[<docs>],"cursor":..}`: this is how
//! tests read orders back through the guest API.
//!
//! Errors: `Order.MalformedJson`, `Order.Invalid`, `Order.Duplicate` (the item exists),
//! `Query.Invalid` (permanent), and `State.Error` for other table failures (retryable only for
//! the `store` variant).

use sluice_order_logic::{LogicError, StoreRequest, TableQuery, names};
use sluice_sdk::table::{self, Condition, Query, SortKeyCondition};
use sluice_sdk::{Bytes, Context, Error, Stage, export_stage};

struct StoreOrder;

fn logic_error(e: LogicError) -> Error {
    Error::new(e.name, e.cause, e.retryable)
}

/// `Order.Duplicate` for the `must-not-exist` put, and one name for every other table failure
/// with the variant in the cause: this stage's contract predates the SDK's per-variant names
/// (`State.ConditionFailed`, ...).
fn state_error(e: table::Error) -> Error {
    match e {
        table::Error::ConditionFailed(m) => Error::permanent(
            names::ORDER_DUPLICATE,
            format_args!("order already stored: {m}"),
        ),
        e => Error::new(
            "State.Error",
            format_args!("{}: {}", e.kind(), e.message()),
            e.is_retryable(),
        ),
    }
}

fn store(order: sluice_order_logic::Order) -> Result<Bytes, Error> {
    let item = sluice_order_logic::stored_order(&order).map_err(logic_error)?;
    let orders = table::open("orders").map_err(state_error)?;
    let version = orders
        .put_bytes(&item.pk, &item.sk, &item.doc, Condition::MustNotExist, None)
        .map_err(state_error)?;
    Ok(Bytes(sluice_order_logic::with_stored(
        order, &item.pk, &item.sk, version,
    )))
}

fn query(q: TableQuery) -> Result<Bytes, Error> {
    let orders = table::open("orders").map_err(state_error)?;
    let page = orders
        .query(&Query {
            index: q.index,
            pk: q.pk,
            sk: SortKeyCondition::Any,
            forward: q.forward,
            limit: q.limit,
            cursor: q.cursor,
        })
        .map_err(state_error)?;
    Ok(Bytes(sluice_order_logic::query_output(
        page.items.iter().map(|item| item.doc.as_slice()),
        page.cursor.as_deref(),
    )))
}

impl Stage for StoreOrder {
    // The logic reads and writes the JSON itself, so the data passes through as bytes.
    type Input = Bytes;
    type Output = Bytes;

    fn handle(_cx: &Context, data: Bytes) -> Result<Bytes, Error> {
        match sluice_order_logic::store_request(&data).map_err(logic_error)? {
            StoreRequest::Store(order) => store(order),
            StoreRequest::Query(q) => query(q),
        }
    }
}

export_stage!(StoreOrder);
