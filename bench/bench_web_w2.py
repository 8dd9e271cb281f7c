"""W2 with the web server on (issue 12): the start delay of 20 `* * * * *` jobs, cronplus without
--http, then with --http and a client polling the jobs page `/` and `/api/v1/jobs` every second;
one supervisor at a time. The issue's bar: within 1.1x of W2 without it.

    .venv/bin/python bench/bench_web_w2.py [--minutes 3] [--http-first]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_supervisor import (  # noqa: E402
    ROOT,
    compile_stamp,
    pct,
    read_stamps,
    stop,
    wait_for_boundary,
    write_crontab,
)


def start(work: Path, crontab: Path, tag: str, http: bool) -> subprocess.Popen[bytes]:
    state = work / f"state-{tag}"
    extra = ["--http", "127.0.0.1:0"] if http else []
    proc = subprocess.Popen([str(ROOT / ".venv/bin/cronplus"), "--crontab", str(crontab), "--state-dir", str(state),
                             "run", *extra], stdout=subprocess.DEVNULL,
                            stderr=open(work / f"cronplus-{tag}.err", "w"))  # noqa: SIM115
    ready = state / ("http.address" if http else "control.sock")
    deadline = time.time() + 15
    while not ready.exists():
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit(f"cronplus did not start: {(work / f'cronplus-{tag}.err').read_text()}")
        time.sleep(0.05)
    return proc


def poll(address: str, stop_event: threading.Event, counts: dict[int, int]) -> None:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    while not stop_event.wait(1.0):
        for path in ("/", "/api/v1/jobs"):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                conn.request("GET", path)
                status = conn.getresponse().status
                counts[status] = counts.get(status, 0) + 1
            except OSError:
                counts[-1] = counts.get(-1, 0) + 1
            finally:
                conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=3)
    ap.add_argument("--http-first", action="store_true", help="run the --http supervisor first (order effects)")
    args = ap.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stamp = compile_stamp(work)
        counts: dict[int, int] = {}
        order = [("plain", False), ("http", True)]
        for tag, web in (order[::-1] if args.http_first else order):
            out = work / f"w2.{tag}.stamps"
            crontab = work / f"w2-{tag}.crontab"
            write_crontab(crontab, 20, f"{stamp} {out} {{i}}")
            wait_for_boundary(5)
            proc = start(work, crontab, tag, web)
            done = threading.Event()
            poller = None
            if web:
                address = (work / f"state-{tag}" / "http.address").read_text().strip()
                poller = threading.Thread(target=poll, args=(address, done, counts), daemon=True)
                poller.start()
            first_minute = (time.time() // 60 + 1) * 60
            time.sleep(max(0.0, first_minute + 60 * (args.minutes - 1) + 5 - time.time()))
            done.set()
            if poller is not None:
                poller.join()
            stop(proc)
            results[tag] = [t - (t // 60) * 60 for _, t in read_stamps(out)]
    print(f"W2 start delay, 20 jobs * * * * *, {args.minutes} minute(s) each (requests answered: {counts}):")
    for tag in ("plain", "http"):
        d = results[tag]
        print(f"  {tag:6}: n={len(d)} median {statistics.median(d) * 1000:.1f} ms, p95 {pct(d, 95) * 1000:.1f} ms,"
              f" max {max(d) * 1000:.1f} ms")
    print(f"  ratio http/plain: median x{statistics.median(results['http']) / statistics.median(results['plain']):.2f},"
          f" p95 x{pct(results['http'], 95) / pct(results['plain'], 95):.2f}")


if __name__ == "__main__":
    main()
