//! The three outputs of `gocost compare`: a text table in benchstat's layout, Markdown made to
//! be posted as a pull-request comment (verdict first), and JSON for machines.

use std::fmt::Write;

use serde::Serialize;

use crate::benchfmt::is_binary_unit;
use crate::scale::common_scale;
use crate::{Options, Verdict, bench, profiles};

/// What was compared: benchmarks, profiles, or both (a summary line first, the benchmark
/// table, then the functions that changed most).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Outcome {
    pub benchmarks: Option<bench::Comparison>,
    pub profiles: Option<profiles::Comparison>,
}

/// One line per regression, for the summary.
struct Finding {
    what: String,
    change: String,
    p: String,
}

impl Outcome {
    fn findings(&self, v: Verdict) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        if let Some(c) = &self.benchmarks {
            out.extend(c.rows.iter().filter(|r| r.verdict == v).map(|r| Finding {
                what: format!("{} {}", r.name, r.unit),
                change: change_text(r.change, r.base.as_ref().map(|b| b.median)),
                p: r.p.map_or(String::new(), |p| format!("p={p:.3}")),
            }));
        }
        if let Some(c) = &self.profiles {
            out.extend(c.rows.iter().filter(|r| r.verdict == v).map(|r| Finding {
                what: r.function.clone(),
                change: change_text(r.flat_change, Some(r.base.flat_norm)),
                p: r.p_adjusted.map_or(String::new(), |p| format!("p={p:.3}")),
            }));
        }
        out
    }

    /// How many rows fail the gate.
    pub fn regressions(&self) -> usize {
        self.findings(Verdict::Regression).len()
    }

    /// The one-line verdict that starts every output.
    pub fn summary(&self, o: &Options) -> String {
        let reg = self.findings(Verdict::Regression);
        let imp = self.findings(Verdict::Improvement).len();
        let worse = self.findings(Verdict::Worse).len();
        let mut parts = Vec::new();
        if let Some(c) = &self.benchmarks {
            parts.push(format!("{} benchmark results", c.rows.len()));
        }
        if let Some(c) = &self.profiles {
            parts.push(format!("{} functions", c.rows.len()));
        }
        let what = parts.join(" and ");
        let rule = format!("threshold {}, alpha {}", pct(o.threshold), o.alpha);
        let mut s = if reg.is_empty() {
            format!("ok: no regression ({rule}; {what} compared")
        } else {
            let list: Vec<String> = reg
                .iter()
                .take(5)
                .map(|f| format!("{} {} ({})", f.what, f.change, f.p))
                .collect();
            let more = if reg.len() > 5 {
                format!(" and {} more", reg.len() - 5)
            } else {
                String::new()
            };
            format!(
                "FAIL: {} regression{}: {}{more} ({rule}; {what} compared",
                reg.len(),
                if reg.len() == 1 { "" } else { "s" },
                list.join(", ")
            )
        };
        if imp > 0 {
            let _ = write!(s, "; {imp} improved");
        }
        if worse > 0 {
            let _ = write!(s, "; {worse} worse outside --fail-on");
        }
        s.push(')');
        s
    }
}

fn pct(f: f64) -> String {
    let v = f * 100.0;
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}%")
    } else {
        format!("{v}%")
    }
}

fn change_text(change: Option<f64>, base: Option<f64>) -> String {
    match change {
        Some(c) => format!("{:+.2}%", c * 100.0),
        None if base == Some(0.0) => "new".into(),
        None => "?".into(),
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "REGRESSION",
        Verdict::Worse => "worse",
        Verdict::Improvement => "improved",
        Verdict::Unchanged | Verdict::Missing => "",
    }
}

fn verdict_mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Regression => "❌ regression",
        Verdict::Worse => "⚠️ worse",
        Verdict::Improvement => "✅ improved",
        Verdict::Unchanged | Verdict::Missing => "",
    }
}

/// A function row's values: base, head and change of flat, then of cum, then p (Holm).
fn fn_cells(c: &profiles::Comparison, r: &profiles::FnRow) -> [String; 7] {
    let v = |x: f64| norm_text(c, x);
    [
        v(r.base.flat_norm),
        v(r.head.flat_norm),
        change_text(r.flat_change, Some(r.base.flat_norm)),
        v(r.base.cum_norm),
        v(r.head.cum_norm),
        change_text(r.cum_change, Some(r.base.cum_norm)),
        r.p_adjusted.map_or("-".into(), |p| format!("{p:.3}")),
    ]
}

