//! Time and duration formatting as Go prints them, in the local time zone (`TZ`), like
//! `go tool pprof` does.

use jiff::Timestamp;
use jiff::tz::TimeZone;

fn local(nanos: i64) -> Option<jiff::Zoned> {
    let ts = Timestamp::from_nanosecond(i128::from(nanos)).ok()?;
    let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
    Some(ts.to_zoned(tz))
}

fn abbrev(z: &jiff::Zoned) -> String {
    let info = z.time_zone().to_offset_info(z.timestamp());
    let a = info.abbreviation();
    if a.is_empty() {
        offset_str(z.offset().seconds(), false)
    } else {
        a.to_string()
    }
}

fn offset_str(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let s = secs.unsigned_abs();
    if colon {
        format!("{sign}{:02}:{:02}", s / 3600, (s / 60) % 60)
    } else {
        format!("{sign}{:02}{:02}", s / 3600, (s / 60) % 60)
    }
}

/// Go's `time.Unix(0, nanos).Format("2006-01-02 15:04:05 MST")`.
pub fn header_time(nanos: i64) -> String {
    match local(nanos) {
        Some(z) => format!("{} {}", z.strftime("%Y-%m-%d %H:%M:%S"), abbrev(&z)),
        None => nanos.to_string(),
    }
}

/// Go's `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
pub fn go_time_string(nanos: i64) -> String {
    match local(nanos) {
        Some(z) => {
            let mut frac = String::new();
            let ns = z.subsec_nanosecond();
            if ns != 0 {
                frac = format!(".{ns:09}");
                while frac.ends_with('0') {
                    frac.pop();
                }
            }
            format!(
                "{}{} {} {}",
                z.strftime("%Y-%m-%d %H:%M:%S"),
                frac,
                offset_str(z.offset().seconds(), false),
                abbrev(&z)
            )
        }
        None => nanos.to_string(),
    }
}

/// Go's `time.Duration.String()`.
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_string();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: ns, µs, ms with a fraction.
        let (unit, prec) = if u < 1_000 {
            ("ns", 0)
        } else if u < 1_000_000 {
            ("µs", 3)
        } else {
            ("ms", 6)
        };
        out.push_str(&fmt_frac(u, prec));
        out.push_str(unit);
    } else {
        let secs_total = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let h = secs_total / 3600;
        let m = (secs_total / 60) % 60;
        let s = secs_total % 60;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&fmt_frac(s * 1_000_000_000 + frac, 9));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// `v / 10^prec` with trailing zeros of the fraction removed.
fn fmt_frac(v: u64, prec: u32) -> String {
    let p = 10u64.pow(prec);
    let int = v / p;
    let mut frac = v % p;
    if frac == 0 {
        return int.to_string();
    }
    let mut digits = prec as usize;
    while frac.is_multiple_of(10) {
        frac /= 10;
        digits -= 1;
    }
    format!("{int}.{frac:0digits$}")
}

/// Go's `fmt.Sprintf("%.4v", duration)`: the duration string cut to 4 characters.
pub fn go_duration_4(d: i64) -> String {
    go_duration(d).chars().take(4).collect()
}

/// Unix milliseconds as RFC 3339 in UTC, to the second (`2026-11-23T12:00:00Z`).
pub fn rfc3339_utc(ms: i64) -> String {
    match Timestamp::from_second(ms.div_euclid(1000)) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(go_duration(3_001_234_567), "3.001234567s");
        assert_eq!(go_duration_4(3_001_234_567), "3.00");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(90 * 1_000_000_000), "1m30s");
        assert_eq!(go_duration(3600 * 1_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1500), "1.5µs");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }
}
