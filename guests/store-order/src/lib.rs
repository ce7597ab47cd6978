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

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use sluice::platform::table::{self, Condition, Query, SortKeyCondition};
use sluice::platform::types::{Event, StageError, StageResult};
use sluice_order_logic::{LogicError, StoreRequest, TableQuery, names};

struct Stage;

fn stage_error(e: LogicError) -> StageError {
    StageError {
        name: e.name.to_owned(),
        cause: e.cause,
        retryable: e.retryable,
    }
}

fn state_error(e: table::Error) -> StageError {
    let (variant, msg, retryable) = match e {
        table::Error::ConditionFailed(m) => {
            return StageError {
                name: names::ORDER_DUPLICATE.into(),
                cause: format!("order already stored: {m}"),
                retryable: false,
            };
        }
        table::Error::AccessDenied(m) => ("access-denied", m, false),
        table::Error::NoSuchIndex(m) => ("no-such-index", m, false),
        table::Error::InvalidArgument(m) => ("invalid-argument", m, false),
        table::Error::TooLarge(m) => ("too-large", m, false),
        table::Error::Store(m) => ("store", m, true),
    };
    StageError {
        name: "State.Error".into(),
        cause: format!("{variant}: {msg}"),
        retryable,
    }
}

fn store(order: sluice_order_logic::Order) -> Result<Vec<u8>, StageError> {
    let item = sluice_order_logic::stored_order(&order).map_err(stage_error)?;
    let orders = table::open("orders").map_err(state_error)?;
    let version = orders
        .put(&item.pk, &item.sk, &item.doc, Condition::MustNotExist, None)
        .map_err(state_error)?;
    Ok(sluice_order_logic::with_stored(
        order, &item.pk, &item.sk, version,
    ))
}

fn query(q: TableQuery) -> Result<Vec<u8>, StageError> {
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
    Ok(sluice_order_logic::query_output(
        page.items.iter().map(|item| item.doc.as_slice()),
        page.cursor.as_deref(),
    ))
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        match sluice_order_logic::store_request(&event.data).map_err(stage_error)? {
            StoreRequest::Store(order) => store(order),
            StoreRequest::Query(q) => query(q),
        }
    }
}

export!(Stage);
