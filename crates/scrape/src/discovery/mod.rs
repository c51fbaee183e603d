//! Target discovery (docs/discovery/): what a `[[scrape]]` job's static `targets`,
//! `file_sd`, `http_sd` and `dns_sd` yield, turned into scrape targets as Prometheus 2.x's
//! `PopulateLabels` does (job defaults, `relabel` rules, `__`-prefixed labels dropped,
//! `instance` defaulting to `__address__`), and the change from one target set to the next.
//!
//! Everything here is synchronous and does no I/O but `refresh`, which holds the async
//! refreshers (file polling, HTTP GETs, DNS queries) that feed groups in.

pub mod dns;
pub mod refresh;
pub mod relabel;
pub mod sdfile;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gocost_config::ScrapeConfig;

pub use relabel::{Rule, compile, process};
pub use sdfile::{Format, parse_groups};

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// A target group, as Prometheus' `targetgroup.Group`: targets (each with at least
/// `__address__`) and labels common to them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Where it came from (`<file>:<index>`, `<url>:<index>`, `static:0`, the DNS name).
    pub source: String,
    pub targets: Vec<Labels>,
    pub labels: Labels,
}

/// One target to scrape, after relabelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `__address__` after relabelling: `host:port` (maybe with `user:pw@`).
    pub address: String,
    /// `__scheme__`: http or https.
    pub scheme: String,
    /// `__metrics_path__`: where the pprof handlers are mounted.
    pub path_prefix: String,
    /// `__param_<name>` labels after relabelling: URL parameters of every scrape of it
    /// (sorted by name), as Prometheus sends them.
    pub params: Vec<(String, String)>,
    /// The labels its series carry (no `__`-prefixed ones).
    pub labels: Labels,
    /// The labels discovery gave it, before relabelling.
    pub discovered: Labels,
}

impl Target {
    /// What tells two targets apart: their labels and where they are scraped.
    pub fn key(&self) -> String {
        let mut k = format!("{}://{}{}", self.scheme, self.address, self.path_prefix);
        for (n, v) in &self.params {
            k.push_str(if k.contains('?') { "&" } else { "?" });
            k.push_str(n);
            k.push('=');
            k.push_str(v);
        }
        for (n, v) in &self.labels {
            k.push('\u{0}');
            k.push_str(n);
            k.push('=');
            k.push_str(v);
        }
        k
    }
}

/// A job's targets from its groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// To scrape, sorted by key, without duplicates.
    pub active: Vec<Target>,
    /// The discovered labels of targets relabelling dropped (or another shard's).
    pub dropped: Vec<Labels>,
    /// Targets that are neither (no address, a bad scheme or label value), said why.
    pub errors: Vec<String>,
}

/// The job's settings target labels default to.
pub struct JobDefaults {
    pub job: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub scheme: String,
    pub path_prefix: String,
    /// The job's `labels`: under the groups' own.
    pub labels: Labels,
}

impl JobDefaults {
    pub fn of(sc: &ScrapeConfig) -> JobDefaults {
        JobDefaults {
            job: sc.job.clone(),
            interval: sc.interval(),
            timeout: sc.timeout(),
            scheme: sc.scheme.clone().unwrap_or_else(|| "http".into()),
            path_prefix: sc.path_prefix().to_string(),
            labels: sc.labels.clone(),
        }
    }
}

/// The static `targets` of a job as a group.
pub fn static_group(sc: &ScrapeConfig) -> Group {
    Group {
        source: "static:0".into(),
        targets: sc
            .targets
            .iter()
            .map(|t| Labels::from([("__address__".to_string(), t.clone())]))
            .collect(),
        labels: Labels::new(),
    }
}

/// A duration as Prometheus prints one (`model.Duration`): `15s`, `1m30s`, `500ms`, `0s`.
pub fn prom_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut r = String::new();
    for (unit, mult, exact) in [
        ("y", 1000 * 60 * 60 * 24 * 365, true),
        ("w", 1000 * 60 * 60 * 24 * 7, true),
        ("d", 1000 * 60 * 60 * 24, false),
        ("h", 1000 * 60 * 60, false),
        ("m", 1000 * 60, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && !ms.is_multiple_of(mult) {
            continue;
        }
        let v = ms / mult;
        if v > 0 {
            r.push_str(&format!("{v}{unit}"));
            ms -= v * mult;
        }
    }
    r
}

/// One target's labels before relabelling: its own, then its group's, then the job's
/// `labels`, then `job`, `__scrape_interval__`, `__scrape_timeout__`, `__metrics_path__`,
/// `__scheme__` where not set already (Prometheus' order).
fn discovered(target: &Labels, group: &Labels, d: &JobDefaults) -> Labels {
    let mut l = target.clone();
    for (k, v) in group.iter().chain(d.labels.iter()) {
        l.entry(k.clone()).or_insert_with(|| v.clone());
    }
    for (k, v) in [
        ("job", d.job.clone()),
        ("__scrape_interval__", prom_duration(d.interval)),
        ("__scrape_timeout__", prom_duration(d.timeout)),
        ("__metrics_path__", d.path_prefix.clone()),
        ("__scheme__", d.scheme.clone()),
    ] {
        if l.get(k).is_none_or(String::is_empty) {
            l.insert(k.to_string(), v);
        }
    }
    // An empty value is no label (Prometheus' label builder).
    l.retain(|_, v| !v.is_empty());
    l
}

