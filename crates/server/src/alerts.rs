//! Alert rules (`[[alert]]` in the config): evaluated on an interval over the same analyses
//! the API serves, notified to webhooks in Alertmanager's webhook JSON (so anything that
//! takes Alertmanager notifications takes gocost's), listed at `/api/v1/alerts` and counted
//! on `/metrics`.
//!
//! An alert is one (rule, labels) pair: a target's labels plus what the finding names
//! (`function`, `blocking`, `site`). It fires when first seen above the threshold and
//! resolves when an evaluation no longer finds it; each change POSTs the rule's firing
//! alerts plus the ones that just resolved (Alertmanager's grouping by `alertname`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use gocost_config::alerting::AlertRule;
use gocost_insights::{heap, leaks};
use gocost_store::Selector;
use serde::Serialize;

use crate::prom::{self, Text, Type};
use crate::query::{Lent, blocking};
use crate::select::Labels;
use crate::{ApiError, AppState, insights, regress};

/// The CPU time (in the rule's window) below which `gc_cpu_fraction` is not judged.
const MIN_GC_ALERT_CPU_SECONDS: f64 = 1.0;

/// One alert found by an evaluation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Instance {
    pub labels: Labels,
    pub value: f64,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Active {
    #[serde(flatten)]
    pub(crate) alert: Instance,
    starts_at_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RuleState {
    pub(crate) firing: Vec<Active>,
    pub(crate) last_evaluation_ms: Option<i64>,
    pub(crate) last_error: Option<String>,
}

/// Rules, their state and delivery counters.
pub struct Alerts {
    rules: RwLock<Vec<AlertRule>>,
    interval: RwLock<Duration>,
    state: Mutex<BTreeMap<String, RuleState>>,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            rules: RwLock::new(Vec::new()),
            interval: RwLock::new(Duration::from_secs(60)),
            state: Mutex::new(BTreeMap::new()),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

impl Alerts {
    /// Replaces the rules (on start and reload); state of rules that remain is kept.
    pub fn set_rules(&self, rules: Vec<AlertRule>, interval: Duration) {
        if let Ok(mut st) = self.state.lock() {
            st.retain(|name, _| rules.iter().any(|r| &r.name == name));
        }
        if let Ok(mut r) = self.rules.write() {
            *r = rules;
        }
        if let Ok(mut i) = self.interval.write() {
            *i = interval;
        }
    }

    /// Every rule's state now.
    pub(crate) fn state(&self) -> BTreeMap<String, RuleState> {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn rules(&self) -> Vec<AlertRule> {
        self.rules.read().map(|r| r.clone()).unwrap_or_default()
    }

    fn interval(&self) -> Duration {
        self.interval
            .read()
            .map(|i| *i)
            .unwrap_or(Duration::from_secs(60))
    }
}

/// Evaluates every rule forever, on the configured interval.
pub async fn run(st: Arc<AppState>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(target: "gocost::alerts", error = %e, "alerts disabled: cannot build an HTTP client");
            return;
        }
    };
    loop {
        tokio::time::sleep(st.alerts.interval()).await;
        for rule in st.alerts.rules() {
            let r = rule.clone();
            let found = blocking(&st, move |st| evaluate(st, &r)).await;
            let now = crate::time::now_ns() / 1_000_000;
            let found = match found {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(target: "gocost::alerts", rule = %rule.name, error = %e, "evaluating an alert rule failed");
                    Err(e.to_string())
                }
            };
            if let Some(body) = transition(&st.alerts, &rule, found, now) {
                for url in &rule.webhook {
                    deliver(&st, &client, url.clone(), body.clone());
                }
            }
        }
    }
}

