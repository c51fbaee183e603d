#!/usr/bin/env python3
"""`gocost load` against wrk, hey and oha on the same Go server, side by side in one run.

1. Efficiency: the most requests per second a generator drives per core of its own CPU.
   The Go test bed (testdata/go/loadbed, no delay) is pinned to one core and the generator
   to the other; each generator runs closed-loop with the same connections for the same
   time; its CPU time comes from wait4. Printed: requests/s, generator CPU seconds, requests
   per generator CPU-second, and that against gocost's. Goal (issue 14): gocost >= oha and
   >= 0.8x wrk.
3. With --memory-minutes N: gocost load's resident memory over an N-minute open-model run
   (5,000 requests/s), read every 10 s from /proc: it must stay flat (per-second HDR
   histograms, nothing kept per request). Printed: the samples, their max and the fitted
   slope.
2. Accuracy: the bed with a known latency (20 ms, plus a 1 s stall every 5 s) at a fixed
   rate: gocost's open model counts each latency from when its request was due, so the
   stall's requests wait up to a second; the analytic P99/P99.9 are printed beside gocost's,
   oha's with its latency correction and without (which under-reports the stall), and hey's
   (closed loop: hides it).

    cargo build --release -p gocost
    apt-get install wrk hey; cargo install oha        # whichever are missing are skipped
    python3 scripts/bench_load.py [--seconds 10] [--connections 64] [--memory-minutes 10]

Needs Go (`go` on PATH or $GO) to build the bed; servers listen on 127.0.0.1 only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pinned(core, cmd):
    return ["taskset", "-c", str(core)] + cmd if shutil.which("taskset") and os.cpu_count() > 1 else cmd


def run(cmd, timeout):
    """Runs cmd to the end: its exit code, stdout and stderr."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        sys.exit(f"timed out: {' '.join(cmd)}")
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def cpu_of(cmd, timeout):
    """Runs cmd: its stdout and its CPU seconds (user + sys, reaped children's times)."""
    before = os.times()
    code, out, err = run(cmd, timeout)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if code != 0:
        sys.exit(f"failed ({code}): {' '.join(cmd)}\n{err}")
    return out, cpu


def start_bed(go, args):
    d = tempfile.mkdtemp(prefix="gocost-bench-load-")
    binary = os.path.join(d, "loadbed")
    subprocess.run([go, "build", "-o", binary, "."], cwd=os.path.join(ROOT, "testdata/go/loadbed"),
                   check=True, env={**os.environ, "GOTOOLCHAIN": "local"})
    addr_file = os.path.join(d, "addr")
    p = subprocess.Popen(pinned(0, [binary] + args + ["-duration=10m", addr_file]))
    for _ in range(100):
        if os.path.exists(addr_file) and open(addr_file).read():
            return p, open(addr_file).read().strip()
        time.sleep(0.05)
    p.kill()
    sys.exit("the test bed did not start")


def parse_wrk(out):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else None


def parse_hey(out):
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else None


def oha_json_flag(oha):
    h = subprocess.run([oha, "--help"], capture_output=True, text=True).stdout
    return ["--output-format", "json"] if "--output-format" in h else ["--json"]


def efficiency(args, tools, url):
    secs, c = args.seconds, args.connections
    rows = []
    gocost = os.path.join(ROOT, "target/release/gocost")
    out, cpu = cpu_of(pinned(1, [gocost, "load", "--concurrency", str(c), "--warmup", "1s",
                                 "--duration", f"{secs}s", "--json", url]), secs + 60)
    r = json.loads(out)
    rows.append(("gocost load", r["throughput"], cpu, r["errors"]))
    if "wrk" in tools:
        out, cpu = cpu_of(pinned(1, [tools["wrk"], "-t1", f"-c{c}", f"-d{secs + 1}s", url]), secs + 60)
        rows.append(("wrk -t1", parse_wrk(out), cpu, None))
    if "oha" in tools:
        out, cpu = cpu_of(pinned(1, [tools["oha"], "-c", str(c), "-z", f"{secs + 1}s", "--no-tui"]
                                 + oha_json_flag(tools["oha"]) + [url]), secs + 60)
        j = json.loads(out)
        rows.append(("oha", j["summary"]["requestsPerSec"], cpu, None))
    if "hey" in tools:
        out, cpu = cpu_of(pinned(1, [tools["hey"], "-c", str(c), "-z", f"{secs + 1}s", url]), secs + 60)
        rows.append(("hey", parse_hey(out), cpu, None))
    ours = rows[0][1] / max(rows[0][2], 1e-9)
    print(f"\n1. Efficiency: closed loop, {c} connections, {secs} s, server on core 0, generator on core 1")
    print(f"{'generator':<14} {'req/s':>10} {'gen CPU s':>10} {'req/CPU-s':>11} {'gocost ÷ it':>12}")
    for name, rps, cpu, _ in rows:
        per = rps / max(cpu, 1e-9) if rps else float("nan")
        ratio = ours / per if per == per and per > 0 else float("nan")
        print(f"{name:<14} {rps or 0:>10.0f} {cpu:>10.2f} {per:>11.0f} {ratio:>11.2f}x")


