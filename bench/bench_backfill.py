#!/usr/bin/env python3
"""Backfill throughput (issue 13): `cronplus backfill` of N hourly ticks of a `true`-like job with
--parallel P, against `xargs -P P` running the same command N times through the same shell
(`/bin/sh -c COMMAND`, what cronplus runs a job with). Wall time of the whole command each, the
sides alternating, medians of --repeat rounds; the ratio is cronplus / xargs (goal: <= 1.2).

cronplus runs it in-process (no supervisor: what `cronplus backfill` does then, Python start-up,
store and all); `--supervisor` also runs it through a running `cronplus run` (the supervisor's
start is not counted). Every round starts on a fresh state directory, and checks that N rows
ended `success`.

`--tree LABEL=DIR` adds the backfill of another checkout (e.g. main in a detached
worktree) as a side of the same rounds.

Usage: .venv/bin/python bench/bench_backfill.py [--ticks 1000] [--parallel 8] [--repeat 5]
                                                [--command true] [--supervisor] [--tree main=DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FROM = "2026-01-01T00:00Z"
ROOT = Path(__file__).resolve().parents[1]


def cronplus(work: Path, *args: str, tree: Path = ROOT, **kw: object) -> subprocess.CompletedProcess[bytes]:
    """`python -m cronplus` of checkout `tree` (its directory first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(work / "crontab"),
                           "--state-dir", str(work / "state"), *args], check=False, cwd=tree, env=env,
                          **kw)  # type: ignore[call-overload]


def backfill_args(ticks: int, parallel: int) -> list[str]:
    to = f"@{1767225600 + (ticks - 1) * 3600}"  # 2026-01-01T00:00Z + (ticks - 1) hours
    return ["backfill", "job", "--from", FROM, "--to", to, "--parallel", str(parallel), "--yes"]


def successes(work: Path) -> int:
    conn = sqlite3.connect(work / "state" / "history.db")
    try:
        return int(conn.execute("SELECT count(*) FROM runs WHERE status = 'success' AND trigger = 'backfill'").fetchone()[0])
    finally:
        conn.close()


def fresh(root: Path, command: str) -> Path:
    work = root / f"w{time.monotonic_ns()}"
    work.mkdir()
    (work / "crontab").write_text(f"# cronplus: name=job\n0 * * * * {command}\n")
    return work


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's waited-for children and theirs so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cronplus(root: Path, command: str, ticks: int, parallel: int, tree: Path = ROOT) -> tuple[float, float]:
    """(wall, CPU of cronplus and its jobs) of one in-process backfill."""
    work = fresh(root, command)
    cpu = children_cpu()
    began = time.perf_counter()
    done = cronplus(work, *backfill_args(ticks, parallel), tree=tree, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)
    took = time.perf_counter() - began
    if done.returncode != 0 or successes(work) != ticks:
        raise SystemExit(f"cronplus backfill failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    cpu = children_cpu() - cpu
    shutil.rmtree(work)
    return took, cpu


def run_supervised(root: Path, command: str, ticks: int, parallel: int, tree: Path = ROOT) -> tuple[float, None]:
    from cronplus.service import control

    work = fresh(root, command)
    sup = subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(work / "crontab"),
                            "--state-dir", str(work / "state"), "run"], cwd=tree,
                           env={**os.environ, "PYTHONPATH": str(tree)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(control.NoSupervisor, StopIteration, OSError):
                next(control.request(work / "state" / "control.sock", {"cmd": "status"}))
                break
            if time.monotonic() > deadline or sup.poll() is not None:
                raise SystemExit("the supervisor did not come up")
            time.sleep(0.05)
        began = time.perf_counter()
        done = cronplus(work, *backfill_args(ticks, parallel), tree=tree, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
        took = time.perf_counter() - began
        if done.returncode != 0 or successes(work) != ticks:
            raise SystemExit(f"backfill through the supervisor failed: {done.stderr.decode()[-2000:]}")
    finally:
        sup.terminate()
        sup.wait(30)
    shutil.rmtree(work)
    return took, None  # the supervisor's CPU is not the client's: not measured


def run_xargs(command: str, ticks: int, parallel: int) -> tuple[float, float]:
    lines = "".join(f"{i}\n" for i in range(ticks)).encode()
    cpu = children_cpu()
    began = time.perf_counter()
    subprocess.run(["xargs", "-P", str(parallel), "-I{}", "/bin/sh", "-c", command], input=lines, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - began, children_cpu() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--command", default="true")
    ap.add_argument("--supervisor", action="store_true", help="also through a running supervisor")
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                    help="also the backfill of another checkout (e.g. main=/work/wt/x-old)")
    args = ap.parse_args()
    trees = {label: Path(path).resolve() for label, _, path in (spec.partition("=") for spec in args.tree)}
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package: bytecode cached
    sides: dict[str, list[tuple[float, float | None]]] = {"xargs": [], "cronplus (in-process)": []}
    if args.supervisor:
        sides["cronplus (supervisor)"] = []
    for label in trees:
        sides[f"{label} (in-process)"] = []
        if args.supervisor:
            sides[f"{label} (supervisor)"] = []
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        root = Path(tmp)
        for tree in (ROOT, *trees.values()):
            run_cronplus(root, args.command, 10, args.parallel, tree)  # warm-up: bytecode, page cache
        for _ in range(args.repeat):
            sides["xargs"].append(run_xargs(args.command, args.ticks, args.parallel))
            sides["cronplus (in-process)"].append(run_cronplus(root, args.command, args.ticks, args.parallel))
            if args.supervisor:
                sides["cronplus (supervisor)"].append(run_supervised(root, args.command, args.ticks, args.parallel))
            for label, tree in trees.items():
                sides[f"{label} (in-process)"].append(run_cronplus(root, args.command, args.ticks, args.parallel, tree))
                if args.supervisor:
                    sides[f"{label} (supervisor)"].append(run_supervised(root, args.command, args.ticks, args.parallel,
                                                                         tree))
    base = statistics.median(wall for wall, _ in sides["xargs"])
    print(f"{args.ticks} hourly ticks of `{args.command}`, --parallel {args.parallel}, {args.repeat} rounds "
          f"(load {os.getloadavg()[0]:.1f}); medians:")
    for name, rounds in sides.items():
        times = [wall for wall, _ in rounds]
        cpus = [cpu for _, cpu in rounds if cpu is not None]
        cpu = f", CPU {statistics.median(cpus):.3f} s with its jobs" if cpus else ""
        print(f"  {name:<24} {statistics.median(times):7.3f} s  (min {min(times):.3f}, max {max(times):.3f})"
              f"  x{statistics.median(times) / base:.2f}{cpu}")


if __name__ == "__main__":
    main()
