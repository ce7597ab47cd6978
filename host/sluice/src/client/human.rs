//! The human-readable forms of the API's answers: sizes, hashes, times, aligned tables.
//!
//! Times are formatted here (UTC, from days since the epoch) rather than with a date crate:
//! the CLI prints one format and the binary has no date dependency to lean on.

use std::fmt::Write as _;

/// A byte count: `812 B`, `3.4 KiB`, `1.2 MiB`.
pub(crate) fn size(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    if bytes < KIB {
        format!("{bytes} B")
    } else if bytes < MIB {
        format!("{:.1} KiB", bytes as f64 / KIB as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    }
}

/// A SHA-256's first 8 hex digits, enough to tell versions apart by eye.
pub(crate) fn short_sha(sha256: &str) -> String {
    match sha256.get(..8) {
        Some(s) if sha256.len() > 8 => format!("{s}…"),
        _ => sha256.to_owned(),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub(crate) fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day number.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS.mmm` (UTC), for history events that
/// are milliseconds apart.
pub(crate) fn utc_millis(ms: i64) -> String {
    format!("{}.{:03}", utc(ms), ms.rem_euclid(1000))
}

/// A span of milliseconds: `340 ms`, `1.2 s`, `4 min 05 s`.
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// `v` as one line of JSON, cut to about `max` characters (`…` marks the cut): a table cell
/// shows what a value is; `--json` shows all of it.
pub(crate) fn compact(v: &serde_json::Value, max: usize) -> String {
    let s = v.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// `header` and `rows` as columns two spaces apart (the last column unpadded).
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                let _ = write!(line, "{cell}{:pad$}  ", "");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A map of names to versions as `a=1 b=2` (`-` for none).
pub(crate) fn aliases<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    let s: Vec<String> = pairs.into_iter().map(|(a, v)| format!("{a}={v}")).collect();
    if s.is_empty() {
        "-".into()
    } else {
        s.join(" ")
    }
}

/// A list of names as `a, b` (`none` for none).
pub(crate) fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// What a version's configuration grants, briefly: the members that grant anything
/// (`kv_buckets=counters; network`), or `-`. The limits are left to `--json`: every version
/// has them all, so they would drown the grants.
pub(crate) fn grants(config: &serde_json::Value) -> String {
    let Some(grants) = config.get("grants").and_then(|g| g.as_object()) else {
        return "-".into();
    };
    let mut parts = Vec::new();
    for (name, v) in grants {
        match v {
            serde_json::Value::Bool(true) => parts.push(name.clone()),
            serde_json::Value::Array(items) if !items.is_empty() => {
                let items: Vec<String> = items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect();
                parts.push(format!("{name}={}", items.join(",")));
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_hashes_and_times_read_well() {
        assert_eq!(size(812), "812 B");
        assert_eq!(size(3482), "3.4 KiB");
        assert_eq!(size(1_258_291), "1.2 MiB");
        assert_eq!(short_sha("abcdef0123456789"), "abcdef01…");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(utc(1_767_225_599_999), "2025-12-31 23:59:59");
        assert_eq!(utc(-1000), "1969-12-31 23:59:59");
        assert_eq!(utc_millis(1_767_225_599_999), "2025-12-31 23:59:59.999");
        assert_eq!(duration(340), "340 ms");
        assert_eq!(duration(1250), "1.2 s");
        assert_eq!(duration(245_000), "4 min 05 s");
        let v = serde_json::json!({"items": [1, 2, 3]});
        assert_eq!(compact(&v, 100), r#"{"items":[1,2,3]}"#);
        assert_eq!(compact(&v, 10), r#"{"items":…"#);
    }

    #[test]
    fn tables_align_and_grants_summarize() {
        let t = table(
            &["NAME", "LATEST", "ALIASES"],
            &[vec!["counter".into(), "2".into(), "live=2".into()]],
        );
        assert_eq!(t, "NAME     LATEST  ALIASES\ncounter  2       live=2\n");
        let config = serde_json::json!({"limits": {"memory_bytes": 1},
            "grants": {"kv_buckets": ["counters"], "tables": [], "network": true, "env": []}});
        assert_eq!(grants(&config), "kv_buckets=counters; network");
        assert_eq!(
            grants(&serde_json::json!({"grants": {"network": false}})),
            "-"
        );
    }
}
