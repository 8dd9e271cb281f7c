#!/usr/bin/env python3
"""Supervisor benchmarks W1-W4 (/work/shared/BENCH.md): the real `cronplus run` and two ~20-line
bare Python loops (bench/supervised.py BARES), in the same run, each figure with its ratio to both:
`bare` (BARE_LOOP: Popen, one reaper thread per tick) and `bare-asyncio` (BARE_ASYNCIO:
create_subprocess_shell, a task awaiting each child, Python 3.11's ThreadedChildWatcher: a
waitpid thread per child). W4 compares with `bare` only (its job's output straight to the file).

  W1 idle:     50 yearly jobs; RSS of each process tree and CPU seconds over --idle s (scaled to 120 s);
               --w1-pipeline adds them in a pool with a sensor job, idle and with its sensor waiting
  W2 delay:    20 `* * * * *` jobs stamping their start (a tiny C program); delay from the minute
               boundary, median and p95; supervisor CPU per run; when the 20 runs are recorded
  W3 fan-out:  500 and 1,000 jobs due at one minute: last start, all recorded, peak RSS
  W4 output:   one job writing 200 MB (and 1 GB) to stdout: time until recorded, supervisor CPU, peak RSS
               (cronplus with its default 100 MiB cap and with a cap above the size; bare: file as stdout)

Supervisors run as their systemd unit runs them: with a RuntimeDirectory= on a tmpfs (a private
directory under /dev/shm standing in for /run), where the jobs' $CRONPLUS_OUTPUT files go;
--by-hand runs them without one (those files then go to the state dir).
No waiting for real minutes: every tick is a fresh supervisor (tests/shifted_run.py) or bare loop
started on a clock shifted so that its next minute boundary is a few seconds away. The sides
alternate tick by tick, so a change in the machine's load hits all alike. Per-run CPU is summed
over each tick's window, from 0.8 s before the boundary until 0.3 s after the tick's last
record, and divided by the runs, three ways (W2, W3):
  CPU/run                  the supervisor's (bare loop's) own CPU on its live threads (/proc
                           schedstat, ns): precise, but a thread that exited within the window is
                           missing, e.g. bare-asyncio's waitpid thread of each child.
  (whole process)          its own utime+stime of /proc/PID/stat: exited threads included.
  CPU/run (with its jobs)  that plus cutime+cstime, i.e. what the machine paid per run: the
                           process and every child it reaped in the window (the job's `sh -c`,
                           the stamp, and for cronplus, a child subreaper, its jobs' orphans). All
                           jobs are reaped when their records are written, so none is missing.
The last two are read in clock ticks (10 ms; the kernel counts ns and rounds each field down
when read: stat_cpu_delta says how that is made unbiased), so a window's figure is off by less
than 20 ms (40 ms with its jobs), typically ~6 ms (~8 ms), independently from window to window. Per run that is ~0.15 ms (~0.2 ms) over W2's
4 ticks of 20 runs and ~0.01-0.02 ms over W3's 500-1,000 runs: a sound mean per run over many
runs, not a figure for one run or one tick of 20. The job alone (`sh -c stamp`) is measured
apart, 100 runs from this harness (getrusage, microseconds), and printed under each table as
the check: a side's "with its jobs" less its "whole process" should read about that (~1 ms).
"Recorded": polling every 10 ms until every run is final in history.db (cronplus) or every
child is reaped and its line written (bare loops), then the newest mtime of those files
(history.db and its WAL; the bare loop's record file): when the last record landed (a file time
may read up to one kernel clock tick, a few ms, early: alike for all sides).

Usage: .venv/bin/python bench/bench_supervisor.py [--quick] [--only W1,W2,W3,W4] [--ticks N]
       [--idle S] [--repeat N] [--w1-pipeline]
--quick (about 3 minutes): W1 over 65 s, W2 4 ticks a side, W3 and W4 once a side.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import supervised  # noqa: E402
from supervised import (  # noqa: E402
    BARES,
    ROOT,
    compile_stamp,
    cpu_seconds,
    env_note,
    final_runs_sqlite,
    job_cpu_alone,
    nice_ratio,
    offset_for,
    pct,
    read_stamps,
    rss_mib,
    sleep_until,
    start_bare,
    start_cronplus,
    stat_cpu_delta,
    stat_cpu_ticks,
    stop,
    tree_rss_mib,
    write_crontab,
)

# side key -> checkout whose `cronplus run` it runs; the BARES keys are the bare loops. --tree adds sides.
TREES: dict[str, Path] = {"cronplus": ROOT}
SIDES: list[str] = ["cronplus", *BARES]


def supervisors() -> list[str]:
    """The sides that are a cronplus (each compared with every bare loop)."""
    return [side for side in SIDES if side not in BARES]


@dataclass
class Tick:
    boundary: float  # real time of the tick
    late: bool = False  # the side was not ready 0.8 s before the boundary
    starts: list[float] = field(default_factory=list)  # stamp - boundary
    recorded: float | None = None  # all recorded - boundary
    cpu: float = 0.0  # own CPU, live threads (schedstat)
    cpu_whole: float = 0.0  # own CPU, exited threads too (stat utime+stime, clock ticks)
    cpu_jobs: float = 0.0  # of the children it reaped (stat cutime+cstime, clock ticks)
    peak_mib: float = 0.0

    @property
    def cpu_with_jobs(self) -> float:
        return self.cpu_whole + self.cpu_jobs


def record_files(side: str, work: Path, tag: str) -> list[Path]:
    if side in BARES:
        return [work / f"bare-{tag}.rec"]
    db = work / f"state-{tag}" / "history.db"
    return [db, db.with_name("history.db-wal")]


def last_write(paths: list[Path]) -> float:
    """When the records were last written: the files' newest mtime (ns resolution here), which is
    when the last record's commit landed, not when the 10 ms poll noticed it."""
    times = []
    for p in paths:
        with contextlib.suppress(OSError):
            times.append(p.stat().st_mtime_ns / 1e9)
    return max(times, default=time.time())


