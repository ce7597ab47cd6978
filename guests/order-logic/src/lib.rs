//! Business logic of Sluice's example order pipeline, free of any WIT bindings.
//!
//! The pipeline guests (`validate-order`, `process-order`, `process-payment`, …) are thin
//! wrappers around this crate, and the host's native-vs-wasm benchmark links it natively, so
//! both sides run exactly the same code.
//!
//! Every stage function takes the event's data (JSON bytes) and returns the output JSON bytes or
//! a [`LogicError`] whose `name` is part of the stage's public contract (workflow `Retry`/`Catch`
//! rules match on it). Orders are JSON objects such as:
//!
//! ```json
//! {"orderId":"o-1","userId":"u-1","createdAt":"2026-11-26T10:00:00Z",
//!  "items":[{"sku":"A-1","qty":2,"price":12.5}],
//!  "payment":{"method":"card","card":"4242424242424242"}}
//! ```
//!
//! Money is handled in integer cents: a price is converted with `round(price * 100)`.

use std::fmt;

use serde_json::{Map, Value, json};

/// A JSON object: the representation of an order while a stage works on it.
pub type Order = Map<String, Value>;

/// Error names returned by the order pipeline.
pub mod names {
    /// The event data is not valid JSON. Permanent.
    pub const ORDER_MALFORMED_JSON: &str = "Order.MalformedJson";
    /// The order is valid JSON but breaks a rule; the cause names the field. Permanent.
    pub const ORDER_INVALID: &str = "Order.Invalid";
    /// The order was already stored. Permanent.
    pub const ORDER_DUPLICATE: &str = "Order.Duplicate";
    /// The card was declined. Permanent.
    pub const PAYMENT_DECLINED: &str = "Payment.Declined";
    /// The payment provider is unavailable. Retryable.
    pub const PAYMENT_UNAVAILABLE: &str = "Payment.Unavailable";
    /// The order total exceeds the payment limit. Permanent.
    pub const PAYMENT_LIMIT_EXCEEDED: &str = "Payment.LimitExceeded";
    /// The payment method is not supported. Permanent.
    pub const PAYMENT_UNSUPPORTED_METHOD: &str = "Payment.UnsupportedMethod";
    /// Not enough stock for an item. Permanent.
    pub const INVENTORY_OUT_OF_STOCK: &str = "Inventory.OutOfStock";
    /// A `store-order` query request is malformed. Permanent.
    pub const QUERY_INVALID: &str = "Query.Invalid";
}

/// Most items one order may have.
pub const MAX_ITEMS: usize = 100;
/// Largest quantity of one item.
pub const MAX_QTY: u64 = 1_000_000;
/// Largest unit price, in currency units.
pub const MAX_PRICE: f64 = 1_000_000_000.0;
/// Tax rate in percent, applied to the subtotal and rounded half up.
pub const TAX_PERCENT: i64 = 8;
/// Largest total, in cents, the payment provider accepts.
pub const PAYMENT_LIMIT_CENTS: i64 = 100_000_000;
/// Subject the `notify` stage publishes to.
pub const NOTIFY_SUBJECT: &str = "notifications.order";

/// A failure of a stage's business logic: becomes the stage's `stage-error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicError {
    /// Dotted error name, one of [`names`].
    pub name: &'static str,
    /// Human-readable explanation.
    pub cause: String,
    /// Whether running the same event again may succeed.
    pub retryable: bool,
}

impl LogicError {
    /// A permanent error: no retry can fix it.
    pub fn permanent(name: &'static str, cause: impl Into<String>) -> Self {
        Self {
            name,
            cause: cause.into(),
            retryable: false,
        }
    }

    /// A retryable error: running the event again may succeed.
    pub fn retryable(name: &'static str, cause: impl Into<String>) -> Self {
        Self {
            name,
            cause: cause.into(),
            retryable: true,
        }
    }
}

impl fmt::Display for LogicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.cause)?;
        if self.retryable {
            f.write_str(" (retryable)")?;
        }
        Ok(())
    }
}

impl std::error::Error for LogicError {}

fn invalid(cause: impl Into<String>) -> LogicError {
    LogicError::permanent(names::ORDER_INVALID, cause)
}

/// One validated line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineItem {
    /// Stock-keeping unit.
    pub sku: String,
    /// Quantity, `1..=MAX_QTY`.
    pub qty: u64,
    /// Unit price in cents (`round(price * 100)`).
    pub unit_price_cents: i64,
}

/// Totals of an order, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Sum of the quantities.
    pub item_count: u64,
    /// Sum of `unit_price_cents * qty`.
    pub subtotal_cents: i64,
    /// [`TAX_PERCENT`] of the subtotal, rounded half up.
    pub tax_cents: i64,
    /// Subtotal plus tax.
    pub total_cents: i64,
}

impl Totals {
    /// The `totals` object written into the order.
    pub fn to_json(&self) -> Value {
        json!({
            "itemCount": self.item_count,
            "subtotalCents": self.subtotal_cents,
            "taxCents": self.tax_cents,
            "totalCents": self.total_cents,
        })
    }
}

/// Parses event data as an order object (`Order.MalformedJson` / `Order.Invalid`).
pub fn parse_order(input: &[u8]) -> Result<Order, LogicError> {
    let value: Value = serde_json::from_slice(input).map_err(|e| {
        LogicError::permanent(
            names::ORDER_MALFORMED_JSON,
            format!("order is not valid JSON: {e}"),
        )
    })?;
    match value {
        Value::Object(order) => Ok(order),
        other => Err(invalid(format!(
            "order must be a JSON object, not {}",
            kind(&other)
        ))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Serialises an order (or any JSON value) to bytes.
pub fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialising a serde_json::Value cannot fail")
}

fn order_bytes(order: Order) -> Vec<u8> {
    to_bytes(&Value::Object(order))
}

/// The non-empty string at `order[field]`, or `Order.Invalid`.
pub fn required_str<'a>(order: &'a Order, field: &str) -> Result<&'a str, LogicError> {
    match order.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        _ => Err(invalid(format!("{field} must be a non-empty string"))),
    }
}

