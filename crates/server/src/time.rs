//! Times in requests: `from`, `to`, `time` (unix seconds, RFC 3339, `now`, `now-1h`).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ApiError;

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Parses a time, strictly: unix seconds (`1700000000`, `1700000000.5`, `-1`: digits with an
/// optional fraction, no exponent, NaN or infinity), RFC 3339 over the years Go prints
/// (`0001-01-01T00:00:00Z` … `9999-12-31T23:59:59Z`; times outside the nanosecond range of
/// 1677…2262 are clamped to its ends, where no profile can be), `now` or `now-<duration>`
/// (e.g. `now-1h`). Anything else, and unix seconds outside that range, is an error.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    let shown: String = s.chars().take(64).collect();
    let range =
        || format!("time {shown:?} is out of range: unix seconds must lie between 1677 and 2262");
    if s == "now" {
        return Ok(now);
    }
    if let Some(d) = s.strip_prefix("now-") {
        let d = gocost_config::parse_duration(d)?;
        let ns = i64::try_from(d.as_nanos()).map_err(|_| range())?;
        return now.checked_sub(ns).ok_or_else(range);
    }
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (sign, unsigned) = match (s.strip_prefix('-'), s.strip_prefix('+')) {
        (Some(r), _) => (-1i128, r),
        (_, Some(r)) => (1, r),
        _ => (1, s),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if digits(int) && (frac.is_empty() || digits(frac)) && !unsigned.ends_with('.') {
        if int.len() > 12 {
            return Err(range());
        }
        let secs: i128 = int.parse().map_err(|_| range())?;
        let mut nanos: i128 = 0;
        for (i, b) in frac.bytes().take(9).enumerate() {
            nanos += i128::from(b - b'0') * 10i128.pow(8 - i as u32);
        }
        let ns = sign * (secs * 1_000_000_000 + nanos);
        return i64::try_from(ns).map_err(|_| range());
    }
    match rfc3339_ns(s) {
        Some(ns) => Ok(ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64),
        None => Err(format!(
            "bad time {shown:?}: use unix seconds, RFC 3339, now or now-1h"
        )),
    }
}

/// RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, years 0000–9999, `T` or a space, `Z`
/// in either case) as nanoseconds since the epoch, over the whole range (wider than i64).
fn rfc3339_ns(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i128> {
        let d = b.get(r)?;
        if d.is_empty() || !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(d.iter().fold(0i128, |a, &c| a * 10 + i128::from(c - b'0')))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > days_in[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i128;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos += i128::from(b[i] - b'0') * 10i128.pow(8 - (i - start) as u32);
            }
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs * 1_000_000_000 + nanos)
}

/// `from`/`to` parameters (defaults `now-1h` and `now`), checked to be in order.
pub(crate) fn time_range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ApiError> {
    let now = now_ns();
    let from = parse_time(from.unwrap_or("now-1h"), now).map_err(ApiError::BadRequest)?;
    let to = parse_time(to.unwrap_or("now"), now).map_err(ApiError::BadRequest)?;
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    Ok((from, to))
}
