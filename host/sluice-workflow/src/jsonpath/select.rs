//! Evaluation. A definite path walks to its one value and fails with Jayway's message where
//! Jayway would throw; an indefinite path collects every match and never fails (AWS answers
//! `[]` where Jayway would throw, see the module docs).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::filter;
use super::java::{PROVIDER, class_name, to_string};
use super::{Function, Segment};

/// Jayway's rendering of the segments (`$['a'][0]..['b'][*][?]`), used in its messages.
pub(super) fn normalized(segments: &[Segment]) -> String {
    let mut out = String::from("$");
    for s in segments {
        out.push_str(&fragment(s));
    }
    out
}

fn fragment(s: &Segment) -> String {
    match s {
        Segment::Child(names) => {
            let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            format!("[{}]", quoted.join(","))
        }
        Segment::Index(ix) => {
            let parts: Vec<String> = ix.iter().map(i64::to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Segment::Slice(from, to) => {
            let end = |e: &Option<i64>| e.map(|v| v.to_string()).unwrap_or_default();
            format!("[{}:{}]", end(from), end(to))
        }
        Segment::Wildcard => "[*]".into(),
        Segment::Scan => "..".into(),
        Segment::Filter(_) => "[?]".into(),
        Segment::Function(f) => format!(".{}()", function_name(*f)),
    }
}

fn function_name(f: Function) -> &'static str {
    match f {
        Function::Length => "length",
        Function::Min => "min",
        Function::Max => "max",
        Function::Avg => "avg",
        Function::Stddev => "stddev",
        Function::Sum => "sum",
        Function::First => "first",
        Function::Last => "last",
        Function::Keys => "keys",
    }
}

/// Jayway rewrites `$..x.fn()` into `fn($..x)`: the function sees the whole list of matches,
/// and the path becomes definite.
fn inverted_function(segments: &[Segment]) -> bool {
    matches!(segments.first(), Some(Segment::Scan))
        && matches!(segments.last(), Some(Segment::Function(_)))
}

pub(super) fn is_definite(segments: &[Segment]) -> bool {
    if inverted_function(segments) {
        return true;
    }
    let last = segments.len().saturating_sub(1);
    segments.iter().enumerate().all(|(i, s)| match s {
        // A leaf property union is merged into one object, so it is definite.
        Segment::Child(names) => names.len() == 1 || i == last,
        Segment::Index(ix) => ix.len() == 1,
        Segment::Function(_) => true,
        _ => false,
    })
}

/// Selects with `doc` as `$`.
pub(super) fn select(segments: &[Segment], doc: &Value) -> Result<Value, String> {
    select_with_root(segments, doc, doc)
}

/// Selects from `doc`; `root` is what `$` means inside filters (they differ for `@` paths).
pub(super) fn select_with_root(
    segments: &[Segment],
    doc: &Value,
    root: &Value,
) -> Result<Value, String> {
    if inverted_function(segments) {
        let (f, prefix) = match segments.split_last() {
            Some((Segment::Function(f), prefix)) => (*f, prefix),
            _ => return Err("internal: not a function path".into()),
        };
        let mut hits = Vec::new();
        collect(prefix, doc, root, &mut hits);
        let list = Value::Array(hits.into_iter().map(Cow::into_owned).collect());
        return apply(f, &list);
    }
    if is_definite(segments) {
        return definite(segments, doc);
    }
    let mut hits = Vec::new();
    collect(segments, doc, root, &mut hits);
    Ok(Value::Array(
        hits.into_iter().map(Cow::into_owned).collect(),
    ))
}

/// The walk of a definite path, with Jayway's messages for each way it can fail.
fn definite(segments: &[Segment], doc: &Value) -> Result<Value, String> {
    let no_results = || format!("No results for path: {}", normalized(segments));
    let mut cur = doc;
    let mut at = String::from("$");
    for (i, seg) in segments.iter().enumerate() {
        let leaf = i + 1 == segments.len();
        match seg {
            Segment::Child(names) => {
                let Value::Object(map) = cur else {
                    return Err(format!(
                        "Expected to find an object with property {} in path {at} but found '{}'. \
                         This is not a json object according to the JsonProvider: '{PROVIDER}'.",
                        fragment(seg),
                        class_name(cur)
                    ));
                };
                if names.len() > 1 {
                    return Ok(Value::Object(merge(map, names)));
                }
                let name = &names[0];
                at.push_str(&format!("['{name}']"));
                match map.get(name) {
                    Some(v) => cur = v,
                    None if leaf => return Err(no_results()),
                    None => return Err(format!("Missing property in path {at}")),
                }
            }
            Segment::Index(ix) => {
                let idx = ix[0];
                match cur {
                    Value::Null => return Err(format!("The path {at} is null")),
                    Value::Array(items) => match element(items, idx) {
                        Some(v) => {
                            cur = v;
                            at.push_str(&format!("[{idx}]"));
                        }
                        None => return Err(no_results()),
                    },
                    other => {
                        return Err(format!(
                            "Filter: [{idx}] can only be applied to arrays. Current context is: {}",
                            to_string(other)
                        ));
                    }
                }
            }
            Segment::Function(f) => return apply(*f, cur),
            _ => return Err("internal: indefinite segment in a definite path".into()),
        }
    }
    Ok(cur.clone())
}

/// The leaf property union: the named properties that exist, as one object.
fn merge(map: &Map<String, Value>, names: &[String]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|n| map.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

/// Element `idx` (negative counts from the end), if it exists.
fn element(items: &[Value], idx: i64) -> Option<&Value> {
    let len = i64::try_from(items.len()).ok()?;
    let eff = if idx < 0 { len.checked_add(idx)? } else { idx };
    usize::try_from(eff).ok().and_then(|i| items.get(i))
}

/// The indexes a slice visits, as Jayway's `ArraySliceToken` computes them (negative
/// `from` counts from the end; `[from:to]` with a negative `from` is not adjusted, which
/// Jayway then reads as an index from the end).
fn slice_indexes(len: usize, from: Option<i64>, to: Option<i64>) -> Vec<i64> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    if len == 0 {
        return Vec::new();
    }
    match (from, to) {
        (Some(f), None) => {
            let f = if f < 0 {
                (len.saturating_add(f)).max(0)
            } else {
                f
            };
            (f..len).collect()
        }
        (None, Some(t)) => {
            let t = if t < 0 { len.saturating_add(t) } else { t };
            (0..t.min(len)).collect()
        }
        (Some(f), Some(t)) => {
            let t = t.min(len);
            if f >= t { Vec::new() } else { (f..t).collect() }
        }
        (None, None) => (0..len).collect(),
    }
}

/// Every match of `segments` under `node`, in Jayway's order, silently skipping misses.
fn collect<'a>(segments: &[Segment], node: &'a Value, root: &Value, out: &mut Vec<Cow<'a, Value>>) {
    let Some((seg, rest)) = segments.split_first() else {
        out.push(Cow::Borrowed(node));
        return;
    };
    match seg {
        Segment::Child(names) if names.len() > 1 && rest.is_empty() => {
            if let Value::Object(map) = node {
                out.push(Cow::Owned(Value::Object(merge(map, names))));
            }
        }
        Segment::Child(names) => {
            if let Value::Object(map) = node {
                for n in names {
                    if let Some(v) = map.get(n) {
                        collect(rest, v, root, out);
                    }
                }
            }
        }
        Segment::Index(ix) => {
            if let Value::Array(items) = node {
                for &i in ix {
                    if let Some(v) = element(items, i) {
                        collect(rest, v, root, out);
                    }
                }
            }
        }
        Segment::Slice(from, to) => {
            if let Value::Array(items) = node {
                for i in slice_indexes(items.len(), *from, *to) {
                    if let Some(v) = element(items, i) {
                        collect(rest, v, root, out);
                    }
                }
            }
        }
        Segment::Wildcard => match node {
            Value::Array(items) => items.iter().for_each(|v| collect(rest, v, root, out)),
            Value::Object(map) => map.values().for_each(|v| collect(rest, v, root, out)),
            _ => {}
        },
        Segment::Filter(expr) => match node {
            Value::Array(items) => {
                for v in items.iter().filter(|v| filter::accept(expr, v, root)) {
                    collect(rest, v, root, out);
                }
            }
            // Jayway applies a filter on an object to the object itself.
            Value::Object(_) if filter::accept(expr, node, root) => collect(rest, node, root, out),
            _ => {}
        },
        Segment::Scan => scan(rest, node, root, out),
        Segment::Function(f) => {
            if let Ok(v) = apply(*f, node) {
                out.push(Cow::Owned(v));
            }
        }
    }
}