/// Validates `order.items` and returns its lines (`Order.Invalid` naming the bad field).
pub fn line_items(order: &Order) -> Result<Vec<LineItem>, LogicError> {
    let items = match order.get("items") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(invalid("items must not be empty")),
        _ => return Err(invalid("items must be a non-empty array")),
    };
    if items.len() > MAX_ITEMS {
        return Err(invalid(format!(
            "items must have at most {MAX_ITEMS} entries, got {}",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| line_item(i, item))
        .collect()
}

fn line_item(i: usize, item: &Value) -> Result<LineItem, LogicError> {
    let Value::Object(item) = item else {
        return Err(invalid(format!("items[{i}] must be an object")));
    };
    let sku = match item.get("sku") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(invalid(format!(
                "items[{i}].sku must be a non-empty string"
            )));
        }
    };
    let qty = match item.get("qty").and_then(Value::as_u64) {
        Some(qty) if qty > 0 => qty,
        _ => {
            return Err(invalid(format!(
                "items[{i}].qty must be a positive integer"
            )));
        }
    };
    if qty > MAX_QTY {
        return Err(invalid(format!("items[{i}].qty must be at most {MAX_QTY}")));
    }
    let price = match item.get("price").and_then(Value::as_f64) {
        Some(price) if price.is_finite() && price >= 0.0 => price,
        _ => {
            return Err(invalid(format!(
                "items[{i}].price must be a non-negative number"
            )));
        }
    };
    if price > MAX_PRICE {
        return Err(invalid(format!(
            "items[{i}].price must be at most {MAX_PRICE}"
        )));
    }
    // Bounded by MAX_PRICE * 100, well inside i64 and exactly representable.
    let unit_price_cents = (price * 100.0).round() as i64;
    Ok(LineItem {
        sku,
        qty,
        unit_price_cents,
    })
}

/// Full validation of an order: `orderId`, `userId` and every item.
pub fn check_order(order: &Order) -> Result<Vec<LineItem>, LogicError> {
    required_str(order, "orderId")?;
    required_str(order, "userId")?;
    line_items(order)
}

/// Totals of `items` (`Order.Invalid` if they overflow 64-bit cents).
pub fn compute_totals(items: &[LineItem]) -> Result<Totals, LogicError> {
    let overflow = || invalid("order total is too large");
    let mut item_count: u64 = 0;
    let mut subtotal_cents: i64 = 0;
    for item in items {
        item_count = item_count.checked_add(item.qty).ok_or_else(overflow)?;
        let qty = i64::try_from(item.qty).map_err(|_| overflow())?;
        let line = item
            .unit_price_cents
            .checked_mul(qty)
            .ok_or_else(overflow)?;
        subtotal_cents = subtotal_cents.checked_add(line).ok_or_else(overflow)?;
    }
    let tax_cents = subtotal_cents
        .checked_mul(TAX_PERCENT)
        .and_then(|t| t.checked_add(50))
        .ok_or_else(overflow)?
        / 100;
    let total_cents = subtotal_cents.checked_add(tax_cents).ok_or_else(overflow)?;
    Ok(Totals {
        item_count,
        subtotal_cents,
        tax_cents,
        total_cents,
    })
}

/// `validate-order`: checks the order and adds `"status":"validated"`.
///
/// Errors: `Order.MalformedJson`, `Order.Invalid` (the cause names the field). Both permanent.
pub fn validate(input: &[u8]) -> Result<Vec<u8>, LogicError> {
    let mut order = parse_order(input)?;
    check_order(&order)?;
    order.insert("status".into(), "validated".into());
    Ok(order_bytes(order))
}

/// `process-order`: prices the order, adding `totals` and `"status":"priced"`.
///
/// Errors: `Order.MalformedJson`, `Order.Invalid`. Both permanent.
///
/// This is the pipeline's hot stage, so it has a fast path: top-level fields and item fields
/// are borrowed from the input as raw JSON, and the output is spliced from those raw values,
/// which saves building and re-serialising a `serde_json::Value` tree (most of the cost, in
/// wasm even more than natively, because wasm's allocator is slower). The fast path only
/// handles valid orders whose keys need no unescaping; anything else, including every error,
/// takes the general path, so the two cannot disagree on what is an error.
pub fn process_order(input: &[u8]) -> Result<Vec<u8>, LogicError> {
    match fast::process_order(input) {
        Some(out) => Ok(out),
        None => process_order_general(input),
    }
}

mod fast {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::value::RawValue;

    use super::{LineItem, MAX_ITEMS, MAX_PRICE, MAX_QTY, compute_totals};

