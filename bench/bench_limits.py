#!/usr/bin/env python3
"""The cost of a cgroup per run (resource limits, engine/limits.py) on W3: 1,000 jobs due at one
minute, the real `cronplus run` (bench_supervisor's one_tick: shifted clock, stamps, records),
with no limit and with a limit on every job, alternating tick by tick in the same run.

A limited job costs: the run cgroup's mkdir (and its limit files), Popen's fork+preexec path
instead of vfork (the child writes cgroup.procs and calls setrlimit/setpriority), reading
cpu.stat/memory.peak/memory.events at its end, the rmdir, and one more UPDATE (runs.cpu_s).

The bench moves itself into a cgroup of its own first (when the cgroup v2 hierarchy is writable),
so the supervisors' run cgroups are made under it and nothing is left at the machine's root.

Default limited sides: `tasks-max=100000` (a run cgroup only, joined by the /bin/sh prologue;
as root without the pids controller it is not enforced, but the cgroup is still made) and
`nice=0` (the cgroup plus a preexec_fn: fork instead of vfork).

Usage: .venv/bin/python bench/bench_limits.py [--jobs 1000] [--repeat 3] [--limit ANNOTATION ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_supervisor import one_tick  # noqa: E402
from supervised import compile_stamp, env_note, nice_ratio, write_crontab  # noqa: E402


def bench_cgroup() -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if " - cgroup2 " in line:
            mount = Path(line.split()[4])
            own = Path("/proc/self/cgroup").read_text().split("0::", 1)[1].split()[0]
            path = mount / own.lstrip("/") / f"cronplus-bench-{os.getpid()}"
            with contextlib.suppress(OSError):
                path.mkdir()
                (path / "cgroup.procs").write_text(str(os.getpid()))
                return path
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", nargs="+", default=["tasks-max=100000", "nice=0"],
                    help="the annotation every job of a limited side gets (one side each)")
    args = ap.parse_args()
    cgroup = bench_cgroup()
    print(env_note())
    print(f"bench cgroup: {cgroup or 'none (cgroup v2 not writable: the limited side uses rlimits only)'}")
    if cgroup is not None:
        print(f"  controllers given to it: {(cgroup / 'cgroup.controllers').read_text().split() or 'none'}")
    n = args.jobs
    sides = {"no limits": "", **{limit: limit for limit in args.limit}}
    with tempfile.TemporaryDirectory(prefix="cronplus-bench-limits-") as tmp:
        work = Path(tmp)
        stamp = compile_stamp(work)
        results: dict[str, list] = {side: [] for side in sides}  # type: ignore[type-arg]
        for i in range(args.repeat):
            for side, annotation in sides.items():
                out = work / "w3.stamps"
                crontab = work / "w3.crontab"
                write_crontab(crontab, n, f"{stamp} {out} {{i}}", annotation=annotation)
                results[side].append(one_tick(work, "cronplus", crontab, n, lead=4.0 + n / 250, tag=f"w3-{i}",
                                              stamps=out, timeout=180))
    print(f"W3 fan-out, {n} jobs due at one minute, {args.repeat} tick(s) a side, alternating (medians):")
    figures = {}
    for side, ticks in results.items():
        last = statistics.median(max(t.starts) if t.starts else float("nan") for t in ticks)
        rec = statistics.median(t.recorded if t.recorded is not None else float("nan") for t in ticks)
        cpu_run = sum(t.cpu for t in ticks) / (n * len(ticks))
        peak = max(t.peak_mib for t in ticks)
        figures[side] = (last, rec, cpu_run)
        print(f"  {side:<18}: started {min(len(t.starts) for t in ticks)}/{n}, last start {last:6.2f} s,"
              f" all recorded {rec:6.2f} s, supervisor CPU/run {cpu_run * 1000:6.2f} ms, peak RSS {peak:6.1f} MiB")
    a = figures["no limits"]
    for side in args.limit:
        b = figures[side]
        print(f"  ratio {side}/none: last start {nice_ratio(b[0], a[0])}, all recorded {nice_ratio(b[1], a[1])},"
              f" CPU/run {nice_ratio(b[2], a[2])}")
    if cgroup is not None:
        left = [p.name for p in cgroup.iterdir() if p.is_dir()]
        print(f"  run cgroups left after the runs: {len(left)}")
        (cgroup.parent / "cgroup.procs").write_text(str(os.getpid()))
        with contextlib.suppress(OSError):
            cgroup.rmdir()


if __name__ == "__main__":
    main()
