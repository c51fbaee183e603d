//! Two size reports of a Go program, before and after a change: what grew, by package and
//! module; which modules came, went or changed version; which `replace` directives are new;
//! and the gates a CI job sets on them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde::Serialize;

use crate::buildinfo::Module;
use crate::size::{SizeReport, human, human_delta, pct};

/// What fails the gate.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    /// Fail when the file grows by more than this many bytes.
    pub max_growth_bytes: Option<u64>,
    /// Fail when the file grows by more than this fraction (0.1 = 10 %).
    pub max_growth_frac: Option<f64>,
    /// Fail on a module the base did not have, unless `allow_modules` lists it.
    pub deny_new_modules: bool,
    /// Module patterns a change may add: a path, or a prefix ending in `*`
    /// (`github.com/myorg/*`); `*` allows all.
    pub allow_modules: Vec<String>,
    /// Modules whose new `replace` directives pass (same patterns). A new `replace` of any
    /// other module fails.
    pub allow_replace: Vec<String>,
}

/// Whether a module path matches one of the patterns.
pub fn matches(patterns: &[String], path: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => p == path,
    })
}

/// A row that changed: bytes in the file on each side.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    /// For packages: their module.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub module: String,
    pub base: u64,
    pub head: u64,
}

impl Change {
    pub fn delta(&self) -> i64 {
        (i128::from(self.head) - i128::from(self.base)).clamp(i64::MIN.into(), i64::MAX.into())
            as i64
    }
}

/// A module version that changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionChange {
    pub module: String,
    pub base: String,
    pub head: String,
}

/// A `replace` directive the head has and the base had not (or had pointing elsewhere).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NewReplace {
    pub module: String,
    /// `path version` it is replaced by (`../lib` for a local directory).
    pub by: String,
    pub allowed: bool,
}

/// A module only one side has.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ModuleChange {
    pub module: String,
    pub version: String,
    /// File bytes of its packages on the side that has it.
    pub size: u64,
    /// For new modules: whether the gate lets it in.
    pub allowed: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize)]
pub struct SizeDiff {
    pub base: String,
    pub head: String,
    pub base_size: u64,
    pub head_size: u64,
    pub change: i64,
    /// head/base − 1.
    pub change_frac: f64,
    pub go_version: VersionChange,
    /// Section classes, file bytes.
    pub sections: Vec<Change>,
    /// Packages whose bytes changed, largest change first.
    pub packages: Vec<Change>,
    /// Modules whose bytes changed, largest change first.
    pub modules: Vec<Change>,
    pub new_modules: Vec<ModuleChange>,
    pub removed_modules: Vec<ModuleChange>,
    pub changed_versions: Vec<VersionChange>,
    pub new_replaces: Vec<NewReplace>,
    /// Each reason the gate fails, naming what is responsible.
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
}

fn module_map(r: &SizeReport) -> BTreeMap<String, &Module> {
    r.build_info
        .iter()
        .flat_map(|b| b.modules())
        .map(|m| (m.path.clone(), m))
        .collect()
}

fn replace_text(m: &Module) -> Option<String> {
    m.replace
        .as_ref()
        .map(|r| format!("{} {}", r.path, r.version).trim_end().to_string())
}

fn changes(
    base: BTreeMap<String, (String, u64)>,
    head: BTreeMap<String, (String, u64)>,
) -> Vec<Change> {
    let names: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    let mut out: Vec<Change> = names
        .into_iter()
        .map(|n| {
            let (bm, b) = base.get(n).cloned().unwrap_or_default();
            let (hm, h) = head.get(n).cloned().unwrap_or_default();
            Change {
                name: n.clone(),
                module: if hm.is_empty() { bm } else { hm },
                base: b,
                head: h,
            }
        })
        .filter(|c| c.base != c.head)
        .collect();
    out.sort_by(|a, b| {
        b.delta()
            .unsigned_abs()
            .cmp(&a.delta().unsigned_abs())
            .then(a.name.cmp(&b.name))
    });
    out
}