    #[derive(Deserialize)]
    struct ItemView<'a> {
        #[serde(borrow)]
        sku: Option<&'a str>,
        qty: Option<u64>,
        price: Option<f64>,
    }

    /// The priced order, or `None` to defer to the general path.
    pub(super) fn process_order(input: &[u8]) -> Option<Vec<u8>> {
        // A BTreeMap orders keys like `serde_json::Map`, so both paths print fields alike.
        let top: BTreeMap<&str, &RawValue> = serde_json::from_slice(input).ok()?;
        let views: Vec<ItemView<'_>> = serde_json::from_str(top.get("items")?.get()).ok()?;
        if views.is_empty() || views.len() > MAX_ITEMS {
            return None;
        }
        let mut items = Vec::with_capacity(views.len());
        for v in views {
            let sku = v.sku.filter(|s| !s.trim().is_empty())?;
            let qty = v.qty.filter(|q| (1..=MAX_QTY).contains(q))?;
            let price = v
                .price
                .filter(|p| p.is_finite() && (0.0..=MAX_PRICE).contains(p))?;
            items.push(LineItem {
                sku: sku.to_owned(),
                qty,
                // Bounded by MAX_PRICE * 100, well inside i64 and exactly representable.
                unit_price_cents: (price * 100.0).round() as i64,
            });
        }
        let t = compute_totals(&items).ok()?;
        let totals = format!(
            r#"{{"itemCount":{},"subtotalCents":{},"taxCents":{},"totalCents":{}}}"#,
            t.item_count, t.subtotal_cents, t.tax_cents, t.total_cents
        );
        // Splice the output: the input's fields in key order (as `serde_json::Map` prints
        // them), with `status` and `totals` replaced or added at their places. Raw values are
        // copied as they are, keys need no escaping (see below).
        let added: [(&str, &[u8]); 2] = [("status", br#""priced""#), ("totals", totals.as_bytes())];
        let mut out = Vec::with_capacity(input.len() + 96);
        out.push(b'{');
        let mut next_added = added.iter().peekable();
        for (k, v) in &top {
            while let Some((ak, av)) = next_added.next_if(|(ak, _)| ak < k) {
                field(&mut out, ak, av);
            }
            if next_added.peek().is_some_and(|(ak, _)| ak == k) {
                continue; // replaced by the added value, written next
            }
            // `k` was borrowed from a JSON string, so it contains no character that needs
            // escaping (an escaped key fails to borrow and takes the general path).
            field(&mut out, k, v.get().as_bytes());
        }
        for (ak, av) in next_added {
            field(&mut out, ak, av);
        }
        out.push(b'}');
        Some(out)
    }

    /// Append `"key":value` to the object being written in `out` (after `{` or a field).
    fn field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(value);
    }
}

fn process_order_general(input: &[u8]) -> Result<Vec<u8>, LogicError> {
    let mut order = parse_order(input)?;
    let items = line_items(&order)?;
    let totals = compute_totals(&items)?;
    order.insert("totals".into(), totals.to_json());
    order.insert("status".into(), "priced".into());
    Ok(order_bytes(order))
}

/// `totals.totalCents` of a priced order (`Order.Invalid` if absent or not a non-negative
/// integer).
pub fn total_cents(order: &Order) -> Result<i64, LogicError> {
    order
        .get("totals")
        .and_then(|t| t.get("totalCents"))
        .and_then(Value::as_i64)
        .filter(|cents| *cents >= 0)
        .ok_or_else(|| {
            invalid("totals.totalCents must be a non-negative integer (price the order first)")
        })
}

/// `totals.itemCount` of a priced order (`Order.Invalid` if absent).
pub fn item_count(order: &Order) -> Result<u64, LogicError> {
    order
        .get("totals")
        .and_then(|t| t.get("itemCount"))
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            invalid("totals.itemCount must be a non-negative integer (price the order first)")
        })
}

/// 32-bit FNV-1a hash of `bytes`.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// `process-payment`: captures the payment of a priced order.
///
/// `payment` is replaced by `{"method","status":"captured","amountCents","last4","authCode"}`
/// (the card number never appears in the output; `authCode` is the FNV-1a-32 hash of `orderId`
/// as 8 lowercase hex digits) and `status` becomes `"paid"`.
///
/// Errors: `Order.MalformedJson`, `Order.Invalid` (no `orderId`, no `totals.totalCents`, no
/// `payment.method`, card not 12–19 digits), `Payment.UnsupportedMethod` (method other than
/// `card` or `flaky`), `Payment.Unavailable` (method `flaky`; the only retryable one),
/// `Payment.LimitExceeded` (total above [`PAYMENT_LIMIT_CENTS`]), `Payment.Declined` (card
/// number ending in `0000`).
pub fn process_payment(input: &[u8]) -> Result<Vec<u8>, LogicError> {
    let mut order = parse_order(input)?;
    let order_id = required_str(&order, "orderId")?.to_owned();
    let amount_cents = total_cents(&order)?;
    let payment = match order.get("payment") {
        Some(Value::Object(payment)) => payment,
        _ => return Err(invalid("payment must be an object")),
    };
    let method = match payment.get("method") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(invalid("payment.method must be a non-empty string")),
    };
    match method.as_str() {
        "card" => {}
        "flaky" => {
            return Err(LogicError::retryable(
                names::PAYMENT_UNAVAILABLE,
                "payment provider for method flaky is unavailable",
            ));
        }
        other => {
            return Err(LogicError::permanent(
                names::PAYMENT_UNSUPPORTED_METHOD,
                format!("payment method {other:?} is not supported"),
            ));
        }
    }
    let card = match payment.get("card") {
        Some(Value::String(card))
            if (12..=19).contains(&card.len()) && card.bytes().all(|b| b.is_ascii_digit()) =>
        {
            card
        }
        _ => return Err(invalid("payment.card must be a string of 12 to 19 digits")),
    };
    if amount_cents > PAYMENT_LIMIT_CENTS {
        return Err(LogicError::permanent(
            names::PAYMENT_LIMIT_EXCEEDED,
            format!("amount {amount_cents} cents exceeds the limit of {PAYMENT_LIMIT_CENTS} cents"),
        ));
    }
    let last4 = card[card.len() - 4..].to_owned();
    if last4 == "0000" {
        return Err(LogicError::permanent(
            names::PAYMENT_DECLINED,
            format!("card ending in {last4} was declined"),
        ));
    }
    let auth_code = format!("{:08x}", fnv1a32(order_id.as_bytes()));
    order.insert(
        "payment".into(),
        json!({
            "method": method,
            "status": "captured",
            "amountCents": amount_cents,
            "last4": last4,
            "authCode": auth_code,
        }),
    );
    order.insert("status".into(), "paid".into());
    Ok(order_bytes(order))
}

