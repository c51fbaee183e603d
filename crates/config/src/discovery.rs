//! Target discovery and relabelling settings of a `[[scrape]]` job, named and shaped as
//! Prometheus' `file_sd_configs`, `http_sd_configs`, `dns_sd_configs` and `relabel_configs`
//! (docs/discovery/). This module only reads and checks them; `gocost-scrape`'s `discovery`
//! module acts on them.

use std::time::Duration;

use serde::Deserialize;

use crate::{ScrapeConfig, de_duration, redact_url};

/// `[[scrape.file_sd]]`: JSON or YAML files of target groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSdConfig {
    /// Paths; the last path element may hold a glob (`*`, `?`, `[a-z]`), and names end in
    /// `.json`, `.yml` or `.yaml`, as in Prometheus.
    pub files: Vec<String>,
    /// How often the files are read again even when they did not change (default 5m).
    #[serde(default, deserialize_with = "de_duration")]
    pub refresh_interval: Option<Duration>,
}

impl FileSdConfig {
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval.unwrap_or(Duration::from_secs(300))
    }
}

/// `[[scrape.http_sd]]`: a URL answering the target groups as JSON, fetched with the job's
/// `bearer_token` and `headers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSdConfig {
    pub url: String,
    /// How often the URL is fetched (default 60s).
    #[serde(default, deserialize_with = "de_duration")]
    pub refresh_interval: Option<Duration>,
}

impl HttpSdConfig {
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval.unwrap_or(Duration::from_secs(60))
    }
}

/// `[[scrape.dns_sd]]`: SRV records, or A/AAAA records with a `port`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsSdConfig {
    pub names: Vec<String>,
    /// `SRV` (default), `A` or `AAAA`.
    #[serde(default, rename = "type")]
    pub record_type: Option<String>,
    /// The port of A/AAAA targets (SRV records carry their own).
    pub port: Option<u16>,
    /// How often the names are resolved again (default 30s).
    #[serde(default, deserialize_with = "de_duration")]
    pub refresh_interval: Option<Duration>,
    /// The DNS server asked, `ip:port` (default: the first `nameserver` of
    /// `/etc/resolv.conf`, port 53).
    pub resolver: Option<String>,
}

/// A DNS record type discovery asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsRecordType {
    Srv,
    A,
    Aaaa,
}

impl DnsSdConfig {
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval.unwrap_or(Duration::from_secs(30))
    }
    pub fn record_type(&self) -> Result<DnsRecordType, String> {
        match self.record_type.as_deref().unwrap_or("SRV") {
            "SRV" => Ok(DnsRecordType::Srv),
            "A" => Ok(DnsRecordType::A),
            "AAAA" => Ok(DnsRecordType::Aaaa),
            t => Err(format!(
                "dns_sd type {t:?} is not supported (SRV, A or AAAA)"
            )),
        }
    }
}

/// A relabelling action (Prometheus' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RelabelAction {
    #[default]
    Replace,
    Keep,
    Drop,
    Hashmod,
    Labelmap,
    Labeldrop,
    Labelkeep,
    Lowercase,
    Uppercase,
    Keepequal,
    Dropequal,
}

impl RelabelAction {
    pub fn name(self) -> &'static str {
        match self {
            RelabelAction::Replace => "replace",
            RelabelAction::Keep => "keep",
            RelabelAction::Drop => "drop",
            RelabelAction::Hashmod => "hashmod",
            RelabelAction::Labelmap => "labelmap",
            RelabelAction::Labeldrop => "labeldrop",
            RelabelAction::Labelkeep => "labelkeep",
            RelabelAction::Lowercase => "lowercase",
            RelabelAction::Uppercase => "uppercase",
            RelabelAction::Keepequal => "keepequal",
            RelabelAction::Dropequal => "dropequal",
        }
    }
}

/// `[[scrape.relabel]]`: one rule of Prometheus' `relabel_configs`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source labels' values (default `;`).
    pub separator: Option<String>,
    /// Fully anchored (default `(.*)`).
    pub regex: Option<String>,
    /// For `hashmod`.
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    /// Default `$1`.
    pub replacement: Option<String>,
    /// Default `replace`.
    #[serde(default)]
    pub action: RelabelAction,
}

impl RelabelConfig {
    pub fn separator(&self) -> &str {
        self.separator.as_deref().unwrap_or(";")
    }
    pub fn regex(&self) -> &str {
        self.regex.as_deref().unwrap_or("(.*)")
    }
    pub fn replacement(&self) -> &str {
        self.replacement.as_deref().unwrap_or("$1")
    }
    /// The regex as relabelling matches it: anchored at both ends, `.` matching newlines
    /// (Prometheus: `^(?s:` + regex + `)$`).
    pub fn anchored_regex(&self) -> String {
        format!("^(?s:{})$", self.regex())
    }

