//! A Map's ItemReader: which object (Parameters/Arguments → `Bucket`, `Key`), read through
//! [`Objects`], cut into items by ReaderConfig (a JSON array, JSON lines, or CSV rows as
//! objects keyed by their headers), at most MaxItems of them.
//!
//! Only `arn:aws:states:::s3:getObject` reads: Sluice keeps no object listings, inventories
//! or Parquet, so those resources and input types fail with [`ITEM_READER_UNSUPPORTED`].

use serde_json::{Map, Value};

use super::io::{self, Ctx};
use super::states::{ITEM_READER_UNSUPPORTED, eval_uint};
use crate::definition::{CsvHeaderLocation, InputType, ItemReader};
use crate::env::Objects;
use crate::error::{StatesError, names};

/// The one reader resource Sluice serves.
pub const GET_OBJECT: &str = "arn:aws:states:::s3:getObject";

/// The start of the cause when the object could not be read.
pub const OBJECT_READ_FAILED: &str = "Could not read the object: ";

/// AWS's Distributed Map reads at most this many items, whatever MaxItems says.
pub const MAX_ITEMS: u64 = 100_000_000;

/// ReaderConfig.MaxItems (or its Path or JSONata form): `None` for no limit (absent or 0).
/// Its errors are the state's own (the caller prefixes them).
pub(super) fn max_items(
    reader: &ItemReader,
    effective: &Value,
    states: &Value,
    ctx: &Ctx<'_>,
) -> Result<Option<u64>, StatesError> {
    let Some(d) = &reader.max_items else {
        return Ok(None);
    };
    let n = eval_uint(d, "MaxItems", "non-negative", effective, states, ctx)?;
    Ok((n > 0).then_some(n.min(MAX_ITEMS)))
}

/// Read the reader's object and cut it into at most `limit` items.
pub(super) fn read(
    reader: &ItemReader,
    limit: Option<u64>,
    effective: &Value,
    states: &Value,
    ctx: &Ctx<'_>,
    objects: &dyn Objects,
) -> Result<Vec<Value>, StatesError> {
    if reader.resource != GET_OBJECT {
        return Err(failed(format!(
            "{ITEM_READER_UNSUPPORTED}{}",
            reader.resource
        )));
    }
    if let Some(h) = &reader.csv_headers
        && h.iter().enumerate().any(|(i, a)| h[..i].contains(a))
    {
        return Err(failed("CSV headers cannot contain duplicates."));
    }
    let args = match (&reader.parameters, &reader.arguments) {
        (Some(p), _) => io::payload(p, effective, ctx)?,
        (None, Some(t)) => io::template(t, "Arguments", states, ctx)?,
        (None, None) => Value::Null,
    };
    let field = |name: &str| {
        args.get(name).and_then(Value::as_str).ok_or_else(|| {
            failed(format!(
                "The ItemReader's {} must give '{name}' as a string, got: {args}",
                if reader.arguments.is_some() {
                    "Arguments"
                } else {
                    "Parameters"
                }
            ))
        })
    };
    let (bucket, key) = (field("Bucket")?, field("Key")?);
    let body = objects
        .get(bucket, key)
        .map_err(|e| failed(format!("{OBJECT_READ_FAILED}{e}")))?;
    let limit = usize::try_from(limit.unwrap_or(MAX_ITEMS)).unwrap_or(usize::MAX);
    match reader.input_type {
        None | Some(InputType::Json) => json_items(&body, limit),
        Some(InputType::Jsonl) => jsonl_items(&body, limit),
        Some(InputType::Csv) => csv_items(reader, &body, limit),
        Some(t @ (InputType::Manifest | InputType::Parquet)) => Err(failed(format!(
            "{ITEM_READER_UNSUPPORTED}{GET_OBJECT} with InputType {}",
            if t == InputType::Manifest {
                "MANIFEST"
            } else {
                "PARQUET"
            }
        ))),
    }
}

fn failed(cause: impl Into<String>) -> StatesError {
    StatesError::new(names::ITEM_READER_FAILED, cause)
}

/// A JSON array, its first `limit` elements.
pub(super) fn json_items(body: &[u8], limit: usize) -> Result<Vec<Value>, StatesError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(mut items)) => {
            items.truncate(limit);
            Ok(items)
        }
        Ok(_) => Err(failed("Attempting to map over non-iterable node.")),
        Err(e) => Err(failed(format!("The object is not valid JSON: {e}"))),
    }
}

/// One JSON value per non-blank line.
pub(super) fn jsonl_items(body: &[u8], limit: usize) -> Result<Vec<Value>, StatesError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| failed(format!("The object is not UTF-8 text: {e}")))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(limit)
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| failed(format!("Line {} is not valid JSON: {e}", i + 1)))
        })
        .collect()
}

