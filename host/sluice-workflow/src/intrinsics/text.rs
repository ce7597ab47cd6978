//! How values become text: `States.Format`'s templates and arguments, `States.JsonToString`'s
//! JSON, and the Java way of printing a double that both use.
//!
//! AWS runs a Java implementation, and it shows: `States.Format` prints an object argument as
//! Java's `Map.toString` does (`{Id=arn:..., Name=...}`, recorded in the corpus), a list as
//! `[a, b]`, and a double as `Double.toString` does (`1.1`, `100.0`, `1.0E20`). We print
//! doubles that way in `States.JsonToString` too, as Jackson (Java's JSON library) writes
//! them with `Double.toString`; integers print as integers.

use serde_json::{Number, Value};

/// The cause when a template has a `{` that does not open a `{}`; AWS's words.
const UNMATCHED_OPEN: &str = "Invalid template in States.Format: matching '}' not found for '{'.";
/// The cause when a template has a `}` outside a `{}`.
const UNMATCHED_CLOSE: &str = "Invalid template in States.Format: matching '{' not found for '}'.";

/// Fills `template`'s `{}` placeholders with `args` (as [`format_value`] prints them), in
/// order. A backslash escapes `'`, `{`, `}` and `\` (so `\{}` is the text `{}`, not a
/// placeholder); any other backslash stays as it is. Errors are the cause text.
pub(super) fn render_template(template: &str, args: &[Value]) -> Result<String, String> {
    enum Piece {
        Text(String),
        Hole,
    }
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&e @ ('\'' | '{' | '}' | '\\')) => {
                    text.push(e);
                    chars.next();
                }
                _ => text.push('\\'),
            },
            '{' => {
                if chars.next() != Some('}') {
                    return Err(UNMATCHED_OPEN.to_string());
                }
                pieces.push(Piece::Text(std::mem::take(&mut text)));
                pieces.push(Piece::Hole);
            }
            '}' => return Err(UNMATCHED_CLOSE.to_string()),
            c => text.push(c),
        }
    }
    pieces.push(Piece::Text(text));
    let holes = pieces.iter().filter(|p| matches!(p, Piece::Hole)).count();
    if holes != args.len() {
        return Err(format!(
            "Invalid arguments in States.Format: the template has {holes} placeholder{} '{{}}' \
             but {} argument{} {} given to fill {}.",
            if holes == 1 { "" } else { "s" },
            args.len(),
            if args.len() == 1 { "" } else { "s" },
            if args.len() == 1 { "was" } else { "were" },
            if holes == 1 { "it" } else { "them" },
        ));
    }
    let mut out = String::new();
    let mut next_arg = args.iter();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Hole => {
                if let Some(v) = next_arg.next() {
                    format_value_into(v, &mut out);
                }
            }
        }
    }
    Ok(out)
}

/// A value as `States.Format` prints it: a string as itself, `null`, `true`, a number the
/// Java way, a list as `[a, b]`, an object as `{k=v, k2=v2}` (Java's `toString`).
pub(super) fn format_value(v: &Value) -> String {
    let mut out = String::new();
    format_value_into(v, &mut out);
    out
}

fn format_value_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                format_value_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push('=');
                format_value_into(item, out);
            }
            out.push('}');
        }
    }
}

/// Compact JSON text, keys in their order, doubles printed the Java way (as Jackson does).
pub(super) fn to_json(v: &Value) -> String {
    let mut out = String::new();
    json_into(v, &mut out);
    out
}

fn json_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => json_string_into(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_into(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string_into(k, out);
                out.push(':');
                json_into(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string literal with Jackson's escapes: `\"`, `\\`, the short forms `\b \t \n \f
/// \r`, and `\u00XX` (upper-case hex) for the other control characters.
fn json_string_into(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON number's text: an integer as itself, a double the Java way.
pub(super) fn number_text(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if n.is_f64() => java_double(f),
        _ => n.to_string(),
    }
}

/// `f` as Java's `Double.toString` prints it: the shortest digits that round-trip, plain
/// (`0.001`, `1234567.0`) for magnitudes in [10^-3, 10^7) and otherwise computerized
/// scientific notation (`1.0E7`, `1.5E-4`), always with a digit after the point.
pub(super) fn java_double(f: f64) -> String {
    if !f.is_finite() {
        // JSON has none; Java's own words, so a caller can never panic on one.
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let a = f.abs();
    if a == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "1.2345e-5" or "1e20".
    let sci = format!("{a:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (1e-3..1e7).contains(&a) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            let mut int_part = digits.chars().take(int_len).collect::<String>();
            while int_part.len() < int_len {
                int_part.push('0');
            }
            let frac: String = digits.chars().skip(int_len).collect();
            let frac = if frac.is_empty() { "0".into() } else { frac };
            format!("{sign}{int_part}.{frac}")
        } else {
            let zeros = "0".repeat((-exp - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exp}")
    }
}