/// Applies an evaluation to the rule's state; returns the webhook body when something
/// fired or resolved.
fn transition(
    alerts: &Alerts,
    rule: &AlertRule,
    found: Result<Vec<Instance>, String>,
    now_ms: i64,
) -> Option<Vec<u8>> {
    let mut all = alerts.state.lock().ok()?;
    let st = all.entry(rule.name.clone()).or_default();
    st.last_evaluation_ms = Some(now_ms);
    let found = match found {
        Ok(f) => {
            st.last_error = None;
            f
        }
        Err(e) => {
            // An evaluation that failed changes nothing: no data is not "resolved".
            st.last_error = Some(e);
            return None;
        }
    };
    let mut resolved = Vec::new();
    let mut firing = Vec::new();
    let mut changed = false;
    let old: BTreeMap<Labels, Active> = std::mem::take(&mut st.firing)
        .into_iter()
        .map(|a| (a.alert.labels.clone(), a))
        .collect();
    let mut new_labels = std::collections::BTreeSet::new();
    for mut i in found {
        i.labels.insert("alertname".into(), rule.name.clone());
        for (k, v) in &rule.labels {
            i.labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        new_labels.insert(i.labels.clone());
        let starts_at_ms = match old.get(&i.labels) {
            Some(a) => a.starts_at_ms,
            None => {
                changed = true;
                now_ms
            }
        };
        firing.push(Active {
            alert: i,
            starts_at_ms,
        });
    }
    for (labels, a) in old {
        if !new_labels.contains(&labels) {
            changed = true;
            resolved.push(a);
        }
    }
    st.firing = firing.clone();
    if !changed {
        return None;
    }
    Some(webhook_body(rule, &firing, &resolved, now_ms))
}

/// Alertmanager's webhook payload (version 4) for one rule's group.
fn webhook_body(rule: &AlertRule, firing: &[Active], resolved: &[Active], now_ms: i64) -> Vec<u8> {
    use gocost_report::timefmt::rfc3339_utc;
    let alert = |a: &Active, status: &str, ends: Option<i64>| {
        serde_json::json!({
            "status": status,
            "labels": a.alert.labels,
            "annotations": {
                "summary": a.alert.summary,
                "value": a.alert.value.to_string(),
                "description": format!("{} above {} ({})", rule.when, rule.threshold(), unit(&rule.when)),
            },
            "startsAt": rfc3339_utc(a.starts_at_ms),
            "endsAt": ends.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339_utc),
            "generatorURL": "",
            "fingerprint": fingerprint(&a.alert.labels),
        })
    };
    let alerts: Vec<serde_json::Value> = firing
        .iter()
        .map(|a| alert(a, "firing", None))
        .chain(resolved.iter().map(|a| alert(a, "resolved", Some(now_ms))))
        .collect();
    let group = serde_json::json!({ "alertname": rule.name });
    let body = serde_json::json!({
        "version": "4",
        "receiver": "gocost",
        "status": if firing.is_empty() { "resolved" } else { "firing" },
        "groupKey": format!("{{}}:{{alertname={:?}}}", rule.name),
        "truncatedAlerts": 0,
        "groupLabels": group,
        "commonLabels": group,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

pub(crate) fn unit(when: &str) -> &'static str {
    gocost_config::alerting::WHEN
        .iter()
        .find(|w| w.0 == when)
        .map_or("", |w| w.1)
}

/// FNV-1a over the sorted labels, as 16 hex digits (stable across restarts).
fn fingerprint(l: &Labels) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for (k, v) in l {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100000001b3);
        }
    }
    format!("{h:016x}")
}

/// POSTs a body in the background: 3 tries, 1 s then 2 s apart.
fn deliver(st: &Arc<AppState>, client: &reqwest::Client, url: String, body: Vec<u8>) {
    let st = Arc::clone(st);
    let client = client.clone();
    tokio::spawn(async move {
        let mut last = String::new();
        for attempt in 0..3u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
            }
            match client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    st.alerts.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                // reqwest's message holds the whole URL.
                Err(e) => last = e.without_url().to_string(),
            }
        }
        st.alerts.failed.fetch_add(1, Ordering::Relaxed);
        // The URL may carry a secret (userinfo; chat webhooks put one in the path): its
        // origin only.
        tracing::warn!(
            target: "gocost::alerts",
            webhook = %gocost_config::url_origin(&url),
            error = %last,
            "alert notification failed after 3 tries"
        );
    });
}

