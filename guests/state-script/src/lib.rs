//! `state-script`: runs a script of state calls from the event data through the real
//! `keyvalue`, `table` and `emit` imports and returns what each call returned, so tests can
//! exercise every host function across the component boundary.
//!
//! Input: `{"ops":[<op>,..],"fail":<error name>?}`. Output: `{"results":[<r>,..]}`, one result
//! per op: the call's value as JSON, or `{"error":"<variant>","message":"<payload>"}` when the
//! call returned a WIT error (the variant's WIT name, e.g. `access-denied`). Each op opens its
//! bucket or table and drops the handle when it ends; a failed `open` is the op's result.
//!
//! Ops (`"op"` names the call; its fields follow):
//! * `kv.get {bucket,key}` → string (lossy UTF-8) or null; `kv.set {bucket,key,value}` or
//!   `{bucket,key,size}` (`size` bytes of `x`) → null; `kv.delete {bucket,key}` → null;
//!   `kv.exists {bucket,key}` → bool; `kv.list {bucket,prefix?,cursor?,limit?}` →
//!   `{"keys","cursor"}`; `kv.increment {bucket,key,delta}` → number; `kv.cas
//!   {bucket,key,expected:string|null,new}` → bool; `kv.get-many {bucket,keys}` or
//!   `{bucket,count}` (keys `k0`, `k1`, ..) → list of string or null; `kv.set-many
//!   {bucket,entries:[[k,v],..]}` or `{bucket,count}` (`k<i>` set to `v<i>`) → null;
//!   `kv.open-many {bucket,count}` holds `count` handles open at once →
//!   `{"opened":n,"error":<the first error, or null>}`.
//! * `table.put {table,pk,sk,doc|doc_raw|doc_size,cond?,ttl_ms?}` → version (`doc_raw` sends a
//!   string's bytes as they are, `doc_size` an object `{"pad":"xx.."}` of that many bytes);
//!   `table.get {table,pk,sk}` → item or null; `table.delete {table,pk,sk,cond?}` → bool;
//!   `table.update {table,pk,sk,patch|patch_raw|patch_size,cond?}` → item; `table.query
//!   {table,index?,pk,sk?,forward?,limit?,cursor?}` → `{"items","cursor"}`. An item is
//!   `{"pk","sk","doc","version","expires_at"}`; `cond` is `"always"` (the default),
//!   `"must-not-exist"`, `"must-exist"` or `{"version-is":n}`; `sk` is `{"any":true}` (the
//!   default), `{"equals":v}`, `{"begins-with":v}`, `{"between":[a,b]}`, `{"lt":v}`,
//!   `{"le":v}`, `{"gt":v}` or `{"ge":v}`; `forward` defaults to true, `limit` to 100.
//! * `emit {subject,data|data_raw|data_size,headers?:[[k,v],..],repeat?}` → how many emits
//!   succeeded (`data` is sent as JSON, `data_raw` as the string's bytes, `data_size` as that
//!   many bytes of `x`); the first error ends the op and is its result.
//!
//! With `"fail"`, once every op has run the stage fails with that name (permanent) and the
//! results JSON as cause, so tests can check that a failed event's writes are dropped.
//! Errors: `Input.Invalid` for malformed input (permanent).

wit_bindgen::generate!({ world: "stage", path: "../../wit" });

use exports::sluice::platform::handler::Guest;
use serde_json::{Map, Value, json};
use sluice::platform::table::{Condition, Query, SortKeyCondition};
use sluice::platform::types::{Event, StageError, StageResult};
use sluice::platform::{emit, keyvalue, table};

struct Stage;

/// Why an op produced no value.
enum Fail {
    /// The script is malformed: the whole event fails with `Input.Invalid`.
    Input(String),
    /// A host call returned a WIT error: this error object is the op's result.
    Call(Value),
}

type OpResult = Result<Value, Fail>;

fn input(message: impl Into<String>) -> Fail {
    Fail::Input(message.into())
}

fn error_object(variant: &str, message: String) -> Value {
    json!({ "error": variant, "message": message })
}

fn kv_error(e: keyvalue::Error) -> Value {
    match e {
        keyvalue::Error::AccessDenied(m) => error_object("access-denied", m),
        keyvalue::Error::TooLarge(m) => error_object("too-large", m),
        keyvalue::Error::InvalidValue(m) => error_object("invalid-value", m),
        keyvalue::Error::Store(m) => error_object("store", m),
    }
}

impl From<keyvalue::Error> for Fail {
    fn from(e: keyvalue::Error) -> Self {
        Self::Call(kv_error(e))
    }
}

