#!/usr/bin/env python3
"""`queue=` on loopback (issue 15): a real Redis broker (tests/redisserver.py), real `cronplus
worker` processes and the supervisor's Celery executor (engine/celeryexec.py) driven in-process
over a shared history (an SQLite file in a temp dir: every process is on this host).

1. Dispatch latency: from the supervisor's decision to launch (before the run's row is
   inserted) to the job's shell running on a worker (the job writes bash's $EPOCHREALTIME),
   one attempt at a time, N times: median and p95. Goal: median < 50 ms.
2. Drain: N attempts sent while no worker is up (they wait in the broker), then 2 workers
   (--concurrency 4 each) started: the time until the executor has every result, and that every
   run ran exactly once (each appends its run id to one file) on one of the two workers.
3. Worker idle: RSS and CPU of each worker over --idle seconds with nothing to do.

Usage: .venv/bin/python bench/bench_celery.py [--latency 200] [--drain 1000] [--idle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cronplus.clock import SystemClock  # noqa: E402
from cronplus.crontab.parser import parse_crontab  # noqa: E402
from cronplus.engine.celeryexec import CeleryExecutor  # noqa: E402
from cronplus.engine.executor import AttemptSpec, OutputRef  # noqa: E402
from cronplus.status import Trigger  # noqa: E402
from cronplus.store.open import open_writer  # noqa: E402
from tests.redisserver import RedisServer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def worker(tmp: Path, name: str, broker: str, db: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cronplus", "--state-dir", str(tmp / name), "worker", "--queue", "q",
                             "--broker", broker, "--db", str(db), "--host-id", name, "--concurrency", "4"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp / f"{name}.err", "w"))  # noqa: SIM115


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def spec_for(history, job, n: int) -> AttemptSpec:  # type: ignore[no-untyped-def]
    now = time.time()
    run_id = history.start_run(job=job.name, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=now, tz=None,
                               started_at=now, log_path=None, owner="bench:1:1")
    return AttemptSpec(job=job, attempt_id=run_id, attempt=1, scheduled_at=datetime.fromtimestamp(now, UTC),
                       output=OutputRef("bench", ""))


def latency(tmp: Path, executor, history, n: int, name: str = "marks") -> list[float]:  # type: ignore[no-untyped-def]
    marks = tmp / name
    marks.mkdir()
    job = parse_crontab(f"SHELL=/bin/bash\n# cronplus: name=lat queue=q\n* * * * * echo $EPOCHREALTIME > {marks}/$CRONPLUS_RUN_ID\n",
                        path="bench", system=False).jobs[0]
    out = []
    for i in range(n):
        t0 = time.time()
        spec = spec_for(history, job, i)
        executor.start(spec)
        mark = marks / str(spec.attempt_id)
        wait_for(lambda mark=mark: mark.exists() and mark.stat().st_size > 0, 30, "the job to start")
        out.append(float(mark.read_text()) - t0)
    return out


def local_baseline(tmp: Path, history, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    """The same measure through the local executor (the job's process on the supervisor's host)."""
    from cronplus.engine.local import LocalExecutor

    local = LocalExecutor(tmp / "local-logs", host="bench", clock=SystemClock())

    class Run:  # LocalExecutor.start needs the spec's output path
        def start(self, spec: AttemptSpec):  # type: ignore[no-untyped-def]
            import dataclasses

            return local.start(dataclasses.replace(spec, output=local.output_for(spec.job.name, spec.attempt_id)))

    return latency(tmp, Run(), history, n, "local-marks")


async def await_all(attempts) -> None:  # type: ignore[no-untyped-def]
    await asyncio.gather(*(a.result() for a in attempts))


def cpu_rss(pid: int) -> tuple[float, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=int, default=200)
    ap.add_argument("--drain", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker_server = RedisServer(tmp / "redis", "redis-server")
        broker_server.start()
        broker = broker_server.url(0)
        db = tmp / "history.db"
        history = open_writer(db, host="bench")
        executor = CeleryExecutor(history, broker=broker, host="bench", clock=SystemClock())
        executor.connect()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            procs.append(worker(tmp, "w1", broker, db))
            wait_for(lambda: b"cronplus worker" in (tmp / "w1.err").read_bytes(), 60, "worker w1")
            time.sleep(1.0)
            lat = sorted(latency(tmp, executor, history, args.latency))
            p95 = lat[int(len(lat) * 0.95) - 1]
            print(f"dispatch latency, {len(lat)} attempts one at a time: median {statistics.median(lat) * 1000:.1f} ms,"
                  f" p95 {p95 * 1000:.1f} ms, min {lat[0] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
            base = sorted(local_baseline(tmp, history, args.latency))
            print(f"baseline, the local executor, same job, same run: median {statistics.median(base) * 1000:.1f} ms,"
                  f" p95 {base[int(len(base) * 0.95) - 1] * 1000:.1f} ms")
            procs.pop().terminate()
            time.sleep(2)

            ran = tmp / "ran"
            job = parse_crontab(f"# cronplus: name=drain queue=q\n* * * * * echo $CRONPLUS_RUN_ID >> {ran}\n",
                                path="bench", system=False).jobs[0]
            sent = time.perf_counter()
            attempts = [executor.start(spec_for(history, job, i)) for i in range(args.drain)]
            send_s = time.perf_counter() - sent
            started = time.perf_counter()
            procs += [worker(tmp, "d1", broker, db), worker(tmp, "d2", broker, db)]
            asyncio.run(await_all(attempts))
            drain_s = time.perf_counter() - started
            ids = [int(x) for x in ran.read_text().split()]
            hosts: dict[str, int] = {}
            for a in attempts:
                assert a.done is not None and a.done.exit_code == 0, a.done
                hosts[a.done.host or "?"] = hosts.get(a.done.host or "?", 0) + 1
            expected = sorted(a.run_id for a in attempts)
            print(f"drain: {args.drain} attempts sent in {send_s:.2f}s ({send_s / args.drain * 1000:.2f} ms each) with no"
                  f" worker up, then 2 workers x 4 threads (start-up included) drained them in {drain_s:.1f}s;"
                  f" ran exactly once each: {sorted(ids) == expected} (lines {len(ids)}), per worker {hosts}")

            before = {p.pid: cpu_rss(p.pid) for p in procs}
            time.sleep(args.idle)
            for p in procs:
                cpu0, _ = before[p.pid]
                cpu1, rss = cpu_rss(p.pid)
                print(f"worker pid {p.pid} idle {args.idle:g}s: CPU {cpu1 - cpu0:.2f}s"
                      f" ({(cpu1 - cpu0) / args.idle * 100:.1f}%), RSS {rss / 2**20:.1f} MiB")
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(30)
            history.close()
            broker_server.stop()


if __name__ == "__main__":
    main()
