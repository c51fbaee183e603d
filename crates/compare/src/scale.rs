//! Numbers as benchstat prints them: one SI (or, for bytes, IEC) prefix per table row, chosen
//! from the row's smallest non-zero value, with four significant digits.

/// A prefix and precision shared by the values of a row.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    /// Digits after the decimal point.
    pub prec: usize,
    pub factor: f64,
    pub prefix: &'static str,
}

impl Scaler {
    pub fn format(&self, v: f64) -> String {
        format!("{:.*}{}", self.prec, v / self.factor, self.prefix)
    }
}

const SI: [(&str, i32); 8] = [
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("", 0),
    ("m", -3),
    ("µ", -6),
    ("n", -9),
];
const IEC: [(&str, i32); 5] = [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10), ("", 0)];

/// The scaler benchstat would choose for these values (`binary` for byte units).
pub fn common_scale(values: &[f64], binary: bool) -> Scaler {
    let min = values
        .iter()
        .map(|v| v.abs())
        .filter(|&v| v != 0.0 && v.is_finite())
        .fold(f64::INFINITY, f64::min);
    if !min.is_finite() {
        return Scaler {
            prec: 3,
            factor: 1.0,
            prefix: "",
        };
    }
    // Thresholds are where rounding to four significant digits would carry into the next
    // digit: 99.995, 9.9995 and 0.99995 of a prefix.
    let factors: Vec<(&'static str, f64)> = if binary {
        IEC.iter()
            .map(|&(p, e)| (p, 2f64.powi(e)))
            .collect::<Vec<_>>()
    } else {
        SI.iter().map(|&(p, e)| (p, 10f64.powi(e))).collect()
    };
    for &(prefix, factor) in &factors {
        let (t100, t10, t1) = if binary {
            (99.995 * factor, 9.9995 * factor, 0.99995 * factor)
        } else {
            let e = factor.log10().round() as i32;
            (
                format!("99.995e{e}").parse().unwrap_or(f64::NAN),
                format!("9.9995e{e}").parse().unwrap_or(f64::NAN),
                format!(".99995e{e}").parse().unwrap_or(f64::NAN),
            )
        };
        let prec = if min >= t100 {
            1
        } else if min >= t10 {
            2
        } else if min >= t1 {
            3
        } else {
            continue;
        };
        return Scaler {
            prec,
            factor,
            prefix,
        };
    }
    // Smaller than the smallest prefix: more digits.
    let (prefix, factor) = factors[factors.len() - 1];
    let v = min / factor;
    let mut prec = 3;
    for (i, exp) in (-8..=-1).rev().enumerate() {
        let thresh: f64 = format!("9.9995e{exp}").parse().unwrap_or(f64::NAN);
        prec = i + 3;
        if v >= thresh {
            break;
        }
    }
    Scaler {
        prec,
        factor,
        prefix,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_like_benchstat() {
        let s = common_scale(&[1.718e-6, 1.423e-6], false);
        assert_eq!(s.format(1.7185e-6), "1.718µ");
        assert_eq!(common_scale(&[3066e-9], false).format(3066e-9), "3.066µ");
        assert_eq!(common_scale(&[16.0], true).format(16.0), "16.00");
        assert_eq!(common_scale(&[2048.0], true).format(2048.0), "2.000Ki");
        assert_eq!(common_scale(&[0.0], false).format(0.0), "0.000");
        assert_eq!(common_scale(&[123456.0], false).format(123456.0), "123.5k");
    }
}
