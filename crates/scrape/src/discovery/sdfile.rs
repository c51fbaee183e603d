//! Target group files as Prometheus' file and HTTP discovery read them:
//! `[{"targets": ["host:port", …], "labels": {"name": "value", …}}, …]` in JSON or YAML,
//! and the globs `file_sd` paths may end in. Synchronous, no I/O.

use std::collections::BTreeMap;

use gocost_config::valid_label_name;
use serde::Deserialize;

use super::{Group, Labels};

/// The most groups, or targets in all groups, one file or answer may hold.
pub const MAX_TARGETS: usize = 100_000;

#[derive(Deserialize)]
struct RawGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// A YAML group: label values may be plain scalars (`port: 8080`, `canary: true`), taken
/// as written, as Go's YAML decoder reads them into Prometheus' label values.
#[derive(Deserialize)]
struct YamlGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, serde_norway::Value>>,
}

impl YamlGroup {
    fn into_raw(self) -> Result<RawGroup, String> {
        let mut labels = BTreeMap::new();
        for (k, v) in self.labels.unwrap_or_default() {
            let v = match v {
                serde_norway::Value::String(s) => s,
                serde_norway::Value::Number(n) => n.to_string(),
                serde_norway::Value::Bool(b) => b.to_string(),
                serde_norway::Value::Null => String::new(),
                _ => return Err(format!("label {k:?}: the value must be a string")),
            };
            labels.insert(k, v);
        }
        Ok(RawGroup {
            targets: self.targets,
            labels: Some(labels),
        })
    }
}

/// A file's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// From a file name's extension (`.json`; `.yml`, `.yaml`), as Prometheus decides.
    pub fn of_path(path: &str) -> Option<Format> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Some(Format::Json)
        } else if lower.ends_with(".yml") || lower.ends_with(".yaml") {
            Some(Format::Yaml)
        } else {
            None
        }
    }
}

