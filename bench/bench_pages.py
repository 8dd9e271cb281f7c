"""Pages benchmark (issue 12): the HTML pages of a real `cronplus run --http 127.0.0.1:0` over a
crontab of 1,000 jobs (every tenth one `after=` the one before it, for the graph) and a history
of 1,000,000 runs; medians of requests from a client on loopback (bench_web.timed).

    .venv/bin/python bench/bench_pages.py [--rows 1000000] [--jobs 1000] [--n 20] [--db PATH]

The issue's bars: the jobs page and a job page under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_history import build  # noqa: E402
from bench_web import timed  # noqa: E402

PAGES = ("/", "/?page=5", "/?show=failing", "/jobs/job-500", "/jobs/job-500?status=failed", "/runs/500000",
         "/graph", "/timeline", "/alerts", "/static/cronplus.css")


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
        crontab.write_text("".join(
            f"# cronplus: name=job-{i:03d}{f' after=job-{i - 1:03d}' if i % 10 else ''}\n{i % 60} * * * * true\n"
            for i in range(args.jobs)))
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
            for path in PAGES:
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
