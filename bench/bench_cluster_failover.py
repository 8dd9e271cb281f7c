#!/usr/bin/env python3
"""Failover of a cluster: the time from a host's death (kill -9) to its running runs taken over
by another host (recorded `interrupted`, their retries started there), and the ticks lost.

Two real `cronplus run` (tests/shifted_run.py) on one throw-away PostgreSQL server
(tests/pgserver.py), --lease L. Host a reaches the tick of N jobs in a few seconds (each sleeps
on its first attempt, retries=1 retry-delay=0s); host b's clock is 50 s behind, so whatever b
runs of that tick it runs because it took it over. Once every run of a has its row and pid, a is
killed; the bench polls the runs table every 10 ms.

Goal (issue 14): taken over within lease + at most 5 s; ticks lost = 0 (every run of the tick
ends recorded: interrupted by b, then its retry on b).

Usage: .venv/bin/python bench/bench_cluster_failover.py [--jobs 20] [--lease 3s] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BEHIND = 50.0


def supervisor(work: Path, name: str, offset: float, url: str, lease: str) -> subprocess.Popen[bytes]:
    (work / name).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.shifted_run", repr(offset), "--crontab", str(work / "crontab"),
         "--state-dir", str(work / name / "state"), "run", "--db", url, "--host-id", name, "--lease", lease],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.err", "w"))  # noqa: SIM115


def rows(url: str) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        try:
            return conn.execute("SELECT job, attempt, status, host, pid FROM runs ORDER BY run_id").fetchall()
        except psycopg.errors.UndefinedTable:  # no supervisor has made the tables yet
            return []


def wait(what: str, predicate: Any, timeout: float, every: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(every)
    raise SystemExit(f"timed out waiting for {what}")


def one_round(work: Path, url: str, jobs: int, lease: float, lease_text: str) -> dict[str, float]:
    from tests.test_faults_restart import offset_to_next_minute

    work.mkdir()
    ran = work / "ran"
    ran.mkdir()
    offset, tick = offset_to_next_minute(lead=10.0)
    minute = time.localtime(tick).tm_min
    (work / "crontab").write_text("".join(
        f"# cronplus: name=job{i:03d} retries=1 retry-delay=0s kill-grace=1s\n"
        f"{minute} * * * * echo $$ > {ran}/$CRONPLUS_RUN_ID; if [ $CRONPLUS_ATTEMPT = 1 ]; then exec sleep 300; fi\n"
        for i in range(jobs)))
    a = supervisor(work, "a", offset, url, lease_text)
    b = supervisor(work, "b", offset - BEHIND, url, lease_text)
    try:
        wait("every run of host a to have its pid",
             lambda: len([r for r in rows(url) if r["host"] == "a" and r["pid"]]) == jobs, 60)
        pids = [int(p.read_text()) for p in ran.iterdir()]
        killed = time.monotonic()
        a.kill()
        a.wait()
        wait("the take-over", lambda: all(r["status"] != "running" for r in rows(url) if r["host"] == "a"), lease + 60)
        taken = time.monotonic() - killed
        wait("the retries", lambda: len([r for r in rows(url) if r["host"] == "b" and r["status"] == "success"]) == jobs, 60)
        retried = time.monotonic() - killed
        final = rows(url)
        lost = jobs - len({r["job"] for r in final if r["host"] == "b" and r["attempt"] == 2 and r["status"] == "success"})
        twice = len(final) - 2 * jobs
        return {"taken_s": taken, "retried_s": retried, "lost": lost, "extra_rows": twice}
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for pid in locals().get("pids", []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main() -> int:
    from cronplus.crontab.annotations import parse_duration
    from tests.pgserver import start_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--lease", default="3s")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lease = parse_duration(args.lease)
    with tempfile.TemporaryDirectory(prefix="cronplus-failover-") as tmp:
        server = start_server(Path(tmp) / "pg")
        try:
            results = []
            for n in range(args.rounds):
                url = server.url(schema=server.new_schema())
                got = one_round(Path(tmp) / f"round{n}", url, args.jobs, lease, args.lease)
                results.append(got)
                print(f"round {n + 1}: {args.jobs} running run(s) of the dead host taken over {got['taken_s']:.2f}s"
                      f" after its kill -9 (lease {lease:g}s), retried on the other by {got['retried_s']:.2f}s;"
                      f" ticks lost {got['lost']}, extra rows {got['extra_rows']}")
        finally:
            server.stop()
    taken = [r["taken_s"] for r in results]
    print(f"take-over after the kill: median {statistics.median(taken):.2f}s, max {max(taken):.2f}s"
          f" (goal: lease {lease:g}s + at most 5s = {lease + 5:g}s); ticks lost {sum(r['lost'] for r in results):g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