/// Left-aligned first column, right-aligned others, two spaces apart; trailing spaces cut.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str("  ");
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Per-row cells of a benchmark comparison: name, base, head, delta, p, verdict.
struct BenchCells {
    base: String,
    head: String,
    delta: String,
    p: String,
}

fn bench_cells(r: &bench::Row, o: &Options) -> BenchCells {
    let centers: Vec<f64> = [&r.base, &r.head]
        .into_iter()
        .flatten()
        .map(|s| s.median)
        .collect();
    let sc = common_scale(&centers, is_binary_unit(&r.unit));
    let cell = |s: &Option<bench::Side>| {
        s.as_ref().map_or(String::new(), |s| {
            format!("{} ± {}", sc.format(s.median), s.range)
        })
    };
    BenchCells {
        base: cell(&r.base),
        head: cell(&r.head),
        delta: r.delta_text(o.alpha),
        p: r.p_text(),
    }
}

fn units(c: &bench::Comparison) -> Vec<&str> {
    let mut units: Vec<&str> = Vec::new();
    for r in &c.rows {
        if !units.contains(&r.unit.as_str()) {
            units.push(&r.unit);
        }
    }
    units
}

fn bench_warnings(c: &bench::Comparison) -> Vec<String> {
    let mut out: Vec<String> = c.warnings.clone();
    for r in &c.rows {
        for w in &r.warnings {
            out.push(format!("{} {}: {w}", r.name, r.unit));
        }
    }
    out
}

/// The text report.
pub fn text(out: &Outcome, o: &Options, top: usize) -> String {
    let mut s = out.summary(o);
    s.push_str("\n\n");
    if let Some(c) = &out.benchmarks {
        for (k, v) in &c.config {
            let _ = writeln!(s, "{k}: {v}");
        }
        for unit in units(c) {
            let mut rows = vec![vec![
                String::new(),
                format!("base {unit}"),
                format!("head {unit}"),
                "vs base".into(),
                String::new(),
                String::new(),
            ]];
            for r in c.rows.iter().filter(|r| r.unit == unit) {
                let cells = bench_cells(r, o);
                let p = if cells.p.is_empty() {
                    String::new()
                } else {
                    format!("({})", cells.p)
                };
                rows.push(vec![
                    r.name.clone(),
                    cells.base,
                    cells.head,
                    cells.delta,
                    p,
                    verdict_word(r.verdict).into(),
                ]);
            }
            if let Some(g) = c.geomeans.iter().find(|g| g.unit == unit) {
                let sc = common_scale(
                    &[g.base, g.head].into_iter().flatten().collect::<Vec<_>>(),
                    is_binary_unit(unit),
                );
                rows.push(vec![
                    "geomean".into(),
                    g.base.map_or(String::new(), |v| sc.format(v)),
                    g.head.map_or(String::new(), |v| sc.format(v)),
                    g.change
                        .map_or("?".into(), |c| format!("{:+.2}%", c * 100.0)),
                    String::new(),
                    String::new(),
                ]);
            }
            s.push('\n');
            s.push_str(&table(&rows));
        }
        let warns = bench_warnings(c);
        if !warns.is_empty() {
            s.push('\n');
            for w in warns {
                let _ = writeln!(s, "note: {w}");
            }
        }
    }
    if let Some(c) = &out.profiles {
        if out.benchmarks.is_some() {
            s.push('\n');
        }
        s.push_str(&profile_header(c));
        s.push('\n');
        let mut rows = vec![vec![
            "function".to_string(),
            "base flat".into(),
            "head flat".into(),
            "flat".into(),
            "base cum".into(),
            "head cum".into(),
            "cum".into(),
            "p".into(),
            String::new(),
        ]];
        for r in c.rows.iter().take(top) {
            let mut cells = vec![r.function.clone()];
            cells.extend(fn_cells(c, r));
            cells.push(verdict_word(r.verdict).into());
            rows.push(cells);
        }
        s.push_str(&table(&rows));
        if c.rows.len() > top {
            let _ = writeln!(
                s,
                "({} more functions; --top N to see more)",
                c.rows.len() - top
            );
        }
        for w in &c.warnings {
            let _ = writeln!(s, "note: {w}");
        }
    }
    s
}

