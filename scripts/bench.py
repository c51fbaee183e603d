#!/usr/bin/env python3
"""Side-by-side benchmark: gocost vs `go tool pprof`, one run, ratios printed.

  python3 scripts/bench.py [--go GO] [--minutes 1440] [--corpus small|realistic|both]

1. Builds gocost (release) and a day of 1-minute CPU profiles from real ones
   (examples/bench_corpus.rs: each copy shifted in time and labelled with its minute, so the
   merged profile keeps tens of thousands of distinct samples), for two corpora:
   realistic (60-second CPU profiles of a generated Go service with 800 functions in 20
   packages, deep stacks and pprof labels: scripts/gen_service.py) and small (the demo
   program's profiles in testdata/profiles).
2. merge: `gocost merge -o OUT <1440 files>` vs `go tool pprof -proto <1440 files>`.
3. top:   `gocost top BIG` vs `go tool pprof -top BIG`, BIG = the merged day (>= 30k samples).
4. dot, peek: `gocost dot BIG` vs `go tool pprof -dot BIG`, `gocost peek main BIG` vs
   `go tool pprof -peek=main BIG` (the call graph and callers/callees views); `--views`
   picks which of top, dot and peek run.
Each command's CPU time (user+sys) and peak RSS come from wait4(2). Outputs are compared:
`go tool pprof -top` of gocost's merged file must equal `go tool pprof -top` of the inputs,
and `gocost top` must equal `go tool pprof -top` byte for byte.
"""
import argparse, gzip, os, shutil, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, stdout=subprocess.DEVNULL, env=None):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd[:6])}...\n{err}")
    return {"cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024, "wall": wall}


def best(n, cmd, **kw):
    """Best of n runs (CPU time), with the peak RSS of that run."""
    rs = [run(cmd, **kw) for _ in range(n)]
    return min(rs, key=lambda r: r["cpu"])


def realistic_seeds(go, target, n, seconds):
    """CPU profiles of a generated service (scripts/gen_service.py: 20 packages x 40 functions,
    deep stacks, pprof labels), `n` runs of `seconds` each, two at a time; kept under the
    target dir so later runs reuse them."""
    d = os.path.join(os.path.abspath(target), "bench-svc")
    seeds = [os.path.join(d, "profiles", f"cpu-{i}.pb.gz") for i in range(n)]
    if all(os.path.exists(s) for s in seeds):
        return seeds
    src = os.path.join(d, "src")
    shutil.rmtree(d, ignore_errors=True)
    subprocess.check_call([sys.executable, os.path.join(ROOT, "scripts/gen_service.py"), src])
    subprocess.check_call([go, "build", "-o", os.path.join(d, "svc"), "."], cwd=src)
    print(f"recording {n} CPU profiles of {seconds}s of the generated service...", file=sys.stderr)
    for i in range(0, n, 2):
        procs = []
        for j in range(i, min(i + 2, n)):
            out = os.path.join(d, f"run-{j}")
            os.makedirs(out)
            procs.append((j, out, subprocess.Popen([os.path.join(d, "svc"), "-seconds", str(seconds), "-out", out], stderr=subprocess.DEVNULL)))
        for j, out, p in procs:
            if p.wait() != 0:
                sys.exit("the generated service failed")
    os.makedirs(os.path.join(d, "profiles"))
    for j in range(n):
        os.rename(os.path.join(d, f"run-{j}", "cpu.pb.gz"), seeds[j])
    return seeds


def bench(name, seeds, a, gocost, corpus_tool, env):
    with tempfile.TemporaryDirectory() as tmp:
        day = os.path.join(tmp, "day")
        subprocess.check_call([corpus_tool, day, str(a.minutes)] + seeds)
        files = sorted(os.path.join(day, f) for f in os.listdir(day))
        pprof = [a.go, "tool", "pprof", "-symbolize=none"]

        # merge
        out = os.path.join(tmp, "merged.pb.gz")
        g = best(a.runs, [gocost, "merge", "-o", out] + files, env=env)
        with open(os.path.join(tmp, "go-merged.pb.gz"), "wb") as f:
            p = best(1, pprof + ["-proto"] + files, stdout=f, env=env)
        want = subprocess.run(pprof + ["-top"] + files, capture_output=True, env=env).stdout
        got = subprocess.run(pprof + ["-top", out], capture_output=True, env=env).stdout
        same_merge = want == got
        # The floor: reading and inflating the same bytes (gzip -dc), once over every file.
        floor = best(a.runs, ["sh", "-c", 'cat "$@" | gzip -dc > /dev/null', "sh"] + files, env=env)

        # top, dot and peek on the big merged profile
        big = out
        # Counted from a stream: holding `raw`'s output (GBs for a big day) would raise this
        # process's RSS, which every later child's peak-RSS figure would then include.
        with subprocess.Popen([gocost, "raw", big], stdout=subprocess.PIPE, env=env) as raw:
            nsamples = sum(1 for line in raw.stdout if line.startswith(b"          ") and b": " in line)
        rows = [(f"merge {len(files)} CPU profiles", g, p, same_merge)]
        views = (("top", "top on merged profile", [gocost, "top", big], pprof + ["-top", big]),
                 ("dot", "dot on merged profile", [gocost, "dot", big], pprof + ["-dot", big]),
                 ("peek", "peek main on merged", [gocost, "peek", "main", big], pprof + ["-peek=main", big]))
        for label, mine, theirs in [v[1:] for v in views if v[0] in a.views]:
            gg = best(a.runs, mine, env=env)
            pp = best(1, theirs, env=env)
            same = subprocess.run(theirs, capture_output=True, env=env).stdout == subprocess.run(mine, capture_output=True, env=env).stdout
            rows.append((label, gg, pp, same))

    print(f"\n== {name}: {len(files)} CPU profiles ({sum(os.path.getsize(s) for s in seeds) // len(seeds) // 1024} KB each on average); merged profile has ~{nsamples} samples")
    print(f"   floor (gzip -dc of the same bytes): {floor['cpu']:.3f}s CPU; gocost merge / floor = {g['cpu'] / max(floor['cpu'], 1e-6):.1f}x")
    print(f"{'benchmark':<28}{'gocost cpu':>12}{'pprof cpu':>12}{'speedup':>10}{'wall ratio':>11}{'gocost MB':>11}{'pprof MB':>10}{'mem ratio':>11}  output")
    for label, gg, pp, same in rows:
        print(f"{label:<28}{gg['cpu']:>11.3f}s{pp['cpu']:>11.3f}s{pp['cpu']/max(gg['cpu'],1e-6):>9.1f}x{pp['wall']/max(gg['wall'],1e-6):>10.1f}x"
              f"{gg['rss_mb']:>11.1f}{pp['rss_mb']:>10.1f}{gg['rss_mb']/pp['rss_mb']:>10.2f}x  {'identical' if same else 'DIFFERENT'}")
    return all(r[3] for r in rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go", default=shutil.which("go") or "go")
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--corpus", choices=["small", "realistic", "both"], default="both")
    ap.add_argument("--seed-profiles", type=int, default=4, help="realistic corpus: how many CPU profiles to record")
    ap.add_argument("--profile-seconds", type=int, default=60, help="realistic corpus: seconds per CPU profile")
    ap.add_argument("--views", type=lambda s: s.split(","), default=["top", "dot", "peek"],
                    help="reports of the merged profile to compare, comma-separated (default top,dot,peek; pprof takes minutes on each)")
    ap.add_argument("--seeds", nargs="*", help="CPU profiles to build the day from (instead of the corpora)")
    a = ap.parse_args()
    env = dict(os.environ, TZ="UTC")
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "gocost", "--bin", "gocost", "--example", "bench_corpus"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    gocost = os.path.join(target, "release/gocost")
    corpus_tool = os.path.join(target, "release/examples/bench_corpus")
    prof = os.path.join(ROOT, "testdata/profiles")
    corpora = []
    if a.seeds:
        corpora.append(("given seeds", a.seeds))
    else:
        if a.corpus in ("realistic", "both"):
            corpora.append(("realistic: a generated 800-function service", realistic_seeds(a.go, target, a.seed_profiles, a.profile_seconds)))
        if a.corpus in ("small", "both"):
            corpora.append(("small: testdata's demo program", [os.path.join(prof, f) for f in ("cpu.pb.gz", "cpu2.pb.gz")]))
    ok = all([bench(name, seeds, a, gocost, corpus_tool, env) for name, seeds in corpora])
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
