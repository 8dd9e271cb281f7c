#!/usr/bin/env python3
"""How long the supervisor's history writes hold the event loop at a tick (issue 11: "no
blocking database call on the event loop's tick path").

The real Scheduler, History (SQLite in a temp dir, store/open.py's writer) and Alerting, as
`cronplus run` wires them, on bench_tick's shifted clock: N jobs (`true`, as W3's; with
`--alerts` each has an alert= target, so every end makes an alert decision and, with
alert-on=success, enqueues a row) due at one tick. Measured on the loop thread:
- the time spent inside `Store.write` (every history write of the scheduler goes through it),
  split by kind (the tick's inserts, the pids, the runs' ends, other) and per run;
- the loop's lag: a task sleeping 1 ms notes how late it wakes (max and total over 2 ms), i.e.
  everything that held the loop, the writes included.
Then the time until every run's final row is committed (what `cronplus log` sees).

`--trees A B ...` runs this file against other checkouts (e.g. main's worktree) in turn, in
one invocation, for before/after figures from the same run.

`--commits N`: the writer's commit latency alone, N commits of a tick's chunk (10 rows) with
SQLite's own checkpoints (in the committing thread: before) and with store/checkpoint.py's
thread (after), alternating in one process.

Usage: .venv/bin/python bench/bench_loop_block.py [--jobs 500 1000] [--ticks 3] [--alerts] [--trees DIR ...]
       .venv/bin/python bench/bench_loop_block.py --commits 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


def kind_of(what: Any) -> str:
    text = what if isinstance(what, str) else what()
    for prefix, kind in (("start of", "insert"), ("pids of", "pids"), ("pid of", "pid+start alert"), ("end of", "end")):
        if text.startswith(prefix):
            return kind
    return "other"


async def one_tick(jobs: int, work: Path, alerts: bool) -> dict[str, Any]:
    sys.path.insert(0, str(HERE.parent))
    from bench_tick import ShiftedClock

    from cronplus.alerts.alerting import Alerting
    from cronplus.crontab.parser import load_crontab
    from cronplus.engine.scheduler import Scheduler
    try:
        from cronplus.store.open import open_writer  # what `cronplus run` opens
    except ImportError:  # a tree from before store/open.py
        from cronplus.store.history import History as open_writer  # type: ignore[assignment]

    crontab = work / "crontab"
    note = " alert=http://127.0.0.1:9/x alert-on=failure,success" if alerts else ""
    crontab.write_text("".join(f"# cronplus: name=j{i}{note}\n* * * * * true\n" for i in range(jobs)))
    state = work / "state"
    state.mkdir(mode=0o700)
    clock = ShiftedClock()
    clock.lead_to_next_minute(30.0)
    history = open_writer(state / "history.db")
    scheduler = Scheduler(load_crontab(crontab), history=history, alerting=Alerting(history),
                          log_dir=state / "logs", owner="bench", clock=clock)
    store = scheduler.store
    spent: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    each: list[float] = []
    inner = store.write

    def timed(op: Any, provisional: Any, **kw: Any) -> Any:  # the bench's probe, not a test double
        t0 = time.perf_counter()
        try:
            return inner(op, provisional, **kw)
        finally:
            took = time.perf_counter() - t0
            kind = kind_of(kw.get("what", ""))
            spent[kind] += took
            counts[kind] += 1
            each.append(took)

    store.write = timed  # type: ignore[method-assign]
    commits: list[float] = []

    class Timed:  # the bench's probe on the writer's connection: how long each COMMIT takes
        def __init__(self, conn: Any) -> None:
            self._conn = conn

        def __getattr__(self, name: str) -> Any:
            return getattr(self._conn, name)

        def execute(self, sql: str, *args: Any) -> Any:
            if sql != "COMMIT":
                return self._conn.execute(sql, *args)
            t0 = time.perf_counter()
            try:
                return self._conn.execute(sql, *args)
            finally:
                commits.append(time.perf_counter() - t0)

    history.conn = Timed(history.conn)  # type: ignore[attr-defined]
    lags: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t0 - 0.001)

    loop = asyncio.get_running_loop()
    serve = loop.create_task(scheduler.serve())
    beat = loop.create_task(heartbeat())
    await asyncio.sleep(0.3)
    spent.clear()
    counts.clear()
    lags.clear()
    each.clear()
    commits.clear()
    real_tick = clock.lead_to_next_minute()
    scheduler.wake()
    t_tick = time.time()
    deadline = time.time() + 120
    while time.time() < deadline:
        await asyncio.sleep(0.01)
        if time.time() > real_tick + 0.5 and scheduler.idle():
            break
    idle_at = time.time()
    stop.set()
    await beat
    await scheduler.shutdown(5.0)
    serve.cancel()
    store.close()
    history.close()
    import sqlite3

    conn = sqlite3.connect(state / "history.db")
    finals = conn.execute("SELECT count(*) FROM runs WHERE final = 1 AND status = 'success'").fetchone()[0]
    conn.close()
    each.sort()
    commits.sort()
    return {"jobs": jobs, "finals": finals, "spent": dict(spent), "counts": dict(counts),
            "write_max": each[-1] if each else 0.0, "write_p99": each[int(len(each) * 0.99)] if each else 0.0,
            "over_2ms": sum(x for x in each if x > 0.002), "n_over_2ms": sum(1 for x in each if x > 0.002),
            "commit_total": sum(commits), "commit_max": commits[-1] if commits else 0.0, "commits": len(commits),
            "lag_max": max(lags, default=0.0), "lag_total": sum(x for x in lags if x > 0.002),
            "tick_to_idle": idle_at - max(t_tick, real_tick)}


def child(jobs: int, alerts: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-block-") as tmp:
        print(json.dumps(asyncio.run(one_tick(jobs, Path(tmp), alerts))))


def report(tree: str, jobs: int, results: list[dict[str, Any]]) -> None:
    def med(f: Any) -> float:
        return statistics.median(f(r) for r in results)

    kinds = sorted({k for r in results for k in r["spent"]})
    parts = ", ".join(f"{k} {med(lambda r, k=k: r['spent'].get(k, 0.0)) * 1000:.0f} ms" for k in kinds)
    total = med(lambda r: sum(r["spent"].values()))
    print(f"{tree}: {jobs} jobs (median of {len(results)} ticks; finals {results[-1]['finals']})")
    print(f"  loop inside Store.write: {total * 1000:.0f} ms ({parts}); per run {total / jobs * 1e6:.0f} us")
    print(f"  one write: p99 {med(lambda r: r['write_p99']) * 1e6:.0f} us, max {med(lambda r: r['write_max']) * 1000:.1f} ms;"
          f" writes over 2 ms: {med(lambda r: r['n_over_2ms']):.0f}, {med(lambda r: r['over_2ms']) * 1000:.0f} ms in all")
    print(f"  COMMITs on the loop: {med(lambda r: r['commits']):.0f}, {med(lambda r: r['commit_total']) * 1000:.1f} ms in all,"
          f" the longest {med(lambda r: r['commit_max']) * 1000:.1f} ms")
    print(f"  loop lag: max {med(lambda r: r['lag_max']) * 1000:.0f} ms, total >2 ms {med(lambda r: r['lag_total']) * 1000:.0f} ms;"
          f" tick to idle {med(lambda r: r['tick_to_idle']) * 1000:.0f} ms")


def commit_latency(n: int) -> None:
    from cronplus.status import Trigger
    from cronplus.store.history import History, RunStart

    def rows(i: int) -> list[RunStart]:
        return [RunStart(job=f"job-{k}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=float(i), tz=None,
                         started_at=float(i), log_path=f"/var/log/cronplus/job-{k}/{i}.log", owner="bench")
                for k in range(10)]

    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        writers = {"autocheckpoint (before)": History(Path(tmp) / "a.db"),
                   "checkpoint thread (after)": History(Path(tmp) / "b.db", checkpoint_thread=True)}
        took: dict[str, list[float]] = {name: [] for name in writers}
        for i in range(n):
            for name, history in writers.items():
                t0 = time.perf_counter()
                history.start_runs(rows(i))
                took[name].append(time.perf_counter() - t0)
        for name, history in writers.items():
            history.close()
            ms = sorted(x * 1000 for x in took[name])
            print(f"{name}: {n} chunks of 10 rows: median {statistics.median(ms):.2f} ms, p99 {ms[int(n * 0.99)]:.2f} ms,"
                  f" p99.9 {ms[int(n * 0.999)]:.2f} ms, max {ms[-1]:.2f} ms, over 2 ms: {sum(1 for x in ms if x > 2)}"
                  f" ({sum(x for x in ms if x > 2):.0f} ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, nargs="+", default=[500, 1000])
    ap.add_argument("--ticks", type=int, default=3)
    ap.add_argument("--trees", nargs="*", default=[str(HERE.parent.parent)])
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--alerts", action="store_true", help="every job has an alert target (alert-on=failure,success)")
    ap.add_argument("--commits", type=int, help="measure the writer's commit latency alone (N chunks)")
    args = ap.parse_args()
    if args.commits:
        commit_latency(args.commits)
        return
    if args.child:
        # the tree under test, not the one `pip install -e` points at (its finder comes first)
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "_EditableFinder"]
        sys.path.insert(0, os.environ["PYTHONPATH"].split(os.pathsep)[0])
        import cronplus

        print(f"tree: {Path(cronplus.__file__).parent.parent}", file=sys.stderr)
        child(args.child, args.alerts)
        return
    for jobs in args.jobs:
        results: dict[str, list[dict[str, Any]]] = {tree: [] for tree in args.trees}
        for _ in range(args.ticks):  # the trees take turns, so the machine's load falls on each alike
            for tree in args.trees:  # a fresh process and database per tick: no warm-up carried over
                env = {**os.environ, "PYTHONPATH": tree}
                out = subprocess.run([sys.executable, str(HERE), "--child", str(jobs), *(["--alerts"] if args.alerts else [])],
                                     env=env, cwd=tree,
                                     capture_output=True, text=True, check=True)
                results[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
        for tree in args.trees:
            report(tree, jobs, results[tree])


if __name__ == "__main__":
    main()
