#!/usr/bin/env python3
"""`gocost compare` vs benchstat on the same benchmark outputs: CPU time, peak RSS, ratio.

Inputs are generated (fixed seed): BENCHMARKS benchmarks x COUNT runs per side, each with
sec/op (ns/op), B/op and allocs/op, the head 2% slower on every tenth benchmark. Both tools
read the same two files; their tables must agree cell for cell (medians, intervals, changes,
p-values), else the script fails.

    cargo build --release -p gocost
    python3 scripts/bench_compare.py --benchstat /path/to/benchstat [--benchmarks 500 --count 20]

benchstat is golang.org/x/perf/cmd/benchstat (`go install golang.org/x/perf/cmd/benchstat@latest`
where the Go module proxy is reachable).
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUP = "¹²³⁴⁵⁶⁷⁸⁹⁰"


def run(cmd):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{p.stderr.read().decode(errors='replace')}")
    return out.decode(), {"cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024,
                          "wall": time.monotonic() - t0}


def best(n, cmd):
    rs = [run(cmd) for _ in range(n)]
    return min(rs, key=lambda r: r[1]["cpu"])


def cells(text, sep):
    row = re.compile(rf"^(\S+)\s+(\S+) ± (\S+)(?: [{SUP}]+)?\s+(\S+) ± (\S+)(?: [{SUP}]+)?\s+(\S+){sep}\(([^)]*)\)")
    out = []
    for line in text.splitlines():
        m = row.match(line)
        if m:
            out.append(m.groups())
        elif line.startswith("geomean "):
            out.append(tuple(re.sub(f"[{SUP}]+", "", line[len("geomean "):]).split()))
    return out


def generate(path, n, count, slow, seed):
    r = random.Random(seed)
    lines = ["goos: linux", "goarch: amd64", "pkg: example.com/gen", "cpu: generated"]
    for _ in range(count):
        for b in range(n):
            base = 1000.0 * (1 + b % 7)
            f = 1.02 if slow and b % 10 == 0 else 1.0
            ns = base * f * (1 + r.gauss(0, 0.01))
            lines.append(f"BenchmarkGen{b}/size={b % 5}-8 \t 100000\t {ns:.1f} ns/op\t {64 * (b % 9)} B/op\t {b % 3} allocs/op")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\nPASS\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benchstat", default=shutil.which("benchstat"))
    ap.add_argument("--gocost", default=os.path.join(ROOT, "target/release/gocost"))
    ap.add_argument("--benchmarks", type=int, default=500)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not a.benchstat:
        sys.exit("benchstat not found: pass --benchstat PATH")
    tmp = tempfile.mkdtemp(prefix="gocost-bench-compare-")
    base, head = os.path.join(tmp, "base.txt"), os.path.join(tmp, "head.txt")
    generate(base, a.benchmarks, a.count, False, 1)
    generate(head, a.benchmarks, a.count, True, 2)
    g_out, g = best(a.runs, [a.gocost, "compare", "--base", base, "--head", head])
    b_out, b = best(a.runs, [a.benchstat, base, head])
    ours, theirs = cells(g_out, r"\s+"), cells(b_out, " ")
    if ours != theirs:
        for i, (x, y) in enumerate(zip(ours, theirs)):
            if x != y:
                sys.exit(f"tables differ at row {i}: gocost {x} benchstat {y}")
        sys.exit(f"tables differ in length: gocost {len(ours)} rows, benchstat {len(theirs)}")
    print(f"{a.benchmarks} benchmarks x 3 units x {a.count} runs per side; {len(ours)} table rows agree")
    print(f"{'':10} {'cpu s':>8} {'rss MB':>8}")
    print(f"{'benchstat':10} {b['cpu']:8.3f} {b['rss_mb']:8.1f}")
    print(f"{'gocost':10} {g['cpu']:8.3f} {g['rss_mb']:8.1f}")
    print(f"ratio: gocost uses {b['cpu'] / max(g['cpu'], 1e-9):.1f}x less CPU, "
          f"{g['rss_mb'] / b['rss_mb']:.2f}x the memory of benchstat")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
