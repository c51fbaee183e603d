//! `gocost cost` checked against the numbers `go tool pprof` prints for the same profiles
//! (the committed goldens `testdata/golden/top__cpu.pb.gz.txt` and `top__heap.pb.gz.txt`):
//! cores = pprof's "Total samples ÷ Duration", heap = pprof's inuse_space total.

use std::path::Path;
use std::process::Command;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The first number after `key` in a pprof header line (`Duration: 5.03s` → 5.03).
fn number_after(text: &str, key: &str) -> f64 {
    let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key} in {text}")) + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().unwrap()
}

#[test]
fn cost_agrees_with_pprof_and_the_rates() {
    let golden =
        |name: &str| std::fs::read_to_string(root().join("testdata/golden").join(name)).unwrap();
    let cpu = golden("top__cpu.pb.gz.txt");
    let heap = golden("top__heap.pb.gz.txt");
    // "Duration: 5.03s, Total samples = 4.60s (91.50%)": the percentage is cores, to 4 digits.
    let cores_pprof = number_after(&cpu, "Total samples = ") / number_after(&cpu, "Duration: ");
    let busy_pct = number_after(&cpu, "s (");
    // "... of 15056.61kB total"
    let heap_kb = number_after(&heap, "% of ");

    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args([
            "cost",
            "--json",
            "--cpu-rate",
            "0.05",
            "--memory-rate",
            "0.01",
        ])
        .arg(root().join("testdata/profiles/cpu.pb.gz"))
        .arg(root().join("testdata/profiles/heap.pb.gz"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cores = e["cores"].as_f64().unwrap();
    assert!(
        (cores * 100.0 - busy_pct).abs() <= 0.005,
        "{cores} vs pprof's {busy_pct}%"
    );
    assert!(
        (cores - cores_pprof).abs() / cores_pprof < 0.003,
        "{cores} vs {cores_pprof}"
    );
    let gib = e["heap_gib"].as_f64().unwrap();
    let kb = gib * 1024.0 * 1024.0;
    assert!(
        (kb - heap_kb).abs() <= 0.005,
        "{kb} kB vs pprof's {heap_kb} kB"
    );
    // Prices: per hour × 730.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(
        e["cpu_per_month"].as_f64().unwrap(),
        cores * 0.05 * 730.0
    ));
    assert!(close(
        e["memory_per_month"].as_f64().unwrap(),
        gib * 0.01 * 730.0
    ));
    assert!(close(
        e["total_per_month"].as_f64().unwrap(),
        (cores * 0.05 + gib * 0.01) * 730.0
    ));
    // Functions split the whole: their cores and heap add up to the service's.
    let fs = e["functions"].as_array().unwrap();
    let sum = |k: &str| fs.iter().map(|f| f[k].as_f64().unwrap()).sum::<f64>();
    assert!(close(sum("cores"), cores), "{} vs {cores}", sum("cores"));
    assert!(close(sum("heap_gib"), gib));
    // runtime.asyncPreempt is charged to the loops it interrupted.
    assert!(fs.iter().all(|f| f["function"] != "runtime.asyncPreempt"));
    assert!(
        fs.windows(2)
            .all(|w| { w[0]["total_per_month"].as_f64() >= w[1]["total_per_month"].as_f64() })
    );

    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("cost")
        .arg(root().join("testdata/profiles/goroutine.pb.gz"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("goroutine.pb.gz: neither a CPU profile"));
}

/// The first number after `key` in `text`, if any.
fn try_number_after(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse().ok()
}

/// `go tool pprof -top` of a profile the API serves, as text.
fn pprof_top(go: &Path, url: &str, dir: &Path, name: &str, extra: &[&str]) -> String {
    let (code, body) = gocost_testkit::procs::http_get(url);
    assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
    let file = dir.join(name);
    std::fs::write(&file, body).unwrap();
    let o = Command::new(go)
        .args(["tool", "pprof", "-top"])
        .args(extra)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// pprof's printed duration (`1.23s`, `450ms`, `0`) in seconds.
fn seconds(text: &str) -> f64 {
    let t = text.trim().trim_end_matches(',');
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("duration {text:?}"));
    n * match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "mins" => 60.0,
        u => panic!("unit {u:?} in {text:?}"),
    }
}

