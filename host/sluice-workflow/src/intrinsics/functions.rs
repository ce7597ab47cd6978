//! The functions themselves, on already evaluated arguments.
//!
//! Every check AWS documents is made here, at run time, since most arguments are paths:
//! argument types, "round off to the nearest integer" (Java's `Math.round`, as the corpus
//! shows: `States.MathAdd(-2.5, 0)` is `-2`), the 1000-element `States.ArrayRange`, the
//! positive `States.ArrayPartition` chunk, the 10,000-character inputs of `States.Hash` and
//! the Base64 functions, `States.MathAdd`'s 32-bit integers and `States.JsonMerge`'s
//! shallow-only merge. A failure is `States.IntrinsicFailure` with a cause naming the
//! function, in the shape of AWS's one recorded cause ("Invalid template in States.Format:
//! ...").

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use serde_json::{Map, Value};
use sha2::Digest as _;

use super::text::{format_value, render_template, to_json};
use super::{Call, Function};
use crate::env::{Random, uuid_v4};
use crate::error::{StatesError, names};

/// The most elements `States.ArrayRange` may make.
pub(super) const MAX_RANGE: i128 = 1000;
/// The longest input (in Java characters, UTF-16 units) of `States.Hash` and Base64.
pub(super) const MAX_INPUT_CHARS: usize = 10_000;

