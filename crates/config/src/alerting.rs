//! Alert rules of the config file (`[[alert]]`), evaluated by the server.
//!
//! ```toml
//! [[alert]]
//! name = "checkout leaks goroutines"
//! when = "goroutine_leak"          # see WHEN
//! query = '{job="checkout"}'       # which targets (default: all)
//! above = 600                      # the threshold, in the unit of `when` (see WHEN)
//! window = "15m"                   # data looked at per evaluation (default 15m)
//! webhook = "http://127.0.0.1:9093/api/v2/alerts-webhook"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// What a rule can watch, the unit of its `above`, and its default threshold
/// (`None` = the rule must set one).
pub const WHEN: &[(&str, &str, Option<f64>)] = &[
    ("goroutine_leak", "goroutines per hour", Some(0.0)),
    ("heap_growth", "bytes per hour", Some(0.0)),
    ("gc_pause_p99", "seconds", None),
    ("gc_cpu_fraction", "fraction of CPU time (0..1)", None),
    ("cost_per_month", "money per month, per job", None),
    (
        "regression",
        "relative change (0.1 = 10 % more expensive)",
        Some(0.0),
    ),
    // From the execution traces captured in the window (the `go_trace_*` series): the
    // worst capture counts.
    ("trace_stw_p99", "seconds", None),
    ("trace_sched_latency_p99", "seconds", None),
    (
        "trace_gc_assist_fraction",
        "fraction of the procs' time (0..1)",
        None,
    ),
];

/// One `[[alert]]` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    pub name: String,
    pub when: String,
    /// A selector of label matchers, e.g. `{job="checkout"}` (no kind).
    pub query: Option<String>,
    pub above: Option<f64>,
    #[serde(default, deserialize_with = "crate::de_duration")]
    pub window: Option<Duration>,
    /// Where notifications are POSTed (Alertmanager's webhook JSON).
    #[serde(default)]
    pub webhook: Vec<String>,
    /// Labels added to every alert of the rule (e.g. `severity = "page"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `[alerting]`: how often rules are evaluated.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertingConfig {
    #[serde(default, deserialize_with = "crate::de_duration")]
    pub interval: Option<Duration>,
}

impl AlertingConfig {
    pub fn interval(&self) -> Duration {
        self.interval.unwrap_or(Duration::from_secs(60))
    }
}

impl AlertRule {
    pub fn window(&self) -> Duration {
        self.window.unwrap_or(Duration::from_secs(15 * 60))
    }

    /// The threshold: `above`, or the default of `when`.
    pub fn threshold(&self) -> f64 {
        self.above
            .or_else(|| WHEN.iter().find(|w| w.0 == self.when).and_then(|w| w.2))
            .unwrap_or(0.0)
    }

    /// Checks one rule; the error says what is wrong (the caller names the file and rule).
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name must not be empty".into());
        }
        let Some(w) = WHEN.iter().find(|w| w.0 == self.when) else {
            let names: Vec<&str> = WHEN.iter().map(|w| w.0).collect();
            return Err(format!(
                "unknown when = {:?} (one of {})",
                self.when,
                names.join(", ")
            ));
        };
        match self.above {
            None if w.2.is_none() => {
                return Err(format!("{} needs a threshold: above = … ({})", w.0, w.1));
            }
            Some(x) if !x.is_finite() => return Err(format!("above = {x} is not a number")),
            _ => {}
        }
        if let Some(q) = &self.query {
            let sel = gocost_store::Selector::parse(q).map_err(|e| format!("query: {e}"))?;
            if sel.kind.is_some() {
                return Err(format!(
                    "query {q:?}: leave the profile kind out; `when` decides what is read"
                ));
            }
        }
        if self.window() < Duration::from_secs(10) {
            return Err("window must be at least 10s".into());
        }
        for u in &self.webhook {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!("webhook {u:?} must be an http:// or https:// URL"));
            }
        }
        Ok(())
    }
}