// ---------------------------------------------------------------------------------------------
// process-inventory
// ---------------------------------------------------------------------------------------------

/// The key-value key holding the stock of `sku` in the `inventory` bucket.
pub fn stock_key(sku: &str) -> String {
    format!("stock/{sku}")
}

/// One reserved line, as reported by `process-inventory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The reserved SKU.
    pub sku: String,
    /// How many were reserved.
    pub qty: u64,
    /// Stock left after the reservation; `None` for an untracked SKU (no limit).
    pub remaining: Option<i64>,
}

/// The `Inventory.OutOfStock` error (permanent).
pub fn out_of_stock(sku: &str, requested: u64, available: i64) -> LogicError {
    LogicError::permanent(
        names::INVENTORY_OUT_OF_STOCK,
        format!("sku {sku}: requested {requested}, available {available}"),
    )
}

/// The order with `inventory.reserved` and `"status":"reserved"` added.
pub fn with_reservations(mut order: Order, reserved: &[Reservation]) -> Vec<u8> {
    let reserved: Vec<Value> = reserved
        .iter()
        .map(|r| json!({"sku": r.sku, "qty": r.qty, "remaining": r.remaining}))
        .collect();
    order.insert("inventory".into(), json!({ "reserved": reserved }));
    order.insert("status".into(), "reserved".into());
    order_bytes(order)
}

// ---------------------------------------------------------------------------------------------
// aggregate
// ---------------------------------------------------------------------------------------------

/// Key of the global order counter in the `stats` bucket.
pub const ORDER_COUNT_KEY: &str = "orders/count";
/// Key of the global revenue counter (cents) in the `stats` bucket.
pub const REVENUE_KEY: &str = "revenue/cents";

/// Key of `user_id`'s order counter in the `stats` bucket.
pub fn user_orders_key(user_id: &str) -> String {
    format!("user/{user_id}/orders")
}

/// What `aggregate` needs from an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateInput {
    /// The order's `userId`.
    pub user_id: String,
    /// The order's `totals.totalCents`.
    pub total_cents: i64,
}

/// Extracts [`AggregateInput`] (`Order.Invalid` if `userId` or totals are missing).
pub fn aggregate_input(order: &Order) -> Result<AggregateInput, LogicError> {
    Ok(AggregateInput {
        user_id: required_str(order, "userId")?.to_owned(),
        total_cents: total_cents(order)?,
    })
}

/// Counter values after `aggregate` updated them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `orders/count`.
    pub order_count: i64,
    /// `revenue/cents`.
    pub revenue_cents: i64,
    /// `user/<userId>/orders`.
    pub user_orders: i64,
}

/// The order with `stats` added.
pub fn with_stats(mut order: Order, stats: Stats) -> Vec<u8> {
    order.insert(
        "stats".into(),
        json!({
            "orderCount": stats.order_count,
            "revenueCents": stats.revenue_cents,
            "userOrders": stats.user_orders,
        }),
    );
    order_bytes(order)
}

// ---------------------------------------------------------------------------------------------
// store-order
// ---------------------------------------------------------------------------------------------

/// What `store-order` writes to the `orders` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    /// `ORDER#<orderId>`.
    pub pk: String,
    /// `META`.
    pub sk: String,
    /// `{"orderId","userId","status":"stored","createdAt","totalCents","itemCount"}`
    /// (`createdAt` only when the order has it as a string).
    pub doc: Vec<u8>,
}

/// The item `store-order` puts for `order` (`Order.Invalid` if ids or totals are missing).
pub fn stored_order(order: &Order) -> Result<StoredOrder, LogicError> {
    let order_id = required_str(order, "orderId")?;
    let user_id = required_str(order, "userId")?;
    let total_cents = total_cents(order)?;
    let item_count = item_count(order)?;
    let mut doc = Map::new();
    doc.insert("orderId".into(), order_id.into());
    doc.insert("userId".into(), user_id.into());
    doc.insert("status".into(), "stored".into());
    if let Some(Value::String(created_at)) = order.get("createdAt") {
        doc.insert("createdAt".into(), created_at.clone().into());
    }
    doc.insert("totalCents".into(), total_cents.into());
    doc.insert("itemCount".into(), item_count.into());
    Ok(StoredOrder {
        pk: format!("ORDER#{order_id}"),
        sk: "META".into(),
        doc: order_bytes(doc),
    })
}

/// The order with `stored` and `"status":"stored"` added.
pub fn with_stored(mut order: Order, pk: &str, sk: &str, version: u64) -> Vec<u8> {
    order.insert(
        "stored".into(),
        json!({"pk": pk, "sk": sk, "version": version}),
    );
    order.insert("status".into(), "stored".into());
    order_bytes(order)
}

/// A read-back query `store-order` runs instead of storing, requested with
/// `{"query":{"index":"by-user"|"by-status"|null,"pk":"..","forward":bool,"limit":n,"cursor":".."}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableQuery {
    /// Secondary index, or `None` for the base table.
    pub index: Option<String>,
    /// Partition key value.
    pub pk: String,
    /// Ascending sort-key order (default true).
    pub forward: bool,
    /// Page size (default 100).
    pub limit: u32,
    /// Continuation cursor from an earlier page.
    pub cursor: Option<String>,
}

