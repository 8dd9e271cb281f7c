#!/usr/bin/env python3
"""The supervisor's tick path in one process, without waiting for real minute boundaries.

The real Scheduler, History (SQLite in a temp dir) and Alerting, as `cronplus run` wires them,
on a real clock shifted by an offset: after each tick has started its jobs, the offset moves
the clock to 1 s before the next minute, so a tick comes every ~2 s instead of every 60 s.
Each job is a tiny C program stamping CLOCK_REALTIME when it runs; the delay of a job is its
stamp minus the tick's real instant. Side by side, a bare loop in this same process sleeps to
the same kind of instant and Popen()s the same commands (the floor of a Python design).

This is for iterating on the hot path (W2: 20 jobs, W3: 1,000 jobs per tick); the figures of
record are bench/bench_supervisor.py's, which run the real `cronplus run` (on a shifted clock).

Usage: .venv/bin/python bench/bench_tick.py [--jobs 20] [--ticks 15] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
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


async def cronplus_ticks(crontab_path: Path, state: Path, stamps: Path, jobs: int, ticks: int) -> list[list[float]]:
    from cronplus.alerts.alerting import Alerting
    from cronplus.crontab.parser import load_crontab
    from cronplus.engine.scheduler import Scheduler
    from cronplus.store.history import History

    clock = ShiftedClock()
    clock.lead_to_next_minute(30.0)  # the supervisor starts well before its first tick
    history = History(state / "history.db")
    scheduler = Scheduler(load_crontab(crontab_path), history=history, alerting=Alerting(history),
                          log_dir=state / "logs", owner="bench", clock=clock)
    serve = asyncio.get_running_loop().create_task(scheduler.serve())
    delays: list[list[float]] = []
    seen = 0
    cpu0 = time.process_time()  # start-up (imports, parse, schema) done
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
    finally:
        await scheduler.shutdown(5.0)
        serve.cancel()
        history.close()
    return delays


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
        bare_cmds = [f"{stamp} {bare_stamps} {i}" for i in range(args.jobs)]
        bare_per_tick: list[list[float]] = []
        seen = 0
        bare_cpu = 0.0
        for _ in range(args.ticks):
            target = time.time() + 1.0
            time.sleep(max(0.0, target - time.time()))
            t = time.process_time()
            procs = [subprocess.Popen(c, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for c in bare_cmds]
            for p in procs:
                p.wait()
            bare_cpu += time.process_time() - t
            got = read_stamps(bare_stamps)
            bare_per_tick.append([t - target for _, t in got[seen:]])
            seen = len(got)
            time.sleep(1.0)
    cp_all = [d for tick in per_tick for d in tick]
    bare_all = [d for tick in bare_per_tick for d in tick]
    print(f"{args.jobs} jobs per tick, {args.ticks} ticks, delay from the tick to each job's stamp:")
    print("  " + summarize("cronplus", cp_all))
    print("  " + summarize("bare    ", bare_all))
    print(f"  last start per tick, median: cronplus {statistics.median(max(t) for t in per_tick) * 1000:.1f} ms,"
          f" bare {statistics.median(max(t) for t in bare_per_tick) * 1000:.1f} ms")
    runs = args.jobs * args.ticks
    print(f"  CPU per run: cronplus {CPU[0] / runs * 1000:.2f} ms (from its first tick on), bare {bare_cpu / runs * 1000:.2f} ms"
          f" (x{CPU[0] / max(bare_cpu, 1e-9):.1f})")
    print(f"  ratio: median x{statistics.median(cp_all) / statistics.median(bare_all):.2f},"
          f" p95 x{pct(cp_all, 95) / pct(bare_all, 95):.2f}")
    if profiler:
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
