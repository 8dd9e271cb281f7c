#!/usr/bin/env python3
"""Queued runs in a pool of 1 drain in linear time (issue 13: "1,000 queued runs in a pool of 1
drain without O(n^2) work").

Two measures, each at growing N, so that a quadratic term shows as a per-run cost that grows:

1. engine/pools.Pools alone: N runs of N jobs queued behind one holder in a pool of 1, then the
   slot freed N times (each grant lets the next in); with `positions()` (what the control
   socket's status asks) once per 100 grants. The bookkeeping the scheduler does per run.
2. The real Scheduler, driven by its serve() loop (a step on every run end, as `cronplus run`),
   over a real History (SQLite in a temp dir) and real processes (`true`): N jobs in a pool of 1
   triggered at once, the time until the last is final, against the same
   N jobs with no pool run one after another by a bare loop of Popen().wait() (the floor).

3. The same with attempts that end as soon as they start (an executor running nothing): the
   supervisor's own work per run, at N up to 8,000, where a quadratic term cannot hide.

Usage: .venv/bin/python bench/bench_pools.py [--sizes 1000,2000,4000] [--real 250,500,1000]
       [--instant 1000,2000,4000,8000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cronplus.clock import SystemClock  # noqa: E402
from cronplus.crontab.parser import parse_crontab  # noqa: E402
from cronplus.engine.dagrun import Run, utc  # noqa: E402
from cronplus.engine.executor import AttemptResult, AttemptSpec, OutputRef  # noqa: E402
from cronplus.engine.pools import Pools  # noqa: E402
from cronplus.engine.runstate import RunState  # noqa: E402
from cronplus.status import Trigger  # noqa: E402


def crontab(n: int, pool: bool) -> str:
    head = "# cronplus-pools: one=1\n" if pool else ""
    return head + "".join(f"# cronplus: name=j{i}{' pool=one' if pool else ''}\n0 0 1 1 * true\n" for i in range(n))


def bookkeeping(n: int) -> float:
    """Seconds per queued run: queue n behind a holder, then free the slot n times."""
    jobs = parse_crontab(crontab(n + 1, True), path="bench", system=False).jobs
    pools = Pools({"one": 1}, clock=SystemClock(), start=lambda run: None, record_wait=lambda run, s: None,
                  stopping=lambda: False)
    runs = [Run(job, utc(0), Trigger.MANUAL) for job in jobs]
    started = time.perf_counter()
    for run in runs:
        if pools.take(run):
            run.state = RunState.RUNNING
        else:
            run.state = RunState.POOLED
    holder = runs[0]
    granted = 0
    while True:
        holder.state = RunState.FINAL
        pools.moved(holder, RunState.RUNNING)  # frees the slot; grant() lets the next one in
        nxt = [r for r in pools.holding if r.state is RunState.POOLED]
        if not nxt:
            break
        holder = nxt[0]
        holder.state = RunState.RUNNING
        pools.moved(holder, RunState.POOLED)
        granted += 1
    assert granted == n, granted
    return (time.perf_counter() - started) / n


def positions(n: int) -> float:
    """Seconds for one positions() (the control socket's status) with n runs queued."""
    jobs = parse_crontab(crontab(n + 1, True), path="bench", system=False).jobs
    pools = Pools({"one": 1}, clock=SystemClock(), start=lambda run: None, record_wait=lambda run, s: None,
                  stopping=lambda: False)
    for job in jobs:
        run = Run(job, utc(0), Trigger.MANUAL)
        run.state = RunState.RUNNING if pools.take(run) else RunState.POOLED
    started = time.perf_counter()
    shown = pools.positions()
    assert len(shown) == n
    return time.perf_counter() - started


class Instant:
    """An attempt that has ended as soon as it starts (exit 0): no process, so that the drain's
    figure is the supervisor's own work per run (scheduler, pools, SQLite), where a term that
    grows with the queue is not hidden under the spawns' cost and noise."""

    def __init__(self, started_at: float) -> None:
        self.pid: int | None = None
        self.started_at = started_at

    async def result(self) -> AttemptResult:
        return AttemptResult(exit_code=0, signal=None, timed_out=False, cancelled=False, started_at=self.started_at,
                             ended_at=self.started_at, pid=None, output_bytes=0, truncated=False)

    def cancel(self) -> None: ...
    def kill(self) -> None: ...
    def abandon(self) -> None: ...


class InstantExecutor:
    host = "bench"

    def output_for(self, job: str, attempt_id: int) -> OutputRef:
        return OutputRef(self.host, f"/nonexistent/{job}/{attempt_id}.log")

    def start(self, spec: AttemptSpec) -> Instant:
        return Instant(time.time())


async def drain(n: int, tmp: Path, *, spawn: bool = True) -> tuple[float, float]:
    """Seconds from triggering n pooled jobs until the last one is final (real processes), and
    the supervisor's CPU seconds meanwhile (less noisy than the wall time on a shared machine:
    a quadratic term shows there first)."""
    from cronplus.engine.scheduler import Scheduler
    from cronplus.store.history import History

    tab = parse_crontab(crontab(n, True), path=str(tmp / "crontab"), system=False)
    history = History(tmp / f"history-{n}-{spawn}.db")
    sched = Scheduler(tab, history=history, alerting=None, log_dir=tmp / f"logs-{n}", owner="bench",
                      executor=None if spawn else InstantExecutor())
    sched.scheduling = False  # no ticks: the driver steps on every run end, as `cronplus run` does
    driver = asyncio.get_running_loop().create_task(sched.serve())
    await asyncio.sleep(0)
    started, cpu = time.perf_counter(), time.process_time()
    for job in tab.jobs:
        sched.trigger(job.name)
    await sched.wait_idle()
    took, cpu = time.perf_counter() - started, time.process_time() - cpu
    await sched.shutdown(1.0)
    await driver
    done = history.conn.execute("SELECT count(*) FROM runs WHERE status = 'success'").fetchone()[0]
    assert done == n, done
    history.close()
    return took, cpu


def bare(n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        subprocess.Popen(["/bin/sh", "-c", "true"], stdin=subprocess.DEVNULL).wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,2000,4000,8000")
    parser.add_argument("--real", default="250,500,1000")
    parser.add_argument("--instant", default="1000,2000,4000,8000")
    args = parser.parse_args()
    print("Pools bookkeeping, pool of 1 (per queued run: take, then grant when the slot frees):")
    for n in map(int, args.sizes.split(",")):
        print(f"  N={n:6d}: {bookkeeping(n) * 1e6:7.2f} us/run; one positions() (status) with N queued: "
              f"{positions(n) * 1e3:6.2f} ms")
    print("Real scheduler + SQLite, attempts that end at once (no process), N jobs in a pool of 1, until all final:")
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.instant.split(",")):
            took, cpu = asyncio.run(drain(n, Path(tmp), spawn=False))
            print(f"  N={n:5d}: {took:6.2f} s ({took / n * 1e3:5.2f} ms/run, CPU {cpu / n * 1e3:5.2f} ms/run)", flush=True)
    print("Real scheduler + SQLite + processes, N jobs in a pool of 1, triggered at once, until all final:")
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, args.real.split(",")):
            took, cpu = asyncio.run(drain(n, Path(tmp)))
            floor = bare(n)
            print(f"  N={n:5d}: {took:6.2f} s ({took / n * 1e3:5.2f} ms/run, supervisor CPU {cpu / n * 1e3:5.2f} ms/run); "
                  f"bare Popen().wait() one by one: {floor:5.2f} s ({floor / n * 1e3:5.2f} ms/run)", flush=True)


if __name__ == "__main__":
    main()
