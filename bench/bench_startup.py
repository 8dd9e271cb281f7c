"""W6 (start-up part): median wall time of `cronplus --help` and `cronplus next '*/5 * * * *'`
against `python -c pass` on the same interpreter, plus the cost of one next_fire call (a fixed
mix, and 10,000 calls over 20 varied schedules, 4 zones and random start times).

    .venv/bin/python bench/bench_startup.py [--runs 15]

Each command runs as a fresh subprocess (`python -m cronplus ...`, the same start-up path as
the console script minus its tiny wrapper). The machine is shared and noisy: read the medians
and the overhead over bare Python, not single runs. Budget: `cronplus next` under 150 ms.
`cronplus next` imports croniter (and with it dateutil) on its first next_fire; `--help` must not.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "cronplus --help": [sys.executable, "-m", "cronplus", "--help"],
    "cronplus next '*/5 * * * *'": [sys.executable, "-m", "cronplus", "next", "*/5 * * * *"],
    "cronplus next '30 2 * * *' --tz Europe/Berlin -n 20": [
        sys.executable, "-m", "cronplus", "next", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "20"],
}


def time_command(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - t0)
    return times


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
    args = ap.parse_args()
    base = None
    print(f"{'command':<52} {'median ms':>10} {'min ms':>8} {'over python':>12}")
    for label, argv in COMMANDS.items():
        time_command(argv, 2)  # warm the page cache
        times = time_command(argv, args.runs)
        med = statistics.median(times) * 1000
        base = med if base is None else base
        print(f"{label:<52} {med:>10.1f} {min(times) * 1000:>8.1f} {med - base:>+11.1f}")
    print(f"next_fire, 5 mixed schedules, Europe/Berlin: {next_fire_cost() * 1e6:.1f} us per call")
    print(f"next_fire, 10,000 calls, 20 varied schedules, 4 zones: {next_fire_varied_cost() * 1e6:.1f} us per call")
    print(f"(for scale: `import croniter` alone adds ~{croniter_import_cost() * 1000:.0f} ms; cronplus next pays it, --help does not)")


if __name__ == "__main__":
    main()