fn profile_header(c: &profiles::Comparison) -> String {
    format!(
        "{}/{} per function, {} ({} base, {} head profile{}); significance: {}\n",
        c.sample_type,
        c.sample_unit,
        match c.normalize {
            profiles::Normalize::Total => "as a share of each side's total",
            profiles::Normalize::None => "mean per profile",
        },
        c.base_profiles,
        c.head_profiles,
        if c.head_profiles == 1 { "" } else { "s" },
        match c.test {
            "u-test" => "Mann–Whitney U test over the profiles, Holm-corrected",
            "two-proportion" => "two-proportion test of sample counts, Holm-corrected",
            "rate" => "rate test of sample counts, Holm-corrected",
            _ => "none",
        }
    )
}

fn norm_text(c: &profiles::Comparison, v: f64) -> String {
    match c.normalize {
        profiles::Normalize::Total => format!("{:.2}%", v * 100.0),
        profiles::Normalize::None => {
            let sc = common_scale(&[v], c.sample_unit == "bytes");
            let unit = match c.sample_unit.as_str() {
                "nanoseconds" => return common_scale(&[v * 1e-9], false).format(v * 1e-9) + "s",
                "bytes" => "B",
                "count" => "",
                u => u,
            };
            sc.format(v) + unit
        }
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
        .replace('*', "\\*")
        .replace('_', "\\_")
}

/// Markdown for a pull-request comment: the verdict, then the table, then the top changes.
pub fn markdown(out: &Outcome, o: &Options, top: usize) -> String {
    let reg = out.regressions();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### {} gocost compare: {}\n",
        if reg == 0 { "✅" } else { "❌" },
        if reg == 0 {
            "no regression".to_string()
        } else {
            format!("{reg} regression{}", if reg == 1 { "" } else { "s" })
        }
    );
    let _ = writeln!(s, "{}\n", md_escape(&out.summary(o)));
    if let Some(c) = &out.benchmarks {
        for unit in units(c) {
            let _ = writeln!(
                s,
                "| {} | base | head | vs base | p (n) | |\n|:--|--:|--:|--:|--:|:--|",
                md_escape(unit)
            );
            let mut rows: Vec<&bench::Row> = c.rows.iter().filter(|r| r.unit == unit).collect();
            // Regressions first, then the rest in input order.
            rows.sort_by_key(|r| r.verdict != Verdict::Regression);
            for r in rows {
                let cells = bench_cells(r, o);
                let mark = verdict_mark(r.verdict);
                let delta = if r.verdict == Verdict::Regression {
                    format!("**{}**", cells.delta)
                } else {
                    cells.delta
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    md_escape(&r.name),
                    cells.base,
                    cells.head,
                    delta,
                    cells.p,
                    mark
                );
            }
            if let Some(g) = c.geomeans.iter().find(|g| g.unit == unit) {
                let _ = writeln!(
                    s,
                    "| *geomean* | | | {} | | |",
                    g.change
                        .map_or("?".into(), |c| format!("{:+.2}%", c * 100.0))
                );
            }
            s.push('\n');
        }
        let warns = bench_warnings(c);
        if !warns.is_empty() {
            s.push_str("<details><summary>Notes</summary>\n\n");
            for w in warns {
                let _ = writeln!(s, "- {}", md_escape(&w));
            }
            s.push_str("\n</details>\n");
        }
    }
    if let Some(c) = &out.profiles {
        if out.benchmarks.is_some() {
            s.push_str("\n#### Top changed functions\n\n");
        }
        let _ = writeln!(s, "{}", md_escape(&profile_header(c)));
        s.push_str("| function | base flat | head flat | flat | base cum | head cum | cum | p | |\n|:--|--:|--:|--:|--:|--:|--:|--:|:--|\n");
        for r in c.rows.iter().take(top) {
            let _ = writeln!(
                s,
                "| `{}` | {} | {} |",
                r.function.replace('`', "'"),
                fn_cells(c, r).join(" | "),
                verdict_mark(r.verdict)
            );
        }
        for w in &c.warnings {
            let _ = writeln!(s, "\n> {}", md_escape(w));
        }
    }
    s
}

/// JSON: the verdict, the settings and every row.
pub fn json(out: &Outcome, o: &Options) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        verdict: &'static str,
        regressions: usize,
        summary: String,
        threshold: f64,
        alpha: f64,
        fail_on: &'a [crate::Category],
        #[serde(flatten)]
        outcome: &'a Outcome,
    }
    let reg = out.regressions();
    let doc = Doc {
        verdict: if reg == 0 { "pass" } else { "fail" },
        regressions: reg,
        summary: out.summary(o),
        threshold: o.threshold,
        alpha: o.alpha,
        fail_on: &o.fail_on,
        outcome: out,
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
