//! The parsers of the state types with fields of their own: Task, Choice, Wait, Fail, Map
//! (with its ItemReader). Split from `parse.rs`, which holds the machine, the common fields
//! and the graph checks.

use serde_json::Value;

use super::fields::Obj;
use super::parse::{assign, dynamic_uint, machine, path, schema, template};
use super::payload;
use super::{
    Batcher, ChoiceBranch, Condition, CsvHeaderLocation, Dynamic, FailField, InputType, Invalid,
    ItemReader, Items, Kind, Lang, MapState, WaitFor,
};
use crate::choice;
use crate::jsonata::{self, Template};
use crate::jsonpath::Path;
use crate::resource::Resource;

pub(super) fn task(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Option<Kind> {
    let resource = obj
        .required("Resource", errs)
        .and_then(|_| obj.str("Resource", errs))?;
    if let Err(e) = Resource::parse(resource) {
        errs.push(schema(e, &obj.at("Resource")));
    }
    let timeout = dynamic_uint(obj, "TimeoutSeconds", lang, errs);
    let heartbeat = dynamic_uint(obj, "HeartbeatSeconds", lang, errs);
    if let (Some(Dynamic::Literal(t)), Some(Dynamic::Literal(h))) = (&timeout, &heartbeat)
        && h >= t
    {
        errs.push(schema(
            "HeartbeatSeconds must be smaller than TimeoutSeconds",
            &obj.at("HeartbeatSeconds"),
        ));
    }
    for (field, v) in [
        ("TimeoutSeconds", &timeout),
        ("HeartbeatSeconds", &heartbeat),
    ] {
        if let Some(Dynamic::Literal(0)) = v {
            errs.push(schema(
                format!("{field} must be at least 1"),
                &obj.at(field),
            ));
        }
    }
    Some(Kind::Task {
        resource: resource.to_owned(),
        timeout,
        heartbeat,
    })
}

pub(super) fn choice_state(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Option<Kind> {
    let list = obj
        .required("Choices", errs)
        .and_then(|_| obj.array("Choices", errs))?;
    if list.is_empty() {
        errs.push(schema("Choices must not be empty", &obj.at("Choices")));
    }
    let mut choices = Vec::new();
    for (i, v) in list.iter().enumerate() {
        let at = format!("{}/{i}", obj.at("Choices"));
        let Some(c) = Obj::new(v, &at, "A choice rule", errs) else {
            continue;
        };
        let next = c
            .required("Next", errs)
            .and_then(|_| c.str("Next", errs))
            .unwrap_or_default()
            .to_owned();
        let rule = match lang {
            Lang::Jsonata => {
                c.only(&["Condition", "Next", "Output", "Assign", "Comment"], errs);
                let Some(cond) = c.required("Condition", errs) else {
                    continue;
                };
                let Some(t) = template(cond, &c.at("Condition"), errs) else {
                    continue;
                };
                Condition::Jsonata(t)
            }
            Lang::JsonPath => {
                c.not_in(&["Condition", "Output"], "JSONPath", errs);
                // The rule's own fields; Next and Assign belong to the branch.
                let mut rule = c.map.clone();
                rule.remove("Assign");
                match choice::parse_rule(&Value::Object(rule), &at, true) {
                    Ok(r) => Condition::JsonPath(r),
                    Err(e) => {
                        errs.push(schema(e.message, &e.pointer));
                        continue;
                    }
                }
            }
        };
        choices.push(ChoiceBranch {
            rule,
            next,
            output: c
                .get("Output")
                .and_then(|v| template(v, &c.at("Output"), errs)),
            assign: assign(&c, lang, errs),
        });
    }
    Some(Kind::Choice {
        choices,
        default: obj.str("Default", errs).map(str::to_owned),
    })
}

pub(super) fn wait(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Option<Kind> {
    let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
        .into_iter()
        .filter(|f| obj.has(f))
        .collect();
    if given.len() != 1 {
        errs.push(schema(
            "Exactly one of Seconds, SecondsPath, Timestamp and TimestampPath is required",
            &obj.pointer,
        ));
        return None;
    }
    let expr = |field: &str, errs: &mut Vec<Invalid>| -> Option<Template> {
        let v = obj.get(field)?;
        (lang == Lang::Jsonata && v.as_str().is_some_and(jsonata::is_template))
            .then(|| template(v, &obj.at(field), errs))
            .flatten()
    };
    Some(Kind::Wait(match given[0] {
        "Seconds" => match expr("Seconds", errs) {
            Some(t) => WaitFor::Seconds(Dynamic::Expr(t)),
            None => WaitFor::Seconds(Dynamic::Literal(
                i64::try_from(obj.uint("Seconds", errs)?).unwrap_or(i64::MAX),
            )),
        },
        "SecondsPath" => WaitFor::Seconds(Dynamic::Path(path(obj, "SecondsPath", errs)?)),
        "Timestamp" => match expr("Timestamp", errs) {
            Some(t) => WaitFor::Timestamp(Dynamic::Expr(t)),
            None => {
                let s = obj.str("Timestamp", errs)?;
                if crate::time::parse_rfc3339(s).is_none() {
                    errs.push(schema(
                        "The value for the field 'Timestamp' must be a valid timestamp",
                        &obj.at("Timestamp"),
                    ));
                }
                WaitFor::Timestamp(Dynamic::Literal(s.to_owned()))
            }
        },
        _ => WaitFor::Timestamp(Dynamic::Path(path(obj, "TimestampPath", errs)?)),
    }))
}

pub(super) fn fail(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Kind {
    let field = |name: &str, errs: &mut Vec<Invalid>| -> Option<FailField> {
        let path_name = format!("{name}Path");
        if obj.has(name) && obj.has(&path_name) {
            errs.push(schema(
                format!("Only one of {name} and {path_name} may be given"),
                &obj.pointer,
            ));
        }
        if let Some(s) = obj.str(name, errs) {
            if lang == Lang::Jsonata && jsonata::is_template(s) {
                return template(obj.get(name)?, &obj.at(name), errs).map(FailField::Expr);
            }
            return Some(FailField::Literal(s.to_owned()));
        }
        let text = obj.str(&path_name, errs)?;
        payload::dynamic(text, &obj.at(&path_name), errs).map(FailField::Path)
    };
    Kind::Fail {
        error: field("Error", errs),
        cause: field("Cause", errs),
    }
}

pub(super) fn map_state(obj: &Obj<'_>, lang: Lang, errs: &mut Vec<Invalid>) -> Option<MapState> {
    let (proc_field, proc_v) = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
        (Some(v), None) => ("ItemProcessor", v),
        (None, Some(v)) => ("Iterator", v),
        (Some(_), Some(_)) => {
            errs.push(schema(
                "Only one of ItemProcessor and Iterator may be given",
                &obj.pointer,
            ));
            return None;
        }
        (None, None) => {
            errs.push(schema(
                "These fields are required: [ItemProcessor]",
                &obj.pointer,
            ));
            return None;
        }
    };
    let processor = machine(proc_v, &obj.at(proc_field), lang, false, errs)?;
    let mut distributed = false;
    if let Some(cfg) = proc_v.get("ProcessorConfig") {
        let at = format!("{}/ProcessorConfig", obj.at(proc_field));
        if let Some(c) = Obj::new(cfg, &at, "ProcessorConfig", errs) {
            c.only(&["Mode", "ExecutionType"], errs);
            match c.str("Mode", errs) {
                None | Some("INLINE") => {}
                Some("DISTRIBUTED") => distributed = true,
                Some(other) => errs.push(schema(
                    format!("Mode must be INLINE or DISTRIBUTED, not \"{other}\""),
                    &c.at("Mode"),
                )),
            }
            if let Some(t) = c.str("ExecutionType", errs)
                && t != "STANDARD"
                && t != "EXPRESS"
            {
                errs.push(schema(
                    format!("ExecutionType must be STANDARD or EXPRESS, not \"{t}\""),
                    &c.at("ExecutionType"),
                ));
            }
        }
    }
    let items = match lang {
        Lang::JsonPath => Items::Path(path_opt(obj, "ItemsPath", errs)),
        Lang::Jsonata => Items::Template(
            obj.get("Items")
                .and_then(|v| template(v, &obj.at("Items"), errs)),
        ),
    };
    let selector_field = if obj.has("ItemSelector") {
        "ItemSelector"
    } else {
        "Parameters"
    };
    let (item_selector, item_selector_template) = match (lang, obj.get(selector_field)) {
        (_, None) => (None, None),
        (Lang::JsonPath, Some(v)) => (
            Some(payload::compile(v, &obj.at(selector_field), errs)),
            None,
        ),
        (Lang::Jsonata, Some(v)) => (None, template(v, &obj.at(selector_field), errs)),
    };
    let batcher = obj.get("ItemBatcher").and_then(|v| {
        let b = Obj::new(v, &obj.at("ItemBatcher"), "ItemBatcher", errs)?;
        b.only(
            &[
                "MaxItemsPerBatch",
                "MaxItemsPerBatchPath",
                "MaxInputBytesPerBatch",
                "MaxInputBytesPerBatchPath",
                "BatchInput",
            ],
            errs,
        );
        Some(Batcher {
            max_items: dynamic_uint(&b, "MaxItemsPerBatch", lang, errs),
            max_bytes: dynamic_uint(&b, "MaxInputBytesPerBatch", lang, errs),
            batch_input: b.get("BatchInput").cloned(),
        })
    });
    let tolerated_percentage = if let Some(v) = obj.get("ToleratedFailurePercentage") {
        if let (Lang::Jsonata, Some(s)) = (lang, v.as_str())
            && jsonata::is_template(s)
        {
            template(v, &obj.at("ToleratedFailurePercentage"), errs).map(Dynamic::Expr)
        } else {
            let p = obj.number("ToleratedFailurePercentage", errs);
            if p.is_some_and(|p| !(0.0..=100.0).contains(&p)) {
                errs.push(schema(
                    "ToleratedFailurePercentage must be between 0 and 100",
                    &obj.at("ToleratedFailurePercentage"),
                ));
            }
            p.map(Dynamic::Literal)
        }
    } else {
        path_opt(obj, "ToleratedFailurePercentagePath", errs).map(Dynamic::Path)
    };
    Some(MapState {
        processor,
        distributed,
        items,
        item_selector,
        item_selector_template,
        batcher,
        max_concurrency: dynamic_uint(obj, "MaxConcurrency", lang, errs),
        tolerated_count: dynamic_uint(obj, "ToleratedFailureCount", lang, errs),
        tolerated_percentage,
        item_reader: obj
            .get("ItemReader")
            .and_then(|v| item_reader(v, &obj.at("ItemReader"), lang, errs)),
    })
}

fn path_opt(obj: &Obj<'_>, field: &str, errs: &mut Vec<Invalid>) -> Option<Path> {
    if obj.has(field) {
        path(obj, field, errs)
    } else {
        None
    }
}

fn item_reader(
    v: &Value,
    pointer: &str,
    lang: Lang,
    errs: &mut Vec<Invalid>,
) -> Option<ItemReader> {
    let r = Obj::new(v, pointer, "ItemReader", errs)?;
    r.only(
        &["Resource", "ReaderConfig", "Parameters", "Arguments"],
        errs,
    );
    let resource = r
        .required("Resource", errs)
        .and_then(|_| r.str("Resource", errs))?;
    let mut reader = ItemReader {
        resource: resource.to_owned(),
        input_type: None,
        header_location: CsvHeaderLocation::FirstRow,
        csv_headers: None,
        delimiter: b',',
        max_items: None,
        parameters: None,
        arguments: None,
    };
    match (lang, r.get("Parameters"), r.get("Arguments")) {
        (Lang::JsonPath, Some(p), _) => {
            reader.parameters = Some(payload::compile(p, &r.at("Parameters"), errs));
        }
        (Lang::Jsonata, _, Some(a)) => reader.arguments = template(a, &r.at("Arguments"), errs),
        _ => {}
    }
    if let Some(cfg) = r.get("ReaderConfig") {
        let c = Obj::new(cfg, &r.at("ReaderConfig"), "ReaderConfig", errs)?;
        c.only(
            &[
                "InputType",
                "CSVHeaderLocation",
                "CSVHeaders",
                "MaxItems",
                "MaxItemsPath",
                "CSVDelimiter",
                "ManifestType",
            ],
            errs,
        );
        if let Some(t) = c.str("InputType", errs) {
            reader.input_type = match t {
                "CSV" => Some(InputType::Csv),
                "JSON" => Some(InputType::Json),
                "JSONL" => Some(InputType::Jsonl),
                "MANIFEST" => Some(InputType::Manifest),
                "PARQUET" => Some(InputType::Parquet),
                _ => {
                    errs.push(schema(
                        format!(
                            "InputType must be one of [CSV, JSON, JSONL, MANIFEST, PARQUET], not \"{t}\""
                        ),
                        &c.at("InputType"),
                    ));
                    None
                }
            };
        }
        if let Some(l) = c.str("CSVHeaderLocation", errs) {
            match l {
                "FIRST_ROW" => reader.header_location = CsvHeaderLocation::FirstRow,
                "GIVEN" => reader.header_location = CsvHeaderLocation::Given,
                _ => errs.push(schema(
                    format!("CSVHeaderLocation must be one of [FIRST_ROW, GIVEN], not \"{l}\""),
                    &c.at("CSVHeaderLocation"),
                )),
            }
        }
        if let Some(d) = c.str("CSVDelimiter", errs) {
            match d {
                "COMMA" => reader.delimiter = b',',
                "PIPE" => reader.delimiter = b'|',
                "SEMICOLON" => reader.delimiter = b';',
                "SPACE" => reader.delimiter = b' ',
                "TAB" => reader.delimiter = b'\t',
                _ => errs.push(schema(
                    format!(
                        "CSVDelimiter must be one of [COMMA, PIPE, SEMICOLON, SPACE, TAB], not \"{d}\""
                    ),
                    &c.at("CSVDelimiter"),
                )),
            }
        }
        reader.max_items = dynamic_uint(&c, "MaxItems", lang, errs);
        reader.csv_headers = c.strings("CSVHeaders", errs);
        if reader.header_location == CsvHeaderLocation::Given && reader.csv_headers.is_none() {
            errs.push(schema(
                "CSVHeaders is required when CSVHeaderLocation is GIVEN",
                &c.pointer,
            ));
        }
    }
    Some(reader)
}
