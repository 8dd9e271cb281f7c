#!/usr/bin/env python3
"""The supervisor's tick path in one process, without waiting for real minute boundaries.

The real Scheduler, History (SQLite in a temp dir) and Alerting, as `cronplus run` wires them,
on a real clock shifted by an offset: after each tick has started its jobs, the offset moves
the clock to 1 s before the next minute, so a tick comes every ~2 s instead of every 60 s.
Each job is a tiny C program stamping CLOCK_REALTIME when it runs; the delay of a job is its
stamp minus the tick's real instant. Side by side, two bare loops in this same process sleep to
the same kind of instant and start the same commands (the floors of a Python design): `bare`
Popen()s them and waits for each in turn, `bare-asyncio` starts them with
asyncio.create_subprocess_shell and awaits their wait()s (Python 3.11's default child watcher,
ThreadedChildWatcher: a waitpid thread per child).

CPU per run is this process's CPU (time.process_time: all threads, exited ones too) over the
ticks; "with its jobs" adds its children's (getrusage RUSAGE_CHILDREN: every job it reaped, in
microseconds), what the machine paid per run.

This is for iterating on the hot path (W2: 20 jobs, W3: 1,000 jobs per tick); the figures of
record are bench/bench_supervisor.py's, which run the real `cronplus run` (on a shifted clock).

Usage: .venv/bin/python bench/bench_tick.py [--jobs 20] [--ticks 15] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from supervised import compile_stamp, pct, read_stamps, write_crontab  # noqa: E402


class ShiftedClock:
    """The system clock plus an offset that only moves forward, between ticks."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    def lead_to_next_minute(self, lead: float = 1.0) -> float:
        """Shift so the next minute boundary is `lead` s away; returns that boundary's real time."""
        now = self.time()
        boundary = (now // 60 + 1) * 60
        if boundary - now < lead + 0.2:
            boundary += 60
        self.offset += boundary - now - lead
        return boundary - self.offset


CPU = [0.0]  # the supervisor's CPU seconds over the ticks (all threads of this process)
OWN_CPU = [0.0]  # of which this harness's polling
JOBS_CPU = [0.0]  # its jobs' CPU seconds over the ticks


def children_cpu() -> float:
    """CPU seconds of every child this process has reaped (microseconds; the jobs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def cronplus_ticks(crontab_path: Path, state: Path, stamps: Path, jobs: int, ticks: int) -> list[list[float]]:
    from cronplus.alerts.alerting import Alerting
    from cronplus.crontab.parser import load_crontab
    from cronplus.engine.scheduler import Scheduler
    from cronplus.rundir import outputs_dir
    from cronplus.store.history import History

    clock = ShiftedClock()
    clock.lead_to_next_minute(30.0)  # the supervisor starts well before its first tick
    history = History(state / "history.db")
    scheduler = Scheduler(load_crontab(crontab_path), history=history, alerting=Alerting(history),
                          log_dir=state / "logs", owner="bench", clock=clock, outputs_dir=outputs_dir(state))
    serve = asyncio.get_running_loop().create_task(scheduler.serve())
    delays: list[list[float]] = []
    seen = 0
    cpu0, jobs0 = time.process_time(), children_cpu()  # start-up (imports, parse, schema) done
    try:
        for _ in range(ticks):
            await asyncio.sleep(0.2)
            real_tick = clock.lead_to_next_minute()
            scheduler.wake()  # it slept towards the old next tick: recompute with the new offset
            deadline = time.time() + 30
            while time.time() < deadline:
                await asyncio.sleep(0.05)
                t = time.process_time()
                got = read_stamps(stamps)
                OWN_CPU[0] += time.process_time() - t  # this harness's polling, not the supervisor's
                if len(got) >= seen + jobs and not scheduler.runs:
                    break
            got = read_stamps(stamps)
            delays.append([t - real_tick for _, t in got[seen:]])
            seen = len(got)
        CPU[0] = time.process_time() - cpu0 - OWN_CPU[0]
        JOBS_CPU[0] = children_cpu() - jobs0
    finally:
        await scheduler.shutdown(5.0)
        serve.cancel()
        history.close()
    return delays


Ticks = tuple[list[list[float]], float, float]  # per tick the delays; CPU seconds; the jobs' CPU seconds


def bare_ticks(cmds: list[str], stamps: Path, ticks: int) -> Ticks:
    """The `bare` side: every second, Popen() each command, then wait for each in turn."""
    per_tick: list[list[float]] = []
    seen = 0
    cpu = jobs = 0.0
    for _ in range(ticks):
        target = time.time() + 1.0
        time.sleep(max(0.0, target - time.time()))
        t, j = time.process_time(), children_cpu()
        procs = [subprocess.Popen(c, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for c in cmds]
        for p in procs:
            p.wait()
        cpu += time.process_time() - t
        jobs += children_cpu() - j
        got = read_stamps(stamps)
        per_tick.append([t - target for _, t in got[seen:]])
        seen = len(got)
        time.sleep(1.0)
    return per_tick, cpu, jobs


async def asyncio_ticks(cmds: list[str], stamps: Path, ticks: int) -> Ticks:
    """The `bare-asyncio` side: every second, create_subprocess_shell each command back to back,
    then await their wait()s."""
    per_tick: list[list[float]] = []
    seen = 0
    cpu = jobs = 0.0
    for _ in range(ticks):
        target = time.time() + 1.0
        await asyncio.sleep(max(0.0, target - time.time()))
        t, j = time.process_time(), children_cpu()
        procs = [await asyncio.create_subprocess_shell(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                       stderr=subprocess.DEVNULL) for c in cmds]
        await asyncio.gather(*(p.wait() for p in procs))
        cpu += time.process_time() - t
        jobs += children_cpu() - j
        got = read_stamps(stamps)
        per_tick.append([t - target for _, t in got[seen:]])
        seen = len(got)
        await asyncio.sleep(1.0)
    return per_tick, cpu, jobs


def summarize(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{name}: n={len(ms)} median {statistics.median(ms):.1f} ms, p95 {pct(ms, 95):.1f} ms, max {max(ms):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20)
    ap.add_argument("--ticks", type=int, default=15)
    ap.add_argument("--profile", action="store_true", help="cProfile the cronplus side (top 25 by cumtime)")
    ap.add_argument("--sort", default="cumulative", help="the profile's order (cumulative, tottime, ...)")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        work = Path(tmp)
        stamp = compile_stamp(work)
        stamps = work / "cp.stamps"
        crontab = work / "crontab"
        write_crontab(crontab, args.jobs, f"{stamp} {stamps} {{i}}")
        state = work / "state"
        state.mkdir(mode=0o700)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        per_tick = asyncio.run(cronplus_ticks(crontab, state, stamps, args.jobs, args.ticks))
        if profiler:
            profiler.disable()
        bare_stamps = work / "bare.stamps"
        bare = bare_ticks([f"{stamp} {bare_stamps} {i}" for i in range(args.jobs)], bare_stamps, args.ticks)
        aio_stamps = work / "aio.stamps"
        aio = asyncio.run(asyncio_ticks([f"{stamp} {aio_stamps} {i}" for i in range(args.jobs)], aio_stamps, args.ticks))
    cp_all = [d for tick in per_tick for d in tick]
    floors = {"bare": bare, "bare-asyncio": aio}
    print(f"{args.jobs} jobs per tick, {args.ticks} ticks, delay from the tick to each job's stamp:")
    print("  " + summarize("cronplus    ", cp_all))
    for name, (ticks, _, _) in floors.items():
        print("  " + summarize(f"{name:<12}", [d for tick in ticks for d in tick]))
    print(f"  last start per tick, median: cronplus {statistics.median(max(t) for t in per_tick) * 1000:.1f} ms, "
          + ", ".join(f"{name} {statistics.median(max(t) for t in ticks) * 1000:.1f} ms"
                      for name, (ticks, _, _) in floors.items()))
    runs = args.jobs * args.ticks
    print(f"  CPU per run: cronplus {CPU[0] / runs * 1000:.2f} ms (from its first tick on), "
          + ", ".join(f"{name} {cpu / runs * 1000:.2f} ms (x{CPU[0] / max(cpu, 1e-9):.1f})"
                      for name, (_, cpu, _) in floors.items()))
    with_jobs = CPU[0] + JOBS_CPU[0]
    print(f"  CPU per run (with its jobs): cronplus {with_jobs / runs * 1000:.2f} ms, "
          + ", ".join(f"{name} {(cpu + jobs) / runs * 1000:.2f} ms (x{with_jobs / max(cpu + jobs, 1e-9):.2f})"
                      for name, (_, cpu, jobs) in floors.items()))
    for name, (ticks, _, _) in floors.items():
        floor = [d for tick in ticks for d in tick]
        print(f"  ratio to {name}: median x{statistics.median(cp_all) / statistics.median(floor):.2f},"
              f" p95 x{pct(cp_all, 95) / pct(floor, 95):.2f}")
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
