#!/usr/bin/env python3
"""The query path on a busy service: one hour of CPU profiles scraped every 10 s, from the API.

  python3 scripts/bench_query.py [--go GO] [--profiles 360] [--interval 10] [--repeats 20]

1. Builds gocost (release) and makes PROFILES distinct CPU profiles from the realistic
   corpus of scripts/bench.py (60-second profiles of a generated 800-function Go service;
   each copy labelled with its minute, so merging keeps tens of thousands of samples). They
   are 60-second profiles pushed every 10 s: six times the samples of a real 10-second
   scrape, so the figures are on the heavy side.
2. Starts `gocost serve --no-demo` on 127.0.0.1 and pushes them (Pyroscope's /ingest,
   format=pprof), one every INTERVAL seconds of the last hour.
3. Asks what the UI's Explore asks, REPEATS times each, and prints p50/p95 and the answer's
   size: the flame graph whole and at the width Explore draws (1,400 px / 0.35 px = 4,000),
   the top table (nodecount=500), the timeline, and the three together in parallel (Explore
   is ready when the last one answers; drawing the cut graph takes ~10 ms more).
   Goals (issue 16): flame p95 <= 150 ms, Explore ready <= 400 ms.
"""
import argparse, concurrent.futures, json, os, shutil, socket, subprocess, sys, tempfile, time
import urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bench  # noqa: E402  (the realistic corpus)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=60):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body = r.read()
    return time.monotonic() - t0, body


def pct(v, p):
    v = sorted(v)
    return v[round((len(v) - 1) * p)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--go", default=shutil.which("go") or "go")
    ap.add_argument("--profiles", type=int, default=360)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--perf", metavar="FILE", help="record the server with `perf record -g` into FILE while the cases run")
    a = ap.parse_args()
    subprocess.check_call(["cargo", "build", "--release", "-q", "-p", "gocost", "--bin", "gocost", "--example", "bench_corpus"], cwd=ROOT)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    gocost = os.path.join(target, "release/gocost")
    seeds = bench.realistic_seeds(a.go, target, 4, 60)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus")
        subprocess.check_call([os.path.join(target, "release/examples/bench_corpus"), corpus, str(a.profiles)] + seeds)
        files = sorted(os.listdir(corpus))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        srv = subprocess.Popen([gocost, "serve", "--no-demo", "--data", os.path.join(tmp, "data"), "--listen", f"127.0.0.1:{port}",
                                "--log-level", "warn"], stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    get(base + "/metrics", timeout=2)
                    break
                except OSError:
                    time.sleep(0.1)
            now = int(time.time())
            start = now - a.profiles * a.interval
            received = 0
            for i, f in enumerate(files):
                body = open(os.path.join(corpus, f), "rb").read()
                received += len(body)
                q = urllib.parse.urlencode({"name": "busy.cpu{instance=10.0.0.1:6060}", "format": "pprof", "from": start + i * a.interval})
                req = urllib.request.Request(f"{base}/ingest?{q}", data=body, method="POST")
                with urllib.request.urlopen(req, timeout=60) as r:
                    r.read()
            print(f"pushed {len(files)} CPU profiles ({received / len(files) / 1024:.0f} KB each), one every {a.interval}s of the last "
                  f"{a.profiles * a.interval / 3600:.1f} h")
            rng = {"query": 'cpu{job="busy"}', "from": str(start - 60), "to": str(now + 60)}

            def url(path, **extra):
                return f"{base}/api/v1/{path}?" + urllib.parse.urlencode({**rng, **extra})
            cases = [
                ("flame, whole tree", url("flame")),
                ("flame, width=4000 (Explore)", url("flame", width=4000)),
                ("top, nodecount=500", url("top", nodecount=500)),
                ("timeline", url("timeline")),
            ]
            perf = None
            if a.perf:
                perf = subprocess.Popen(["perf", "record", "-q", "-g", "-o", a.perf, "-p", str(srv.pid)])
                time.sleep(0.5)
            print(f"{'request':<32}{'p50 ms':>9}{'p95 ms':>9}{'size KB':>10}  detail")
            for name, u in cases:
                get(u)  # warm
                times, body = [], b""
                for _ in range(a.repeats):
                    t, body = get(u)
                    times.append(t)
                detail = ""
                if name.startswith("flame"):
                    j = json.loads(body)
                    detail = f"{len(j['nodes']) - 1} nodes" + (f", {j['hidden']} summed" if "hidden" in j else "")
                print(f"{name:<32}{pct(times, .5) * 1e3:>9.0f}{pct(times, .95) * 1e3:>9.0f}{len(body) / 1024:>10.0f}  {detail}")
            explore = [cases[1][1], cases[2][1], cases[3][1]]
            times = []
            with concurrent.futures.ThreadPoolExecutor(3) as ex:
                for _ in range(a.repeats):
                    t0 = time.monotonic()
                    list(ex.map(get, explore))
                    times.append(time.monotonic() - t0)
            print(f"{'Explore (3 in parallel)':<32}{pct(times, .5) * 1e3:>9.0f}{pct(times, .95) * 1e3:>9.0f}")
            if perf:
                perf.send_signal(2)
                perf.wait(timeout=120)
        finally:
            srv.terminate()
            srv.wait(timeout=30)


if __name__ == "__main__":
    main()
