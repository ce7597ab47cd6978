//! Content routing with EventBridge-style event patterns.
//!
//! A pattern is a JSON object mirroring the shape of the event it selects. Each leaf is an
//! array of alternatives (any may match); sibling keys must all match. An event is seen as
//! `{"id", "type", "source", "subject", "time", "headers": {name: value}, "data": <payload
//! parsed as JSON>}`. Alternatives: a literal (string, number, boolean, null) matches equal
//! values; `{"prefix": s}`, `{"suffix": s}`, `{"equals-ignore-case": s}`; `{"anything-but":
//! v | [v..] | {"prefix": s}}`; `{"numeric": [op, n, (op, n)]}` with `=`, `<`, `<=`, `>`,
//! `>=`; `{"exists": true|false}`. When the event's field is an array, the leaf matches if
//! any element matches, as in EventBridge.

use serde_json::{Map, Value};
use sluice_model::Event;

/// A malformed pattern, with the path of the offending node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event pattern at {path}: {problem}")]
pub struct PatternError {
    /// Dotted path of the node.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A validated event pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPattern(Map<String, Value>);

fn err(path: &str, problem: impl Into<String>) -> PatternError {
    PatternError {
        path: if path.is_empty() {
            "$".into()
        } else {
            path.to_owned()
        },
        problem: problem.into(),
    }
}

impl EventPattern {
    /// Validate `pattern`.
    pub fn parse(pattern: &Value) -> Result<Self, PatternError> {
        let Value::Object(map) = pattern else {
            return Err(err("", "a pattern is a JSON object"));
        };
        validate_object(map, "")?;
        Ok(Self(map.clone()))
    }

