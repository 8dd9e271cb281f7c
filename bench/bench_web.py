"""Web benchmark (issue 12): a real `cronplus run --http 127.0.0.1:0` over a crontab of 1,000 jobs
and a history of 1,000,000 runs; medians of requests from a client on loopback.

    .venv/bin/python bench/bench_web.py [--rows 1000000] [--jobs 1000] [--n 20] [--db PATH]

Prints the median and max milliseconds of GET /api/v1/jobs, /api/v1/jobs/NAME, /api/v1/runs
(a page of 50), a job's runs, /metrics (twice: the first scrape reads each job's last success
from history) and /healthz. The issue's bars: jobs under 100 ms, /metrics under 50 ms.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_history import build  # noqa: E402


def timed(host: str, port: int, path: str, n: int) -> tuple[float, float]:
    took = []
    for _ in range(n):
        conn = http.client.HTTPConnection(host, port, timeout=60)
        began = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        took.append((time.perf_counter() - began) * 1000)
        conn.close()
        assert response.status == 200, (path, response.status)
    return statistics.median(took), max(took)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--db", type=Path, default=None, help="a history built before (bench_history --db), reused")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir(mode=0o700)
        if args.db is not None:
            (state / "history.db").symlink_to(args.db.resolve())
        else:
            print(f"building {args.rows} runs of {args.jobs} jobs ...", flush=True)
            built = build(state / "history.db", rows=args.rows, jobs=args.jobs, days=90, now=time.time())
            print(f"  built in {built:.1f}s")
        crontab = Path(tmp) / "crontab"
        crontab.write_text("".join(f"# cronplus: name=job-{i:03d}\n{i % 60} * * * * true\n" for i in range(args.jobs)))
        err = open(Path(tmp) / "err", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(state),
                                 "run", "--http", "127.0.0.1:0", "--max-runs-per-job", "0", "--max-age", "0"],
                                stderr=err, stdout=subprocess.DEVNULL)
        try:
            address = state / "http.address"
            deadline = time.monotonic() + 120
            while not address.exists():
                assert proc.poll() is None and time.monotonic() < deadline, (Path(tmp) / "err").read_text()
                time.sleep(0.1)
            host, port = address.read_text().strip().removeprefix("http://").rsplit(":", 1)
            print(f"{'request':40} {'median ms':>10} {'max ms':>8}")
            for path in ("/metrics", "/metrics", "/api/v1/jobs", "/api/v1/jobs/job-500", "/api/v1/runs",
                         "/api/v1/runs?job=job-500", "/api/v1/runs?status=failed&since=-1d", "/healthz"):
                median, worst = timed(host, int(port), path, args.n)
                print(f"{path:40} {median:10.1f} {worst:8.1f}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            err.close()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
