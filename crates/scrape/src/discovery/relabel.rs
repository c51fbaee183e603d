//! Prometheus' relabelling (`relabel_configs`), as Prometheus 2.x's `relabel.Process` does
//! it: synchronous, over a label set held as a sorted map.

use gocost_config::{RelabelAction, RelabelConfig, valid_label_name};
use regex::Regex;

use super::Labels;

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: RelabelAction,
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: Regex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
}

impl Rule {
    /// Compiles a configured rule (checked as Prometheus checks it).
    pub fn new(c: &RelabelConfig) -> Result<Rule, String> {
        c.validate()?;
        let regex = Regex::new(&c.anchored_regex()).map_err(|e| format!("regex: {e}"))?;
        Ok(Rule {
            action: c.action,
            source_labels: c.source_labels.clone(),
            separator: c.separator().to_string(),
            regex,
            modulus: c.modulus.unwrap_or(0),
            target_label: c.target_label.clone().unwrap_or_default(),
            replacement: c.replacement().to_string(),
        })
    }
}

/// Compiles every rule of a job; the error names the rule.
pub fn compile(cfgs: &[RelabelConfig]) -> Result<Vec<Rule>, String> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| Rule::new(c).map_err(|e| format!("relabel[{i}]: {e}")))
        .collect()
}

/// Applies `rules` in order; `None` when a `keep` or `drop` rule drops the target.
pub fn process(mut labels: Labels, rules: &[Rule]) -> Option<Labels> {
    for r in rules {
        if !apply(&mut labels, r) {
            return None;
        }
    }
    Some(labels)
}

/// Sets a label; an empty value removes it (Prometheus' labels.Builder).
fn set(labels: &mut Labels, name: String, value: String) {
    if value.is_empty() {
        labels.remove(&name);
    } else {
        labels.insert(name, value);
    }
}

/// Go's `strings.ToLower` / `strings.ToUpper`, which `lowercase` and `uppercase` use: each
/// character mapped alone by Unicode's simple case mapping, so no context (a final `Σ`
/// stays `σ`) and no expansion (`ß` stays `ß` in upper case, where Rust's `str` methods
/// apply the full mapping and give `SS`).
fn go_case(s: &str, upper: bool) -> String {
    s.chars()
        .map(|c| {
            let mut m: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            match (m.len(), c) {
                (1, _) => m.remove(0),
                // The one full mapping whose simple mapping exists and differs: İ → i.
                (_, '\u{130}') if !upper => 'i',
                _ => c,
            }
        })
        .collect()
}