/// Parses a file's or an answer's target groups. `source` names the groups
/// (`<source>:<index>`, as Prometheus does); `extra` labels (`__meta_filepath`,
/// `__meta_url`) are added to every group. Errors say where (line and column) and what.
pub fn parse_groups(
    bytes: &[u8],
    format: Format,
    source: &str,
    extra: &Labels,
) -> Result<Vec<Group>, String> {
    let raw: Vec<RawGroup> = match format {
        Format::Json => serde_json::from_slice(bytes).map_err(|e| e.to_string())?,
        Format::Yaml => {
            // An empty YAML document holds no groups (Prometheus reads it so).
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Vec::new());
            }
            let groups = serde_norway::from_slice::<Option<Vec<YamlGroup>>>(bytes)
                .map_err(|e| e.to_string())?
                .unwrap_or_default();
            groups
                .into_iter()
                .enumerate()
                .map(|(i, g)| g.into_raw().map_err(|e| format!("group {i}: {e}")))
                .collect::<Result<_, _>>()?
        }
    };
    let total: usize = raw.iter().map(|g| g.targets.len().max(1)).sum();
    if total > MAX_TARGETS {
        return Err(format!(
            "{total} groups and targets: more than the {MAX_TARGETS} one source may hold"
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, g) in raw.into_iter().enumerate() {
        let mut labels = g.labels.unwrap_or_default();
        for name in labels.keys() {
            if !valid_label_name(name) {
                return Err(format!("group {i}: {name:?} is not a valid label name"));
            }
        }
        labels.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        let targets = g
            .targets
            .into_iter()
            .map(|t| Labels::from([("__address__".to_string(), t)]))
            .collect();
        out.push(Group {
            source: format!("{source}:{i}"),
            targets,
            labels,
        });
    }
    Ok(out)
}

/// Whether `name` matches the shell pattern `pat` (`*`, `?`, `[abc]`, `[a-z]`, `[!a]` or
/// `[^a]`, `\x`), as Go's `filepath.Match` within one path element.
pub fn glob_match(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') if n[ni] != '/' => Some(pi + 1),
            Some('[') => class(&p, pi, n[ni]),
            Some('\\') if p.get(pi + 1) == Some(&n[ni]) => Some(pi + 2),
            Some(&c) if c != '\\' && c == n[ni] => Some(pi + 1),
            _ => None,
        };
        match step {
            Some(next) => {
                pi = next;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) if n[sn] != '/' => {
                    star = Some((sp, sn + 1));
                    pi = sp + 1;
                    ni = sn + 1;
                }
                _ => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[at] == '['`; the index after it if it does.
fn class(p: &[char], at: usize, c: char) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *p.get(i)?;
        if lo == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if lo == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            lo
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&h| h != ']') {
            i += 1;
            let h = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            i += 1;
            h
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    (matched != negate).then_some(i)
}

/// Whether a path element holds glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_yaml_give_the_same_groups() {
        let json = br#"[{"targets": ["10.0.0.1:6060", "10.0.0.2:6060"], "labels": {"env": "prod"}},
                        {"targets": ["10.0.0.3:6060"]}]"#;
        let yaml = b"- targets: ['10.0.0.1:6060', '10.0.0.2:6060']\n  labels:\n    env: prod\n- targets: ['10.0.0.3:6060']\n";
        let extra = Labels::from([("__meta_filepath".to_string(), "t.json".to_string())]);
        let a = parse_groups(json, Format::Json, "t.json", &extra).unwrap();
        let b = parse_groups(yaml, Format::Yaml, "t.json", &extra).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].source, "t.json:0");
        assert_eq!(a[0].targets[1]["__address__"], "10.0.0.2:6060");
        assert_eq!(a[0].labels["env"], "prod");
        assert_eq!(a[1].labels["__meta_filepath"], "t.json");
        assert!(
            parse_groups(b"", Format::Yaml, "e.yml", &Labels::new())
                .unwrap()
                .is_empty()
        );
        // YAML scalars are label values as written.
        let g = parse_groups(
            b"- targets: ['a:1']\n  labels: {port: 8080, canary: true, name: x}\n",
            Format::Yaml,
            "s.yml",
            &Labels::new(),
        )
        .unwrap();
        assert_eq!(g[0].labels["port"], "8080");
        assert_eq!(g[0].labels["canary"], "true");
        let e = parse_groups(
            b"- targets: ['a:1']\n  labels: {l: [1]}\n",
            Format::Yaml,
            "s.yml",
            &Labels::new(),
        )
        .unwrap_err();
        assert!(e.contains("group 0: label \"l\""), "{e}");
    }

    #[test]
    fn errors_say_where() {
        let e = parse_groups(
            b"[{\"targets\": [\"a:1\",]}]",
            Format::Json,
            "t",
            &Labels::new(),
        )
        .unwrap_err();
        assert!(e.contains("line 1 column"), "{e}");
        let e = parse_groups(
            b"- targets: ['a:1']\n  labels: [x\n",
            Format::Yaml,
            "t",
            &Labels::new(),
        )
        .unwrap_err();
        assert!(e.contains("line"), "{e}");
        let e = parse_groups(
            b"[{\"targets\": [\"a:1\"], \"labels\": {\"a-b\": \"1\"}}]",
            Format::Json,
            "t",
            &Labels::new(),
        )
        .unwrap_err();
        assert!(e.contains("\"a-b\" is not a valid label name"), "{e}");
    }

    #[test]
    fn globs_match_as_go_does() {
        for (pat, name, want) in [
            ("*.json", "a.json", true),
            ("*.json", "a.yml", false),
            ("t-?.json", "t-1.json", true),
            ("t-?.json", "t-10.json", false),
            ("t-[0-4].json", "t-3.json", true),
            ("t-[!0-4].json", "t-3.json", false),
            ("t-[^0-4].json", "t-7.json", true),
            ("*", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("\\*.json", "*.json", true),
        ] {
            assert_eq!(glob_match(pat, name), want, "{pat} {name}");
        }
    }
}