/// What `store-order` was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreRequest {
    /// Store this order.
    Store(Order),
    /// Run this query and return the documents.
    Query(TableQuery),
}

/// Parses `store-order`'s event data: an order, or `{"query":{..}}` (`Query.Invalid`).
pub fn store_request(input: &[u8]) -> Result<StoreRequest, LogicError> {
    let order = parse_order(input)?;
    let Some(query) = order.get("query") else {
        return Ok(StoreRequest::Store(order));
    };
    let bad = |cause: &str| LogicError::permanent(names::QUERY_INVALID, cause);
    let Value::Object(query) = query else {
        return Err(bad("query must be an object"));
    };
    let index = match query.get("index") {
        None | Some(Value::Null) => None,
        Some(Value::String(index)) => Some(index.clone()),
        Some(_) => return Err(bad("query.index must be a string or null")),
    };
    let pk = match query.get("pk") {
        Some(Value::String(pk)) if !pk.is_empty() => pk.clone(),
        _ => return Err(bad("query.pk must be a non-empty string")),
    };
    let forward = match query.get("forward") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(forward)) => *forward,
        Some(_) => return Err(bad("query.forward must be a boolean")),
    };
    let limit = match query.get("limit") {
        None | Some(Value::Null) => 100,
        Some(limit) => match limit.as_u64().and_then(|l| u32::try_from(l).ok()) {
            Some(limit) if limit > 0 => limit,
            _ => return Err(bad("query.limit must be a positive 32-bit integer")),
        },
    };
    let cursor = match query.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(cursor)) => Some(cursor.clone()),
        Some(_) => return Err(bad("query.cursor must be a string or null")),
    };
    Ok(StoreRequest::Query(TableQuery {
        index,
        pk,
        forward,
        limit,
        cursor,
    }))
}

/// `{"items":[<docs>..],"cursor":..}` for a query page. A document that is not JSON (the host
/// never stores one) is returned as a string.
pub fn query_output<'a>(docs: impl IntoIterator<Item = &'a [u8]>, cursor: Option<&str>) -> Vec<u8> {
    let items: Vec<Value> = docs
        .into_iter()
        .map(|doc| {
            serde_json::from_slice(doc)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(doc).into_owned()))
        })
        .collect();
    to_bytes(&json!({"items": items, "cursor": cursor}))
}

// ---------------------------------------------------------------------------------------------
// notify
// ---------------------------------------------------------------------------------------------

/// `cents` as `<dollars>.<cc>`.
pub fn format_dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The event `notify` emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The order's id (also sent as the `order-id` header).
    pub order_id: String,
    /// `Order <id> confirmed: $<dollars>.<cents>`.
    pub message: String,
    /// `{"orderId","userId","totalCents","message"}`.
    pub data: Vec<u8>,
}

/// The notification for a priced order (`Order.Invalid` if ids or totals are missing).
pub fn notification(order: &Order) -> Result<Notification, LogicError> {
    let order_id = required_str(order, "orderId")?.to_owned();
    let user_id = required_str(order, "userId")?;
    let total_cents = total_cents(order)?;
    let message = format!(
        "Order {order_id} confirmed: ${}",
        format_dollars(total_cents)
    );
    let data = to_bytes(&json!({
        "orderId": order_id,
        "userId": user_id,
        "totalCents": total_cents,
        "message": message,
    }));
    Ok(Notification {
        order_id,
        message,
        data,
    })
}