fn apply(labels: &mut Labels, r: &Rule) -> bool {
    let val = r
        .source_labels
        .iter()
        .map(|l| labels.get(l).map_or("", String::as_str))
        .collect::<Vec<_>>()
        .join(&r.separator);
    match r.action {
        RelabelAction::Drop => return !r.regex.is_match(&val),
        RelabelAction::Keep => return r.regex.is_match(&val),
        RelabelAction::Replace => {
            let Some(caps) = r.regex.captures(&val) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&r.target_label, &mut target);
            if !valid_label_name(&target) {
                labels.remove(&r.target_label);
                return true;
            }
            let mut res = String::new();
            caps.expand(&r.replacement, &mut res);
            if res.is_empty() {
                labels.remove(&r.target_label);
            } else {
                labels.insert(target, res);
            }
        }
        RelabelAction::Hashmod => {
            let m = gocost_config::shard_of(&val, r.modulus);
            labels.insert(r.target_label.clone(), m.to_string());
        }
        RelabelAction::Labelmap => {
            let before: Vec<(String, String)> =
                labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (name, value) in before {
                if r.regex.is_match(&name) {
                    let new = r.regex.replace_all(&name, r.replacement.as_str());
                    set(labels, new.into_owned(), value);
                }
            }
        }
        RelabelAction::Lowercase => set(labels, r.target_label.clone(), go_case(&val, false)),
        RelabelAction::Uppercase => set(labels, r.target_label.clone(), go_case(&val, true)),
        RelabelAction::Keepequal => {
            return labels.get(&r.target_label).map_or("", String::as_str) == val;
        }
        RelabelAction::Dropequal => {
            return labels.get(&r.target_label).map_or("", String::as_str) != val;
        }
        RelabelAction::Labeldrop => labels.retain(|k, _| !r.regex.is_match(k)),
        RelabelAction::Labelkeep => labels.retain(|k, _| r.regex.is_match(k)),
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn rule(toml_text: &str) -> Rule {
        let c: RelabelConfig = toml::from_str(toml_text).expect("rule");
        Rule::new(&c).expect("valid rule")
    }

    fn run(rules: &[&str], input: &[(&str, &str)]) -> Option<Labels> {
        let rules: Vec<Rule> = rules.iter().map(|r| rule(r)).collect();
        process(labels(input), &rules)
    }

    #[test]
    fn replace_expands_groups_and_defaults_to_dollar_one() {
        let out = run(
            &[r#"source_labels = ["a", "b"]
regex = "(.*);(.*)"
target_label = "c"
replacement = "${2}-$1""#],
            &[("a", "x"), ("b", "y")],
        );
        assert_eq!(out, Some(labels(&[("a", "x"), ("b", "y"), ("c", "y-x")])));
        // Default regex (.*) and replacement $1: copies; a missing source is "".
        let out = run(
            &["source_labels = [\"a\"]\ntarget_label = \"d\""],
            &[("a", "x")],
        );
        assert_eq!(out, Some(labels(&[("a", "x"), ("d", "x")])));
        // The regex is anchored: a partial match is no match, nothing changes.
        let out = run(
            &["source_labels = [\"a\"]\nregex = \"x\"\ntarget_label = \"d\""],
            &[("a", "xx")],
        );
        assert_eq!(out, Some(labels(&[("a", "xx")])));
        // An empty result removes the target label.
        let out = run(
            &["source_labels = [\"nope\"]\ntarget_label = \"a\""],
            &[("a", "x")],
        );
        assert_eq!(out, Some(labels(&[])));
        // A target label built from the value.
        let out = run(
            &[
                "source_labels = [\"a\"]\nregex = \"(.+)\"\ntarget_label = \"l_$1\"\nreplacement = \"v\"",
            ],
            &[("a", "k")],
        );
        assert_eq!(out, Some(labels(&[("a", "k"), ("l_k", "v")])));
    }

    #[test]
    fn case_and_equality_actions() {
        let up = "source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"uppercase\"";
        let out = run(&[up], &[("a", "Straße-İst σ")]);
        assert_eq!(
            out,
            Some(labels(&[("a", "Straße-İst σ"), ("b", "STRAßE-İST Σ")]))
        );
        let low = "source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"lowercase\"";
        let out = run(&[low], &[("a", "Straße-İST Σ")]);
        assert_eq!(
            out,
            Some(labels(&[("a", "Straße-İST Σ"), ("b", "straße-ist σ")]))
        );
        // An empty value removes the target label.
        assert_eq!(run(&[low], &[("b", "x")]), Some(labels(&[])));
        let keq = "source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"keepequal\"";
        assert!(run(&[keq], &[("a", "1"), ("b", "1")]).is_some());
        assert!(run(&[keq], &[("a", "1"), ("b", "2")]).is_none());
        assert!(run(&[keq], &[]).is_some(), "both missing: equal");
        let deq = "source_labels = [\"a\"]\ntarget_label = \"b\"\naction = \"dropequal\"";
        assert!(run(&[deq], &[("a", "1"), ("b", "1")]).is_none());
        assert!(run(&[deq], &[("a", "1")]).is_some());
        // Prometheus' checks.
        let bad = |t: &str| {
            let c: RelabelConfig = toml::from_str(t).expect("rule");
            Rule::new(&c).expect_err("invalid")
        };
        assert!(
            bad("source_labels = [\"a\"]\naction = \"lowercase\"")
                .contains("requires 'target_label'")
        );
        assert!(bad("source_labels = [\"a\"]\ntarget_label = \"b\"\nreplacement = \"x\"\naction = \"uppercase\"").contains("'replacement' can not be set"));
        assert!(bad("source_labels = [\"a\"]\ntarget_label = \"b\"\nregex = \"x\"\naction = \"keepequal\"").contains("requires only"));
        assert!(
            bad("source_labels = [\"a\"]\ntarget_label = \"$1\"\naction = \"dropequal\"")
                .contains("invalid 'target_label'")
        );
    }

    #[test]
    fn keep_and_drop_match_the_joined_values() {
        let keep = "source_labels = [\"env\", \"team\"]\nregex = \"prod;.*\"\naction = \"keep\"";
        assert!(run(&[keep], &[("env", "prod"), ("team", "a")]).is_some());
        assert!(run(&[keep], &[("env", "dev"), ("team", "a")]).is_none());
        let drop = "source_labels = [\"env\"]\nregex = \"dev\"\naction = \"drop\"";
        assert!(run(&[drop], &[("env", "dev")]).is_none());
        assert!(run(&[drop], &[("env", "devx")]).is_some());
        // A missing label is the empty string, which `(.*)` matches.
        assert!(run(&["source_labels = [\"x\"]\naction = \"keep\""], &[]).is_some());
        assert!(
            run(
                &["source_labels = [\"x\"]\nregex = \".+\"\naction = \"keep\""],
                &[]
            )
            .is_none()
        );
    }

    #[test]
    fn hashmod_is_md5s_low_bytes_mod_n() {
        let out = run(
            &["source_labels = [\"__address__\"]\nmodulus = 4\ntarget_label = \"__tmp_hash\"\naction = \"hashmod\""],
            &[("__address__", "127.0.0.1:6060")],
        )
        .expect("kept");
        // The same value as [cluster] shard (Prometheus' own number, see gocost-config).
        assert_eq!(out["__tmp_hash"], "2");
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let out = run(
            &["regex = \"__meta_kube_(.+)\"\naction = \"labelmap\""],
            &[
                ("__meta_kube_app", "api"),
                ("__meta_kube_ns", "prod"),
                ("x", "1"),
            ],
        )
        .expect("kept");
        assert_eq!(out["app"], "api");
        assert_eq!(out["ns"], "prod");
        assert_eq!(
            out["__meta_kube_app"], "api",
            "labelmap copies, it does not move"
        );
        let out = run(
            &["regex = \"__meta_.*\"\naction = \"labeldrop\""],
            &[("__meta_a", "1"), ("b", "2")],
        );
        assert_eq!(out, Some(labels(&[("b", "2")])));
        let out = run(
            &["regex = \"b|__address__\"\naction = \"labelkeep\""],
            &[("__address__", "h:1"), ("a", "1"), ("b", "2")],
        );
        assert_eq!(out, Some(labels(&[("__address__", "h:1"), ("b", "2")])));
    }

    #[test]
    fn rules_run_in_order() {
        let out = run(
            &[
                "source_labels = [\"a\"]\ntarget_label = \"b\"",
                "source_labels = [\"b\"]\nregex = \"x\"\naction = \"drop\"",
            ],
            &[("a", "x")],
        );
        assert!(out.is_none());
    }
}