def accuracy(args, tools, go):
    bed, addr = start_bed(go, ["-delay=20ms", "-stall=1s", "-every=5s"])
    try:
        url = f"http://{addr}/"
        rate, secs = 100, 20
        # Analytic: 20 % of the requests are due in a stall and wait U(0,1) s for its end,
        # then 20 ms; the rest take 20 ms. P99 = 0.02 + (1 - 0.01/0.2) s, P99.9 likewise.
        def q(p):
            tail = 1 - p
            return 0.02 + (1 - tail / 0.2) if tail < 0.2 else 0.02
        rows = [("analytic", q(0.99), q(0.999))]
        gocost = os.path.join(ROOT, "target/release/gocost")
        out, _ = cpu_of([gocost, "load", "--rate", str(rate), "--connections", "200", "--warmup", "1s",
                         "--duration", f"{secs}s", "--json", url], secs + 60)
        r = json.loads(out)
        rows.append(("gocost (open)", r["latency"]["p99"], r["latency"]["p999"]))
        if "oha" in tools:
            for name, extra in [("oha corrected", ["--latency-correction"]), ("oha", [])]:
                out, _ = cpu_of([tools["oha"], "-q", str(rate), "-c", "200", "-z", f"{secs}s", "--no-tui"]
                                + extra + oha_json_flag(tools["oha"]) + [url], secs + 60)
                p = json.loads(out)["latencyPercentiles"]
                rows.append((name, p.get("p99"), p.get("p99.9")))
        if "hey" in tools:
            out, _ = cpu_of([tools["hey"], "-c", "2", "-z", f"{secs}s", url], secs + 60)
            m99 = re.search(r"99% in ([\d.]+) secs", out)
            rows.append(("hey (closed)", float(m99.group(1)) if m99 else None, None))
        print(f"\n2. Accuracy: {rate} req/s for {secs} s; every request 20 ms, a 1 s stall every 5 s")
        print(f"{'tool':<16} {'P99':>10} {'P99.9':>10}")
        for name, p99, p999 in rows:
            f = lambda v: f"{v * 1000:.1f}ms" if v is not None else "—"
            print(f"{name:<16} {f(p99):>10} {f(p999):>10}")
    finally:
        bed.kill()


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def memory(minutes, go):
    bed, addr = start_bed(go, ["-delay=1ms"])
    try:
        gocost = os.path.join(ROOT, "target/release/gocost")
        secs = minutes * 60
        # The report goes to a file: a long run's JSON is more than a pipe holds.
        report = os.path.join(tempfile.mkdtemp(prefix="gocost-bench-load-"), "run.json")
        p = subprocess.Popen(pinned(1, [gocost, "load", "--rate", "5000", "--warmup", "0s",
                                        "--duration", f"{secs}s", "-o", report, f"http://{addr}/"]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        t0 = time.monotonic()
        while p.poll() is None:
            time.sleep(10)
            m = rss_mb(p.pid)
            if m is not None and p.poll() is None:
                samples.append((time.monotonic() - t0, m))
        r = json.load(open(report))
    finally:
        bed.kill()
    n = len(samples)
    if n < 3:
        print("\n3. Memory: too few samples")
        return
    mt = sum(t for t, _ in samples) / n
    mm = sum(m for _, m in samples) / n
    slope = sum((t - mt) * (m - mm) for t, m in samples) / max(sum((t - mt) ** 2 for t, _ in samples), 1e-9)
    print(f"\n3. Memory of gocost load over {minutes} min at 5,000 req/s ({r['requests']} requests, {r['errors']} errors)")
    print("RSS MiB every 10 s: " + " ".join(f"{m:.1f}" for _, m in samples))
    print(f"first {samples[0][1]:.1f} MiB, last {samples[-1][1]:.1f} MiB, max {max(m for _, m in samples):.1f} MiB, "
          f"fitted slope {slope * 60:+.3f} MiB/min")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--oha", default=shutil.which("oha"))
    ap.add_argument("--memory-minutes", type=int, default=0,
                    help="also measure gocost load's RSS over a run this long (0: skip)")
    ap.add_argument("--memory-only", action="store_true", help="only the memory measurement")
    args = ap.parse_args()
    go = os.environ.get("GO") or shutil.which("go")
    if not go:
        sys.exit("needs Go: set $GO or put go on PATH")
    if not os.path.exists(os.path.join(ROOT, "target/release/gocost")):
        sys.exit("build first: cargo build --release -p gocost")
    tools = {k: v for k, v in {"wrk": shutil.which("wrk"), "hey": shutil.which("hey"), "oha": args.oha}.items() if v}
    for t in ("wrk", "hey", "oha"):
        if t not in tools:
            print(f"skipped: {t} is not installed")
    if not args.memory_only:
        bed, addr = start_bed(go, ["-delay=0s"])
        try:
            efficiency(args, tools, f"http://{addr}/")
        finally:
            bed.kill()
        accuracy(args, tools, go)
    if args.memory_minutes > 0:
        memory(args.memory_minutes, go)


if __name__ == "__main__":
    main()
