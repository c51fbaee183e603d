//! When each request of an open-model run is meant to be sent: a constant arrival rate, or a
//! linear ramp from one rate to another and then constant. Request `i` is due when the
//! expected count of arrivals reaches `i`, so the schedule never depends on how fast the
//! server answers (that is what makes the latency measured from it honest).

/// An arrival-rate schedule: `from` requests/s rising linearly to `to` over `ramp` seconds,
/// then `to`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub from: f64,
    pub to: f64,
    pub ramp: f64,
}

impl Rate {
    pub fn constant(r: f64) -> Rate {
        Rate {
            from: r,
            to: r,
            ramp: 0.0,
        }
    }

    /// Seconds after the start at which request `i` (0-based) is due.
    pub fn due(&self, i: u64) -> f64 {
        let i = i as f64;
        let (r0, r1, t) = (self.from, self.to, self.ramp);
        if t <= 0.0 || r0 == r1 {
            return i / r1;
        }
        // Arrivals by time x ≤ t: r0·x + (r1 − r0)·x² / (2t).
        let during = (r0 + r1) * t / 2.0;
        if i >= during {
            return t + (i - during) / r1;
        }
        let a = (r1 - r0) / (2.0 * t);
        // a·x² + r0·x − i = 0, the root that is ≥ 0 (stable form for small a).
        2.0 * i / (r0 + (r0 * r0 + 4.0 * a * i).sqrt())
    }

    /// The rate at `x` seconds after the start.
    pub fn at(&self, x: f64) -> f64 {
        if self.ramp <= 0.0 || x >= self.ramp {
            self.to
        } else {
            self.from + (self.to - self.from) * x / self.ramp
        }
    }

    /// Parses `N`, `N/s` or `FROM:TO` (with the ramp given apart).
    pub fn parse(s: &str, ramp: f64) -> Result<Rate, String> {
        let num = |v: &str| -> Result<f64, String> {
            let v = v.trim().trim_end_matches("/s");
            v.parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0)
                .ok_or_else(|| format!("bad rate {v:?}: requests per second, a positive number"))
        };
        match s.split_once(':') {
            Some((a, b)) => {
                if ramp <= 0.0 {
                    return Err(format!("rate {s:?} ramps: give --ramp (e.g. --ramp 60s)"));
                }
                Ok(Rate {
                    from: num(a)?,
                    to: num(b)?,
                    ramp,
                })
            }
            None => Ok(Rate::constant(num(s)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let r = Rate::constant(200.0);
        assert_eq!(r.due(0), 0.0);
        assert!((r.due(200) - 1.0).abs() < 1e-12);
        assert!((r.due(1000) - 5.0).abs() < 1e-12);
    }

    #[test]
    fn a_ramp_sends_the_integral_of_its_rate() {
        let r = Rate {
            from: 100.0,
            to: 300.0,
            ramp: 10.0,
        };
        // 2,000 arrivals in the ramp (mean 200/s for 10 s), then 300/s.
        assert!((r.due(2000) - 10.0).abs() < 1e-9);
        assert!((r.due(2300) - 11.0).abs() < 1e-9);
        // Halfway through the ramp: 100·5 + 200·25/20 = 750 arrivals.
        assert!((r.due(750) - 5.0).abs() < 1e-9);
        // Monotone.
        let mut last = -1.0;
        for i in 0..3000 {
            let d = r.due(i);
            assert!(d > last);
            last = d;
        }
        assert_eq!(r.at(5.0), 200.0);
    }

    #[test]
    fn rates_parse_with_clear_errors() {
        assert_eq!(Rate::parse("500/s", 0.0).unwrap(), Rate::constant(500.0));
        assert_eq!(Rate::parse("1000:20000", 60.0).unwrap().to, 20000.0);
        assert!(
            Rate::parse("1000:20000", 0.0)
                .unwrap_err()
                .contains("--ramp")
        );
        assert!(Rate::parse("-3", 0.0).unwrap_err().contains("positive"));
        assert!(Rate::parse("fast", 0.0).is_err());
    }
}