/// `gocost serve` prices each service from what it scrapes: two instances of one job and
/// one of another, CPU and heap profiles and the Go runtime's memory (expvar). Cores per
/// target equal `go tool pprof`'s "Total samples ÷ Duration" of the same range through the
/// API; memory is the mean of the target's `go_memstats_sys_bytes` points; groups add up
/// their targets; the `[cost]` rates are applied; `/metrics` has a cost per hour per target.
/// The same scrapes give each target's GC cost: pause quantiles equal the runtime points',
/// GC CPU equals `go tool pprof -focus` over the collector's frames, the allocation rate
/// equals pprof's alloc_space total over the time the deltas covered.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn serve_prices_each_service_and_its_gc() {
    use gocost_testkit::procs::{fresh_dir, go_build, start_gocost, start_with_addr_file};
    let go = gocost_testkit::go_toolchain();
    let dir = fresh_dir("cost", "serve");
    let bin = dir.join("demo");
    go_build(&go, &root().join("testdata/go/demo"), &bin);
    let demos: Vec<_> = (0..3)
        .map(|i| start_with_addr_file(&bin, &["-duration=2m"], &dir.join(format!("addr{i}"))))
        .collect();
    let config = dir.join("gocost.toml");
    std::fs::write(
        &config,
        format!(
            "[cost]\ncpu_per_core_hour = 0.5\nmemory_per_gib_hour = 0.25\ncurrency = \"EUR\"\n\n\
             [[scrape]]\njob = \"shop\"\ntargets = [\"{}\", \"{}\"]\ninterval = \"2s\"\n\
             profiles = [\"cpu\", \"heap\", \"allocs\"]\nmetrics = [\"expvar\"]\n\n\
             [[scrape]]\njob = \"ads\"\ntargets = [\"{}\"]\ninterval = \"2s\"\n\
             profiles = [\"cpu\", \"heap\", \"allocs\"]\nmetrics = [\"expvar\"]\n",
            demos[0].1, demos[1].1, demos[2].1
        ),
    )
    .unwrap();
    let (_gocost, api) = start_gocost(
        Path::new(env!("CARGO_BIN_EXE_gocost")),
        &config,
        &dir.join("data"),
    );
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::thread::sleep(std::time::Duration::from_secs(24));
    // A closed range that ended a while ago: nothing arrives in it any more.
    let (from, to) = (t0 - 60, t0 + 14);
    let get_json = |path: &str| -> serde_json::Value {
        let url = format!("http://{api}{path}&from={from}&to={to}");
        let (code, body) = gocost_testkit::procs::http_get(&url);
        assert_eq!(code, 200, "{url}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    };

    let per_target = get_json("/api/v1/cost?by=");
    assert_eq!(per_target["rates"]["currency"], "EUR", "{per_target:#}");
    let groups = per_target["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{per_target:#}");
    let close = |a: f64, b: f64, rel: f64| (a - b).abs() <= rel * b.abs().max(1e-12);
    let mut shop_cores = 0.0;
    for (i, g) in groups.iter().enumerate() {
        let job = g["labels"]["job"].as_str().unwrap();
        let inst = g["labels"]["instance"].as_str().unwrap();
        let sel = format!("%7Bjob%3D%22{job}%22%2Cinstance%3D%22{inst}%22%7D");
        // Cores: pprof's "Total samples ÷ Duration" of the same merged CPU profile.
        let top = pprof_top(
            &go,
            &format!("http://{api}/api/v1/profile?query=cpu{sel}&from={from}&to={to}"),
            &dir,
            &format!("cpu{i}.pb.gz"),
            &[],
        );
        let cores = g["cores"].as_f64().unwrap();
        let pct = try_number_after(&top, "s (").unwrap_or_else(|| panic!("{top}"));
        assert!(
            (cores * 100.0 - pct).abs() <= 0.006,
            "{cores} vs pprof {pct}%\n{top}"
        );
        assert!(cores > 0.0);
        if job == "shop" {
            shop_cores += cores;
        }
        // Memory: the mean of the target's go_memstats_sys_bytes over the range.
        assert_eq!(g["memory_source"], "go_sys", "{g:#}");
        let rt = get_json(&format!(
            "/api/v1/runtime?query=%7B__name__%3D%22go_memstats_sys_bytes%22%2Cjob%3D%22{job}%22%2Cinstance%3D%22{inst}%22%7D"
        ));
        let pts = rt[0]["points"].as_array().unwrap();
        let mean = pts.iter().map(|p| p[1].as_f64().unwrap()).sum::<f64>() / pts.len() as f64;
        let mem = g["memory_gib"].as_f64().unwrap() * 1024.0 * 1024.0 * 1024.0;
        assert!(close(mem, mean, 1e-9), "{mem} vs {mean}");
        // Heap: the mean heap in use, which is what the API's heap profile over the range is
        // (each stack's mean of the target's snapshots).
        let n_heap = g["heap_profiles"].as_f64().unwrap();
        assert!(n_heap >= 5.0, "{g:#}");
        let htop = pprof_top(
            &go,
            &format!("http://{api}/api/v1/profile?query=heap{sel}&from={from}&to={to}"),
            &dir,
            &format!("heap{i}.pb.gz"),
            &["-sample_index=inuse_space", "-unit=kB"],
        );
        let kb = try_number_after(&htop, "% of ").unwrap_or_else(|| panic!("{htop}"));
        let heap_kb = g["heap_gib"].as_f64().unwrap() * 1024.0 * 1024.0;
        assert!(close(heap_kb, kb, 1e-3), "{heap_kb} kB vs pprof {kb} kB");
        // Rates: [cost] prices, a month of 730 hours.
        let (c, m) = (
            g["cores"].as_f64().unwrap(),
            g["memory_gib"].as_f64().unwrap(),
        );
        assert!(close(g["cpu_per_hour"].as_f64().unwrap(), c * 0.5, 1e-9));
        assert!(close(
            g["memory_per_hour"].as_f64().unwrap(),
            m * 0.25,
            1e-9
        ));
        assert!(close(
            g["total_per_month"].as_f64().unwrap(),
            (c * 0.5 + m * 0.25) * 730.0,
            1e-9
        ));
    }

    // GC per target.
    let gcs = get_json("/api/v1/gc?top=5");
    let gcs = gcs.as_array().unwrap();
    assert_eq!(gcs.len(), 3, "{gcs:#?}");
    for (i, g) in gcs.iter().enumerate() {
        let job = g["labels"]["job"].as_str().unwrap();
        let inst = g["labels"]["instance"].as_str().unwrap();
        let sel = format!("%7Bjob%3D%22{job}%22%2Cinstance%3D%22{inst}%22%7D");
        // Pauses: the quantiles of the per-cycle points (type 7).
        let rt = get_json(&format!(
            "/api/v1/runtime?query=%7B__name__%3D%22go_gc_pause_seconds%22%2Cjob%3D%22{job}%22%2Cinstance%3D%22{inst}%22%7D"
        ));
        let mut v: Vec<f64> = rt[0]["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_f64().unwrap())
            .collect();
        v.sort_by(f64::total_cmp);
        let p = &g["pauses"];
        assert_eq!(p["count"].as_u64().unwrap() as usize, v.len(), "{g:#}");
        let q = |f: f64| {
            let h = (v.len() - 1) as f64 * f;
            let lo = h.floor() as usize;
            v[lo] + (h - lo as f64) * (v[(lo + 1).min(v.len() - 1)] - v[lo])
        };
        assert!(close(p["p50"].as_f64().unwrap(), q(0.5), 1e-12));
        assert!(close(p["p99"].as_f64().unwrap(), q(0.99), 1e-12));
        assert_eq!(p["max"].as_f64().unwrap(), v[v.len() - 1]);
        let cells: u64 = g["heatmap"]["columns"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c[1].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()))
            .sum();
        assert_eq!(cells as usize, v.len());
        // GC CPU: pprof's total of the samples through the collector's frames.
        let top = pprof_top(
            &go,
            &format!("http://{api}/api/v1/profile?query=cpu{sel}&from={from}&to={to}"),
            &dir,
            &format!("gccpu{i}.pb.gz"),
            &[
                &format!("-focus={}", gocost_insights::gc::GC_FRAMES),
                "-nodefraction=0",
                "-nodecount=1000000",
            ],
        );
        let line = top
            .lines()
            .find(|l| l.starts_with("Showing nodes accounting for "))
            .unwrap_or_else(|| panic!("{top}"));
        let shown = seconds(
            line["Showing nodes accounting for ".len()..]
                .split(' ')
                .next()
                .unwrap(),
        );
        let gc_s = g["gc_cpu"]["gc_seconds"].as_f64().unwrap();
        assert!(
            (gc_s - shown).abs() <= 0.006 + 0.005 * shown,
            "{gc_s} vs pprof {shown}\n{top}"
        );
        let phases: f64 = g["gc_cpu"]["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["seconds"].as_f64().unwrap())
            .sum();
        assert!(close(phases, gc_s, 1e-9));
        // Allocation: pprof's alloc_space total over the deltas' time.
        let atop = pprof_top(
            &go,
            &format!("http://{api}/api/v1/profile?query=allocs{sel}&from={from}&to={to}"),
            &dir,
            &format!("allocs{i}.pb.gz"),
            &["-sample_index=alloc_space", "-unit=kB"],
        );
        let kb = try_number_after(&atop, "% of ").unwrap_or_else(|| panic!("{atop}"));
        let a = &g["allocation"];
        let bytes = a["bytes_per_second"].as_f64().unwrap() * a["seconds"].as_f64().unwrap();
        assert!(
            close(bytes / 1024.0, kb, 1e-3),
            "{bytes} B vs pprof {kb} kB"
        );
        let sites = a["sites"].as_array().unwrap();
        assert!(!sites.is_empty() && sites.len() <= 5, "{a:#}");
        assert!(
            sites
                .iter()
                .all(|s| !s["site"].as_str().unwrap().starts_with("runtime.")),
            "{a:#}"
        );
    }

    // Per job: shop adds up its two instances; biggest spender first.
    let by_job = get_json("/api/v1/cost?by=job");
    let jobs = by_job["groups"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{by_job:#}");
    let shop = jobs.iter().find(|g| g["labels"]["job"] == "shop").unwrap();
    assert_eq!(shop["targets"], 2);
    assert_eq!(shop["labels"].as_object().unwrap().len(), 1);
    assert!(close(shop["cores"].as_f64().unwrap(), shop_cores, 1e-9));
    assert!(jobs[0]["total_per_month"].as_f64() >= jobs[1]["total_per_month"].as_f64());
    let total: f64 = jobs
        .iter()
        .map(|g| g["total_per_month"].as_f64().unwrap())
        .sum();
    assert!(close(
        by_job["total_per_month"].as_f64().unwrap(),
        total,
        1e-9
    ));
    // The demo's functions are named; the biggest spenders come first.
    let fs = shop["functions"].as_array().unwrap();
    assert!(
        fs.iter()
            .any(|f| f["function"].as_str().unwrap().starts_with("main.")),
        "{fs:#?}"
    );

    // Bad selectors are 400s; nothing matched is an empty answer with its reason.
    let (code, _) =
        gocost_testkit::procs::http_get(&format!("http://{api}/api/v1/cost?query=goroutine"));
    assert_eq!(code, 400);
    let (code, body) = gocost_testkit::procs::http_get(&format!(
        "http://{api}/api/v1/cost?query=%7Bjob%3D%22nope%22%7D"
    ));
    assert_eq!(code, 200);
    let none: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(none["groups"], serde_json::json!([]), "{none}");
    assert!(
        none["empty"].as_str().unwrap().contains("in the range"),
        "{none}"
    );

    // /metrics: a cost per hour per target and resource.
    let (_, body) = gocost_testkit::procs::http_get(&format!("http://{api}/metrics"));
    let metrics = String::from_utf8(body).unwrap();
    for d in &demos {
        for res in ["cpu", "memory"] {
            let line = metrics
                .lines()
                .find(|l| {
                    l.starts_with("gocost_cost_per_hour{")
                        && l.contains(&format!("instance=\"{}\"", d.1))
                        && l.contains(&format!("resource=\"{res}\""))
                })
                .unwrap_or_else(|| panic!("no {res} cost for {}:\n{metrics}", d.1));
            let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(v > 0.0, "{line}");
        }
        for family in [
            "gocost_gc_pause_seconds{",
            "gocost_gc_cpu_fraction{",
            "gocost_allocation_bytes_per_second{",
        ] {
            assert!(
                metrics
                    .lines()
                    .any(|l| l.starts_with(family) && l.contains(&format!("instance=\"{}\"", d.1))),
                "no {family} for {}:\n{metrics}",
                d.1
            );
        }
    }
}

/// `gocost gc` against `go tool pprof`'s goldens: GC CPU is what `-focus` over the
/// collector's frames keeps (`Showing nodes accounting for 0.19s, 13.57% of 1.40s total`),
/// allocation is the delta's alloc_space total over its duration.
#[test]
fn gc_agrees_with_pprof_focus() {
    let golden =
        |name: &str| std::fs::read_to_string(root().join("testdata/golden").join(name)).unwrap();
    let slug = format!(
        "top__nodefraction=0__nodecount=100000__focus={}__batch.cpu.pb.gz.txt",
        gocost_insights::gc::GC_FRAMES
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._=-".contains(c) {
                c
            } else {
                '~'
            })
            .collect::<String>()
    );
    let focus = golden(&slug);
    let gc_s = number_after(&focus, "Showing nodes accounting for ");
    let showing = &focus[focus.find("Showing nodes").unwrap()..];
    let gc_pct = number_after(showing, "s, ");
    let allocs = golden("top__hide=runtime__sample_index=alloc_space__allocs.delta.pb.gz.txt");
    let total_mb = number_after(&allocs, "Total samples = ");
    assert!(
        allocs.contains("Total samples = ")
            && allocs[allocs.find("Total samples = ").unwrap()..].contains("MB")
    );
    let duration = number_after(&allocs, "Duration: ");

    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .args(["gc", "--json", "--top", "3"])
        .arg(root().join("testdata/profiles/batch.cpu.pb.gz"))
        .arg(root().join("testdata/profiles/allocs.delta.pb.gz"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["gc_cpu"];
    assert!(
        (c["gc_seconds"].as_f64().unwrap() - gc_s).abs() <= 0.005,
        "{c:#} vs {gc_s}s"
    );
    assert!(
        (c["fraction"].as_f64().unwrap() * 100.0 - gc_pct).abs() <= 0.005,
        "{c:#} vs {gc_pct}%"
    );
    let phases: f64 = c["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["seconds"].as_f64().unwrap())
        .sum();
    assert!((phases - c["gc_seconds"].as_f64().unwrap()).abs() < 1e-9);
    let a = &v["allocation"];
    let mb = a["bytes"].as_f64().unwrap() / 1024.0 / 1024.0;
    assert!(
        (mb - total_mb).abs() <= 0.005,
        "{mb} MB vs pprof {total_mb} MB"
    );
    assert!((a["seconds"].as_f64().unwrap() - duration).abs() <= 0.005);
    assert_eq!(a["sites"].as_array().unwrap().len(), 3);
    assert_eq!(a["sites"][0]["site"], "main.sortWords", "{a:#}");

    // Not a CPU or allocs profile: named, exit 2.
    let o = Command::new(env!("CARGO_BIN_EXE_gocost"))
        .arg("gc")
        .arg(root().join("testdata/profiles/goroutine.pb.gz"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("goroutine.pb.gz: neither a CPU profile"));
}