/// What a rule finds now.
pub(crate) fn evaluate(st: &Lent<'_>, rule: &AlertRule) -> Result<Vec<Instance>, ApiError> {
    let sel = Selector::parse(rule.query.as_deref().unwrap_or("{}"))?;
    let to = crate::time::now_ns();
    let from = to - rule.window().as_nanos() as i64;
    let above = rule.threshold();
    let mut out = Vec::new();
    let with = |l: &Labels, extra: &[(&str, &str)]| -> Labels {
        let mut l = l.clone();
        for (k, v) in extra {
            l.insert(k.to_string(), v.to_string());
        }
        l
    };
    match rule.when.as_str() {
        "goroutine_leak" => {
            for s in insights::leaks_by_series(st, &sel, from, to, &leaks::defaults())? {
                for f in s.findings.iter().filter(|f| f.rate_per_hour > above) {
                    out.push(Instance {
                        labels: with(
                            &s.labels,
                            &[("function", &f.function), ("blocking", &f.blocking)],
                        ),
                        value: f.rate_per_hour,
                        summary: format!(
                            "{} goroutines running {} blocked in {}, growing by {:.0} an hour",
                            f.count, f.function, f.blocking, f.rate_per_hour
                        ),
                    });
                }
            }
        }
        "heap_growth" => {
            for s in insights::heap_by_series(st, &sel, from, to, &heap::defaults())? {
                for f in s.findings.iter().filter(|f| f.rate_bytes_per_hour > above) {
                    out.push(Instance {
                        labels: with(&s.labels, &[("site", &f.site)]),
                        value: f.rate_bytes_per_hour,
                        summary: format!(
                            "heap in use allocated by {} grows by {:.1} MiB an hour ({:.1} MiB now)",
                            f.site,
                            f.rate_bytes_per_hour / 1048576.0,
                            f.inuse_bytes as f64 / 1048576.0
                        ),
                    });
                }
            }
        }
        "gc_pause_p99" | "gc_cpu_fraction" => {
            for g in insights::gc_by_series(st, &sel, from, to, 0)? {
                let v = if rule.when == "gc_pause_p99" {
                    g.pauses.as_ref().map(|p| p.p99)
                } else {
                    // A fraction of a few samples is noise (an idle service's first profile
                    // can be all collector): judge it on a second of CPU time or more.
                    g.gc_cpu
                        .as_ref()
                        .filter(|c| c.cpu_seconds >= MIN_GC_ALERT_CPU_SECONDS)
                        .map(|c| c.fraction)
                };
                if let Some(v) = v.filter(|&v| v > above) {
                    out.push(Instance {
                        summary: if rule.when == "gc_pause_p99" {
                            format!("GC pause p99 is {:.3} ms", v * 1e3)
                        } else {
                            format!("the garbage collector takes {:.1} % of CPU time", v * 100.0)
                        },
                        labels: g.labels,
                        value: v,
                    });
                }
            }
        }
        "cost_per_month" => {
            let rates = st.cost_rates();
            // Per job (and tenant: two tenants' jobs of one name are not one service).
            let mut per_job: BTreeMap<Labels, f64> = BTreeMap::new();
            for (l, e) in insights::cost_by_series(st, &sel, from, to, &rates)? {
                let key: Labels = l
                    .into_iter()
                    .filter(|(k, _)| k == "job" || k == crate::access::TENANT_LABEL)
                    .collect();
                *per_job.entry(key).or_default() += e.total_per_month;
            }
            for (labels, v) in per_job.into_iter().filter(|&(_, v)| v > above) {
                out.push(Instance {
                    summary: format!(
                        "{} costs {v:.2} {} a month at the current rate (budget {above})",
                        labels.get("job").map_or("?", String::as_str),
                        rates.currency
                    ),
                    labels,
                    value: v,
                });
            }
        }
        "regression" => {
            for s in regress::regressions_by_series(st, &sel, from, to)? {
                for c in s.changes.iter().filter(|c| c.compared) {
                    for r in c.regressions.iter().filter(|r| r.change > above) {
                        out.push(Instance {
                            labels: with(
                                &s.labels,
                                &[("function", &r.function), ("build", c.after.name())],
                            ),
                            value: r.change,
                            summary: format!(
                                "{} costs {:+.0} % more CPU since build {} (was {})",
                                r.function,
                                r.change * 100.0,
                                c.after.name(),
                                c.before.name()
                            ),
                        });
                    }
                }
            }
        }
        "trace_stw_p99" | "trace_sched_latency_p99" | "trace_gc_assist_fraction" => {
            let (series, what, scale, unit) = match rule.when.as_str() {
                "trace_stw_p99" => (
                    "go_trace_stw_seconds{quantile=\"0.99\"}",
                    "p99 stop-the-world pause",
                    1e3,
                    "ms",
                ),
                "trace_sched_latency_p99" => (
                    "go_trace_sched_latency_seconds{quantile=\"0.99\"}",
                    "p99 scheduler latency",
                    1e3,
                    "ms",
                ),
                _ => (
                    "go_trace_gc_assist_fraction",
                    "GC mark assists took",
                    100.0,
                    "% of the procs' time",
                ),
            };
            for (labels, t, v) in worst_trace_value(st, &sel, series, from, to)? {
                if v > above {
                    out.push(Instance {
                        summary: format!(
                            "{what} {:.3} {unit} in the execution trace of {}",
                            v * scale,
                            gocost_report::timefmt::rfc3339_utc(t / 1_000_000)
                        ),
                        labels,
                        value: v,
                    });
                }
            }
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown alert kind {other:?}"
            )));
        }
    }
    Ok(out)
}

