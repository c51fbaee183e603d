//! Units and number formatting exactly as pprof's `measurement` package does it: unit
//! families (bytes, time, GCU), scaling between units, auto-scaling, value labels
//! (`1760ms`, `7617.88kB`) and percentages (`67.18%`, `0.38%`, `  100%`).

struct Unit {
    name: &'static str,
    aliases: &'static [&'static str],
    factor: f64,
}

struct UnitType {
    units: &'static [Unit],
    default: (&'static str, f64),
}

static UNIT_TYPES: [UnitType; 3] = [
    UnitType {
        units: &[
            Unit {
                name: "B",
                aliases: &["b", "byte"],
                factor: 1.0,
            },
            Unit {
                name: "kB",
                aliases: &["kb", "kbyte", "kilobyte"],
                factor: 1024.0,
            },
            Unit {
                name: "MB",
                aliases: &["mb", "mbyte", "megabyte"],
                factor: 1048576.0,
            },
            Unit {
                name: "GB",
                aliases: &["gb", "gbyte", "gigabyte"],
                factor: 1073741824.0,
            },
            Unit {
                name: "TB",
                aliases: &["tb", "tbyte", "terabyte"],
                factor: 1099511627776.0,
            },
            Unit {
                name: "PB",
                aliases: &["pb", "pbyte", "petabyte"],
                factor: 1125899906842624.0,
            },
        ],
        default: ("B", 1.0),
    },
    UnitType {
        units: &[
            Unit {
                name: "ns",
                aliases: &["ns", "nanosecond"],
                factor: 1.0,
            },
            Unit {
                name: "us",
                aliases: &["μs", "us", "microsecond"],
                factor: 1e3,
            },
            Unit {
                name: "ms",
                aliases: &["ms", "millisecond"],
                factor: 1e6,
            },
            Unit {
                name: "s",
                aliases: &["s", "sec", "second"],
                factor: 1e9,
            },
            Unit {
                name: "hrs",
                aliases: &["hour", "hr"],
                factor: 3600e9,
            },
        ],
        default: ("s", 1e9),
    },
    UnitType {
        units: &[
            Unit {
                name: "n*GCU",
                aliases: &["nanogcu"],
                factor: 1e-9,
            },
            Unit {
                name: "u*GCU",
                aliases: &["microgcu"],
                factor: 1e-6,
            },
            Unit {
                name: "m*GCU",
                aliases: &["milligcu"],
                factor: 1e-3,
            },
            Unit {
                name: "GCU",
                aliases: &["gcu"],
                factor: 1.0,
            },
            Unit {
                name: "k*GCU",
                aliases: &["kilogcu"],
                factor: 1e3,
            },
            Unit {
                name: "M*GCU",
                aliases: &["megagcu"],
                factor: 1e6,
            },
            Unit {
                name: "G*GCU",
                aliases: &["gigagcu"],
                factor: 1e9,
            },
            Unit {
                name: "T*GCU",
                aliases: &["teragcu"],
                factor: 1e12,
            },
            Unit {
                name: "P*GCU",
                aliases: &["petagcu"],
                factor: 1e15,
            },
        ],
        default: ("GCU", 1.0),
    },
];

impl UnitType {
    fn sniff(&self, unit: &str) -> Option<&'static Unit> {
        let mut u = unit.to_lowercase();
        if u.len() > 2 && u.ends_with('s') {
            u.pop();
        }
        self.units.iter().find(|x| x.aliases.contains(&u.as_str()))
    }

    fn auto_scale(&self, value: f64) -> Option<(f64, &'static str)> {
        let mut f = 0.0;
        let mut name = "";
        for u in self.units {
            if u.factor >= f && value / u.factor >= 1.0 {
                f = u.factor;
                name = u.name;
            }
        }
        (f != 0.0).then(|| (value / f, name))
    }

    fn convert(&self, value: i64, from: &str, to: &str) -> Option<(f64, &'static str)> {
        let from = self.sniff(from)?;
        let v = value as f64 * from.factor;
        if to == "minimum" || to == "auto" {
            if let Some(r) = self.auto_scale(v) {
                return Some(r);
            }
            return Some((v / self.default.1, self.default.0));
        }
        match self.sniff(to) {
            None => Some((v / self.default.1, self.default.0)),
            Some(t) => Some((v / t.factor, t.name)),
        }
    }
}

/// Scales `value` from `from_unit` to `to_unit` (`"auto"`/`"minimum"` pick a readable unit).
/// Returns the scaled value and the unit to print (empty for unitless values).
pub fn scale(value: i64, from_unit: &str, to_unit: &str) -> (f64, String) {
    if value < 0 && value.wrapping_neg() > 0 {
        let (v, u) = scale(-value, from_unit, to_unit);
        return (-v, u);
    }
    for ut in &UNIT_TYPES {
        if let Some((v, u)) = ut.convert(value, from_unit, to_unit) {
            return (v, u.to_string());
        }
    }
    match to_unit {
        "count" | "sample" | "unit" | "minimum" | "auto" => (value as f64, String::new()),
        _ => (value as f64, to_unit.to_string()),
    }
}