impl From<table::Error> for Fail {
    fn from(e: table::Error) -> Self {
        Self::Call(match e {
            table::Error::AccessDenied(m) => error_object("access-denied", m),
            table::Error::NoSuchIndex(m) => error_object("no-such-index", m),
            table::Error::ConditionFailed(m) => error_object("condition-failed", m),
            table::Error::InvalidArgument(m) => error_object("invalid-argument", m),
            table::Error::TooLarge(m) => error_object("too-large", m),
            table::Error::Store(m) => error_object("store", m),
        })
    }
}

impl From<emit::Error> for Fail {
    fn from(e: emit::Error) -> Self {
        Self::Call(match e {
            emit::Error::InvalidSubject(m) => error_object("invalid-subject", m),
            emit::Error::TooLarge(m) => error_object("too-large", m),
        })
    }
}

/// The fields of one op.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    /// The field `name`, treating `null` as absent.
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn opt_str(&self, name: &str) -> Result<Option<&str>, Fail> {
        self.get(name)
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| input(format!("{name} must be a string")))
            })
            .transpose()
    }

    fn str(&self, name: &str) -> Result<&str, Fail> {
        self.opt_str(name)?
            .ok_or_else(|| input(format!("{name} is required")))
    }

    fn opt_u64(&self, name: &str) -> Result<Option<u64>, Fail> {
        self.get(name)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| input(format!("{name} must be a non-negative integer")))
            })
            .transpose()
    }

    fn opt_u32(&self, name: &str) -> Result<Option<u32>, Fail> {
        self.opt_u64(name)?
            .map(|n| u32::try_from(n).map_err(|_| input(format!("{name} must fit in 32 bits"))))
            .transpose()
    }

    fn opt_usize(&self, name: &str) -> Result<Option<usize>, Fail> {
        self.opt_u64(name)?
            .map(|n| usize::try_from(n).map_err(|_| input(format!("{name} is too big"))))
            .transpose()
    }

    fn usize(&self, name: &str) -> Result<usize, Fail> {
        self.opt_usize(name)?
            .ok_or_else(|| input(format!("{name} is required")))
    }

    fn i64(&self, name: &str) -> Result<i64, Fail> {
        self.get(name)
            .and_then(Value::as_i64)
            .ok_or_else(|| input(format!("{name} must be a 64-bit integer")))
    }

    fn opt_bool(&self, name: &str) -> Result<Option<bool>, Fail> {
        self.get(name)
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| input(format!("{name} must be a boolean")))
            })
            .transpose()
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, Fail> {
        self.get(name)
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| input(format!("{name} must be an array of strings")))
    }

    fn pairs(&self, name: &str) -> Result<Option<Vec<(String, String)>>, Fail> {
        self.get(name)
            .map(|v| {
                v.as_array()
                    .and_then(|a| a.iter().map(string_pair).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| input(format!("{name} must be an array of [string, string]")))
            })
            .transpose()
    }

    /// Bytes from the JSON field `json` (serialised), the string field `raw` (as is), or
    /// `size` bytes from `sized`; one of the three is required.
    fn bytes(
        &self,
        json: &str,
        raw: &str,
        sized: impl Fn(usize) -> Vec<u8>,
    ) -> Result<Vec<u8>, Fail> {
        if let Some(s) = self.opt_str(raw)? {
            return Ok(s.as_bytes().to_vec());
        }
        if let Some(v) = self.get(json) {
            return Ok(v.to_string().into_bytes());
        }
        let size_field = format!("{json}_size");
        match self.opt_usize(&size_field)? {
            Some(n) => Ok(sized(n)),
            None => Err(input(format!(
                "one of {json}, {raw} or {size_field} is required"
            ))),
        }
    }
}

fn string_pair(v: &Value) -> Option<(String, String)> {
    match v.as_array()?.as_slice() {
        [Value::String(k), Value::String(v)] => Some((k.clone(), v.clone())),
        _ => None,
    }
}

