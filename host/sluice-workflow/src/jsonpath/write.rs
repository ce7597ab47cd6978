//! `ResultPath` write-back: put a value at a reference path inside a document.
//!
//! AWS: `$` replaces the input; a missing field on the way is created as an object; a value
//! on the way that is not an object (or, for an index, an array with that element) makes
//! the write fail, which the interpreter reports as `States.ResultPathMatchFailure`. The
//! message names the step that could not be taken; AWS's own wording for this failure is not
//! in the corpus.

use serde_json::{Map, Value};

use super::Segment;
use super::java::to_string;

pub(super) fn write(
    segments: &[Segment],
    text: &str,
    target: &mut Value,
    value: Value,
) -> Result<(), String> {
    // Check the whole way first, so a failed write leaves `target` untouched.
    check(segments, text, target)?;
    let mut cur = target;
    for seg in segments {
        cur = match seg {
            Segment::Child(names) => match cur {
                Value::Object(map) => map
                    .entry(names[0].clone())
                    .or_insert_with(|| Value::Object(Map::new())),
                _ => return Err(format!("Unable to apply ResultPath '{text}'")),
            },
            Segment::Index(ix) => match cur {
                Value::Array(items) => match position(items.len(), ix[0]) {
                    Some(i) => &mut items[i],
                    None => return Err(format!("Unable to apply ResultPath '{text}'")),
                },
                _ => return Err(format!("Unable to apply ResultPath '{text}'")),
            },
            _ => return Err(format!("ResultPath '{text}' is not a reference path")),
        };
    }
    *cur = value;
    Ok(())
}

/// Walks the path without changing anything; missing fields are fine (they get created).
fn check(segments: &[Segment], text: &str, target: &Value) -> Result<(), String> {
    let mut cur = Some(target);
    let mut at = String::from("$");
    for seg in segments {
        let Some(node) = cur else {
            // Below a field we will create: only names can follow.
            if matches!(seg, Segment::Child(n) if n.len() == 1) {
                continue;
            }
            return Err(format!(
                "Unable to apply ResultPath '{text}': {at} does not exist"
            ));
        };
        match seg {
            Segment::Child(names) if names.len() == 1 => match node {
                Value::Object(map) => {
                    cur = map.get(&names[0]);
                    at.push_str(&format!("['{}']", names[0]));
                }
                other => {
                    return Err(format!(
                        "Unable to apply ResultPath '{text}': {at} is not an object but {}",
                        to_string(other)
                    ));
                }
            },
            Segment::Index(ix) if ix.len() == 1 => match node {
                Value::Array(items) => match position(items.len(), ix[0]) {
                    Some(i) => {
                        cur = items.get(i);
                        at.push_str(&format!("[{}]", ix[0]));
                    }
                    None => {
                        return Err(format!(
                            "Unable to apply ResultPath '{text}': {at} has no element [{}]",
                            ix[0]
                        ));
                    }
                },
                other => {
                    return Err(format!(
                        "Unable to apply ResultPath '{text}': {at} is not an array but {}",
                        to_string(other)
                    ));
                }
            },
            _ => return Err(format!("ResultPath '{text}' is not a reference path")),
        }
    }
    Ok(())
}

/// Element index `idx` (negative from the end) of an array of `len`, if it exists.
fn position(len: usize, idx: i64) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let eff = if idx < 0 {
        len_i.checked_add(idx)?
    } else {
        idx
    };
    usize::try_from(eff).ok().filter(|&i| i < len)
}
