//! What Java shows through Jayway: class names and `toString` renderings in its messages,
//! and Java's ordering of strings and numbers.
//!
//! We assume AWS runs Jayway on its Jackson provider (`JacksonJsonProvider`), which maps JSON
//! to `LinkedHashMap`, `ArrayList`, `String`, `Integer`/`Long`/`Double` and `Boolean`. The
//! corpus has no message that shows the provider, so this is the likeliest guess, not a fact.

use std::cmp::Ordering;

use serde_json::{Number, Value};

/// The provider named in Jayway's "not a json object" message.
pub(super) const PROVIDER: &str = "com.jayway.jsonpath.spi.json.JacksonJsonProvider";

/// The Java class a JSON value becomes under the Jackson provider (`null` for null).
pub(super) fn class_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.LinkedHashMap",
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i32::try_from(i).is_ok() {
                    "java.lang.Integer"
                } else {
                    "java.lang.Long"
                }
            } else if n.is_u64() {
                "java.math.BigInteger"
            } else {
                "java.lang.Double"
            }
        }
    }
}

/// Java's `toString` of the value as the Jackson provider holds it: `{a=1, b=[x, y]}`.
pub(super) fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&number_to_string(n)),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                write(x, out);
            }
            out.push('}');
        }
    }
}

/// A number as Java prints it: integers plainly, doubles always with a fraction or
/// exponent (`1.0`, `1.5E10`).
fn number_to_string(n: &Number) -> String {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(0.0);
        let abs = f.abs();
        if abs != 0.0 && !(1e-3..1e7).contains(&abs) {
            // Java's Double.toString switches to computerized scientific notation here.
            let s = format!("{f:E}");
            match s.split_once('E') {
                Some((m, e)) if !m.contains('.') => format!("{m}.0E{e}"),
                _ => s,
            }
        } else if f.fract() == 0.0 {
            format!("{f:.1}")
        } else {
            format!("{f}")
        }
    } else {
        n.to_string()
    }
}

/// `String.compareTo`: Java orders strings by UTF-16 code unit, which differs from Rust's
/// (code point) order for characters above U+FFFF against U+E000..U+FFFF.
pub(crate) fn java_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Numeric order of two JSON numbers, exact between integers (`0` and `0.0` are equal).
pub(crate) fn num_cmp(a: &Number, b: &Number) -> Ordering {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}