/// Jayway's `ScanPathToken.walk`: at every object and array, depth first, apply the rest
/// where the next segment can match, then descend.
fn scan<'a>(rest: &[Segment], node: &'a Value, root: &Value, out: &mut Vec<Cow<'a, Value>>) {
    let Some(next) = rest.first() else { return };
    let matches = |model: &Value| match next {
        Segment::Child(names) => match model {
            Value::Object(map) => {
                rest.len() > 1 && names.len() > 1 || names.iter().all(|n| map.contains_key(n))
            }
            _ => false,
        },
        Segment::Index(_) | Segment::Slice(..) => model.is_array(),
        Segment::Wildcard => true,
        Segment::Filter(expr) => filter::accept(expr, model, root),
        _ => false,
    };
    match node {
        Value::Object(map) => {
            if matches(node) {
                collect(rest, node, root, out);
            }
            for v in map.values() {
                scan(rest, v, root, out);
            }
        }
        Value::Array(items) => {
            if matches(node) {
                if rest.len() == 1 {
                    collect(rest, node, root, out);
                } else {
                    // Jayway's quirk: a non-leaf token after `..` that matches an array is
                    // skipped, and the token after it runs on every element.
                    for v in items {
                        collect(&rest[1..], v, root, out);
                    }
                }
            }
            for v in items {
                scan(rest, v, root, out);
            }
        }
        _ => {}
    }
}