/// Compares two reports (`base_name`, `head_name`: how to call them in the output).
pub fn compare(
    base_name: &str,
    base: &SizeReport,
    head_name: &str,
    head: &SizeReport,
    gates: &Gates,
) -> SizeDiff {
    let change = head.file_size as i64 - base.file_size as i64;
    let change_frac = if base.file_size == 0 {
        0.0
    } else {
        head.file_size as f64 / base.file_size as f64 - 1.0
    };
    let pkgs = |r: &SizeReport| {
        r.packages
            .iter()
            .map(|p| (p.package.clone(), (p.module.clone(), p.file())))
            .collect()
    };
    let mods = |r: &SizeReport| {
        r.modules
            .iter()
            .map(|m| (m.module.clone(), (String::new(), m.file)))
            .collect()
    };
    let secs = |r: &SizeReport| {
        r.classes
            .iter()
            .map(|c| (c.class.name().to_string(), (String::new(), c.file_size)))
            .collect()
    };
    let packages = changes(pkgs(base), pkgs(head));
    let modules = changes(mods(base), mods(head));
    let mut sections = changes(secs(base), secs(head));
    sections.sort_by(|a, b| a.name.cmp(&b.name));

    let (bm, hm) = (module_map(base), module_map(head));
    let size_of = |r: &SizeReport, m: &str| {
        r.modules
            .iter()
            .find(|x| x.module == m)
            .map_or(0, |x| x.file)
    };
    let allow_new = |p: &str| {
        (!gates.deny_new_modules && gates.allow_modules.is_empty())
            || matches(&gates.allow_modules, p)
    };
    let mut new_modules = Vec::new();
    let mut changed_versions = Vec::new();
    let mut new_replaces = Vec::new();
    let base_main = base.build_info.as_ref().and_then(|b| b.main.as_ref());
    for (path, m) in &hm {
        match bm.get(path) {
            None => {
                // A renamed main module is not a new dependency.
                let is_main = head
                    .build_info
                    .as_ref()
                    .and_then(|b| b.main.as_ref())
                    .is_some_and(|hm| &hm.path == path)
                    && base_main.is_some();
                if !is_main {
                    new_modules.push(ModuleChange {
                        module: path.clone(),
                        version: m.version.clone(),
                        size: size_of(head, path),
                        allowed: allow_new(path),
                    });
                }
            }
            Some(b) if b.version != m.version => changed_versions.push(VersionChange {
                module: path.clone(),
                base: b.version.clone(),
                head: m.version.clone(),
            }),
            _ => {}
        }
        let before = bm.get(path).and_then(|b| replace_text(b));
        if let Some(by) = replace_text(m)
            && before.as_ref() != Some(&by)
        {
            new_replaces.push(NewReplace {
                module: path.clone(),
                by,
                allowed: matches(&gates.allow_replace, path),
            });
        }
    }
    let removed_modules = bm
        .iter()
        .filter(|(p, _)| !hm.contains_key(*p))
        .map(|(p, m)| ModuleChange {
            module: p.clone(),
            version: m.version.clone(),
            size: size_of(base, p),
            allowed: true,
        })
        .collect();

    let mut failures = Vec::new();
    let growth = change.max(0) as u64;
    let over_bytes = gates.max_growth_bytes.filter(|&m| growth > m);
    let over_frac = gates.max_growth_frac.filter(|&m| change_frac > m);
    if over_bytes.is_some() || over_frac.is_some() {
        let limit = match (over_bytes, over_frac) {
            (Some(b), _) => format!("--max-size-growth {}", human(b)),
            (None, Some(f)) => format!("--max-size-growth {:.1}%", f * 100.0),
            _ => unreachable!(),
        };
        let top: Vec<String> = packages
            .iter()
            .filter(|c| c.delta() > 0 && !c.name.starts_with('('))
            .take(3)
            .map(|c| format!("{} {} ({})", c.name, human_delta(c.delta()), c.module))
            .collect();
        let top_mod = modules
            .iter()
            .filter(|c| c.delta() > 0 && c.name != crate::size::UNATTRIBUTED)
            .max_by_key(|c| c.delta())
            .map(|c| format!("; by module most in {} {}", c.name, human_delta(c.delta())))
            .unwrap_or_default();
        failures.push(format!(
            "the binary grew {} ({:+.1}%), over {limit}: most in {}{top_mod}",
            human_delta(change),
            change_frac * 100.0,
            if top.is_empty() {
                "bytes no package owns".to_string()
            } else {
                top.join(", ")
            }
        ));
    }
    for m in new_modules.iter().filter(|m| !m.allowed) {
        failures.push(format!(
            "new module {} {} ({}) is not allowed (--deny-new-modules / allow_modules)",
            m.module,
            m.version,
            human(m.size)
        ));
    }
    for r in new_replaces.iter().filter(|r| !r.allowed) {
        failures.push(format!(
            "new replace directive {} => {} is not in allow_replace",
            r.module, r.by
        ));
    }
    let mut warnings = Vec::new();
    if base.source != head.source {
        warnings.push(
            "one binary has a symbol table and the other not: package sizes are not comparable"
                .into(),
        );
    }
    let gv = |r: &SizeReport| {
        r.build_info
            .as_ref()
            .map(|b| b.go_version.clone())
            .unwrap_or_default()
    };
    SizeDiff {
        base: base_name.to_string(),
        head: head_name.to_string(),
        base_size: base.file_size,
        head_size: head.file_size,
        change,
        change_frac,
        go_version: VersionChange {
            module: "go".into(),
            base: gv(base),
            head: gv(head),
        },
        sections,
        packages,
        modules,
        new_modules,
        removed_modules,
        changed_versions,
        new_replaces,
        failures,
        warnings,
    }
}