WIDTH = 8


def recorded_count(side: str, work: Path, tag: str) -> int:
    if side in BARES:
        rec = work / f"bare-{tag}.rec"
        return rec.read_text().count("\n") if rec.exists() else 0
    return final_runs_sqlite(work / f"state-{tag}" / "history.db")


def one_tick(work: Path, side: str, crontab: Path, n: int, *, lead: float, tag: str, stamps: Path | None,
             timeout: float = 60.0) -> Tick:
    """Start `side` so its next minute comes `lead` s from now; wait for `n` records; stop it."""
    offset, boundary = offset_for(lead)
    if side not in BARES:
        proc = start_cronplus(work, crontab, work / f"state-{tag}", offset, tag, TREES[side])
    else:
        proc = start_bare(work, crontab, tag, offset, 2, side)  # 2: still alive (asleep) after the tick
    tick = Tick(boundary, late=time.time() > boundary - 0.8)
    sleep_until(boundary - 0.8)
    cpu0, stat0 = cpu_seconds(proc.pid)[0], stat_cpu_ticks(proc.pid)
    while time.time() < boundary + timeout:
        if time.time() > boundary and recorded_count(side, work, tag) >= n:
            tick.recorded = min(time.time(), last_write(record_files(side, work, tag))) - boundary
            break
        time.sleep(0.01)
    time.sleep(0.3)  # what follows a record (after-commit work) belongs to the run too
    tick.cpu = cpu_seconds(proc.pid)[0] - cpu0
    tick.cpu_whole, tick.cpu_jobs = stat_cpu_delta(stat0, stat_cpu_ticks(proc.pid))
    tick.peak_mib = rss_mib(proc.pid)[1]
    stop(proc)
    if stamps is not None:
        tick.starts = [t - boundary for _, t in read_stamps(stamps)]
        stamps.unlink(missing_ok=True)
    shutil.rmtree(work / f"state-{tag}", ignore_errors=True)
    for leftover in (work / f"bare-{tag}.out", work / f"bare-{tag}.rec"):
        leftover.unlink(missing_ok=True)
    return tick


def ms(v: float) -> str:
    return f"{v * 1000:8.1f} ms"


def cpu_ms(v: float) -> str:
    """A per-run CPU figure: sub-millisecond for the bare loops."""
    return f"{v * 1000:6.3f} ms"


def cpu_figures(ticks: list[Tick], runs: int) -> tuple[float, float, float]:
    """(CPU/run, whole process, with its jobs) over all `ticks`, `runs` runs in all."""
    runs = max(1, runs)
    return (sum(t.cpu for t in ticks) / runs, sum(t.cpu_whole for t in ticks) / runs,
            sum(t.cpu_with_jobs for t in ticks) / runs)