fn lossy(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// `n` bytes of `x`.
fn filler(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

/// Keys `k0`, `k1`, .. of a generated batch.
fn generated_key(i: usize) -> String {
    format!("k{i}")
}

fn run_op(op: &Value) -> OpResult {
    let args = Args(
        op.as_object()
            .ok_or_else(|| input("each op must be an object"))?,
    );
    let name = args.str("op")?;
    match name.split_once('.') {
        Some(("kv", call)) => kv_op(&args, call),
        Some(("table", call)) => table_op(&args, call),
        None if name == "emit" => emit_op(&args),
        _ => Err(input(format!("unknown op {name:?}"))),
    }
}

fn open_bucket(args: &Args<'_>) -> Result<keyvalue::Bucket, Fail> {
    Ok(keyvalue::open(args.str("bucket")?)?)
}

fn kv_op(args: &Args<'_>, call: &str) -> OpResult {
    match call {
        "get" => {
            let key = args.str("key")?;
            let value = open_bucket(args)?.get(key)?;
            Ok(value.as_deref().map_or(Value::Null, lossy))
        }
        "set" => {
            let key = args.str("key")?;
            let value = match args.opt_usize("size")? {
                Some(n) => filler(n),
                None => args.str("value")?.as_bytes().to_vec(),
            };
            open_bucket(args)?.set(key, &value)?;
            Ok(Value::Null)
        }
        "delete" => {
            let key = args.str("key")?;
            open_bucket(args)?.delete(key)?;
            Ok(Value::Null)
        }
        "exists" => {
            let key = args.str("key")?;
            Ok(Value::Bool(open_bucket(args)?.exists(key)?))
        }
        "list" => {
            let prefix = args.opt_str("prefix")?.unwrap_or_default();
            let cursor = args.opt_str("cursor")?.map(str::to_owned);
            let limit = args.opt_u32("limit")?.unwrap_or(100);
            let page = open_bucket(args)?.list_keys(prefix, cursor.as_deref(), limit)?;
            Ok(json!({ "keys": page.keys, "cursor": page.cursor }))
        }
        "increment" => {
            let key = args.str("key")?;
            let delta = args.i64("delta")?;
            Ok(Value::from(open_bucket(args)?.increment(key, delta)?))
        }
        "cas" => {
            let key = args.str("key")?;
            let expected = args.opt_str("expected")?;
            let new = args.str("new")?;
            let swapped = open_bucket(args)?.compare_and_swap(
                key,
                expected.map(str::as_bytes),
                new.as_bytes(),
            )?;
            Ok(Value::Bool(swapped))
        }
        "get-many" => {
            let keys = match args.opt_usize("count")? {
                Some(n) => (0..n).map(generated_key).collect(),
                None => args.strings("keys")?,
            };
            let values = open_bucket(args)?.get_many(&keys)?;
            Ok(values
                .iter()
                .map(|v| v.as_deref().map_or(Value::Null, lossy))
                .collect())
        }
        "set-many" => {
            let entries: Vec<(String, Vec<u8>)> = match args.opt_usize("count")? {
                Some(n) => (0..n)
                    .map(|i| (generated_key(i), format!("v{i}").into_bytes()))
                    .collect(),
                None => args
                    .pairs("entries")?
                    .ok_or_else(|| input("one of entries or count is required"))?
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect(),
            };
            open_bucket(args)?.set_many(&entries)?;
            Ok(Value::Null)
        }
        "open-many" => {
            let bucket = args.str("bucket")?;
            let count = args.usize("count")?;
            let mut open = Vec::new();
            let mut error = Value::Null;
            for _ in 0..count {
                match keyvalue::open(bucket) {
                    Ok(handle) => open.push(handle),
                    Err(e) => {
                        error = kv_error(e);
                        break;
                    }
                }
            }
            Ok(json!({ "opened": open.len(), "error": error }))
        }
        _ => Err(input(format!("unknown op kv.{call}"))),
    }
}

fn condition(args: &Args<'_>) -> Result<Condition, Fail> {
    let Some(cond) = args.get("cond") else {
        return Ok(Condition::Always);
    };
    match cond {
        Value::String(s) => match s.as_str() {
            "always" => Ok(Condition::Always),
            "must-not-exist" => Ok(Condition::MustNotExist),
            "must-exist" => Ok(Condition::MustExist),
            _ => Err(input(format!("unknown condition {s:?}"))),
        },
        _ => cond
            .get("version-is")
            .and_then(Value::as_u64)
            .map(Condition::VersionIs)
            .ok_or_else(|| input(format!("unknown condition {cond}"))),
    }
}

fn sort_key(args: &Args<'_>) -> Result<SortKeyCondition, Fail> {
    let Some(sk) = args.get("sk") else {
        return Ok(SortKeyCondition::Any);
    };
    let (kind, value) = sk
        .as_object()
        .filter(|m| m.len() == 1)
        .and_then(|m| m.iter().next())
        .ok_or_else(|| input("sk must be an object with one key"))?;
    let string = || {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| input(format!("sk.{kind} must be a string")))
    };
    Ok(match kind.as_str() {
        "any" => SortKeyCondition::Any,
        "equals" => SortKeyCondition::Equals(string()?),
        "begins-with" => SortKeyCondition::BeginsWith(string()?),
        "between" => SortKeyCondition::Between(
            string_pair(value).ok_or_else(|| input("sk.between must be [string, string]"))?,
        ),
        "lt" => SortKeyCondition::LessThan(string()?),
        "le" => SortKeyCondition::LessOrEqual(string()?),
        "gt" => SortKeyCondition::GreaterThan(string()?),
        "ge" => SortKeyCondition::GreaterOrEqual(string()?),
        _ => return Err(input(format!("unknown sort-key condition {kind:?}"))),
    })
}

fn item_json(item: table::Item) -> Value {
    json!({
        "pk": item.pk,
        "sk": item.sk,
        "doc": serde_json::from_slice::<Value>(&item.doc).unwrap_or_else(|_| lossy(&item.doc)),
        "version": item.version,
        "expires_at": item.expires_at,
    })
}

/// A document `{"pad":"xx.."}` of `n` bytes (at least the 10 of `{"pad":""}`).
fn padded_doc(n: usize) -> Vec<u8> {
    const FRAME: usize = r#"{"pad":""}"#.len();
    json!({ "pad": "x".repeat(n.saturating_sub(FRAME)) })
        .to_string()
        .into_bytes()
}

fn open_table(args: &Args<'_>) -> Result<table::Table, Fail> {
    Ok(table::open(args.str("table")?)?)
}

fn table_op(args: &Args<'_>, call: &str) -> OpResult {
    match call {
        "put" => {
            let (pk, sk) = (args.str("pk")?, args.str("sk")?);
            let doc = args.bytes("doc", "doc_raw", padded_doc)?;
            let cond = condition(args)?;
            let ttl_ms = args.opt_u64("ttl_ms")?;
            Ok(Value::from(
                open_table(args)?.put(pk, sk, &doc, cond, ttl_ms)?,
            ))
        }
        "get" => {
            let (pk, sk) = (args.str("pk")?, args.str("sk")?);
            Ok(open_table(args)?
                .get(pk, sk)?
                .map_or(Value::Null, item_json))
        }
        "delete" => {
            let (pk, sk) = (args.str("pk")?, args.str("sk")?);
            let cond = condition(args)?;
            Ok(Value::Bool(open_table(args)?.delete(pk, sk, cond)?))
        }
        "update" => {
            let (pk, sk) = (args.str("pk")?, args.str("sk")?);
            let patch = args.bytes("patch", "patch_raw", padded_doc)?;
            let cond = condition(args)?;
            Ok(item_json(open_table(args)?.update(pk, sk, &patch, cond)?))
        }
        "query" => {
            let q = Query {
                index: args.opt_str("index")?.map(str::to_owned),
                pk: args.str("pk")?.to_owned(),
                sk: sort_key(args)?,
                forward: args.opt_bool("forward")?.unwrap_or(true),
                limit: args.opt_u32("limit")?.unwrap_or(100),
                cursor: args.opt_str("cursor")?.map(str::to_owned),
            };
            let page = open_table(args)?.query(&q)?;
            let items: Vec<Value> = page.items.into_iter().map(item_json).collect();
            Ok(json!({ "items": items, "cursor": page.cursor }))
        }
        _ => Err(input(format!("unknown op table.{call}"))),
    }
}

fn emit_op(args: &Args<'_>) -> OpResult {
    let subject = args.str("subject")?;
    let data = args.bytes("data", "data_raw", filler)?;
    let headers = args.pairs("headers")?.unwrap_or_default();
    let repeat = args.opt_u64("repeat")?.unwrap_or(1);
    for _ in 0..repeat {
        emit::emit(subject, &data, &headers)?;
    }
    Ok(Value::from(repeat))
}

fn invalid(cause: String) -> StageError {
    StageError {
        name: "Input.Invalid".into(),
        cause,
        retryable: false,
    }
}

fn run(data: &[u8]) -> Result<Vec<u8>, StageError> {
    let input: Value =
        serde_json::from_slice(data).map_err(|e| invalid(format!("data is not JSON: {e}")))?;
    let ops = input
        .get("ops")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("ops must be an array".into()))?;
    let fail = match input.get("fail") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(name.clone()),
        Some(_) => return Err(invalid("fail must be a string".into())),
    };
    let mut results = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        match run_op(op) {
            Ok(v) | Err(Fail::Call(v)) => results.push(v),
            Err(Fail::Input(m)) => return Err(invalid(format!("ops[{i}]: {m}"))),
        }
    }
    let output = json!({ "results": results }).to_string();
    match fail {
        Some(name) => Err(StageError {
            name,
            cause: output,
            retryable: false,
        }),
        None => Ok(output.into_bytes()),
    }
}

impl Guest for Stage {
    fn handle(event: Event) -> StageResult {
        run(&event.data)
    }
}

export!(Stage);