/// Splits `host:port` as Go's `net.SplitHostPort` would accept it.
fn has_port(addr: &str) -> bool {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(_, p)| p.starts_with(':') && !p[1..].contains(':'));
    }
    matches!(addr.rsplit_once(':'), Some((h, _)) if !h.contains(':') && !h.contains('['))
}

/// Turns `groups` into targets: relabelled with `rules`; `keep(address)` decides the
/// shard (a target outside it is listed as dropped).
pub fn resolve(
    d: &JobDefaults,
    rules: &[Rule],
    groups: &[Group],
    keep: impl Fn(&str) -> bool,
) -> Resolved {
    let mut out = Resolved::default();
    let mut seen = BTreeSet::new();
    for g in groups {
        for t in &g.targets {
            let disc = discovered(t, &g.labels, d);
            let Some(mut l) = process(disc.clone(), rules) else {
                out.dropped.push(disc);
                continue;
            };
            let Some(mut addr) = l.get("__address__").cloned() else {
                out.errors
                    .push(format!("{}: a target has no __address__", g.source));
                continue;
            };
            let scheme = l.get("__scheme__").cloned().unwrap_or_default();
            if !has_port(&addr) && has_port(&format!("{addr}:1234")) {
                // Prometheus 2.x: a missing port is the scheme's.
                addr.push_str(if scheme == "https" { ":443" } else { ":80" });
                l.insert("__address__".into(), addr.clone());
            }
            if scheme != "http" && scheme != "https" {
                out.errors.push(format!(
                    "{}: target {:?}: invalid scheme {scheme:?} (http or https)",
                    g.source,
                    gocost_config::redact_url(&addr)
                ));
                continue;
            }
            if addr.contains('/') {
                out.errors.push(format!(
                    "{}: {:?} is not a valid hostname",
                    g.source,
                    gocost_config::redact_url(&addr)
                ));
                continue;
            }
            let path_prefix = l.get("__metrics_path__").cloned().unwrap_or_default();
            let params: Vec<(String, String)> = l
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("__param_")?.to_string(), v.clone())))
                .filter(|(k, _)| !k.is_empty())
                .collect();
            l.retain(|k, _| !k.starts_with("__meta_"));
            if l.get("instance").is_none_or(String::is_empty) {
                // A target may carry credentials (`user:pw@host:port`): never in a label.
                l.insert("instance".into(), gocost_config::redact_url(&addr));
            }
            let labels: Labels = l
                .into_iter()
                .filter(|(k, _)| !k.starts_with("__"))
                .collect();
            if !keep(&addr) {
                out.dropped.push(disc);
                continue;
            }
            let target = Target {
                address: addr,
                scheme,
                path_prefix,
                params,
                labels,
                discovered: disc,
            };
            if seen.insert(target.key()) {
                out.active.push(target);
            }
        }
    }
    out.active.sort_by_key(Target::key);
    out
}

/// What changes from the running targets (`running`: their keys) to `wanted`: the keys
/// to stop and the targets to start.
pub fn plan<'r, 'a>(
    running: impl IntoIterator<Item = &'r String>,
    wanted: &'a [Target],
) -> (Vec<String>, Vec<&'a Target>) {
    let want: BTreeMap<String, &Target> = wanted.iter().map(|t| (t.key(), t)).collect();
    let running: BTreeSet<&String> = running.into_iter().collect();
    let stop = running
        .iter()
        .filter(|k| !want.contains_key(k.as_str()))
        .map(|k| (*k).clone())
        .collect();
    let start = want
        .iter()
        .filter(|(k, _)| !running.contains(k))
        .map(|(_, t)| *t)
        .collect();
    (stop, start)
}