impl SizeDiff {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    fn summary(&self) -> String {
        format!(
            "{} {} → {} ({}, {:+.1}%)",
            if self.failed() { "FAIL:" } else { "ok:" },
            human(self.base_size),
            human(self.head_size),
            human_delta(self.change),
            self.change_frac * 100.0
        )
    }

    /// Text: the verdict, the reasons, then the tables.
    pub fn to_text(&self, top: usize) -> String {
        let mut s = self.summary();
        s.push('\n');
        for f in &self.failures {
            let _ = writeln!(s, "  - {f}");
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        if self.go_version.base != self.go_version.head {
            let _ = writeln!(s, "Go: {} → {}", self.go_version.base, self.go_version.head);
        }
        let table = |s: &mut String, title: &str, rows: &[Change], with_module: bool| {
            if rows.is_empty() {
                return;
            }
            let _ = writeln!(s, "\n{title}:");
            for c in rows.iter().take(top) {
                let _ = writeln!(
                    s,
                    "  {:>12} {:>12} {:>12} {:>8}  {}{}",
                    c.base,
                    c.head,
                    human_delta(c.delta()),
                    pct_change(c.base, c.head),
                    c.name,
                    if with_module && !c.module.is_empty() {
                        format!(" ({})", c.module)
                    } else {
                        String::new()
                    }
                );
            }
            if rows.len() > top {
                let _ = writeln!(s, "  … {} more", rows.len() - top);
            }
        };
        table(&mut s, "sections (file bytes)", &self.sections, false);
        table(&mut s, "modules", &self.modules, false);
        table(&mut s, "packages", &self.packages, true);
        self.module_lists(&mut s, "  ");
        s
    }

    fn module_lists(&self, s: &mut String, indent: &str) {
        if !self.new_modules.is_empty() {
            let _ = writeln!(s, "\nnew modules:");
            for m in &self.new_modules {
                let _ = writeln!(
                    s,
                    "{indent}{} {} ({}){}",
                    m.module,
                    m.version,
                    human(m.size),
                    if m.allowed { "" } else { " — not allowed" }
                );
            }
        }
        if !self.removed_modules.is_empty() {
            let _ = writeln!(s, "\nremoved modules:");
            for m in &self.removed_modules {
                let _ = writeln!(s, "{indent}{} {}", m.module, m.version);
            }
        }
        if !self.changed_versions.is_empty() {
            let _ = writeln!(s, "\nchanged versions:");
            for v in &self.changed_versions {
                let _ = writeln!(s, "{indent}{} {} → {}", v.module, v.base, v.head);
            }
        }
        if !self.new_replaces.is_empty() {
            let _ = writeln!(s, "\nnew replace directives:");
            for r in &self.new_replaces {
                let _ = writeln!(
                    s,
                    "{indent}{} => {}{}",
                    r.module,
                    r.by,
                    if r.allowed {
                        " (allowed)"
                    } else {
                        " — not allowed"
                    }
                );
            }
        }
    }

    /// Markdown for a pull-request comment: the verdict first.
    pub fn to_markdown(&self, top: usize) -> String {
        let mut s = format!(
            "### {} gocost compare: binary size {} → {} ({}, {:+.1}%)\n\n",
            if self.failed() { "❌" } else { "✅" },
            human(self.base_size),
            human(self.head_size),
            human_delta(self.change),
            self.change_frac * 100.0
        );
        for f in &self.failures {
            let _ = writeln!(s, "- ❌ {}", md_escape(f));
        }
        for w in &self.warnings {
            let _ = writeln!(s, "- ⚠️ {}", md_escape(w));
        }
        if !self.failures.is_empty() || !self.warnings.is_empty() {
            s.push('\n');
        }
        let table = |s: &mut String, title: &str, rows: &[Change], with_module: bool| {
            if rows.is_empty() {
                return;
            }
            let _ = writeln!(s, "**{title}**\n");
            if with_module {
                s.push_str("| package | module | base | head | change |\n|---|---|--:|--:|--:|\n");
            } else {
                s.push_str("| name | base | head | change |\n|---|--:|--:|--:|\n");
            }
            for c in rows.iter().take(top) {
                let m = if with_module {
                    format!(" {} |", md_escape(&c.module))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "| `{}` |{m} {} | {} | {} ({}) |",
                    c.name,
                    human(c.base),
                    human(c.head),
                    human_delta(c.delta()),
                    pct_change(c.base, c.head)
                );
            }
            s.push('\n');
        };
        table(&mut s, "Modules", &self.modules, false);
        table(&mut s, "Packages", &self.packages, true);
        table(&mut s, "Sections (file bytes)", &self.sections, false);
        let mut lists = String::new();
        self.module_lists(&mut lists, "- ");
        s.push_str(&md_escape_lists(&lists));
        s
    }

    /// JSON for machines.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["verdict"] = if self.failed() { "fail" } else { "pass" }.into();
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    }
}

fn pct_change(base: u64, head: u64) -> String {
    if base == 0 {
        "new".into()
    } else if head == 0 {
        "gone".into()
    } else {
        format!("{:+.1}%", pct(head, base) - 100.0)
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('<', "&lt;")
}

fn md_escape_lists(s: &str) -> String {
    s.lines()
        .map(|l| {
            if let Some(title) = l.strip_suffix(':')
                && !l.starts_with('-')
                && !title.is_empty()
            {
                format!("**{title}**\n")
            } else {
                md_escape(l)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = vec![
            "github.com/myorg/*".to_string(),
            "golang.org/x/text".to_string(),
        ];
        assert!(matches(&p, "github.com/myorg/lib"));
        assert!(matches(&p, "golang.org/x/text"));
        assert!(!matches(&p, "golang.org/x/net"));
        assert!(matches(&["*".to_string()], "anything"));
    }
}