    /// Prometheus' checks of a rule (relabel.Config.Validate), same messages.
    pub fn validate(&self) -> Result<(), String> {
        let act = self.action.name();
        regex::Regex::new(&self.anchored_regex())
            .map_err(|e| format!("regex {:?}: {e}", self.regex()))?;
        let target = self.target_label.as_deref().unwrap_or("");
        if self.action == RelabelAction::Hashmod && self.modulus.unwrap_or(0) == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        // The actions that write (or compare with) `target_label`.
        let to_target = matches!(
            self.action,
            RelabelAction::Lowercase
                | RelabelAction::Uppercase
                | RelabelAction::Keepequal
                | RelabelAction::Dropequal
        );
        if (to_target || matches!(self.action, RelabelAction::Replace | RelabelAction::Hashmod))
            && target.is_empty()
        {
            return Err(format!(
                "relabel configuration for {act} action requires 'target_label' value"
            ));
        }
        if self.action == RelabelAction::Replace
            && !target.contains('$')
            && !valid_label_name(target)
        {
            return Err(format!(
                "{target:?} is invalid 'target_label' for {act} action"
            ));
        }
        if (to_target || self.action == RelabelAction::Hashmod) && !valid_label_name(target) {
            return Err(format!(
                "{target:?} is invalid 'target_label' for {act} action"
            ));
        }
        if to_target && self.replacement.as_deref().is_some_and(|r| r != "$1") {
            return Err(format!("'replacement' can not be set for {act} action"));
        }
        if matches!(
            self.action,
            RelabelAction::Keepequal | RelabelAction::Dropequal
        ) && (self.regex.as_deref().is_some_and(|r| r != "(.*)")
            || self.modulus.is_some_and(|m| m != 0)
            || self.separator.as_deref().is_some_and(|s| s != ";"))
        {
            return Err(format!(
                "{act} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(
            self.action,
            RelabelAction::Labeldrop | RelabelAction::Labelkeep
        ) && (!self.source_labels.is_empty()
            || self.target_label.is_some()
            || self.modulus.is_some()
            || self.separator.is_some()
            || self.replacement.is_some())
        {
            return Err(format!(
                "{act} action requires only 'regex', and no other fields"
            ));
        }
        for l in &self.source_labels {
            if !valid_label_name(l) {
                return Err(format!("{l:?} is not a valid label name in source_labels"));
            }
        }
        Ok(())
    }
}

/// A label name as Prometheus' classic rule has it: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A `file_sd` path as Prometheus accepts it: a glob only in the last path element, and a
/// name ending in `.json`, `.yml` or `.yaml`.
fn valid_sd_file(p: &str) -> bool {
    // Prometheus' patFileSDName.
    regex::Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$")
        .is_ok_and(|r| r.is_match(p))
}

impl ScrapeConfig {
    /// Checks `file_sd`, `http_sd`, `dns_sd` and `relabel`; the error names the entry and key.
    pub(crate) fn validate_discovery(&self) -> Result<(), String> {
        for (i, f) in self.file_sd.iter().enumerate() {
            if f.files.is_empty() {
                return Err(format!("file_sd[{i}].files must list at least one file"));
            }
            for p in &f.files {
                if !valid_sd_file(p) {
                    return Err(format!(
                        "file_sd[{i}].files: {p:?} must end in .json, .yml or .yaml, with a glob only in its last path element"
                    ));
                }
            }
            if f.refresh_interval.is_some_and(|d| d.is_zero()) {
                return Err(format!(
                    "file_sd[{i}].refresh_interval must be more than 0s"
                ));
            }
        }
        for (i, h) in self.http_sd.iter().enumerate() {
            if !(h.url.starts_with("http://") || h.url.starts_with("https://")) {
                return Err(format!(
                    "http_sd[{i}].url: {:?} must be an http:// or https:// URL",
                    redact_url(&h.url)
                ));
            }
            if h.refresh_interval.is_some_and(|d| d.is_zero()) {
                return Err(format!(
                    "http_sd[{i}].refresh_interval must be more than 0s"
                ));
            }
        }
        for (i, d) in self.dns_sd.iter().enumerate() {
            if d.names.is_empty() || d.names.iter().any(|n| n.is_empty() || n.len() > 253) {
                return Err(format!(
                    "dns_sd[{i}].names must list at least one DNS name (of at most 253 bytes)"
                ));
            }
            let t = d
                .record_type()
                .map_err(|e| format!("dns_sd[{i}].type: {e}"))?;
            if t != DnsRecordType::Srv && d.port.is_none() {
                return Err(format!(
                    "dns_sd[{i}].port is required for type A and AAAA (SRV records carry their own)"
                ));
            }
            if let Some(r) = &d.resolver
                && r.parse::<std::net::SocketAddr>().is_err()
            {
                return Err(format!(
                    "dns_sd[{i}].resolver: {r:?} must be ip:port (e.g. \"127.0.0.1:53\")"
                ));
            }
            if d.refresh_interval.is_some_and(|d| d.is_zero()) {
                return Err(format!("dns_sd[{i}].refresh_interval must be more than 0s"));
            }
        }
        for (i, r) in self.relabel.iter().enumerate() {
            r.validate().map_err(|e| format!("relabel[{i}]: {e}"))?;
        }
        Ok(())
    }

    /// Whether any targets come from discovery.
    pub fn discovers(&self) -> bool {
        !(self.file_sd.is_empty() && self.http_sd.is_empty() && self.dns_sd.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use std::path::Path;

    fn parse(job: &str) -> Result<Config, String> {
        Config::parse(
            &format!("[[scrape]]\njob = \"j\"\n{job}\n"),
            Path::new("g.toml"),
        )
    }

    #[test]
    fn discovery_settings_are_read_with_prometheus_defaults() {
        let c = parse(
            r#"
[[scrape.file_sd]]
files = ["targets/*.json", "more.yml"]
[[scrape.http_sd]]
url = "http://127.0.0.1:9/sd"
refresh_interval = "10s"
[[scrape.dns_sd]]
names = ["_pprof._tcp.example.org"]
resolver = "127.0.0.1:5353"
[[scrape.relabel]]
source_labels = ["__meta_env"]
regex = "prod|staging"
action = "keep"
"#,
        )
        .unwrap();
        let s = &c.scrape[0];
        assert!(s.targets.is_empty() && s.discovers());
        assert_eq!(s.file_sd[0].refresh_interval().as_secs(), 300);
        assert_eq!(s.http_sd[0].refresh_interval().as_secs(), 10);
        assert_eq!(s.dns_sd[0].refresh_interval().as_secs(), 30);
        assert_eq!(s.relabel[0].separator(), ";");
        assert_eq!(s.relabel[0].replacement(), "$1");
        // Prometheus' names work too.
        // Relative file_sd paths are the config file's directory's.
        let c = Config::parse(
            "[[scrape]]\njob = \"j\"\n[[scrape.file_sd]]\nfiles = [\"t/*.json\", \"/abs/a.yml\"]\n",
            Path::new("/etc/gocost/gocost.toml"),
        )
        .unwrap();
        assert_eq!(
            c.scrape[0].file_sd[0].files,
            ["/etc/gocost/t/*.json", "/abs/a.yml"]
        );
        let c = parse("[[scrape.relabel_configs]]\naction = \"labelmap\"\nregex = \"__meta_(.+)\"\n[[scrape.file_sd_configs]]\nfiles = [\"a.yaml\"]").unwrap();
        assert_eq!(c.scrape[0].relabel.len(), 1);
    }

    #[test]
    fn bad_discovery_settings_name_the_entry_and_key() {
        for (text, says) in [
            ("", "targets must list at least one"),
            (
                "[[scrape.file_sd]]\nfiles = [\"t/*.txt\"]",
                "file_sd[0].files",
            ),
            (
                "[[scrape.file_sd]]\nfiles = [\"*/t.json\"]",
                "file_sd[0].files",
            ),
            ("[[scrape.http_sd]]\nurl = \"ftp://x\"", "http_sd[0].url"),
            (
                "[[scrape.dns_sd]]\nnames = [\"a\"]\ntype = \"A\"",
                "dns_sd[0].port",
            ),
            (
                "[[scrape.dns_sd]]\nnames = [\"a\"]\ntype = \"MX\"",
                "dns_sd[0].type",
            ),
            (
                "[[scrape.dns_sd]]\nnames = [\"a\"]\nresolver = \"x\"",
                "dns_sd[0].resolver",
            ),
            (
                "targets = [\"a:1\"]\n[[scrape.relabel]]\nregex = \"(\"",
                "relabel[0]: regex",
            ),
            (
                "targets = [\"a:1\"]\n[[scrape.relabel]]\naction = \"hashmod\"\ntarget_label = \"x\"",
                "requires non-zero modulus",
            ),
            (
                "targets = [\"a:1\"]\n[[scrape.relabel]]\naction = \"replace\"",
                "requires 'target_label'",
            ),
            (
                "targets = [\"a:1\"]\n[[scrape.relabel]]\naction = \"labeldrop\"\nregex = \"x\"\ntarget_label = \"y\"",
                "requires only 'regex'",
            ),
            (
                "targets = [\"a:1\"]\n[[scrape.relabel]]\ntarget_label = \"1x\"",
                "invalid 'target_label'",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("g.toml") && e.contains(says), "{text}: {e}");
        }
        // An unknown action is a TOML error with its line and key.
        let e = parse("targets = [\"a:1\"]\n[[scrape.relabel]]\naction = \"keep_if\"").unwrap_err();
        assert!(e.contains("line 5") && e.contains("keep_if"), "{e}");
    }
}
