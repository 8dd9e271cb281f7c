#!/usr/bin/env python3
"""Restart after a kill -9 with N jobs running: how long the new supervisor takes to stop the
leftovers and be ready (control socket up, READY=1 sent just before), and how many survive.

The real `cronplus run` (tests/shifted_run.py: its clock shifted so a `* * * * *` tick of N jobs
comes a few seconds after start), killed with SIGKILL once every run has its row and pid, then
started again on the same state dir.

Usage: .venv/bin/python bench/bench_restart.py [--jobs 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(work: Path, offset: float, tag: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.shifted_run", repr(offset), "--crontab", str(work / "crontab"),
         "--state-dir", str(work / "state"), "run"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / f"{tag}.err", "w"))  # noqa: SIM115


def ready(work: Path, proc: subprocess.Popen[bytes], timeout: float) -> float:
    from cronplus.service import control

    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"supervisor exited: {(work / 'b.err').read_text()[-2000:]}")
        with contextlib.suppress(control.NoSupervisor, StopIteration, OSError):
            next(control.request(work / "state" / "control.sock", {"cmd": "status"}))
            return time.monotonic() - began
        time.sleep(0.02)
    raise SystemExit("supervisor not ready")


def running_with_pid(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT count(*) FROM runs WHERE status = 'running' AND pid IS NOT NULL").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def marked(marker: bytes) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if marker in Path(f"/proc/{name}/environ").read_bytes():
                    pids.append(int(name))
            except OSError:
                pass
    return pids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2000)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp:
        work = Path(tmp)
        marker = f"BENCH_RESTART={work}"
        lines = [marker]
        for i in range(args.jobs):
            lines += [f"# cronplus: name=j{i:04d}", "* * * * * sleep 600"]
        (work / "crontab").write_text("\n".join(lines) + "\n")
        now = time.time()
        offset = (now // 60 + 2) * 60 - 8.0 - now
        a = start(work, offset, "a")
        b: subprocess.Popen[bytes] | None = None
        try:
            began = time.monotonic()
            while running_with_pid(work / "state" / "history.db") < args.jobs:
                if a.poll() is not None or time.monotonic() - began > 120:
                    raise SystemExit(f"the burst did not start: {(work / 'a.err').read_text()[-2000:]}")
                time.sleep(0.2)
            a.kill()
            a.wait()
            left = marked(marker.encode())
            b = start(work, offset, "b")
            took = ready(work, b, 900)
            survivors = marked(marker.encode())
            log = (work / "b.err").read_text()
            sweep = re.search(r"leftovers of (\d+) run\(s\) stopped in ([\d.]+)s", log)
            print(f"{args.jobs} runs, {len(left)} job processes left by the kill -9:")
            print(f"  restart ready after {took:.2f} s" + (f" (sweep {sweep[2]} s for {sweep[1]} runs)" if sweep else ""))
            print(f"  job processes still running after the restart: {len(survivors)}")
            b.send_signal(signal.SIGTERM)
            b.wait(60)
        finally:
            for proc in (a, b):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for pid in marked(marker.encode()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
