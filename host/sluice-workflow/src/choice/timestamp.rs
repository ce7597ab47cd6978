//! The timestamps Choice rules compare: the ASL profile of RFC 3339.
//!
//! States Language: "an uppercase T must separate the date and time portions, and an
//! uppercase Z must denote that a numeric time zone offset is not present", e.g.
//! `2016-08-18T17:33:00Z`. We accept `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1 to 9
//! digits (Java's nanosecond precision), then `Z` or `+HH:MM`/`-HH:MM` (at most 18 hours, as
//! Java's `ZoneOffset`). Dates are checked for real (no February 30th); no leap second.

/// An instant: nanoseconds since 1970-01-01T00:00:00Z. Timestamps compare by instant, so
/// `2016-08-18T17:33:00Z` equals `2016-08-18T18:33:00+01:00`.
pub(super) fn parse(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        part.iter()
            .try_fold(0_i64, |acc, d| Some(acc * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if sep(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(start, n)? * 10_i64.pow(u32::try_from(9 - n).ok()?);
    }
    let offset_minutes = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && sep(i + 3, b':') => {
            let (h, m) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if h > 18 || m > 59 || (h == 18 && m > 0) {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_the_asl_profile() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse("2016-08-18T17:33:00Z"),
            parse("2016-08-18T18:33:00+01:00")
        );
        assert_eq!(
            parse("2016-08-18T17:33:00Z"),
            parse("2016-08-18T12:33:00-05:00")
        );
        assert!(parse("2012-10-09T19:00:55Z") < parse("2012-10-09T19:00:56Z"));
        assert!(parse("2020-02-29T00:00:00Z").is_some());
        assert!(parse("2000-02-29T00:00:00Z").is_some());
        assert!(parse("1969-12-31T23:59:59.999999999Z").is_some_and(|n| n == -1));
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "2012-10-09T19:00:55",
            "2023-02-24",
            "2012-10-09t19:00:55Z",
            "2012-10-09T19:00:55z",
            "2012-10-09 19:00:55Z",
            "05-12-2016T21:29:29Z",
            "2016-12-05 21:29:29Z",
            "2019-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2012-13-09T19:00:55Z",
            "2012-10-32T19:00:55Z",
            "2012-10-09T24:00:00Z",
            "2012-10-09T19:60:00Z",
            "2012-10-09T19:00:60Z",
            "2012-10-09T19:00:55.Z",
            "2012-10-09T19:00:55.1234567890Z",
            "2012-10-09T19:00:55+0100",
            "2012-10-09T19:00:55+19:00",
            "2012-10-09T19:00:55Z ",
            "+012-10-09T19:00:55Z",
            "",
            "HelloWorld",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
