//! Values across the boundary: `serde_json::Value` to jsonata-core's `JValue` and back.
//!
//! `JValue` keeps every number as an `f64`, so `1` and `1.0` (and integers past 2^53) cannot be
//! told apart once converted. Two rules keep what AWS shows:
//! - a computed number that is integral comes back as a JSON integer (`$sum([1,2])` is `3`, not
//!   `3.0`; `$parse("-0")` is `0`, as the corpus records), any other as a float;
//! - a container (object or array) that an expression returns *unchanged* from its bindings
//!   (`$states.input`, `$myVar.items`) comes back as the original `serde_json::Value`, byte for
//!   byte, so `1.0` and big integers inside it survive. The [`Origins`] map finds such a
//!   container by the address of its shared allocation; the converted bindings are kept alive
//!   for the whole evaluation, so an address cannot be freed and reused in between.

use std::collections::HashMap;
use std::rc::Rc;

use jsonata_core::value::{JArray, JMap, JValue};
use serde_json::{Map, Number, Value};

/// The deepest nesting converted in either direction. Both directions recurse, and so does
/// dropping a `serde_json::Value`; a hostile expression can build a value as deep as it likes
/// (`$reduce` wrapping an array in itself), so past this depth the conversion fails instead of
/// overflowing the host's stack. AWS's own payloads are far shallower than this in practice.
pub(crate) const MAX_DEPTH: usize = 512;

/// Where the containers of converted bindings came from: allocation address to source value.
#[derive(Default)]
pub(crate) struct Origins<'a> {
    by_address: HashMap<usize, &'a Value>,
}

/// Why a value could not be converted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A function or regex, which JSON cannot hold.
    Unsupported,
}

fn array_address(a: &JArray) -> usize {
    let items: &Vec<JValue> = a;
    std::ptr::from_ref(items) as usize
}

fn object_address(m: &Rc<JMap>) -> usize {
    Rc::as_ptr(m) as usize
}

impl<'a> Origins<'a> {
    /// Converts `v` for binding, remembering where each container came from.
    pub(crate) fn bind(&mut self, v: &'a Value) -> Result<JValue, ConvertError> {
        self.convert_in(v, 0)
    }

    fn convert_in(&mut self, v: &'a Value, depth: usize) -> Result<JValue, ConvertError> {
        if depth > MAX_DEPTH {
            return Err(ConvertError::TooDeep);
        }
        Ok(match v {
            Value::Null => JValue::Null,
            Value::Bool(b) => JValue::Bool(*b),
            Value::Number(n) => JValue::Number(n.as_f64().unwrap_or(0.0)),
            Value::String(s) => JValue::string(s.as_str()),
            Value::Array(items) => {
                let items = items
                    .iter()
                    .map(|i| self.convert_in(i, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                let converted = JValue::array(items);
                if let JValue::Array(a) = &converted {
                    self.by_address.insert(array_address(a), v);
                }
                converted
            }
            Value::Object(map) => {
                let m = map
                    .iter()
                    .map(|(k, item)| Ok((k.clone(), self.convert_in(item, depth + 1)?)))
                    .collect::<Result<JMap, ConvertError>>()?;
                let converted = JValue::Object(Rc::new(m));
                if let JValue::Object(o) = &converted {
                    self.by_address.insert(object_address(o), v);
                }
                converted
            }
        })
    }

    /// Converts an evaluation's result back; `Ok(None)` is undefined.
    pub(crate) fn result(&self, v: &JValue) -> Result<Option<Value>, ConvertError> {
        self.back_in(v, 0)
    }

    fn back_in(&self, v: &JValue, depth: usize) -> Result<Option<Value>, ConvertError> {
        if depth > MAX_DEPTH {
            return Err(ConvertError::TooDeep);
        }
        Ok(Some(match v {
            JValue::Undefined => return Ok(None),
            JValue::Null => Value::Null,
            JValue::Bool(b) => Value::Bool(*b),
            JValue::Number(n) => number(*n),
            JValue::String(s) => Value::String(s.to_string()),
            JValue::Array(a) => {
                if let Some(orig) = self.by_address.get(&array_address(a)) {
                    return Ok(Some((*orig).clone()));
                }
                let mut out = Vec::with_capacity(a.len());
                for item in a.iter() {
                    // An undefined item has no JSON form; JSONata's own array constructor
                    // already leaves it out, and so do we.
                    if let Some(item) = self.back_in(item, depth + 1)? {
                        out.push(item);
                    }
                }
                Value::Array(out)
            }
            JValue::Object(m) => {
                if let Some(orig) = self.by_address.get(&object_address(m)) {
                    return Ok(Some((*orig).clone()));
                }
                let mut out = Map::with_capacity(m.len());
                for (k, item) in m.iter() {
                    if let Some(item) = self.back_in(item, depth + 1)? {
                        out.insert(k.clone(), item);
                    }
                }
                Value::Object(out)
            }
            _ => return Err(ConvertError::Unsupported),
        }))
    }
}

/// Converts a value that has no binding of origin (a `$parse` result, a function argument).
pub(crate) fn from_plain(v: &Value) -> Result<JValue, ConvertError> {
    Origins::default().bind(v)
}

/// A computed number as JSON: integral values within 64 bits as integers (JSONata has one number
/// type, and an integral result prints without a fraction, as AWS's outputs show), others as
/// floats. JSON has no non-finite numbers; AWS writes them as the strings JavaScript names them
/// by, and so do we.
pub(crate) fn number(n: f64) -> Value {
    if !n.is_finite() {
        let name = if n.is_nan() {
            "NaN"
        } else if n > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        return Value::String(name.to_owned());
    }
    // 2^63 as f64 is exact; `n < 2^63` keeps the cast lossless, likewise 2^64 for u64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.fract() == 0.0 {
        if (-TWO_63..TWO_63).contains(&n) {
            return Value::Number(Number::from(n as i64));
        }
        if (0.0..2.0 * TWO_63).contains(&n) {
            return Value::Number(Number::from(n as u64));
        }
    }
    Number::from_f64(n).map_or(Value::Null, Value::Number)
}
