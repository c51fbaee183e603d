#!/usr/bin/env python3
"""Precision, recall and time to detection of `gocost leaks` on a Go service with known leaks.

Runs testdata/go/leaks (four leaks: main.watchLoop 1/s chan receive, main.publish 0.5/s chan
send, main.waitForAll 0.5/s WaitGroup, main.lockForever 0.25/s Mutex; five decoys: a pool
that plateaus, bursty per-request goroutines, a cache warming up, finite sleeps of --nap,
long-lived loops), scrapes /debug/pprof/goroutine every --interval seconds for --minutes,
then asks `gocost leaks --json` about every prefix of the scrapes, as a continuous profiler
would after each scrape. A leak's time to detection is when it is reported from then on.

    cargo build --release -p gocost
    python3 scripts/leaks_eval.py [--minutes 5 --interval 10 --nap 180s --rate 1]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEAKS = {"main.watchLoop": 1.0, "main.publish": 0.5, "main.waitForAll": 0.5, "main.lockForever": 0.25}
DECOYS = {"main.poolWorker", "main.handleRequest", "main.cacheFill", "main.napper", "main.tickerLoop"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--nap", default="180s")
    ap.add_argument("--rate", type=float, default=1)
    ap.add_argument("--gocost", default=os.path.join(ROOT, "target/release/gocost"))
    ap.add_argument("--go", default=shutil.which("go") or "go")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gocost-leaks-eval-")
    binary = os.path.join(tmp, "leaks")
    subprocess.run([a.go, "build", "-o", binary, "."], cwd=os.path.join(ROOT, "testdata/go/leaks"), check=True)
    addr_file = os.path.join(tmp, "addr")
    proc = subprocess.Popen([binary, f"-rate={a.rate}", f"-nap={a.nap}", f"-duration={a.minutes + 2}m", addr_file],
                            stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(addr_file) and open(addr_file).read():
                break
            time.sleep(0.05)
        addr = open(addr_file).read().strip()
        start = time.time()
        files = []
        n = int(a.minutes * 60 / a.interval) + 1
        for i in range(n):
            target = start + i * a.interval
            time.sleep(max(0.0, target - time.time()))
            data = urllib.request.urlopen(f"http://{addr}/debug/pprof/goroutine", timeout=10).read()
            path = os.path.join(tmp, f"g{i:04d}.pb.gz")
            with open(path, "wb") as f:
                f.write(data)
            files.append((time.time() - start, path))
            print(f"\rscraped {i + 1}/{n}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    finally:
        proc.kill()
        proc.wait()

    reported = []  # per prefix: (elapsed seconds, set of functions)
    for k in range(1, len(files) + 1):
        r = subprocess.run([a.gocost, "leaks", "--json", *[p for _, p in files[:k]]], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(r.stderr)
        reported.append((files[k - 1][0], {f["function"] for f in json.loads(r.stdout)}))
    final = reported[-1][1]
    ever = set().union(*(s for _, s in reported))
    tp = final & set(LEAKS)
    fp_final = final - set(LEAKS)
    print(f"{len(files)} scrapes every {a.interval:g} s over {a.minutes:g} min; rates x{a.rate:g}, naps {a.nap}")
    print(f"{'leak':20} {'rate/s':>7} {'detected after':>15}")
    for leak, rate in LEAKS.items():
        when = None
        for i, (t, s) in enumerate(reported):
            if all(leak in s2 for _, s2 in reported[i:]):
                when = t
                break
        print(f"{leak:20} {rate * a.rate:7.2f} {('%.0f s' % when) if when is not None else 'never':>15}")
    precision = len(tp) / len(final) if final else 1.0
    print(f"at the end: recall {len(tp)}/{len(LEAKS)}, precision {len(tp)}/{len(final)} = {precision:.2f}")
    print(f"decoys or others reported at any point: {sorted(ever - set(LEAKS)) or 'none'}")
    if fp_final:
        print(f"false positives at the end: {sorted(fp_final)}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