/// A path function on `model`, as Jayway's implementations compute it.
fn apply(f: Function, model: &Value) -> Result<Value, String> {
    let numbers = || -> Vec<f64> {
        match model {
            Value::Array(items) => items.iter().filter_map(Value::as_f64).collect(),
            _ => Vec::new(),
        }
    };
    let aggregate = |f: fn(&[f64]) -> f64| -> Result<Value, String> {
        let ns = numbers();
        if ns.is_empty() {
            return Err(
                "Aggregation function attempted to calculate value using empty array".into(),
            );
        }
        Ok(serde_json::Number::from_f64(f(&ns)).map_or(Value::Null, Value::Number))
    };
    match f {
        Function::Length => Ok(match model {
            Value::Array(items) => Value::from(items.len()),
            Value::Object(map) => Value::from(map.len()),
            _ => Value::Null,
        }),
        Function::Sum => aggregate(|ns| ns.iter().sum()),
        Function::Min => aggregate(|ns| ns.iter().copied().fold(f64::INFINITY, f64::min)),
        Function::Max => aggregate(|ns| ns.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        Function::Avg => aggregate(|ns| ns.iter().sum::<f64>() / ns.len() as f64),
        Function::Stddev => aggregate(|ns| {
            let n = ns.len() as f64;
            let mean = ns.iter().sum::<f64>() / n;
            (ns.iter().map(|x| x * x).sum::<f64>() / n - mean * mean).sqrt()
        }),
        Function::First | Function::Last => match model {
            Value::Array(items) => {
                let hit = if f == Function::First {
                    items.first()
                } else {
                    items.last()
                };
                hit.cloned()
                    .ok_or_else(|| format!("Target index larger than object count:{}", items.len()))
            }
            _ => Err("Invalid property, expected an array".into()),
        },
        Function::Keys => Ok(match model {
            Value::Object(map) => Value::Array(map.keys().cloned().map(Value::String).collect()),
            _ => Value::Null,
        }),
    }
}