/// `value` in `from_unit`, scaled to `to_unit` and printed as pprof does (`13.10ms`, `2.62s`,
/// `0`).
pub fn scaled_label(value: i64, from_unit: &str, to_unit: &str) -> String {
    let (v, u) = scale(value, from_unit, to_unit);
    let mut s = format!("{v:.2}");
    if s.ends_with(".00") {
        s.truncate(s.len() - 3);
    }
    if s == "0" || s == "-0" {
        return "0".to_string();
    }
    s.push_str(&u);
    s
}

/// `value` auto-scaled (pprof's `measurement.Label`).
pub fn label(value: i64, unit: &str) -> String {
    scaled_label(value, unit, "auto")
}

/// pprof's `Percentage`: `|value/total|` as `%5.2f%%`, `%5.2g%%` below 1 %, `  100%` near 100.
pub fn percentage(value: i64, total: i64) -> String {
    let ratio = if total != 0 {
        (value as f64 / total as f64).abs() * 100.0
    } else {
        0.0
    };
    if (99.95..=100.05).contains(&ratio) {
        "  100%".to_string()
    } else if ratio >= 1.0 {
        format!("{ratio:5.2}%")
    } else {
        format!("{:>5}%", format_g(ratio, 2))
    }
}

/// Go's `%.{prec}g` (strconv 'g' with an explicit precision).
pub fn format_g(v: f64, prec: usize) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let prec = prec.max(1);
    let neg = v < 0.0;
    let e = format!("{:.*e}", prec - 1, v.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = prec as i32;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    let x = dp - 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if x < -4 || x >= eprec {
        // %e with min(prec, nd) - 1 decimals.
        let p = (prec as i32).min(nd) - 1;
        out.push_str(&digits[..1]);
        if p > 0 {
            out.push('.');
            out.push_str(&digits[1..]);
            for _ in nd..=p {
                out.push('0');
            }
        }
        out.push('e');
        out.push(if x < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", x.abs()));
    } else {
        let p = if prec as i32 > dp { nd } else { prec as i32 };
        let decimals = (p - dp).max(0);
        // integer part
        if dp <= 0 {
            out.push('0');
        } else {
            for i in 0..dp {
                out.push(
                    digits
                        .as_bytes()
                        .get(i as usize)
                        .map_or('0', |&b| b as char),
                );
            }
        }
        if decimals > 0 {
            out.push('.');
            for i in 0..decimals {
                let di = dp + i;
                let c = if di < 0 {
                    '0'
                } else {
                    digits
                        .as_bytes()
                        .get(di as usize)
                        .map_or('0', |&b| b as char)
                };
                out.push(c);
            }
        }
    }
    out
}

/// Whether the two value types can be merged (same type name modulo a trailing `s`, units
/// equal or of one family) — pprof's `compatibleValueTypes`.
pub fn compatible_value_types(t1: &str, u1: &str, t2: &str, u2: &str) -> bool {
    if t1.strip_suffix('s').unwrap_or(t1) != t2.strip_suffix('s').unwrap_or(t2) {
        return false;
    }
    if u1 == u2 {
        return true;
    }
    UNIT_TYPES
        .iter()
        .any(|ut| ut.sniff(u1).is_some() && ut.sniff(u2).is_some())
}

/// Whether `unit` belongs to a known unit family (bytes, time, GCU).
pub fn is_known_unit(unit: &str) -> bool {
    UNIT_TYPES.iter().any(|ut| ut.sniff(unit).is_some())
}

/// The canonical name of `unit` if it is a time unit (used for the `Duration:` ratio).
pub fn is_time_unit(unit: &str) -> bool {
    UNIT_TYPES[1].sniff(unit).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(label(1_760_000_000, "nanoseconds"), "1.76s");
        assert_eq!(scaled_label(1_760_000_000, "nanoseconds", "ms"), "1760ms");
        assert_eq!(scaled_label(13_100_000, "nanoseconds", "ms"), "13.10ms");
        assert_eq!(scaled_label(7_800_709, "bytes", "kB"), "7617.88kB");
        assert_eq!(label(0, "bytes"), "0");
        assert_eq!(label(262, "count"), "262");
        assert_eq!(scaled_label(-360_000_000, "nanoseconds", "s"), "-0.36s");
        assert_eq!(label(-360_000_000, "nanoseconds"), "-360ms");
        assert_eq!(label(5 * 3600 * 1_000_000_000, "nanoseconds"), "5hrs");
    }

    #[test]
    fn percentages() {
        assert_eq!(percentage(1760, 2620), "67.18%");
        assert_eq!(percentage(10, 2620), " 0.38%");
        assert_eq!(percentage(0, 2620), "    0%");
        assert_eq!(percentage(2620, 2620), "  100%");
        assert_eq!(percentage(1, 1_886_792_453), "5.3e-08%");
        assert_eq!(percentage(1, 26_200), "0.0038%");
    }

    #[test]
    fn go_g_format() {
        assert_eq!(format_g(0.38167, 2), "0.38");
        assert_eq!(format_g(0.5, 2), "0.5");
        assert_eq!(format_g(0.0038, 2), "0.0038");
        assert_eq!(format_g(5.3e-7, 2), "5.3e-07");
        assert_eq!(format_g(5e-7, 2), "5e-07");
        assert_eq!(format_g(0.999, 2), "1");
        assert_eq!(format_g(0.995, 2), "0.99");
        assert_eq!(format_g(123.0, 2), "1.2e+02");
    }
}
