#!/usr/bin/env python3
"""Detection and false-positive rates of gocost's regression finder (/api/v1/regressions).

Builds testdata/go/regress three ways: A (version 1.0), SLOW (`-tags slow`: main.checksum
does 30% more work, version 1.1) and A2 (identical code to A, version 1.1, so a different
build ID). Each trial is one service scraped by `gocost serve` (CPU profiles of --window
seconds every --interval seconds) that is restarted on its address as another build once
--profiles profiles of the first are stored; the change is judged when --profiles profiles
of the new build are (not counting the first after the restart), with max_profiles=--profiles
so every trial compares the same amount of data. Trial kinds:

    slow    A -> SLOW   must report main.checksum, and nothing else
    same    A -> A2     must report nothing
    faster  SLOW -> A2  must report nothing (a function that got faster makes the others'
                        shares grow; gocost also asks their CPU per second to grow)

One trial of each kind runs at a time, side by side, under one `gocost serve`.

    cargo build -p gocost         # or --release, and --gocost target/release/gocost
    python3 scripts/regress_eval.py [--trials 5 --kinds slow,same --profiles 12]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BED = os.path.join(ROOT, "testdata/go/regress")
SLOWED = "main.checksum"
PLAN = {"slow": ("a", "slow"), "same": ("a", "a2"), "faster": ("slow", "a2")}


def build(go, out, version, tags=""):
    subprocess.run([go, "build", "-tags", tags, f"-ldflags=-X main.version={version}", "-o", out, "."],
                   cwd=BED, check=True)


def start_bed(binary, addr, addr_file, bed_args):
    if os.path.exists(addr_file):
        os.remove(addr_file)
    p = subprocess.Popen([binary, f"-addr={addr}", "-duration=30m", *bed_args, addr_file],
                         stdout=subprocess.DEVNULL)
    for _ in range(400):
        if os.path.exists(addr_file) and open(addr_file).read():
            return p, open(addr_file).read().strip()
        time.sleep(0.05)
    p.kill()
    sys.exit(f"{binary} did not start")


def start_gocost(gocost, config, data):
    p = subprocess.Popen([gocost, "serve", "--listen", "127.0.0.1:0", "--config", config, "--data", data],
                         stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r"serving on http://(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, m.group(1)
    sys.exit("gocost serve did not start")


def regressions(api, n):
    q = urllib.parse.urlencode({"query": "cpu", "from": "now-30m", "max_profiles": n, "min_profiles": n})
    try:
        with urllib.request.urlopen(f"http://{api}/api/v1/regressions?{q}", timeout=60) as r:
            return {s["labels"]["job"]: s for s in json.load(r)}
    except OSError:
        return {}


def wait(what, timeout, f):
    t = time.time()
    while True:
        v = f()
        if v:
            return v
        if time.time() - t > timeout:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(1)


def run_round(a, bins, kinds, rnd, tmp):
    beds, jobs = {}, []
    for k in kinds:
        job = f"{k}{rnd}"
        p, addr = start_bed(bins[PLAN[k][0]], "127.0.0.1:0", os.path.join(tmp, f"addr-{job}"), a.bed_args)
        beds[job] = (k, p, addr)
        jobs.append(f'[[scrape]]\njob = "{job}"\ntargets = ["{addr}"]\ninterval = "{a.interval}s"\n'
                    f'cpu_window = "{a.window}s"\nprofiles = ["cpu"]\n')
    config = os.path.join(tmp, f"gocost-{rnd}.toml")
    open(config, "w").write("\n".join(jobs))
    gocost, api = start_gocost(a.gocost, config, os.path.join(tmp, f"data-{rnd}"))
    out = {}
    try:
        n = a.profiles
        wait("profiles before the change", 20 * n * a.interval,
             lambda: (lambda s: len(s) == len(beds) and all(x["profiles"] >= n for x in s.values()))(
                 regressions(api, n)))
        for job, (k, p, addr) in list(beds.items()):
            p.kill()
            p.wait()
            q, _ = start_bed(bins[PLAN[k][1]], addr, os.path.join(tmp, f"addr-{job}"), a.bed_args)
            beds[job] = (k, q, addr)

        def judged():
            s = regressions(api, n)
            ok = len(s) == len(beds) and all(
                len(x["changes"]) == 1 and x["changes"][0]["after_profiles"] >= n for x in s.values())
            return s if ok else None

        s = wait("profiles after the change", 20 * n * a.interval, judged)
        for job, (k, _, _) in beds.items():
            c = s[job]["changes"][0]
            out[job] = (k, c)
    finally:
        gocost.kill()
        gocost.wait()
        for _, p, _ in beds.values():
            p.kill()
            p.wait()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--kinds", default="slow,same")
    ap.add_argument("--profiles", type=int, default=12, help="CPU profiles per side")
    ap.add_argument("--interval", type=int, default=2)
    ap.add_argument("--window", type=int, default=2)
    ap.add_argument("--bed-args", default="-rate=0 -workers=2", help="arguments of each test-bed process")
    ap.add_argument("--gocost", default=os.path.join(ROOT, "target/debug/gocost"))
    ap.add_argument("--go", default=shutil.which("go") or "go")
    a = ap.parse_args()
    a.bed_args = a.bed_args.split()
    kinds = [k for k in a.kinds.split(",") if k]
    for k in kinds:
        if k not in PLAN:
            sys.exit(f"unknown kind {k} ({', '.join(PLAN)})")
    tmp = tempfile.mkdtemp(prefix="gocost-regress-eval-")
    bins = {n: os.path.join(tmp, n) for n in ("a", "slow", "a2")}
    build(a.go, bins["a"], "1.0")
    build(a.go, bins["slow"], "1.1", "slow")
    build(a.go, bins["a2"], "1.1")
    results = {k: [] for k in kinds}
    for rnd in range(a.trials):
        t = time.time()
        for job, (k, c) in sorted(run_round(a, bins, kinds, rnd, tmp).items()):
            found = [(r["function"], r["change"], r["p_adjusted"]) for r in c["regressions"]]
            results[k].append([f for f, _, _ in found])
            shown = ", ".join(f"{f} {ch:+.0%} p={p:.2g}" for f, ch, p in found) or "nothing"
            aside = [f"{r['function']} {r['change']:+.0%} (cores {r['before_cores']:.2f}->{r['after_cores']:.2f})"
                     for r in c.get("share_only", [])]
            if aside:
                shown += f"; share only: {', '.join(aside)}"
            print(f"trial {rnd + 1} {k:6}: {c['before_profiles']}+{c['after_profiles']} profiles: {shown}",
                  flush=True)
        print(f"  ({time.time() - t:.0f} s)", file=sys.stderr, flush=True)
    print(f"\n{a.trials} trials per kind; {a.profiles} CPU profiles of {a.window} s per side "
          f"(every {a.interval} s); test beds {' '.join(a.bed_args)}")
    for k, runs in results.items():
        if k == "slow":
            hit = sum(SLOWED in r for r in runs)
            extra = sum(any(f != SLOWED for f in r) for r in runs)
            print(f"slow   (A -> SLOW):  {SLOWED} found in {hit}/{len(runs)}; "
                  f"another function flagged in {extra}/{len(runs)}")
        else:
            fp = sum(bool(r) for r in runs)
            print(f"{k:6} ({' -> '.join(PLAN[k]).upper()}): flagged anything in {fp}/{len(runs)}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