/// `notify`'s output: `{"orderId","notified":true,"subject":"notifications.order"}`.
pub fn notify_output(order_id: &str) -> Vec<u8> {
    to_bytes(&json!({"orderId": order_id, "notified": true, "subject": NOTIFY_SUBJECT}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"orderId":"o-1","userId":"u-1","createdAt":"2026-11-26T10:00:00Z",
        "items":[{"sku":"A-1","qty":2,"price":12.5},{"sku":"B-2","qty":1,"price":0.29}],
        "payment":{"method":"card","card":"4242424242424242"}}"#;

    fn order() -> Value {
        serde_json::from_str(ORDER).unwrap()
    }

    fn bytes(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    fn parse(out: &[u8]) -> Value {
        serde_json::from_slice(out).unwrap()
    }

    fn priced() -> Value {
        parse(&process_order(&bytes(&order())).unwrap())
    }

    #[track_caller]
    fn assert_err(result: Result<Vec<u8>, LogicError>, name: &str, cause_part: &str) -> LogicError {
        let err = result.expect_err("expected an error");
        assert_eq!(err.name, name, "{err}");
        assert!(
            err.cause.contains(cause_part),
            "cause {:?} lacks {cause_part:?}",
            err.cause
        );
        err
    }

    fn with(mut v: Value, pointer: &str, new: Value) -> Value {
        *v.pointer_mut(pointer).unwrap() = new;
        v
    }

    fn without(mut v: Value, field: &str) -> Value {
        v.as_object_mut().unwrap().remove(field);
        v
    }

    // --- validate ---

    #[test]
    fn validate_adds_status() {
        let out = parse(&validate(ORDER.as_bytes()).unwrap());
        assert_eq!(out["status"], "validated");
        assert_eq!(out["orderId"], "o-1");
        assert_eq!(out["items"], order()["items"]);
    }

    #[test]
    fn validate_malformed_json() {
        let e = assert_err(
            validate(b"{not json"),
            names::ORDER_MALFORMED_JSON,
            "not valid JSON",
        );
        assert!(!e.retryable);
    }

    #[test]
    fn validate_not_an_object() {
        assert_err(validate(b"[1,2]"), names::ORDER_INVALID, "JSON object");
    }

    #[test]
    fn validate_missing_or_empty_ids() {
        for field in ["orderId", "userId"] {
            let e = assert_err(
                validate(&bytes(&without(order(), field))),
                names::ORDER_INVALID,
                field,
            );
            assert!(!e.retryable);
            assert_err(
                validate(&bytes(&with(order(), &format!("/{field}"), json!("")))),
                names::ORDER_INVALID,
                field,
            );
            assert_err(
                validate(&bytes(&with(order(), &format!("/{field}"), json!(7)))),
                names::ORDER_INVALID,
                field,
            );
        }
    }

    #[test]
    fn validate_items() {
        assert_err(
            validate(&bytes(&with(order(), "/items", json!([])))),
            names::ORDER_INVALID,
            "items",
        );
        assert_err(
            validate(&bytes(&without(order(), "items"))),
            names::ORDER_INVALID,
            "items",
        );
        assert_err(
            validate(&bytes(&with(order(), "/items", json!("x")))),
            names::ORDER_INVALID,
            "items",
        );
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"sku": format!("S{i}"), "qty": 1, "price": 1}))
            .collect();
        assert_err(
            validate(&bytes(&with(order(), "/items", json!(many)))),
            names::ORDER_INVALID,
            "at most 100",
        );
        let hundred: Vec<Value> = (0..100)
            .map(|i| json!({"sku": format!("S{i}"), "qty": 1, "price": 1}))
            .collect();
        validate(&bytes(&with(order(), "/items", json!(hundred)))).unwrap();
        assert_err(
            validate(&bytes(&with(order(), "/items/1", json!(3)))),
            names::ORDER_INVALID,
            "items[1] must be an object",
        );
    }

    #[test]
    fn validate_qty() {
        for bad in [json!(0), json!(-1), json!(1.5), json!("2"), Value::Null] {
            assert_err(
                validate(&bytes(&with(order(), "/items/1/qty", bad))),
                names::ORDER_INVALID,
                "items[1].qty must be a positive integer",
            );
        }
        assert_err(
            validate(&bytes(&with(order(), "/items/0/qty", json!(MAX_QTY + 1)))),
            names::ORDER_INVALID,
            "items[0].qty",
        );
    }

    #[test]
    fn validate_price() {
        for bad in [json!(-0.01), json!("1"), Value::Null] {
            assert_err(
                validate(&bytes(&with(order(), "/items/1/price", bad))),
                names::ORDER_INVALID,
                "items[1].price must be a non-negative number",
            );
        }
        assert_err(
            validate(&bytes(&with(order(), "/items/0/price", json!(2e9)))),
            names::ORDER_INVALID,
            "items[0].price",
        );
        validate(&bytes(&with(order(), "/items/0/price", json!(0)))).unwrap();
    }

    #[test]
    fn validate_sku() {
        assert_err(
            validate(&bytes(&with(order(), "/items/0/sku", json!("")))),
            names::ORDER_INVALID,
            "items[0].sku",
        );
    }

    // --- process_order ---

    #[test]
    fn process_order_computes_totals() {
        let out = priced();
        assert_eq!(out["status"], "priced");
        // 2 * 1250 + 29 = 2529; tax 8% = 202.32 -> 202; total 2731.
        assert_eq!(
            out["totals"],
            json!({"itemCount": 3, "subtotalCents": 2529, "taxCents": 202, "totalCents": 2731})
        );
        assert_eq!(out["payment"], order()["payment"]);
    }

    #[test]
    fn tax_rounds_half_up() {
        // (price, tax cents): 7c * 8% = 0.56 -> 1; 6c -> 0.48 -> 0; 69c -> 5.52 -> 6;
        // 0.3125 -> 31c -> 2.48 -> 2; 0.1875 -> 19c -> 1.52 -> 2.
        for (price, tax) in [
            (1.0, 8),
            (0.07, 1),
            (0.06, 0),
            (0.25, 2),
            (0.69, 6),
            (0.3125, 2),
            (0.1875, 2),
        ] {
            let o = with(
                order(),
                "/items",
                json!([{"sku": "A", "qty": 1, "price": price}]),
            );
            let out = parse(&process_order(&bytes(&o)).unwrap());
            assert_eq!(out["totals"]["taxCents"], tax, "price {price}");
        }
    }

    #[test]
    fn price_rounds_to_cents() {
        let o = with(
            order(),
            "/items",
            json!([{"sku": "A", "qty": 3, "price": 0.125}]),
        );
        let out = parse(&process_order(&bytes(&o)).unwrap());
        assert_eq!(out["totals"]["subtotalCents"], 39); // round(12.5) = 13, * 3
    }

    #[test]
    fn process_order_errors() {
        assert_err(process_order(b"nope"), names::ORDER_MALFORMED_JSON, "JSON");
        assert_err(
            process_order(&bytes(&without(order(), "items"))),
            names::ORDER_INVALID,
            "items",
        );
        assert_err(
            process_order(&bytes(&with(order(), "/items/0/qty", json!(0)))),
            names::ORDER_INVALID,
            "items[0].qty",
        );
        assert_err(
            process_order(&bytes(&with(order(), "/items/0/price", json!(-1)))),
            names::ORDER_INVALID,
            "items[0].price",
        );
    }

    #[test]
    fn totals_overflow_is_invalid() {
        let items: Vec<Value> = (0..100)
            .map(|i| json!({"sku": format!("S{i}"), "qty": MAX_QTY, "price": MAX_PRICE}))
            .collect();
        assert_err(
            process_order(&bytes(&with(order(), "/items", json!(items)))),
            names::ORDER_INVALID,
            "too large",
        );
    }

    // --- process_payment ---

    #[test]
    fn payment_captured() {
        let out_bytes = process_payment(&bytes(&priced())).unwrap();
        let out = parse(&out_bytes);
        assert_eq!(out["status"], "paid");
        assert_eq!(
            out["payment"],
            json!({
                "method": "card",
                "status": "captured",
                "amountCents": 2731,
                "last4": "4242",
                "authCode": format!("{:08x}", fnv1a32(b"o-1")),
            })
        );
        assert!(
            !String::from_utf8(out_bytes)
                .unwrap()
                .contains("4242424242424242")
        );
        // Deterministic.
        assert_eq!(
            process_payment(&bytes(&priced())).unwrap(),
            process_payment(&bytes(&priced())).unwrap()
        );
    }

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn payment_declined() {
        let o = with(priced(), "/payment/card", json!("4000000000000000"));
        let e = assert_err(process_payment(&bytes(&o)), names::PAYMENT_DECLINED, "0000");
        assert!(!e.retryable);
        assert!(!e.cause.contains("4000000000000000"));
    }

    #[test]
    fn payment_unavailable_is_retryable() {
        let o = with(priced(), "/payment", json!({"method": "flaky"}));
        let e = assert_err(
            process_payment(&bytes(&o)),
            names::PAYMENT_UNAVAILABLE,
            "unavailable",
        );
        assert!(e.retryable);
    }

    #[test]
    fn payment_limit_exceeded() {
        let o = with(
            priced(),
            "/totals/totalCents",
            json!(PAYMENT_LIMIT_CENTS + 1),
        );
        let e = assert_err(
            process_payment(&bytes(&o)),
            names::PAYMENT_LIMIT_EXCEEDED,
            "limit",
        );
        assert!(!e.retryable);
        let o = with(priced(), "/totals/totalCents", json!(PAYMENT_LIMIT_CENTS));
        process_payment(&bytes(&o)).unwrap();
    }

    #[test]
    fn payment_unsupported_method() {
        let o = with(priced(), "/payment/method", json!("bitcoin"));
        let e = assert_err(
            process_payment(&bytes(&o)),
            names::PAYMENT_UNSUPPORTED_METHOD,
            "bitcoin",
        );
        assert!(!e.retryable);
    }

    #[test]
    fn payment_invalid_inputs() {
        assert_err(process_payment(b"]"), names::ORDER_MALFORMED_JSON, "JSON");
        assert_err(
            process_payment(&bytes(&order())),
            names::ORDER_INVALID,
            "totals.totalCents",
        );
        assert_err(
            process_payment(&bytes(&without(priced(), "orderId"))),
            names::ORDER_INVALID,
            "orderId",
        );
        assert_err(
            process_payment(&bytes(&without(priced(), "payment"))),
            names::ORDER_INVALID,
            "payment",
        );
        assert_err(
            process_payment(&bytes(&with(priced(), "/payment/method", json!(1)))),
            names::ORDER_INVALID,
            "payment.method",
        );
        assert_err(
            process_payment(&bytes(&with(
                priced(),
                "/payment/card",
                json!("42x2424242424242"),
            ))),
            names::ORDER_INVALID,
            "payment.card",
        );
        assert_err(
            process_payment(&bytes(&with(priced(), "/payment/card", json!("4242")))),
            names::ORDER_INVALID,
            "payment.card",
        );
    }

    // --- helpers ---

    #[test]
    fn inventory_helpers() {
        assert_eq!(stock_key("A-1"), "stock/A-1");
        let e = out_of_stock("A-1", 5, 3);
        assert_eq!(e.name, names::INVENTORY_OUT_OF_STOCK);
        assert!(e.cause.contains("A-1") && e.cause.contains('5') && e.cause.contains('3'));
        assert!(!e.retryable);
        let order = parse_order(ORDER.as_bytes()).unwrap();
        let lines = line_items(&order).unwrap();
        assert_eq!(
            lines[0],
            LineItem {
                sku: "A-1".into(),
                qty: 2,
                unit_price_cents: 1250
            }
        );
        let out = parse(&with_reservations(
            order,
            &[
                Reservation {
                    sku: "A-1".into(),
                    qty: 2,
                    remaining: Some(8),
                },
                Reservation {
                    sku: "B-2".into(),
                    qty: 1,
                    remaining: None,
                },
            ],
        ));
        assert_eq!(out["status"], "reserved");
        assert_eq!(
            out["inventory"],
            json!({"reserved": [
                {"sku": "A-1", "qty": 2, "remaining": 8},
                {"sku": "B-2", "qty": 1, "remaining": null},
            ]})
        );
    }

    #[test]
    fn aggregate_helpers() {
        let order = parse_order(&bytes(&priced())).unwrap();
        assert_eq!(
            aggregate_input(&order).unwrap(),
            AggregateInput {
                user_id: "u-1".into(),
                total_cents: 2731
            }
        );
        assert_eq!(user_orders_key("u-1"), "user/u-1/orders");
        let out = parse(&with_stats(
            order,
            Stats {
                order_count: 1,
                revenue_cents: 2731,
                user_orders: 1,
            },
        ));
        assert_eq!(
            out["stats"],
            json!({"orderCount": 1, "revenueCents": 2731, "userOrders": 1})
        );
        let unpriced = parse_order(ORDER.as_bytes()).unwrap();
        assert_eq!(
            aggregate_input(&unpriced).unwrap_err().name,
            names::ORDER_INVALID
        );
    }

    #[test]
    fn store_helpers() {
        let order = parse_order(&bytes(&priced())).unwrap();
        let stored = stored_order(&order).unwrap();
        assert_eq!(stored.pk, "ORDER#o-1");
        assert_eq!(stored.sk, "META");
        assert_eq!(
            parse(&stored.doc),
            json!({"orderId": "o-1", "userId": "u-1", "status": "stored",
                   "createdAt": "2026-11-26T10:00:00Z", "totalCents": 2731, "itemCount": 3})
        );
        let out = parse(&with_stored(order, "ORDER#o-1", "META", 1));
        assert_eq!(
            out["stored"],
            json!({"pk": "ORDER#o-1", "sk": "META", "version": 1})
        );
        assert_eq!(out["status"], "stored");
        let unpriced = parse_order(ORDER.as_bytes()).unwrap();
        assert_eq!(
            stored_order(&unpriced).unwrap_err().name,
            names::ORDER_INVALID
        );
    }

    #[test]
    fn store_request_parsing() {
        assert!(matches!(
            store_request(ORDER.as_bytes()).unwrap(),
            StoreRequest::Store(_)
        ));
        let q =
            store_request(br#"{"query":{"index":"by-user","pk":"u-1","forward":false,"limit":5}}"#)
                .unwrap();
        assert_eq!(
            q,
            StoreRequest::Query(TableQuery {
                index: Some("by-user".into()),
                pk: "u-1".into(),
                forward: false,
                limit: 5,
                cursor: None
            })
        );
        let q =
            store_request(br#"{"query":{"index":null,"pk":"ORDER#o-1","cursor":"c"}}"#).unwrap();
        assert_eq!(
            q,
            StoreRequest::Query(TableQuery {
                index: None,
                pk: "ORDER#o-1".into(),
                forward: true,
                limit: 100,
                cursor: Some("c".into())
            })
        );
        for bad in [
            r#"{"query":1}"#,
            r#"{"query":{"pk":""}}"#,
            r#"{"query":{"pk":"x","index":3}}"#,
            r#"{"query":{"pk":"x","forward":"yes"}}"#,
            r#"{"query":{"pk":"x","limit":0}}"#,
            r#"{"query":{"pk":"x","cursor":5}}"#,
        ] {
            assert_eq!(
                store_request(bad.as_bytes()).unwrap_err().name,
                names::QUERY_INVALID,
                "{bad}"
            );
        }
        assert_eq!(
            store_request(b"{").unwrap_err().name,
            names::ORDER_MALFORMED_JSON
        );
        let out = parse(&query_output([&br#"{"a":1}"#[..], b"raw"], Some("next")));
        assert_eq!(out, json!({"items": [{"a": 1}, "raw"], "cursor": "next"}));
        let out = parse(&query_output(std::iter::empty(), None));
        assert_eq!(out, json!({"items": [], "cursor": null}));
    }

    #[test]
    fn notify_helpers() {
        assert_eq!(format_dollars(2731), "27.31");
        assert_eq!(format_dollars(5), "0.05");
        assert_eq!(format_dollars(0), "0.00");
        assert_eq!(format_dollars(-150), "-1.50");
        let order = parse_order(&bytes(&priced())).unwrap();
        let n = notification(&order).unwrap();
        assert_eq!(n.order_id, "o-1");
        assert_eq!(n.message, "Order o-1 confirmed: $27.31");
        assert_eq!(
            parse(&n.data),
            json!({"orderId": "o-1", "userId": "u-1", "totalCents": 2731, "message": "Order o-1 confirmed: $27.31"})
        );
        assert_eq!(
            parse(&notify_output("o-1")),
            json!({"orderId": "o-1", "notified": true, "subject": "notifications.order"})
        );
        let unpriced = parse_order(ORDER.as_bytes()).unwrap();
        assert_eq!(
            notification(&unpriced).unwrap_err().name,
            names::ORDER_INVALID
        );
    }

    #[test]
    fn error_display() {
        assert_eq!(
            LogicError::retryable("A.B", "c").to_string(),
            "A.B: c (retryable)"
        );
        assert_eq!(LogicError::permanent("A.B", "c").to_string(), "A.B: c");
    }
}

#[cfg(test)]
mod fast_path_tests {
    use serde_json::{Value, json};

    /// The fast path and the general path agree on every order the fast path accepts, and
    /// the fast path declines whatever it cannot handle exactly.
    #[test]
    fn fast_path_agrees_with_general_path() {
        let orders = [
            json!({"orderId": "o-1", "userId": "u-1", "items": [{"sku": "A", "qty": 2, "price": 12.5}]}),
            json!({"orderId": "o-2", "userId": "u-1", "status": "validated", "totals": {"old": 1},
                   "items": [{"sku": "A", "qty": 1, "price": 0.1}, {"sku": "B", "qty": 3, "price": 19.99, "extra": [1, 2]}],
                   "nested": {"z": [1.50, "x"], "a": null}}),
        ];
        for order in orders {
            let input = serde_json::to_vec(&order).unwrap();
            let fast =
                super::fast::process_order(&input).expect("fast path handles a plain valid order");
            let general = super::process_order_general(&input).unwrap();
            let (fast, general): (Value, Value) = (
                serde_json::from_slice(&fast).unwrap(),
                serde_json::from_slice(&general).unwrap(),
            );
            assert_eq!(fast, general);
        }
        // Escaped keys and invalid orders are left to the general path.
        for input in [
            br#"{"order\u0049d": "o-1", "userId": "u", "items": [{"sku": "A", "qty": 1, "price": 1}]}"#.as_slice(),
            br#"{"orderId": "o-1", "userId": "u", "items": [{"sku": "A", "qty": 0, "price": 1}]}"#,
            br#"{"orderId": "o-1", "userId": "u", "items": []}"#,
            br#"{"orderId": "o-1", "userId": "u", "items": [{"sku": "A", "qty": 1, "price": -1}]}"#,
            br#"not json"#,
        ] {
            assert!(super::fast::process_order(input).is_none(), "{}", String::from_utf8_lossy(input));
        }
    }
}