/// `__address__` shown without credentials (the API's discovered labels).
pub fn redact_labels(l: &Labels) -> Labels {
    l.iter()
        .map(|(k, v)| {
            let v = if k == "__address__" || k == "instance" {
                gocost_config::redact_url(v)
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> JobDefaults {
        JobDefaults {
            job: "api".into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            scheme: "http".into(),
            path_prefix: "/debug/pprof".into(),
            labels: Labels::from([("env".to_string(), "test".to_string())]),
        }
    }

    fn group(addrs: &[&str], labels: &[(&str, &str)]) -> Group {
        Group {
            source: "g:0".into(),
            targets: addrs
                .iter()
                .map(|a| Labels::from([("__address__".to_string(), a.to_string())]))
                .collect(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn targets_get_prometheus_defaults_and_lose_internal_labels() {
        let g = group(
            &["10.0.0.1:6060"],
            &[("__meta_filepath", "a.json"), ("team", "x")],
        );
        let r = resolve(&defaults(), &[], &[g], |_| true);
        assert!(r.dropped.is_empty() && r.errors.is_empty());
        let t = &r.active[0];
        assert_eq!(t.address, "10.0.0.1:6060");
        assert_eq!(
            t.labels,
            Labels::from([
                ("env".into(), "test".into()),
                ("instance".into(), "10.0.0.1:6060".into()),
                ("job".into(), "api".into()),
                ("team".into(), "x".into()),
            ])
        );
        assert_eq!(t.discovered["__scrape_interval__"], "15s");
        assert_eq!(t.discovered["__scrape_timeout__"], "10s");
        assert_eq!(t.discovered["__metrics_path__"], "/debug/pprof");
        assert_eq!(t.discovered["__scheme__"], "http");
        assert_eq!(t.discovered["__meta_filepath"], "a.json");
    }

    /// Rules from `[[r]]` tables of TOML.
    fn rules(text: &str) -> Vec<Rule> {
        let cfgs: Vec<gocost_config::RelabelConfig> = toml::from_str::<toml::Table>(text)
            .expect("toml")["r"]
            .clone()
            .try_into()
            .expect("rules");
        compile(&cfgs).expect("compile")
    }

    #[test]
    fn param_labels_become_url_parameters() {
        let rules = rules(
            r#"
[[r]]
target_label = "__param_gc"
replacement = "1"
"#,
        );
        let r = resolve(
            &defaults(),
            &rules,
            &[group(&["a:6060"], &[("__param_debug", "0"), ("team", "x")])],
            |_| true,
        );
        let t = &r.active[0];
        assert_eq!(
            t.params,
            vec![("debug".into(), "0".into()), ("gc".into(), "1".into())]
        );
        assert!(
            !t.labels.keys().any(|k| k.starts_with("__")),
            "{:?}",
            t.labels
        );
        assert!(t.key().contains("?debug=0&gc=1"), "{}", t.key());
    }

    #[test]
    fn relabelling_can_drop_rename_and_redirect() {
        let rules = rules(
            r#"
[[r]]
source_labels = ["team"]
regex = "y"
action = "drop"
[[r]]
source_labels = ["__address__"]
regex = "(.*):6060"
target_label = "__address__"
replacement = "$1:7070"
[[r]]
target_label = "__scheme__"
replacement = "https"
"#,
        );
        let r = resolve(
            &defaults(),
            &rules,
            &[
                group(&["a:6060", "b"], &[("team", "x")]),
                group(&["c:1"], &[("team", "y")]),
            ],
            |_| true,
        );
        assert_eq!(r.dropped.len(), 1);
        assert_eq!(r.dropped[0]["__address__"], "c:1");
        let addrs: Vec<(&str, &str)> = r
            .active
            .iter()
            .map(|t| (t.address.as_str(), t.scheme.as_str()))
            .collect();
        // `b` has no port: the scheme's (after relabelling) is added.
        assert_eq!(addrs, [("a:7070", "https"), ("b:443", "https")]);
        assert_eq!(r.active[0].labels["instance"], "a:7070");
    }

    #[test]
    fn the_shard_is_decided_on_the_final_address_and_duplicates_are_one() {
        let g = group(&["a:1", "b:1", "a:1"], &[]);
        let r = resolve(&defaults(), &[], &[g], |a| a == "a:1");
        assert_eq!(r.active.len(), 1);
        assert_eq!(r.dropped.len(), 1);
        let creds = group(&["u:secret@h:1"], &[]);
        let r = resolve(&defaults(), &[], &[creds], |_| true);
        assert_eq!(r.active[0].labels["instance"], "h:1");
        assert!(!format!("{:?}", redact_labels(&r.active[0].discovered)).contains("secret"));
    }

    #[test]
    fn a_plan_stops_what_went_and_starts_what_came() {
        let r = resolve(&defaults(), &[], &[group(&["a:1", "b:1"], &[])], |_| true);
        let keys: Vec<String> = r.active.iter().map(Target::key).collect();
        let next = resolve(&defaults(), &[], &[group(&["b:1", "c:1"], &[])], |_| true);
        let (stop, start) = plan(&keys, &next.active);
        assert_eq!(stop, [keys[0].clone()]);
        assert_eq!(start.len(), 1);
        assert_eq!(start[0].address, "c:1");
    }

    #[test]
    fn durations_print_as_prometheus_prints_them() {
        for (ms, s) in [
            (0, "0s"),
            (500, "500ms"),
            (15_000, "15s"),
            (90_000, "1m30s"),
            (3_600_000, "1h"),
            (86_400_000 * 14, "2w"),
            (86_400_000 * 15, "15d"),
        ] {
            assert_eq!(prom_duration(Duration::from_millis(ms)), s);
        }
    }
}