def job_alone_text(work: Path, stamp: str) -> str:
    """The check of "with its jobs": the job's own CPU, measured apart."""
    out = work / "alone.stamps"
    cpu = job_cpu_alone(f"{stamp} {out} 0")
    out.unlink(missing_ok=True)
    return (f"  the job alone (`sh -c stamp`, 100 runs one at a time, getrusage): {cpu_ms(cpu)}/run;"
            " a side's CPU/run (with its jobs) less its whole process should be about this")


def cpu_text(figures: tuple[float, float, float]) -> str:
    own, whole, with_jobs = figures
    return f"CPU/run {cpu_ms(own)} (whole process {cpu_ms(whole)}), CPU/run (with its jobs) {cpu_ms(with_jobs)}"


def w1_pipeline(work: Path, label: str) -> tuple[Path, float]:
    """--w1-pipeline's extra sides (-> crontab, clock offset), made just before each starts: the
    50 yearly jobs in a pool of 1, the 50th with a sensor (`# cronplus-pools:` configured, nothing
    due: "pool+sensor"); and the same with the sensor's job due 2 s after its start, its sensor
    (`false`) then probed every 30 s throughout ("sensor waiting")."""
    due = label == "sensor waiting"
    crontab = work / "etc" / f"w1-{'due' if due else 'idle'}.crontab"
    write_crontab(crontab, 49, "true", schedule="0 0 1 1 *", annotation="pool=one")
    offset, schedule = 0.0, "0 0 1 1 *"
    if due:  # its minute is the shifted clock's next one
        offset, boundary = offset_for(2.0)
        at = time.localtime(boundary + offset)
        schedule = f"{at.tm_min} {at.tm_hour} * * *"
    crontab.write_text("# cronplus-pools: one=1\n" + crontab.read_text() + "# cronplus: name=sensed pool=one"
                       f" wait-for=false wait-every=30s wait-timeout=1h\n{schedule} true\n")
    return crontab, offset


W1_EXTRA: list[str] = []  # --w1-pipeline: "pool+sensor", "sensor waiting" (w1_pipeline)


def w1(work: Path, seconds: float) -> None:
    """All sides at once (they are idle)."""
    crontab = work / "etc" / "w1.crontab"
    write_crontab(crontab, 50, "true", schedule="0 0 1 1 *")
    procs = {side: start_bare(work, crontab, f"w1-{side}", 0.0, 10**6, side) if side in BARES
             else start_cronplus(work, crontab, work / f"state-w1-{side}", 0.0, f"w1-{side}", TREES[side])
             for side in SIDES}
    for i, label in enumerate(W1_EXTRA):
        extra, offset = w1_pipeline(work, label)
        procs[label] = start_cronplus(work, extra, work / f"state-w1-x{i}", offset, f"w1-x{i}")
    time.sleep(2)  # start-up done
    before = {side: cpu_seconds(p.pid) for side, p in procs.items()}
    time.sleep(seconds)
    after = {side: cpu_seconds(p.pid) for side, p in procs.items()}
    rss = {side: tree_rss_mib(p.pid) for side, p in procs.items()}
    for p in procs.values():
        stop(p)
    scale = 120.0 / seconds
    print(f"W1 idle, 50 yearly jobs, all sides at once, measured {seconds:g} s, scaled to 120 s:")
    cpu = {}
    width = max([WIDTH, *map(len, W1_EXTRA)])  # max(int) alone is a TypeError: W1_EXTRA is often empty
    for side in [*SIDES, *W1_EXTRA]:
        cpu[side] = (after[side][0] - before[side][0]) * scale
        print(f"  {side:<{width}}: tree RSS {rss[side]:6.1f} MiB, CPU {cpu[side]:.4f} s,"
              f" {(after[side][1] - before[side][1]) * scale:.0f} wake-ups")
    for side in supervisors():
        for bare in BARES:
            print(f"  ratio {side}/{bare}: RSS {nice_ratio(rss[side], rss[bare])}, CPU {nice_ratio(cpu[side], cpu[bare])}")
    for side in W1_EXTRA:
        print(f"  ratio {side}/cronplus: RSS {nice_ratio(rss[side], rss['cronplus'])},"
              f" CPU {nice_ratio(cpu[side], cpu['cronplus'])}")