/// Per target matching `sel`, the worst (largest) value of a stored execution-trace series
/// (`gocost_scrape::trace` writes one point per capture, e.g.
/// `go_trace_sched_latency_seconds{quantile="0.99"}`) in `[from, to]`, with its capture's
/// time. Labels are the target's (`__name__` and `quantile` removed).
fn worst_trace_value(
    st: &Lent<'_>,
    sel: &Selector,
    series: &str,
    from: i64,
    to: i64,
) -> Result<Vec<(Labels, i64, f64)>, ApiError> {
    let text = match series.split_once('{') {
        Some((name, rest)) => format!("metric{{__name__=\"{name}\",{rest}"),
        None => format!("metric{{__name__=\"{series}\"}}"),
    };
    let mut s = Selector::parse(&text).map_err(|e| ApiError::Internal(e.to_string()))?;
    s.matchers.extend(sel.matchers.iter().cloned());
    let points = st
        .store
        .select_points(&s, from, to)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut worst: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
    for (key, pts) in points {
        let mut labels = key.labels.clone();
        labels.remove("__name__");
        labels.remove("quantile");
        for &(t, v) in pts.iter().filter(|p| p.1.is_finite()) {
            let w = worst.entry(labels.clone()).or_insert((t, v));
            if v > w.1 {
                *w = (t, v);
            }
        }
    }
    Ok(worst.into_iter().map(|(l, (t, v))| (l, t, v)).collect())
}

/// `/metrics` lines: firing alerts per rule, notifications sent and failed.
pub(crate) fn metrics(st: &AppState, o: &mut Text) {
    let state = st.alerts.state();
    o.samples(
        "gocost_alerts_firing",
        Type::Gauge,
        "Alerts of a rule firing now.",
        st.alerts.rules().iter().map(|r| {
            let n = state.get(&r.name).map_or(0, |s| s.firing.len());
            (
                prom::labels(&Labels::new(), &[("alertname", &r.name)]),
                n as f64,
            )
        }),
    );
    for (name, help, v) in [
        (
            "gocost_alert_notifications_total",
            "Webhook notifications delivered.",
            &st.alerts.sent,
        ),
        (
            "gocost_alert_notifications_failed_total",
            "Webhook notifications given up on after 3 tries.",
            &st.alerts.failed,
        ),
    ] {
        o.single(name, Type::Counter, help, v.load(Ordering::Relaxed) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AlertRule {
        AlertRule {
            name: "leaks".into(),
            when: "goroutine_leak".into(),
            query: None,
            above: None,
            window: None,
            webhook: vec![],
            labels: BTreeMap::from([("severity".into(), "page".into())]),
        }
    }

    fn inst(f: &str) -> Instance {
        Instance {
            labels: BTreeMap::from([("job".into(), "a".into()), ("function".into(), f.into())]),
            value: 1.0,
            summary: String::new(),
        }
    }

    fn body(b: Option<Vec<u8>>) -> serde_json::Value {
        serde_json::from_slice(&b.expect("a notification")).unwrap()
    }

    #[test]
    fn fires_once_resolves_once_and_failed_evaluations_change_nothing() {
        let a = Alerts::default();
        let r = rule();
        let b = body(transition(&a, &r, Ok(vec![inst("main.f")]), 1000));
        assert_eq!(b["status"], "firing");
        assert_eq!(b["alerts"][0]["labels"]["alertname"], "leaks");
        assert_eq!(b["alerts"][0]["labels"]["severity"], "page");
        assert_eq!(b["alerts"][0]["startsAt"], "1970-01-01T00:00:01Z");
        // Still firing, nothing new: no notification.
        assert!(transition(&a, &r, Ok(vec![inst("main.f")]), 2000).is_none());
        assert!(transition(&a, &r, Err("store down".into()), 3000).is_none());
        // A second alert: both are sent, the first with its original start.
        let b = body(transition(
            &a,
            &r,
            Ok(vec![inst("main.f"), inst("main.g")]),
            4000,
        ));
        assert_eq!(b["alerts"].as_array().unwrap().len(), 2);
        assert!(
            b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["startsAt"] == "1970-01-01T00:00:01Z")
        );
        // Both gone: resolved, with an end.
        let b = body(transition(&a, &r, Ok(vec![]), 5000));
        assert_eq!(b["status"], "resolved");
        assert!(
            b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["status"] == "resolved" && x["endsAt"] == "1970-01-01T00:00:05Z")
        );
        assert!(transition(&a, &r, Ok(vec![]), 6000).is_none());
        let fp = b["alerts"][0]["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 16);
    }
}
