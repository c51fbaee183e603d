//! Tests against the real Go toolchain: `go tool pprof` reads what `gocost merge` writes
//! exactly as it reads the inputs, and gocost fetches profiles from a live Go service.
//!
//! Go is found through `$GO` or `go` on `PATH`. Without it these tests are reported as ignored,
//! except in CI (`CI` set), where a missing Go is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn go() -> PathBuf {
    gocost_testkit::go_toolchain()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn profiles() -> PathBuf {
    root().join("testdata/profiles")
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gocost-realgo-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The pprof tool binary (`go tool -n pprof`), run directly: with `HOME` pointed elsewhere
/// `go tool` would rebuild it into a fresh cache every time.
fn pprof_binary(go: &Path) -> PathBuf {
    gocost_testkit::procs::go_tool(go, "pprof")
}

/// Runs a command that must succeed and returns its stdout.
fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    let out = gocost_testkit::procs::retry_busy(|| cmd.output()).unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pprof_top(pprof: &Path, files: &[PathBuf]) -> Vec<u8> {
    let home = tmpdir("home");
    stdout_of(
        Command::new(pprof)
            .args(["-symbolize=none", "-top"])
            .args(files)
            .env("TZ", "UTC")
            .env("HOME", &home)
            .env("PPROF_TMPDIR", &home),
    )
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn pprof_reads_gocost_merge_output_like_the_inputs() {
    let go = go();
    let pprof = pprof_binary(&go);
    let sets: &[&[&str]] = &[
        &["cpu.pb.gz", "cpu2.pb.gz"],
        &["heap.pb.gz", "allocs.pb.gz"],
        &["mutex.pb.gz", "block.pb.gz"],
        &["goroutine.pb.gz", "goroutine.delta.pb.gz"],
        &["allocs.delta.pb.gz", "allocs.pb.gz"],
        &["cpu.pb.gz", "cpu2.pb.gz", "cpu.pb.gz"],
    ];
    let dir = tmpdir("merge");
    for (i, set) in sets.iter().enumerate() {
        let inputs: Vec<PathBuf> = set.iter().map(|f| profiles().join(f)).collect();
        let out = dir.join(format!("merged-{i}.pb.gz"));
        let st = Command::new(env!("CARGO_BIN_EXE_gocost"))
            .arg("merge")
            .arg("-o")
            .arg(&out)
            .args(&inputs)
            .status()
            .unwrap();
        assert!(st.success());
        let want = pprof_top(&pprof, &inputs);
        let got = pprof_top(&pprof, std::slice::from_ref(&out));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "go tool pprof -top of gocost merge {set:?}"
        );
    }
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Builds and starts `testdata/go/demo` in `dir`; returns it and its `host:port`.
fn start_demo(go: &Path, dir: &Path) -> (Service, String) {
    let bin = dir.join("demo");
    let st = Command::new(go)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".")
        .current_dir(root().join("testdata/go/demo"))
        .status()
        .unwrap();
    assert!(st.success(), "go build testdata/go/demo");
    let addr_file = dir.join("addr");
    let svc = Service(
        Command::new(&bin)
            .arg(&addr_file)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(&addr_file)
            && !a.trim().is_empty()
        {
            break a.trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (svc, addr)
}

#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn fetches_profiles_from_a_live_go_service() {
    let go = go();
    let dir = tmpdir("svc");
    let (svc, addr) = start_demo(&go, &dir);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_gocost"))
            .args(args)
            .env("TZ", "UTC")
            .output()
            .unwrap()
    };
    let cpu = run(&[
        "top",
        "--seconds",
        "1",
        &format!("http://{addr}/debug/pprof/profile"),
    ]);
    assert!(
        cpu.status.success(),
        "{}",
        String::from_utf8_lossy(&cpu.stderr)
    );
    let text = String::from_utf8_lossy(&cpu.stdout);
    // A one-second CPU profile lasts about a second: the runtime reports
    // e.g. "994.55ms" or "1.01s", so only the field's presence is exact.
    assert!(
        text.contains("Type: cpu") && text.contains("\nDuration: "),
        "{text}"
    );
    let g = run(&["traces", &format!("http://{addr}/debug/pprof/goroutine")]);
    assert!(g.status.success());
    assert!(String::from_utf8_lossy(&g.stdout).contains("Type: goroutine"));
    let missing = run(&["top", &format!("http://{addr}/debug/pprof/nonexistent")]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("404"));
    drop(svc);
}

/// Per stack (function, line and address of every frame, leaf first) and labels — but the
/// heap samples' size label, which the delta may move, and pprof's own `pprof::` labels —
/// the summed values, zeros left out.
fn by_stack(
    p: &gocost_pprof::Profile,
) -> std::collections::BTreeMap<(Vec<String>, Vec<String>), Vec<i64>> {
    let mut m = std::collections::BTreeMap::<(Vec<String>, Vec<String>), Vec<i64>>::new();
    for s in &p.sample {
        let frames = s
            .location
            .iter()
            .flat_map(|&l| {
                let loc = &p.location[l as usize];
                loc.line.iter().map(move |ln| {
                    let f = &p.function[ln.function as usize];
                    format!("{} {}:{} {:#x}", f.name, f.filename, ln.line, loc.address)
                })
            })
            .collect();
        let labels = s
            .label
            .iter()
            .filter(|l| &*l.key != "bytes" && !l.key.starts_with("pprof::"))
            .map(|l| format!("{}={:?}", l.key, l.value))
            .collect();
        let e = m
            .entry((frames, labels))
            .or_insert_with(|| vec![0; s.value.len()]);
        for (a, v) in e.iter_mut().zip(&s.value) {
            *a += v;
        }
    }
    m.retain(|_, v| v.iter().any(|&x| x != 0));
    m
}

/// What gocost stores for two consecutive scrapes of a cumulative kind of a live Go service
/// (the delta made from the first scrape's baseline, appended to a store and read back) is
/// what `go tool pprof -base first second` shows of the same two raw profiles.
#[cfg_attr(not(has_go), ignore = "needs Go: set $GO or put go on PATH")]
#[test]
fn scrape_deltas_are_what_pprof_base_shows_on_a_live_go_service() {
    use gocost_scrape::delta::{Delta, delta};
    let go = go();
    let pprof = pprof_binary(&go);
    let dir = tmpdir("base");
    let (svc, addr) = start_demo(&go, &dir);
    // The demo allocates, contends and blocks all the time: let it run up some counts.
    std::thread::sleep(Duration::from_secs(2));
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let (store, _) = gocost_store::Store::open(gocost_store::Options::new(&data)).unwrap();
    let home = tmpdir("base-home");
    for kind in ["allocs", "mutex", "block"] {
        let fetch = |n: usize| {
            let (status, body) =
                gocost_testkit::procs::http_get(&format!("http://{addr}/debug/pprof/{kind}"));
            assert_eq!(status, 200, "{kind}");
            let f = dir.join(format!("{kind}.{n}.pb.gz"));
            std::fs::write(&f, &body).unwrap();
            (f, gocost_pprof::decode(&body).unwrap())
        };
        let (old_file, old) = fetch(0);
        std::thread::sleep(Duration::from_millis(1500));
        let (new_file, new) = fetch(1);
        let (first, baseline) = delta(None, old);
        assert!(
            matches!(first, Delta::First),
            "{kind}: the first is a baseline"
        );
        let t = new.time_nanos;
        let (d, _) = delta(Some(&baseline), new);
        let Delta::Diff(d) = d else {
            panic!("{kind}: a live process is no restart: {d:?}")
        };
        let key = gocost_store::SeriesKey::new(kind, [("job".into(), "demo".into())]);
        store.append_profile(&key, t, &d, None).unwrap();
        let sel = gocost_store::Selector::parse(&format!("{kind}{{job=\"demo\"}}")).unwrap();
        let stored = store.query(&sel, t - 1, t + 1).unwrap().expect("stored");
        let want = stdout_of(
            Command::new(&pprof)
                .args(["-symbolize=none", "-proto", "-base"])
                .arg(&old_file)
                .arg(&new_file)
                .env("HOME", &home)
                .env("PPROF_TMPDIR", &home),
        );
        let want = gocost_pprof::decode(&want).unwrap();
        let (got, want) = (by_stack(&stored), by_stack(&want));
        assert!(!want.is_empty(), "{kind}: the demo did nothing in 1.5 s?");
        assert_eq!(got, want, "{kind}: stored delta vs go tool pprof -base");
    }
    drop(svc);
}