/// CSV rows as objects keyed by the headers (the first row, or the given ones). A row with
/// fewer fields than headers gets `""` for the missing ones; fields past the last header are
/// dropped; every value stays a string, as AWS gives them.
pub(super) fn csv_items(
    reader: &ItemReader,
    body: &[u8],
    limit: usize,
) -> Result<Vec<Value>, StatesError> {
    let mut rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(reader.delimiter)
        .from_reader(body)
        .into_records();
    let mut next = || -> Result<Option<csv::StringRecord>, StatesError> {
        rows.next()
            .transpose()
            .map_err(|e| failed(format!("The object is not valid CSV: {e}")))
    };
    let headers: Vec<String> = match reader.header_location {
        CsvHeaderLocation::Given => reader.csv_headers.clone().unwrap_or_default(),
        CsvHeaderLocation::FirstRow => match next()? {
            Some(r) => r.iter().map(str::to_owned).collect(),
            None => return Ok(Vec::new()),
        },
    };
    if headers
        .iter()
        .enumerate()
        .any(|(i, a)| headers[..i].contains(a))
    {
        return Err(failed("CSV headers cannot contain duplicates."));
    }
    let mut items = Vec::new();
    while items.len() < limit {
        let Some(row) = next()? else { break };
        let mut o = Map::with_capacity(headers.len());
        for (i, h) in headers.iter().enumerate() {
            o.insert(
                h.clone(),
                Value::String(row.get(i).unwrap_or("").to_owned()),
            );
        }
        items.push(Value::Object(o));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn csv_reader(location: CsvHeaderLocation, headers: Option<&[&str]>) -> ItemReader {
        ItemReader {
            resource: GET_OBJECT.into(),
            input_type: Some(InputType::Csv),
            header_location: location,
            csv_headers: headers.map(|h| h.iter().map(|s| (*s).to_owned()).collect()),
            delimiter: b',',
            max_items: None,
            parameters: None,
            arguments: None,
        }
    }

    #[test]
    fn csv_rows_are_padded_and_cut_to_the_headers() {
        let r = csv_reader(CsvHeaderLocation::FirstRow, None);
        let got = csv_items(&r, b"A,B\n1,2,3\n4\n\"x,y\",\"q\"\"\"\n", usize::MAX).unwrap();
        assert_eq!(
            got,
            vec![
                json!({"A": "1", "B": "2"}),
                json!({"A": "4", "B": ""}),
                json!({"A": "x,y", "B": "q\""}),
            ]
        );
    }

    #[test]
    fn csv_given_headers_read_every_row_and_stop_at_the_limit() {
        let r = csv_reader(CsvHeaderLocation::Given, Some(&["H"]));
        let got = csv_items(&r, b"a\nb\nc\n", 2).unwrap();
        assert_eq!(got, vec![json!({"H": "a"}), json!({"H": "b"})]);
    }

    #[test]
    fn csv_duplicate_first_row_headers_fail() {
        let r = csv_reader(CsvHeaderLocation::FirstRow, None);
        let e = csv_items(&r, b"A,A\n1,2\n", usize::MAX).unwrap_err();
        assert_eq!(e.error, names::ITEM_READER_FAILED);
        assert_eq!(e.cause, "CSV headers cannot contain duplicates.");
    }

    #[test]
    fn other_delimiters_split_fields() {
        let mut r = csv_reader(CsvHeaderLocation::FirstRow, None);
        r.delimiter = b'|';
        let got = csv_items(&r, b"A|B\n1|2\n", usize::MAX).unwrap();
        assert_eq!(got, vec![json!({"A": "1", "B": "2"})]);
    }

    #[test]
    fn json_needs_an_array() {
        assert_eq!(
            json_items(br#"[1,{"a":2},3]"#, 2).unwrap(),
            vec![json!(1), json!({"a": 2})]
        );
        let e = json_items(br#"{"Hello":"world"}"#, 9).unwrap_err();
        assert_eq!(e.cause, "Attempting to map over non-iterable node.");
        let e = json_items(b"[1,", 9).unwrap_err();
        assert!(
            e.cause.starts_with("The object is not valid JSON"),
            "{}",
            e.cause
        );
    }

    #[test]
    fn jsonl_reads_a_value_per_line_and_names_a_bad_line() {
        assert_eq!(
            jsonl_items(b"{\"a\":1}\n\n2\n\"x\"\n", usize::MAX).unwrap(),
            vec![json!({"a": 1}), json!(2), json!("x")]
        );
        let e = jsonl_items(b"1\n{oops\n", usize::MAX).unwrap_err();
        assert!(
            e.cause.starts_with("Line 2 is not valid JSON"),
            "{}",
            e.cause
        );
    }
}