def w2(work: Path, stamp: str, ticks: int) -> None:
    n = 20
    results: dict[str, list[Tick]] = {side: [] for side in SIDES}
    for i in range(ticks):
        for side in SIDES:
            out = work / f"w2.{side}.stamps"
            crontab = work / "etc" / f"w2-{side}.crontab"
            write_crontab(crontab, n, f"{stamp} {out} {{i}}")
            results[side].append(one_tick(work, side, crontab, n, lead=4.0, tag=f"w2-{side}-{i}", stamps=out))
    print(f"W2 start delay, {n} jobs * * * * *, {ticks} tick(s) a side, alternating:")
    summary = {}
    for side in SIDES:
        name = f"{side:<{WIDTH}}"
        d = [s for t in results[side] for s in t.starts]
        rec = [t.recorded for t in results[side] if t.recorded is not None]
        cpu = cpu_figures(results[side], len(d))
        late = sum(t.late for t in results[side])
        if not d:
            print(f"  {name}: no stamps")
            continue
        summary[side] = (statistics.median(d), pct(d, 95), cpu[0], statistics.median(rec) if rec else float("nan"),
                         cpu[1], cpu[2])
        print(f"  {name}: n={len(d):3d} delay median {ms(summary[side][0])}, p95 {ms(summary[side][1])};"
              f" {cpu_text(cpu)}; all {n} recorded (median) {ms(summary[side][3])}"
              + (f"  [{late} tick(s) started late]" if late else ""))
    print(job_alone_text(work, stamp))
    for side in supervisors():
        for bare in BARES:
            if side in summary and bare in summary:
                c, b = summary[side], summary[bare]
                print(f"  ratio {side}/{bare}: delay median {nice_ratio(c[0], b[0])}, p95 {nice_ratio(c[1], b[1])},"
                      f" CPU/run {nice_ratio(c[2], b[2])}, recorded {nice_ratio(c[3], b[3])};"
                      f" whole process {nice_ratio(c[4], b[4])}, CPU/run (with its jobs) {nice_ratio(c[5], b[5])}")


def w3(work: Path, stamp: str, sizes: list[int], repeat: int) -> None:
    for n in sizes:
        results: dict[str, list[Tick]] = {side: [] for side in SIDES}
        for i in range(repeat):
            for side in SIDES:
                out = work / f"w3.{side}.stamps"
                crontab = work / "etc" / f"w3-{side}.crontab"
                write_crontab(crontab, n, f"{stamp} {out} {{i}}")
                results[side].append(one_tick(work, side, crontab, n, lead=4.0 + n / 250, tag=f"w3-{side}-{i}",
                                              stamps=out, timeout=120))
        print(f"W3 fan-out, {n} jobs due at one minute, {repeat} tick(s) a side (medians):")
        figures = {}
        for side in SIDES:
            name = f"{side:<{WIDTH}}"
            ticks = results[side]
            last = statistics.median(max(t.starts) if t.starts else float("nan") for t in ticks)
            started = min(len(t.starts) for t in ticks)
            rec = statistics.median(t.recorded if t.recorded is not None else float("nan") for t in ticks)
            peak = max(t.peak_mib for t in ticks)
            cpu = cpu_figures(ticks, n * len(ticks))
            figures[side] = (last, rec, peak, *cpu)
            late = sum(t.late for t in ticks)
            print(f"  {name}: started {started}/{n}, last start {last:6.2f} s, all recorded {rec:6.2f} s,"
                  f" peak RSS {peak:6.1f} MiB, {cpu_text(cpu)}" + (f"  [{late} late]" if late else ""))
        print(job_alone_text(work, stamp))
        for side in supervisors():
            for bare in BARES:
                c, b = figures[side], figures[bare]
                print(f"  ratio {side}/{bare}: last start {nice_ratio(c[0], b[0])}, all recorded {nice_ratio(c[1], b[1])},"
                      f" peak RSS {nice_ratio(c[2], b[2])}, CPU/run {nice_ratio(c[3], b[3])};"
                      f" whole process {nice_ratio(c[4], b[4])}, CPU/run (with its jobs) {nice_ratio(c[5], b[5])}")


