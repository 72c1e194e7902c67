//! Dates in J1QL: `date(ISO-8601)` and `date.now ± N unit`, as epoch milliseconds (UTC).
//!
//! Month and year offsets are calendar arithmetic, clamping the day to the target month's
//! length (`2024-03-31 - 1 month` is `2024-02-29`), as J1's date library does.

use crate::ast::DateUnit;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

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

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let next = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    next - days_from_civil(y, m, 1)
}

/// `now_ms` moved by `delta` units (negative: into the past).
pub(crate) fn shift(now_ms: i64, delta: i64, unit: DateUnit) -> i64 {
    match unit {
        DateUnit::Hour => now_ms.saturating_add(delta.saturating_mul(HOUR_MS)),
        DateUnit::Day => now_ms.saturating_add(delta.saturating_mul(DAY_MS)),
        DateUnit::Month | DateUnit::Year => {
            let months = if unit == DateUnit::Year {
                delta.saturating_mul(12)
            } else {
                delta
            };
            let days = now_ms.div_euclid(DAY_MS);
            let time = now_ms.rem_euclid(DAY_MS);
            let (y, m, d) = civil_from_days(days);
            let total = (y * 12 + m - 1).saturating_add(months);
            let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) + 1);
            let nd = d.min(days_in_month(ny, nm));
            days_from_civil(ny, nm, nd)
                .saturating_mul(DAY_MS)
                .saturating_add(time)
        }
    }
}

/// The unit words J1 lists (no minute or week unit).
pub(crate) fn unit(word: &str) -> Option<DateUnit> {
    Some(match word.to_ascii_lowercase().as_str() {
        "hour" | "hr" | "hours" | "hrs" => DateUnit::Hour,
        "day" | "days" => DateUnit::Day,
        "month" | "mo" | "months" | "mos" => DateUnit::Month,
        "year" | "yr" | "years" | "yrs" => DateUnit::Year,
        _ => return None,
    })
}

pub(crate) const UNITS: &[&str] = &[
    "hour", "hr", "hours", "hrs", "day", "days", "month", "mo", "months", "mos", "year", "yr",
    "years", "yrs",
];

/// ISO-8601 from year down to fractional seconds, with `Z` or a `±HH:MM` offset (UTC
/// when absent): `2019`, `2019-10`, `2019-10-30`, `2019-10-30T12:30`,
/// `2019-10-30T12:30:15.250+02:00`.
pub(crate) fn parse_iso(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let mut i = 0;
    let num = |i: &mut usize, len: usize| -> Option<i64> {
        let s = text.get(*i..*i + len)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *i += len;
        s.parse().ok()
    };
    let year = num(&mut i, 4)?;
    let (mut month, mut day, mut hour, mut min, mut sec, mut ms) = (1, 1, 0, 0, 0, 0);
    if b.get(i) == Some(&b'-') {
        i += 1;
        month = num(&mut i, 2)?;
        if b.get(i) == Some(&b'-') {
            i += 1;
            day = num(&mut i, 2)?;
            if matches!(b.get(i), Some(b'T' | b't' | b' ')) {
                i += 1;
                hour = num(&mut i, 2)?;
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i += 1;
                min = num(&mut i, 2)?;
                if b.get(i) == Some(&b':') {
                    i += 1;
                    sec = num(&mut i, 2)?;
                    if b.get(i) == Some(&b'.') {
                        i += 1;
                        let start = i;
                        while b.get(i).is_some_and(u8::is_ascii_digit) {
                            i += 1;
                        }
                        let frac = &text[start..i];
                        if frac.is_empty() {
                            return None;
                        }
                        // Milliseconds: the first three digits, padded.
                        let three: String = frac.chars().chain("00".chars()).take(3).collect();
                        ms = three.parse().ok()?;
                    }
                }
            }
        }
    }
    let mut offset_min = 0;
    match b.get(i) {
        None => {}
        Some(b'Z' | b'z') if i + 1 == b.len() => {}
        Some(&sign @ (b'+' | b'-')) if hour_given(text) => {
            i += 1;
            let oh = num(&mut i, 2)?;
            if b.get(i) == Some(&b':') {
                i += 1;
            }
            let om = num(&mut i, 2)?;
            if i != b.len() || oh > 23 || om > 59 {
                return None;
            }
            offset_min = (oh * 60 + om) * if sign == b'+' { 1 } else { -1 };
        }
        _ => return None,
    }
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * DAY_MS + ((hour * 60 + min - offset_min) * 60 + sec) * 1000 + ms)
}

fn hour_given(text: &str) -> bool {
    text.contains(['T', 't', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_precisions_and_offsets() {
        assert_eq!(parse_iso("1970"), Some(0));
        assert_eq!(parse_iso("2019-10-30"), Some(1_572_393_600_000));
        assert_eq!(parse_iso("2019-10"), Some(1_569_888_000_000));
        assert_eq!(
            parse_iso("2019-10-30T12:30"),
            Some(1_572_393_600_000 + 45_000_000)
        );
        assert_eq!(
            parse_iso("2019-10-30T12:30:15.25Z"),
            Some(1_572_393_600_000 + 45_015_250)
        );
        assert_eq!(
            parse_iso("2019-10-30T12:30:00+02:00"),
            Some(1_572_393_600_000 + 45_000_000 - 7_200_000)
        );
        for bad in [
            "2019-13-01",
            "2019-02-30",
            "19-10-30",
            "2019-10-30T25:00",
            "2019-10-30X",
            "2019-10-30T12",
            "now",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn calendar_months_clamp_the_day() {
        let mar31 = parse_iso("2024-03-31T06:00:00Z").unwrap();
        assert_eq!(
            shift(mar31, -1, DateUnit::Month),
            parse_iso("2024-02-29T06:00:00Z").unwrap()
        );
        assert_eq!(
            shift(mar31, -1, DateUnit::Year),
            parse_iso("2023-03-31T06:00:00Z").unwrap()
        );
        assert_eq!(
            shift(mar31, -13, DateUnit::Month),
            parse_iso("2023-02-28T06:00:00Z").unwrap()
        );
        assert_eq!(
            shift(mar31, 2, DateUnit::Day),
            parse_iso("2024-04-02T06:00:00Z").unwrap()
        );
        assert_eq!(
            shift(mar31, -24, DateUnit::Hour),
            parse_iso("2024-03-30T06:00:00Z").unwrap()
        );
        for d in [-800_000i64, -1, 0, 59, 20_000, 2_000_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
