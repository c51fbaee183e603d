#!/usr/bin/env python3
"""Side-by-side benchmark: gocost vs `go tool pprof`, one run, ratios printed.

  python3 scripts/bench.py [--go GO] [--minutes 1440]

1. Builds gocost (release) and a day of 1-minute CPU profiles from the real ones in
   testdata/profiles (examples/bench_corpus.rs: each copy shifted in time and labelled with
   its minute, so the merged profile keeps tens of thousands of distinct samples).
2. merge: `gocost merge -o OUT <1440 files>` vs `go tool pprof -proto <1440 files>`.
3. top:   `gocost top BIG` vs `go tool pprof -top BIG`, BIG = the merged day (>= 30k samples).
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go", default=shutil.which("go") or "go")
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seeds", nargs="*", help="CPU profiles to build the day from (default: testdata/profiles/cpu*.pb.gz)")
    a = ap.parse_args()
    env = dict(os.environ, TZ="UTC")
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "gocost", "--bin", "gocost", "--example", "bench_corpus"], cwd=ROOT)
    gocost = os.path.join(ROOT, "target/release/gocost")
    corpus_tool = os.path.join(ROOT, "target/release/examples/bench_corpus")
    prof = os.path.join(ROOT, "testdata/profiles")
    seeds = a.seeds or [os.path.join(prof, f) for f in ("cpu.pb.gz", "cpu2.pb.gz") if os.path.exists(os.path.join(prof, f))]
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

        # top on the big merged profile
        big = out
        nsamples = sum(1 for _ in subprocess.run([gocost, "raw", big], capture_output=True, env=env).stdout.splitlines() if _.startswith(b"          ") and b": " in _)
        gt = best(a.runs, [gocost, "top", big], env=env)
        pt = best(1, pprof + ["-top", big], env=env)
        want = subprocess.run(pprof + ["-top", big], capture_output=True, env=env).stdout
        got = subprocess.run([gocost, "top", big], capture_output=True, env=env).stdout
        same_top = want == got

    print(f"corpus: {len(files)} CPU profiles; merged profile has ~{nsamples} samples")
    print(f"{'benchmark':<28}{'gocost cpu':>12}{'pprof cpu':>12}{'speedup':>10}{'gocost MB':>11}{'pprof MB':>10}{'mem ratio':>11}  output")
    for name, gg, pp, same in (("merge 1440 CPU profiles", g, p, same_merge), ("top on merged profile", gt, pt, same_top)):
        print(f"{name:<28}{gg['cpu']:>11.3f}s{pp['cpu']:>11.3f}s{pp['cpu']/max(gg['cpu'],1e-6):>9.1f}x"
              f"{gg['rss_mb']:>11.1f}{pp['rss_mb']:>10.1f}{gg['rss_mb']/pp['rss_mb']:>10.2f}x  {'identical' if same else 'DIFFERENT'}")
    if not (same_merge and same_top):
        sys.exit(1)


if __name__ == "__main__":
    main()