def w4(work: Path, size: int, repeat: int) -> None:
    command = f"head -c {size} /dev/zero"
    cap = f"{size * 3 // 2000000}M"
    modes = {"bare (file as stdout)": ("bare", "")}
    for side in supervisors():
        modes[f"{side}, 100 MiB cap"] = (side, "")
        modes[f"{side}, whole (cap {cap})"] = (side, f"max-log-size={cap}")
    results: dict[str, list[Tick]] = {name: [] for name in modes}
    for i in range(repeat):
        for name, (side, annotation) in modes.items():
            crontab = work / "etc" / f"w4-{side}.crontab"
            write_crontab(crontab, 1, command, annotation=annotation)
            os.sync()  # no dirty pages from the previous run
            results[name].append(one_tick(work, side, crontab, 1, lead=4.0, tag=f"w4-{side}-{i}", stamps=None))
    print(f"W4 output, one job writing {size / 1e6:.0f} MB to stdout, {repeat} run(s) each (medians):")
    bare_rec = statistics.median(t.recorded or float("nan") for t in results["bare (file as stdout)"])
    for name, ticks in results.items():
        rec = statistics.median(t.recorded or float("nan") for t in ticks)
        cpu = statistics.median(t.cpu for t in ticks)
        peak = max(t.peak_mib for t in ticks)
        print(f"  {name:<{WIDTH + 19}}: recorded {rec:6.3f} s ({nice_ratio(rec, bare_rec)}), supervisor CPU {cpu:6.3f} s,"
              f" peak RSS {peak:6.1f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 3 minutes in all")
    ap.add_argument("--only", default="W1,W2,W3,W4")
    ap.add_argument("--ticks", type=int, default=None, help="W2 ticks a side (default 10, quick 4)")
    ap.add_argument("--idle", type=float, default=None, help="W1 seconds (default 120, quick 65: one minute's wake-up)")
    ap.add_argument("--repeat", type=int, default=None, help="W3/W4 runs a side (default 3, quick 1)")
    ap.add_argument("--fanout", default="500,1000")
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                    help="also run the cronplus of another checkout (e.g. main=/work/wt/x-old), side by side")
    ap.add_argument("--w4-sizes", default=None, help="W4 output sizes in MB (default 200,1000; quick 200)")
    ap.add_argument("--w1-pipeline", action="store_true",
                    help="W1 also with a pool and a sensor job configured, and with that sensor waiting")
    ap.add_argument("--by-hand", action="store_true",
                    help="supervisors without a RuntimeDirectory= (as run by hand: $CRONPLUS_OUTPUT files in the state dir)")
    args = ap.parse_args()
    ticks = args.ticks or (4 if args.quick else 10)
    idle = args.idle or (65.0 if args.quick else 120.0)
    repeat = args.repeat or (1 if args.quick else 3)
    w4_sizes = args.w4_sizes or ("200" if args.quick else "200,1000")
    global WIDTH
    for spec in args.tree:
        label, _, path = spec.partition("=")
        TREES[label] = Path(path).resolve()
        SIDES.insert(len(supervisors()), label)
    WIDTH = max(len(s) for s in SIDES)
    only = {w.strip().upper() for w in args.only.split(",")}
    print(f"bench_supervisor: {time.strftime('%Y-%m-%d %H:%M %Z')}, {env_note()}, {sys.executable}")
    with tempfile.TemporaryDirectory(prefix="bench-supervisor-") as tmp:
        work = Path(tmp)
        # The crontabs' own directory, as a real one is (/etc/cron.d, ~/.config/cronplus): the jobs'
        # stamps and the bare loops' files are written in `work`, not beside the crontab the
        # supervisor watches for edits (a directory its jobs write into wakes that watcher per run).
        (work / "etc").mkdir()
        stamp = compile_stamp(work)
        if not args.by_hand:  # as its systemd unit runs it: RuntimeDirectory= on a tmpfs
            supervised.RUNTIME_BASE = supervised.runtime_base(work)
        print(f"  supervisors' RuntimeDirectory=: {supervised.RUNTIME_BASE or 'none (as run by hand)'}")
        if args.w1_pipeline:
            W1_EXTRA.extend(["pool+sensor", "sensor waiting"])
        began = time.monotonic()
        for name, run in (("W1", lambda: w1(work, idle)), ("W2", lambda: w2(work, stamp, ticks)),
                          ("W3", lambda: w3(work, stamp, [int(x) for x in args.fanout.split(",")], repeat)),
                          ("W4", lambda: [w4(work, int(mb) * 1000 * 1000, repeat) for mb in w4_sizes.split(",")])):
            if name in only:
                t0 = time.monotonic()
                run()
                print(f"  ({name}: {time.monotonic() - t0:.0f} s)", flush=True)
        with contextlib.suppress(OSError):
            print(f"total {time.monotonic() - began:.0f} s; {env_note()}")
        if supervised.RUNTIME_BASE is not None:
            shutil.rmtree(supervised.RUNTIME_BASE, ignore_errors=True)


if __name__ == "__main__":
    main()
