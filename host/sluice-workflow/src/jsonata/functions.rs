//! The functions Step Functions adds to JSONata (`$partition`, `$range`, `$hash`, `$random`,
//! `$uuid`, `$parse`) and the built-ins we change: `$eval` is gone, as on AWS; `$shuffle` draws
//! from the execution's randomness so a seeded run repeats; `$pad` is bounded (jsonata-core's
//! allocates up to 2 GiB at once for `$pad('x', 1e15)`, aborting a memory-limited host).
//!
//! jsonata-core checks no signature for a host function, so each checks its own arguments and
//! fails with JSONata's `T0410` text, the one AWS reports for a wrong argument. Following the
//! behaviour recorded for AWS: a non-integer count or bound is truncated towards zero, and an
//! argument AWS gives no answer for (a chunk size below 1, an empty array, a `$range` step of 0
//! or pointing away from the end, no step, no hash algorithm) makes the call undefined rather
//! than failing, so the field it sits in fails as "returned nothing (undefined)".

use std::rc::Rc;

use jsonata_core::evaluator::{Evaluator, EvaluatorError, HostFnResult};
use jsonata_core::value::JValue;
use sha2::Digest;

use super::convert;
use crate::env::{Random, SplitMix};

/// The most items `$range` builds. AWS bounds an expression's memory (Floci measured AWS
/// refusing a `$range` past 360,145 items); this keeps one call from allocating without end.
pub(crate) const MAX_RANGE_ITEMS: i128 = 1_000_000;

/// The widest `$pad`, in characters: AWS refuses an expression's value past about 7 MB.
pub(crate) const MAX_PAD_WIDTH: usize = 7_000_000;

/// Registers the added and changed functions on `ev`; `rng` serves `$random()`, `$uuid()` and
/// `$shuffle`.
pub(crate) fn register(ev: &mut Evaluator, rng: &Rc<SplitMix>) -> Result<(), EvaluatorError> {
    ev.register_fn("partition", partition)?;
    ev.register_fn("range", range)?;
    ev.register_fn("hash", hash)?;
    ev.register_fn("parse", parse)?;
    let r = Rc::clone(rng);
    ev.register_fn("uuid", move |args: &[JValue]| {
        arity("uuid", args, 0)?;
        Ok(JValue::string(crate::env::uuid_v4(&*r)))
    })?;
    let r = Rc::clone(rng);
    ev.register_fn_override("random", move |args: &[JValue]| random(args, &*r))?;
    let r = Rc::clone(rng);
    ev.register_fn_override("shuffle", move |args: &[JValue]| shuffle(args, &*r))?;
    ev.register_fn_override("pad", pad)?;
    // AWS removes `$eval` (use `$parse`); calling it is calling nothing, JSONata's T1006.
    ev.register_fn_override("eval", |_: &[JValue]| {
        Err(EvaluatorError::TypeError(
            "T1006: Attempted to invoke a non-function".to_owned(),
        ))
    })?;
    Ok(())
}

/// JSONata's text for an argument that does not fit the signature (1-based `index`).
fn mismatch(name: &str, index: usize) -> EvaluatorError {
    EvaluatorError::TypeError(format!(
        "T0410: Argument {index} of function \"{name}\" does not match function signature"
    ))
}

/// Fails when more than `max` arguments were passed, as JSONata's signature check does.
fn arity(name: &str, args: &[JValue], max: usize) -> Result<(), EvaluatorError> {
    if args.len() > max {
        return Err(mismatch(name, max + 1));
    }
    Ok(())
}

/// Argument `i` (0-based) as a finite number truncated towards zero; `Ok(None)` when absent or
/// undefined.
fn integer_arg(name: &str, args: &[JValue], i: usize) -> Result<Option<i128>, EvaluatorError> {
    match args.get(i) {
        None | Some(JValue::Undefined) => Ok(None),
        Some(JValue::Number(n)) if n.is_finite() && n.abs() < 1e30 => Ok(Some(n.trunc() as i128)),
        Some(_) => Err(mismatch(name, i + 1)),
    }
}

fn partition(args: &[JValue]) -> HostFnResult {
    arity("partition", args, 2)?;
    let items: Vec<JValue> = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        // JSONata's `a` parameter takes a single value as a one-item array.
        Some(v @ (JValue::Null | JValue::Bool(_) | JValue::Number(_) | JValue::String(_)))
        | Some(v @ JValue::Object(_)) => vec![v.clone()],
        Some(_) => return Err(mismatch("partition", 1)),
    };
    let Some(size) = integer_arg("partition", args, 1)? else {
        return Ok(JValue::Undefined);
    };
    if size < 1 || items.is_empty() {
        return Ok(JValue::Undefined);
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(JValue::array(
        items
            .chunks(size)
            .map(|c| JValue::array(c.to_vec()))
            .collect(),
    ))
}

fn range(args: &[JValue]) -> HostFnResult {
    arity("range", args, 3)?;
    let (Some(start), Some(end), Some(step)) = (
        integer_arg("range", args, 0)?,
        integer_arg("range", args, 1)?,
        integer_arg("range", args, 2)?,
    ) else {
        return Ok(JValue::Undefined);
    };
    if step == 0 || (step > 0 && start > end) || (step < 0 && start < end) {
        return Ok(JValue::Undefined);
    }
    let count = (end - start).abs() / step.abs() + 1;
    if count > MAX_RANGE_ITEMS {
        return Err(EvaluatorError::EvaluationError(format!(
            "The $range function would build {count} items, more than the {MAX_RANGE_ITEMS} allowed"
        )));
    }
    // AWS's quirk: a range of one is the number itself, not a one-item array.
    if count == 1 {
        return Ok(JValue::Number(start as f64));
    }
    Ok(JValue::array(
        (0..count)
            .map(|i| JValue::Number((start + i * step) as f64))
            .collect(),
    ))
}