/// Runs `call`'s function on its evaluated `args` (as many as its arity allows: the parser
/// made sure).
pub(super) fn apply(
    call: &Call,
    args: Vec<Value>,
    random: &dyn Random,
) -> Result<Value, StatesError> {
    let f = call.function;
    let a = Args { f, args };
    match f {
        Function::Format => {
            let template = match (&call.raw_template, a.get(0)) {
                (Some(raw), _) => raw.as_str(),
                (None, Value::String(s)) => s.as_str(),
                (None, other) => return Err(a.wrong(0, "a string (the template)", other)),
            };
            render_template(template, &a.args[1..])
                .map(Value::String)
                .map_err(|cause| StatesError::new(names::INTRINSIC_FAILURE, cause))
        }
        Function::StringToJson => {
            let s = a.string(0)?;
            serde_json::from_str(s).map_err(|e| {
                a.fail(&format!(
                    "the argument is not JSON text ({e}): {}",
                    describe(&a.args[0])
                ))
            })
        }
        Function::JsonToString => Ok(Value::String(to_json(a.get(0)))),
        Function::Array => Ok(Value::Array(a.args)),
        Function::ArrayPartition => {
            let items = a.array(0)?;
            let size = a.rounded(1)?;
            if size < 1 {
                return Err(a.fail(&format!(
                    "the chunk size (second argument) must be a positive integer, but got {}",
                    describe(a.get(1))
                )));
            }
            // A size past the length makes one chunk; `as` saturates a huge one.
            let size = usize::try_from(size)
                .unwrap_or(usize::MAX)
                .clamp(1, items.len().max(1));
            Ok(Value::Array(
                items
                    .chunks(size)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        Function::ArrayContains => {
            let items = a.array(0)?;
            Ok(Value::Bool(items.contains(a.get(1))))
        }
        Function::ArrayRange => array_range(&a),
        Function::ArrayGetItem => {
            let items = a.array(0)?;
            let index = match a.get(1) {
                Value::Number(n) if n.is_i64() || n.is_u64() => n,
                other => return Err(a.wrong(1, "an integer (the index)", other)),
            };
            index
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| {
                    a.fail(&format!(
                        "the index {index} is out of bounds for an array of length {}",
                        items.len()
                    ))
                })
        }
        Function::ArrayLength => Ok(Value::from(a.array(0)?.len())),
        Function::ArrayUnique => {
            let items = a.array(0)?;
            // Value equality ignores key order, as Java's does; so does the key.
            let mut seen = HashSet::new();
            Ok(Value::Array(
                items
                    .iter()
                    .filter(|v| seen.insert(canonical(v)))
                    .cloned()
                    .collect(),
            ))
        }
        Function::Base64Encode => {
            let s = a.limited_string(0)?;
            Ok(Value::String(STANDARD.encode(s.as_bytes())))
        }
        Function::Base64Decode => {
            let s = a.limited_string(0)?;
            // Like Java's decoder: padding optional, MIME line breaks ignored.
            let engine = GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                GeneralPurposeConfig::new()
                    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            let clean: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
            let bytes = engine.decode(clean).map_err(|e| {
                a.fail(&format!(
                    "the argument is not Base64 ({e}): {}",
                    describe(a.get(0))
                ))
            })?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        Function::Hash => {
            let data = a.limited_string(0)?;
            let algorithm = a.string(1)?;
            let digest = match algorithm {
                "MD5" => hex::encode(md5::Md5::digest(data)),
                "SHA-1" => hex::encode(sha1::Sha1::digest(data)),
                "SHA-256" => hex::encode(sha2::Sha256::digest(data)),
                "SHA-384" => hex::encode(sha2::Sha384::digest(data)),
                "SHA-512" => hex::encode(sha2::Sha512::digest(data)),
                _ => {
                    return Err(a.fail(&format!(
                        "unknown hash algorithm {}; the algorithms are MD5, SHA-1, SHA-256, \
                         SHA-384 and SHA-512",
                        describe(a.get(1))
                    )));
                }
            };
            Ok(Value::String(digest))
        }
        Function::JsonMerge => {
            let first = a.object(0)?;
            let second = a.object(1)?;
            match a.get(2) {
                Value::Bool(false) => {}
                Value::Bool(true) => {
                    return Err(
                        a.fail("deep merging is not supported; the third argument must be false")
                    );
                }
                other => return Err(a.wrong(2, "the boolean false", other)),
            }
            // Shallow: the second object's keys win; a key already there keeps its place.
            let mut merged: Map<String, Value> = first.clone();
            for (k, v) in second {
                merged.insert(k.clone(), v.clone());
            }
            Ok(Value::Object(merged))
        }
        Function::MathRandom => math_random(&a, random),
        Function::MathAdd => {
            let x = a.int32(0)?;
            let y = a.int32(1)?;
            Ok(Value::from(i64::from(x) + i64::from(y)))
        }
        Function::StringSplit => {
            let s = a.string(0)?;
            let delimiters = a.string(1)?;
            // Java's StringTokenizer: every character of the second argument delimits, and
            // empty pieces are dropped (the corpus: ",,,," splits into []).
            Ok(Value::Array(
                s.split(|c| delimiters.contains(c))
                    .filter(|piece| !piece.is_empty())
                    .map(|piece| Value::String(piece.to_string()))
                    .collect(),
            ))
        }
        Function::Uuid => Ok(Value::String(uuid_v4(random))),
    }
}

/// `States.ArrayRange(first, last, step)`: `last` included when the steps land on it.
fn array_range(a: &Args) -> Result<Value, StatesError> {
    let first = a.rounded(0)?;
    let last = a.rounded(1)?;
    let step = a.rounded(2)?;
    if step == 0 {
        return Err(a.fail("the step (third argument) must not be 0"));
    }
    let (first, last, step) = (i128::from(first), i128::from(last), i128::from(step));
    let count = if (step > 0 && last >= first) || (step < 0 && last <= first) {
        (last - first) / step + 1
    } else {
        0
    };
    if count > MAX_RANGE {
        return Err(a.fail(&format!(
            "the range has {count} elements, more than the {MAX_RANGE} allowed"
        )));
    }
    Ok(Value::Array(
        (0..count)
            .map(|i| Value::from((first + i * step) as i64))
            .collect(),
    ))
}

/// `States.MathRandom(start, end[, seed])`: an integer in `[start, end)`.
fn math_random(a: &Args, random: &dyn Random) -> Result<Value, StatesError> {
    let start = a.rounded(0)?;
    let end = a.rounded(1)?;
    if start >= end {
        return Err(a.fail(&format!(
            "the start (first argument, {start}) must be less than the end (second argument, {end})"
        )));
    }
    let range = (i128::from(end) - i128::from(start)) as u64;
    let offset = if a.args.len() > 2 {
        let seed = a.rounded(2)?;
        // The same seed, start and end give the same number. We draw it as Java's
        // `new Random(seed).nextInt(end - start)` would, in case that is what AWS does.
        let mut java = JavaRandom::new(seed);
        match i32::try_from(range) {
            Ok(bound) => java.next_int(bound) as u64,
            Err(_) => scale(java.next_long() as u64, range),
        }
    } else {
        scale(random.next_u64(), range)
    };
    Ok(Value::from((i128::from(start) + i128::from(offset)) as i64))
}

/// `r`, uniform over u64, scaled into `[0, range)`.
fn scale(r: u64, range: u64) -> u64 {
    ((u128::from(r) * u128::from(range)) >> 64) as u64
}

/// `java.util.Random`'s generator (a 48-bit LCG), for seeded `States.MathRandom`.
pub(super) struct JavaRandom(i64);

impl JavaRandom {
    const MULTIPLIER: i64 = 0x5_DEEC_E66D;
    const MASK: i64 = (1 << 48) - 1;

    pub(super) fn new(seed: i64) -> Self {
        Self((seed ^ Self::MULTIPLIER) & Self::MASK)
    }

    pub(super) fn next(&mut self, bits: u32) -> i32 {
        self.0 = (self.0.wrapping_mul(Self::MULTIPLIER).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> (48 - bits)) as i32
    }

    fn next_int(&mut self, bound: i32) -> i32 {
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((i64::from(bound) * i64::from(r)) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }

    fn next_long(&mut self) -> i64 {
        (i64::from(self.next(32)) << 32).wrapping_add(i64::from(self.next(32)))
    }
}

/// Java's `Math.round`: the nearest integer, halves up (`-2.5` → `-2`, `2.5` → `3`).
pub(super) fn java_round(x: f64) -> f64 {
    let floor = x.floor();
    // `x - floor` is exact for every double, so a true half is seen as one.
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

/// A value's text for a cause: its JSON, cut short if long.
fn describe(v: &Value) -> String {
    const MAX: usize = 100;
    let json = to_json(v);
    match json.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &json[..cut]),
        None => json,
    }
}

/// A key equal for equal values: JSON with object keys sorted, `-0.0` as `0.0`.
fn canonical(v: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for k in keys {
                    out.push_str(&to_json(&Value::String(k.clone())));
                    out.push(':');
                    walk(&map[k], out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for item in items {
                    walk(item, out);
                    out.push(',');
                }
                out.push(']');
            }
            Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => out.push_str("0.0"),
            other => out.push_str(&to_json(other)),
        }
    }
    let mut out = String::new();
    walk(v, &mut out);
    out
}

/// A function's evaluated arguments, with typed accessors that fail in its name.
struct Args {
    f: Function,
    args: Vec<Value>,
}

impl Args {
    fn get(&self, i: usize) -> &Value {
        // The parser checked the arity; `null` keeps a bug from becoming a panic.
        self.args.get(i).unwrap_or(&Value::Null)
    }

    fn fail(&self, detail: &str) -> StatesError {
        StatesError::new(
            names::INTRINSIC_FAILURE,
            format!("Invalid arguments in {}: {detail}.", self.f),
        )
    }

    fn wrong(&self, i: usize, wanted: &str, got: &Value) -> StatesError {
        self.fail(&format!(
            "argument {} must be {wanted}, but got {}",
            i + 1,
            describe(got)
        ))
    }

    fn string(&self, i: usize) -> Result<&str, StatesError> {
        match self.get(i) {
            Value::String(s) => Ok(s),
            other => Err(self.wrong(i, "a string", other)),
        }
    }

    /// A string of at most [`MAX_INPUT_CHARS`] characters, counted as Java does.
    fn limited_string(&self, i: usize) -> Result<&str, StatesError> {
        let s = self.string(i)?;
        // Cheap bound first: UTF-16 units never exceed bytes.
        if s.len() > MAX_INPUT_CHARS {
            let n = s.encode_utf16().count();
            if n > MAX_INPUT_CHARS {
                return Err(self.fail(&format!(
                    "argument {} has {n} characters, more than the {MAX_INPUT_CHARS} allowed",
                    i + 1
                )));
            }
        }
        Ok(s)
    }

    fn array(&self, i: usize) -> Result<&Vec<Value>, StatesError> {
        match self.get(i) {
            Value::Array(items) => Ok(items),
            other => Err(self.wrong(i, "an array", other)),
        }
    }

    fn object(&self, i: usize) -> Result<&Map<String, Value>, StatesError> {
        match self.get(i) {
            Value::Object(map) => Ok(map),
            other => Err(self.wrong(i, "an object", other)),
        }
    }

    /// A number, rounded to the nearest integer as AWS documents ("Step Functions will
    /// round it off"). Integers stay exact; out-of-range values saturate, as Java's
    /// `Math.round` does.
    fn rounded(&self, i: usize) -> Result<i64, StatesError> {
        match self.get(i) {
            Value::Number(n) => Ok(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(int), _, _) => int,
                (None, Some(_), _) => i64::MAX,
                (None, None, Some(f)) => java_round(f) as i64,
                (None, None, None) => 0,
            }),
            other => Err(self.wrong(i, "an integer", other)),
        }
    }

    /// A rounded number within Java's `int`, as `States.MathAdd` requires.
    fn int32(&self, i: usize) -> Result<i32, StatesError> {
        let r = self.rounded(i)?;
        let Ok(r) = i32::try_from(r) else {
            return Err(self.fail(&format!(
                "argument {} must be an integer from -2147483648 to 2147483647, but got {}",
                i + 1,
                format_value(self.get(i))
            )));
        };
        Ok(r)
    }
}
