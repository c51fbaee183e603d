//! Goroutine summaries against `go tool trace`'s goroutine pages (Go 1.27.3's tool, which
//! reads every release's trace): for each committed trace, the tool's web UI is started on
//! loopback and its `/goroutines` and `/goroutine?name=…` pages are read; every group's count
//! and execution time, and every goroutine's total, non-overlapping times (execution, sched
//! wait, syscall, block by reason, unknown) and special-range times (GC mark assist, sweep,
//! stop-the-world) must equal gocost's `goroutine_summaries`, to the nanosecond. Skipped with a
//! message without the toolchain (a failure in CI).

use std::collections::BTreeMap;
use std::path::PathBuf;

use gocost_testkit::procs::http_get;
use gocost_trace::{GoroutineSummary, goroutine_summaries};

mod common;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Go duration string (`1h2m3.5s`, `1.234567ms`, `890ns`, `0s`) in nanoseconds.
fn go_duration(s: &str) -> i64 {
    let s = s.trim();
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale: i64 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "µs" | "us" => 1_000,
            "ns" => 1,
            u => panic!("unknown duration unit {u:?} in {s:?}"),
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let mut v = int.parse::<i64>().expect("duration integer") * scale;
        let mut place = scale / 10;
        for d in frac.bytes() {
            v += (d - b'0') as i64 * place;
            place /= 10;
        }
        total += v;
        rest = next;
    }
    if neg { -total } else { total }
}

/// The text of every `<td>…</td>` cell that holds a plain value.
fn cells(row: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = row;
    while let Some(i) = rest.find("<td>") {
        rest = &rest[i + 4..];
        let end = rest.find("</td>").unwrap_or(rest.len());
        let cell = rest[..end].trim();
        if !cell.contains('<') {
            out.push(html_unescape(cell));
        }
        rest = &rest[end..];
    }
    out
}

fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Header names of a table (`<th …> NAME</th>`), after the first `skip`.
fn headers(table: &str, skip: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = table;
    while let Some(i) = rest.find("<th") {
        rest = &rest[i..];
        let gt = rest.find('>').unwrap_or(0);
        let end = rest.find("</th>").unwrap_or(rest.len());
        out.push(html_unescape(rest[gt + 1..end].trim()));
        rest = &rest[end..];
    }
    out.into_iter().skip(skip).collect()
}

/// Per goroutine: total, non-overlapping stats, range stats as the page shows them.
type Page = BTreeMap<i64, (i64, BTreeMap<String, i64>, BTreeMap<String, i64>)>;

fn parse_group_page(html: &str) -> Page {
    let mut page = Page::new();
    let tables: Vec<&str> = html.split("<table class=\"details\">").skip(1).collect();
    assert_eq!(tables.len(), 2, "two detail tables");
    let stats = headers(tables[0].split("</tr>").next().unwrap_or(""), 3);
    for row in tables[0].split("<tr>").skip(2) {
        let Some(id) = row
            .split("goid=")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse().ok())
        else {
            continue;
        };
        let c = cells(row);
        assert_eq!(
            c.len(),
            stats.len() + 1,
            "breakdown row of goroutine {id}: {c:?}"
        );
        let m = stats
            .iter()
            .cloned()
            .zip(c[1..].iter().map(|v| go_duration(v)))
            .collect();
        page.insert(id, (go_duration(&c[0]), m, BTreeMap::new()));
    }
    let ranges = headers(tables[1].split("</tr>").next().unwrap_or(""), 2);
    for row in tables[1].split("<tr>").skip(2) {
        let Some(id) = row
            .split("goid=")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|v| v.parse::<i64>().ok())
        else {
            continue;
        };
        let c = cells(row);
        let m = ranges
            .iter()
            .cloned()
            .zip(c[1..].iter().map(|v| go_duration(v)))
            .collect();
        if let Some(e) = page.get_mut(&id) {
            e.2 = m;
        }
    }
    page
}

#[cfg_attr(
    not(has_go_1_27),
    ignore = "needs Go 1.27.3 in .venv-go/1.27.3 or $GOCOST_GO_1_27"
)]
#[test]
fn goroutine_pages_equal_go_tool_trace() {
    let mut goroutines = 0;
    let mut range_cells = 0;
    let mut stat_cells = 0;
    for minor in [22, 23, 24, 25, 26, 27] {
        let trace = repo().join(format!("testdata/traces/go1.{minor}.trace"));
        let (_proc, base) = common::start_trace_ui(&trace);

        let ours = goroutine_summaries(
            &gocost_trace::parse(&std::fs::read(&trace).expect("trace")).expect("parse"),
        );
        let mut by_name: BTreeMap<String, Vec<&GoroutineSummary>> = BTreeMap::new();
        for g in ours.values() {
            by_name.entry(g.name.clone()).or_default().push(g);
        }

        let (status, body) = http_get(&format!("{base}/goroutines"));
        assert_eq!(status, 200);
        let html = String::from_utf8_lossy(&body);
        let mut groups = 0;
        for row in html.split("<tr>").skip(2) {
            let Some(href) = row
                .split("href=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
            else {
                continue;
            };
            let href = html_unescape(href);
            let c = cells(row);
            let (n, exec): (usize, i64) = (c[0].parse().expect("count"), go_duration(&c[1]));
            let name = row
                .split("\">")
                .nth(1)
                .and_then(|r| r.split("</a>").next())
                .map(html_unescape)
                .unwrap_or_default();
            let name = if name == "(Inactive, no stack trace sampled)" {
                String::new()
            } else {
                name
            };
            let mine = by_name
                .get(&name)
                .unwrap_or_else(|| panic!("go1.{minor}: group {name:?} only in go tool trace"));
            assert_eq!(mine.len(), n, "go1.{minor}: group {name:?} count");
            assert_eq!(
                mine.iter().map(|g| g.stats.exec_ns).sum::<i64>(),
                exec,
                "go1.{minor}: group {name:?} execution time"
            );

            let (status, body) = http_get(&format!("{base}{href}"));
            assert_eq!(status, 200, "{href}");
            let page = parse_group_page(&String::from_utf8_lossy(&body));
            assert_eq!(page.len(), n, "go1.{minor}: group {name:?} rows");
            for g in mine {
                let (total, stats, ranges) = page
                    .get(&g.id)
                    .unwrap_or_else(|| panic!("go1.{minor}: goroutine {} missing", g.id));
                let what = format!("go1.{minor}: goroutine {} ({name})", g.id);
                assert_eq!(g.stats.total_ns, *total, "{what}: total");
                let no = g.stats.non_overlapping();
                for (stat, v) in stats {
                    assert_eq!(no.get(stat).copied().unwrap_or(0), *v, "{what}: {stat}");
                }
                stat_cells += stats.len();
                range_cells += ranges.len();
                for (r, v) in ranges {
                    assert_eq!(
                        g.stats.range_ns.get(r).copied().unwrap_or(0),
                        *v,
                        "{what}: range {r}"
                    );
                }
                // Nothing Go's page leaves out.
                for (stat, v) in &no {
                    assert!(
                        stats.contains_key(stat) || *v == 0,
                        "{what}: {stat} = {v} only in gocost"
                    );
                }
                goroutines += 1;
            }
            groups += 1;
        }
        assert_eq!(groups, by_name.len(), "go1.{minor}: groups only gocost has");
    }
    eprintln!(
        "{goroutines} goroutines ({stat_cells} times, {range_cells} range times) equal go tool trace's goroutine pages"
    );
    assert!(goroutines > 100 && stat_cells > 500 && range_cells > 20);
}