fn hash(args: &[JValue]) -> HostFnResult {
    arity("hash", args, 2)?;
    let data = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s.clone(),
        Some(_) => return Err(mismatch("hash", 1)),
    };
    let algorithm = match args.get(1) {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s.clone(),
        Some(_) => return Err(mismatch("hash", 2)),
    };
    let bytes = data.as_bytes();
    // Names as States.Hash spells them, case-sensitive.
    let digest = match &*algorithm {
        "MD5" => hex::encode(md5::Md5::digest(bytes)),
        "SHA-1" => hex::encode(sha1::Sha1::digest(bytes)),
        "SHA-256" => hex::encode(sha2::Sha256::digest(bytes)),
        "SHA-384" => hex::encode(sha2::Sha384::digest(bytes)),
        "SHA-512" => hex::encode(sha2::Sha512::digest(bytes)),
        other => {
            return Err(EvaluatorError::EvaluationError(format!(
                "The hash algorithm '{other}' is not supported; use one of MD5, SHA-1, SHA-256, SHA-384, SHA-512"
            )));
        }
    };
    Ok(JValue::string(digest))
}

/// A float in [0, 1) from 64 random bits: the top 53, as many as an f64 holds exactly.
fn unit_float(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

fn random(args: &[JValue], rng: &dyn Random) -> HostFnResult {
    arity("random", args, 1)?;
    match integer_arg("random", args, 0)? {
        // Seeded: the same seed gives the same number, in any execution. AWS's generator is
        // not documented, so the numbers differ from AWS's; only the repeatability is kept.
        Some(seed) => Ok(JValue::Number(unit_float(
            SplitMix::new(seed as u64).next_u64(),
        ))),
        None => Ok(JValue::Number(unit_float(rng.next_u64()))),
    }
}

fn shuffle(args: &[JValue], rng: &dyn Random) -> HostFnResult {
    arity("shuffle", args, 1)?;
    let mut items: Vec<JValue> = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::Array(a)) => a.iter().cloned().collect(),
        Some(JValue::Lambda(_) | JValue::Builtin { .. } | JValue::Regex { .. }) => {
            return Err(mismatch("shuffle", 1));
        }
        Some(v) => return Ok(JValue::array(vec![v.clone()])),
    };
    // Fisher-Yates; the modulo bias over 64 bits is negligible for any array that fits.
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    Ok(JValue::array(items))
}

fn parse(args: &[JValue]) -> HostFnResult {
    arity("parse", args, 1)?;
    let text = match args.first() {
        None | Some(JValue::Undefined) => return Ok(JValue::Undefined),
        Some(JValue::String(s)) => s.clone(),
        Some(_) => return Err(mismatch("parse", 1)),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        EvaluatorError::EvaluationError(format!(
            "The $parse function could not parse the string as JSON ({e})"
        ))
    })?;
    convert::from_plain(&value).map_err(|_| {
        EvaluatorError::EvaluationError(
            "The $parse function was given JSON nested too deep".to_owned(),
        )
    })
}

/// jsonata-core's `$pad` (same arguments, results and messages), with the width bounded by
/// [`MAX_PAD_WIDTH`]. As a host function it is not given the context item, so the rare
/// `name.$pad(5)` (context as the first argument) is not supported; `name ~> $pad(5)` is.
fn pad(args: &[JValue]) -> HostFnResult {
    if args.is_empty() || args.len() > 3 {
        return Err(EvaluatorError::EvaluationError(
            "pad() requires 2 or 3 arguments".to_owned(),
        ));
    }
    let string = match &args[0] {
        JValue::String(s) => s.clone(),
        JValue::Null => return Ok(JValue::Null),
        JValue::Undefined => return Ok(JValue::Undefined),
        _ => {
            return Err(EvaluatorError::TypeError(
                "pad() first argument must be a string".to_owned(),
            ));
        }
    };
    // jsonata-core truncates the width to 32 bits (saturating); an undefined width leaves the
    // string as it is, as jsonata-js's NaN width does.
    let width = match args.get(1) {
        Some(JValue::Number(n)) => *n as i32,
        Some(JValue::Undefined) | None => return Ok(JValue::String(string)),
        _ => {
            return Err(EvaluatorError::TypeError(
                "pad() second argument must be a number".to_owned(),
            ));
        }
    };
    let fill: Vec<char> = match args.get(2) {
        Some(JValue::String(s)) if !s.is_empty() => s.chars().collect(),
        _ => vec![' '],
    };
    let abs_width = width.unsigned_abs() as usize;
    if abs_width > MAX_PAD_WIDTH {
        return Err(EvaluatorError::EvaluationError(format!(
            "The $pad width {width} is wider than the {MAX_PAD_WIDTH} characters allowed"
        )));
    }
    let count = string.chars().count();
    if count >= abs_width {
        return Ok(JValue::String(string));
    }
    let padding: String = fill.iter().cycle().take(abs_width - count).collect();
    Ok(JValue::string(if width < 0 {
        format!("{padding}{string}")
    } else {
        format!("{string}{padding}")
    }))
}
