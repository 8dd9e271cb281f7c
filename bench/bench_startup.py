"""W6 (start-up part): median wall time of `cronplus --help` and `cronplus next '*/5 * * * *'`
against `python -c pass` on the same interpreter, plus the cost of one next_fire call (a fixed
mix, and 10,000 calls over 20 varied schedules, 4 zones and random start times).

    .venv/bin/python bench/bench_startup.py [--runs 15]

Each command runs as a fresh subprocess (`python -m cronplus ...`, the same start-up path as
the console script minus its tiny wrapper). The machine is shared and noisy: read the medians
and the overhead over bare Python, not single runs, and the CPU column (user + system of the
child, steadier than wall time under load). Budget (issue 11): `cronplus next` under 100 ms.
`--tree main=DIR` times another checkout's commands in the same rounds (cwd DIR, where
`python -m cronplus` finds that checkout's package first), side by side.
`cronplus next` imports croniter (and with it dateutil) on its first next_fire; `--help` must not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cronplus --help": [sys.executable, "-m", "cronplus", "--help"],
    "cronplus next '*/5 * * * *'": [sys.executable, "-m", "cronplus", "next", "*/5 * * * *"],
    "cronplus next '30 2 * * *' --tz Europe/Berlin -n 20": [
        sys.executable, "-m", "cronplus", "next", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "20"],
}


# As installed: pip writes the bytecode at install time, so the children may cache theirs (the
# warm-up runs write it). With PYTHONDONTWRITEBYTECODE=1 in the environment every run would
# compile cronplus from source, ~15 ms more than a user's `cronplus next` pays.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_command(argv: list[str], runs: int, cwd: str | None = None) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system, from wait4: steadier than wall on a loaded
    machine) of each of `runs` runs."""
    times, cpus = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=ENV)
        _, _, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - t0)
        proc.returncode = 0  # reaped above
        cpus.append(usage.ru_utime + usage.ru_stime)
    return times, cpus


def next_fire_cost(n: int = 20000) -> float:
    from cronplus.crontab.parser import parse_schedule
    from cronplus.crontab.schedule import next_fire

    schedules = [parse_schedule(e) for e in ("*/5 * * * *", "30 2 * * *", "0 0 13 * 5", "0 9 * * 1-5", "@monthly")]
    after = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
    t0 = time.perf_counter()
    for i in range(n):
        next_fire(schedules[i % len(schedules)], after, "Europe/Berlin")
    return (time.perf_counter() - t0) / n


VARIED = ["*/5 * * * *", "30 2 * * *", "0 0 13 * 5", "0 9 * * 1-5", "@monthly", "@hourly",
          "0 0 */2 * 1", "15,45 8-18 * * 1-5", "0 0 1 1 *", "0 0 29 2 *", "30 0-23 * * *",
          "0 */2 * * *", "5 4 * * sun", "0 12 1,15 * *", "*/15 9-17 * 1-6 *", "0 0 31 * *",
          "@daily", "0 3-3 * * *", "59 23 31 12 *", "0 0 1-7 * 1"]


def next_fire_varied_cost(n: int = 10000) -> float:
    """Median of 3 passes over the same n (schedule, start, zone) calls, seconds per call."""
    import random
    from datetime import timedelta

    from cronplus.crontab.parser import parse_schedule
    from cronplus.crontab.schedule import next_fire

    rng = random.Random(1)
    schedules = [parse_schedule(e) for e in VARIED]
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]
    base = datetime(2025, 1, 1, tzinfo=UTC)
    calls = [(rng.choice(schedules), base + timedelta(minutes=rng.randrange(2 * 365 * 1440)), rng.choice(zones))
             for _ in range(n)]
    passes = []
    for _ in range(3):
        t0 = time.perf_counter()
        for s, after, tz in calls:
            next_fire(s, after, tz)
        passes.append((time.perf_counter() - t0) / n)
    return statistics.median(passes)


def croniter_import_cost() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import croniter"], check=True)
    with_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return with_import - (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                    help="also time the commands of another checkout (run with it as the working directory)")
    args = ap.parse_args()
    trees: list[tuple[str, str | None]] = [("", None)]
    trees += [(f"[{label}] ", str(Path(path).resolve())) for label, _, path in (t.partition("=") for t in args.tree)]
    print(f"{'command':<60} {'median ms':>10} {'min ms':>8} {'over python':>12} {'CPU ms':>7}")
    base = None
    rows = [(prefix + label, argv, cwd) for label, argv in COMMANDS.items() for prefix, cwd in trees
            if cwd is None or argv[1] == "-m"]
    for _, argv, cwd in rows:
        time_command(argv, 2, cwd)  # warm the page cache
    results: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label, _, _ in rows}
    for _ in range(args.runs):  # round-robin: a change in the machine's load hits every row alike
        for label, argv, cwd in rows:
            wall, cpu = time_command(argv, 1, cwd)
            results[label][0].extend(wall)
            results[label][1].extend(cpu)
    for label, (times, cpus) in results.items():
        med = statistics.median(times) * 1000
        base = med if base is None else base
        print(f"{label:<60} {med:>10.1f} {min(times) * 1000:>8.1f} {med - base:>+11.1f} {statistics.median(cpus) * 1000:>7.1f}")
    print(f"next_fire, 5 mixed schedules, Europe/Berlin: {next_fire_cost() * 1e6:.1f} us per call")
    print(f"next_fire, 10,000 calls, 20 varied schedules, 4 zones: {next_fire_varied_cost() * 1e6:.1f} us per call")
    print(f"(for scale: `import croniter` alone adds ~{croniter_import_cost() * 1000:.0f} ms; cronplus next pays it, --help does not)")


if __name__ == "__main__":
    main()