    /// Whether `event` matches.
    pub fn matches(&self, event: &Event) -> bool {
        // A header given several times is seen with its first value, as everywhere else.
        let mut headers = Map::new();
        for (k, v) in &event.headers {
            headers
                .entry(k.clone())
                .or_insert_with(|| Value::String(v.clone()));
        }
        let view = serde_json::json!({
            "id": event.id,
            "type": event.kind,
            "source": event.source,
            "subject": event.subject,
            "time": event.time,
            "headers": headers,
            "data": serde_json::from_slice::<Value>(&event.data).unwrap_or(Value::Null),
        });
        match_object(&self.0, Some(&view))
    }
}

fn validate_object(map: &Map<String, Value>, path: &str) -> Result<(), PatternError> {
    if map.is_empty() {
        return Err(err(path, "an empty object matches nothing useful"));
    }
    for (k, v) in map {
        let p = if path.is_empty() {
            k.clone()
        } else {
            format!("{path}.{k}")
        };
        match v {
            Value::Object(o) => validate_object(o, &p)?,
            Value::Array(alts) if !alts.is_empty() => {
                alts.iter().try_for_each(|a| validate_matcher(a, &p))?
            }
            Value::Array(_) => return Err(err(&p, "a leaf needs at least one alternative")),
            _ => {
                return Err(err(
                    &p,
                    "a leaf is an array of alternatives, e.g. [\"value\"]",
                ));
            }
        }
    }
    Ok(())
}

fn validate_matcher(m: &Value, path: &str) -> Result<(), PatternError> {
    let o = match m {
        Value::Object(o) => o,
        // Alternatives are flat: a nested array would silently never match.
        Value::Array(_) => {
            return Err(err(
                path,
                "an alternative is a value or a matcher object, not an array",
            ));
        }
        _ => return Ok(()), // a literal
    };
    let (Some((op, arg)), 1) = (o.iter().next(), o.len()) else {
        return Err(err(path, "a matcher object has exactly one key"));
    };
    let ok = match op.as_str() {
        "prefix" | "suffix" | "equals-ignore-case" => arg.is_string(),
        "exists" => arg.is_boolean(),
        "anything-but" => match arg {
            Value::Object(a) => a.len() == 1 && a.get("prefix").is_some_and(Value::is_string),
            Value::Array(a) => a.iter().all(|v| !v.is_object() && !v.is_array()),
            _ => true,
        },
        "numeric" => numeric_ok(arg),
        other => return Err(err(path, format!("unknown matcher {other:?}"))),
    };
    if ok {
        Ok(())
    } else {
        Err(err(path, format!("bad argument to {op:?}: {arg}")))
    }
}

fn numeric_ok(arg: &Value) -> bool {
    let Value::Array(a) = arg else { return false };
    (a.len() == 2 || a.len() == 4)
        && a.chunks(2).all(|c| {
            matches!(c[0].as_str(), Some("=" | "<" | "<=" | ">" | ">=")) && c[1].is_number()
        })
}

fn match_object(pattern: &Map<String, Value>, event: Option<&Value>) -> bool {
    pattern.iter().all(|(k, p)| {
        let field = event.and_then(|e| e.get(k));
        match p {
            Value::Object(o) => match field {
                // Arrays of objects: any element may satisfy the nested pattern.
                Some(Value::Array(items)) => items.iter().any(|i| match_object(o, Some(i))),
                other => match_object(o, other),
            },
            Value::Array(alts) => match_leaf(alts, field),
            _ => false,
        }
    })
}

fn match_leaf(alts: &[Value], field: Option<&Value>) -> bool {
    let values: Vec<&Value> = match field {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    };
    alts.iter().any(|m| match m {
        Value::Object(o) if o.contains_key("exists") => {
            o.get("exists").and_then(Value::as_bool) == Some(field.is_some())
        }
        _ => values.iter().any(|v| matcher_matches(m, v)),
    })
}

fn literal_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn matcher_matches(m: &Value, v: &Value) -> bool {
    let Value::Object(o) = m else {
        return literal_eq(m, v);
    };
    let Some((op, arg)) = o.iter().next() else {
        return false;
    };
    let s = v.as_str();
    match op.as_str() {
        "prefix" => s.zip(arg.as_str()).is_some_and(|(s, p)| s.starts_with(p)),
        "suffix" => s.zip(arg.as_str()).is_some_and(|(s, p)| s.ends_with(p)),
        "equals-ignore-case" => s
            .zip(arg.as_str())
            .is_some_and(|(s, p)| s.eq_ignore_ascii_case(p)),
        "anything-but" => match arg {
            Value::Array(list) => !list.iter().any(|x| literal_eq(x, v)),
            Value::Object(p) => {
                let prefix = p.get("prefix").and_then(Value::as_str).unwrap_or_default();
                s.is_some_and(|s| !s.starts_with(prefix))
            }
            x => !literal_eq(x, v),
        },
        "numeric" => {
            let (Some(n), Value::Array(a)) = (v.as_f64(), arg) else {
                return false;
            };
            a.chunks(2).all(|c| {
                let bound = c[1].as_f64().unwrap_or(f64::NAN);
                match c[0].as_str() {
                    Some("=") => n == bound,
                    Some("<") => n < bound,
                    Some("<=") => n <= bound,
                    Some(">") => n > bound,
                    Some(">=") => n >= bound,
                    _ => false,
                }
            })
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(data: &Value) -> Event {
        let mut e = Event::json("e1", data);
        e.kind = "order.created".into();
        e.source = "shop/checkout".into();
        e.subject = "orders.new".into();
        e.headers = vec![("region".into(), "eu-west".into())];
        e
    }

    fn m(pattern: &Value, data: &Value) -> bool {
        EventPattern::parse(pattern).unwrap().matches(&event(data))
    }

    #[test]
    fn metadata_exact_prefix_suffix() {
        assert!(m(
            &json!({"type": ["order.created", "order.updated"]}),
            &json!({})
        ));
        assert!(!m(&json!({"type": ["order.deleted"]}), &json!({})));
        assert!(m(&json!({"source": [{"prefix": "shop/"}]}), &json!({})));
        assert!(m(&json!({"subject": [{"suffix": ".new"}]}), &json!({})));
        assert!(m(
            &json!({"headers": {"region": [{"prefix": "eu-"}]}}),
            &json!({})
        ));
        assert!(m(
            &json!({"type": [{"equals-ignore-case": "ORDER.CREATED"}]}),
            &json!({})
        ));
    }

    #[test]
    fn nested_numeric_anything_but_exists() {
        let data = json!({"total": 120.5, "status": "paid", "customer": {"tier": "gold"}, "tags": ["a", "vip"]});
        assert!(m(
            &json!({"data": {"total": [{"numeric": [">", 100, "<=", 200]}]}}),
            &data
        ));
        assert!(!m(
            &json!({"data": {"total": [{"numeric": ["<", 100]}]}}),
            &data
        ));
        assert!(m(&json!({"data": {"total": [120.5]}}), &data));
        assert!(m(
            &json!({"data": {"customer": {"tier": ["gold", "platinum"]}}}),
            &data
        ));
        assert!(m(
            &json!({"data": {"status": [{"anything-but": ["cancelled", "refunded"]}]}}),
            &data
        ));
        assert!(!m(
            &json!({"data": {"status": [{"anything-but": "paid"}]}}),
            &data
        ));
        assert!(m(
            &json!({"data": {"status": [{"anything-but": {"prefix": "pend"}}]}}),
            &data
        ));
        assert!(m(&json!({"data": {"coupon": [{"exists": false}]}}), &data));
        assert!(!m(&json!({"data": {"status": [{"exists": false}]}}), &data));
        assert!(m(&json!({"data": {"status": [{"exists": true}]}}), &data));
        // Arrays in the event: any element.
        assert!(m(&json!({"data": {"tags": ["vip"]}}), &data));
        // All keys must match.
        assert!(!m(
            &json!({"type": ["order.created"], "data": {"status": ["open"]}}),
            &data
        ));
        // Items arrays of objects.
        assert!(m(
            &json!({"data": {"items": {"sku": [{"prefix": "GPU"}]}}}),
            &json!({"items": [{"sku": "A"}, {"sku": "GPU-1"}]})
        ));
    }

    #[test]
    fn malformed_patterns_name_the_node() {
        for (p, path) in [
            (json!("x"), "$"),
            (json!({"type": "order.created"}), "type"),
            (
                json!({"data": {"total": [{"numeric": [">", "x"]}]}}),
                "data.total",
            ),
            (json!({"data": {"a": [{"regex": "."}]}}), "data.a"),
            (json!({"type": []}), "type"),
            (json!({"data": {}}), "data"),
        ] {
            let e = EventPattern::parse(&p).unwrap_err();
            assert_eq!(e.path, path, "{p}: {e}");
        }
    }
}
