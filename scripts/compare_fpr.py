#!/usr/bin/env python3
"""False-positive and detection rates of `gocost compare` on real Go benchmarks.

Each trial runs the benchmarks of testdata/go/benchcmp ten times each from three builds,
interleaved — base, base again, and the `-tags slow` build (checksum does 15% more work) —
then asks `gocost compare` about base vs base (any failure is a false positive) and base vs
slow (a pass is a miss; a failure must name Checksum and nothing else).

    cargo build --release -p gocost
    python3 scripts/compare_fpr.py --trials 30 [--gocost target/release/gocost] [--count 10]

Prints each trial's verdicts, then the rates with 95% Wilson intervals. Measure on a quiet
machine: other work on the same cores is noise in the very numbers being judged.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = "-test.bench=^Benchmark(Checksum|Parse|Sort)$"


def wilson(k, n, z=1.96):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--count", type=int, default=10, help="runs per side per trial")
    ap.add_argument("--benchtime", default="60ms")
    ap.add_argument("--gocost", default=str(ROOT / "target/release/gocost"))
    ap.add_argument("--go", default=shutil.which("go") or "go")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gocost-fpr-"))
    src = ROOT / "testdata/go/benchcmp"
    for name, tags in (("base.test", []), ("slow.test", ["-tags", "slow"])):
        subprocess.run([a.go, "test", "-c", "-o", str(tmp / name), *tags, "."], cwd=src, check=True)

    def run(binary):
        return subprocess.run([str(tmp / binary), "-test.run=^$", BENCH, f"-test.benchtime={a.benchtime}"],
                              check=True, capture_output=True).stdout

    def compare(base, head):
        r = subprocess.run([a.gocost, "compare", "--base", str(base), "--head", str(head), "--format", "json"],
                           capture_output=True, text=True)
        if r.returncode not in (0, 1):
            sys.exit(f"gocost compare failed: {r.stderr}")
        doc = json.loads(r.stdout)
        names = sorted({row["name"] for row in doc["benchmarks"]["rows"] if row["verdict"] == "regression"})
        return r.returncode, names

    fp = detected = wrong = 0
    for t in range(a.trials):
        outs = {"a": b"", "b": b"", "c": b""}
        for _ in range(a.count):
            outs["a"] += run("base.test")
            outs["b"] += run("base.test")
            outs["c"] += run("slow.test")
        for k, v in outs.items():
            (tmp / f"{k}.txt").write_bytes(v)
        code_same, names_same = compare(tmp / "a.txt", tmp / "b.txt")
        code_slow, names_slow = compare(tmp / "a.txt", tmp / "c.txt")
        fp += code_same == 1
        hit = code_slow == 1 and any(n.startswith("Checksum") for n in names_slow)
        detected += hit
        wrong += any(not n.startswith("Checksum") for n in names_slow)
        print(f"trial {t + 1:3}: identical {'FAIL ' + str(names_same) if code_same else 'pass'}; "
              f"slow {'detected' if hit else 'MISSED'} {names_slow}", flush=True)
    n = a.trials
    lo, hi = wilson(fp, n)
    dlo, dhi = wilson(detected, n)
    print(f"\nfalse positives (identical builds failed): {fp}/{n} = {fp / n:.1%} (95% CI {lo:.1%}–{hi:.1%})")
    print(f"detection (15% slower checksum failed and named): {detected}/{n} = {detected / n:.1%} "
          f"(95% CI {dlo:.1%}–{dhi:.1%})")
    print(f"trials where another benchmark was also flagged in the slow build: {wrong}/{n}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
