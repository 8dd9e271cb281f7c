"""W6 (start-up part): median wall time of `cronplus --help` and `cronplus next '*/5 * * * *'`
against `python -c pass` on the same interpreter, plus the cost of one next_fire call.

    .venv/bin/python bench/bench_startup.py [--runs 15]

Each command runs as a fresh subprocess (`python -m cronplus ...`, the same start-up path as
the console script minus its tiny wrapper). The machine is shared and noisy: read the medians
and the overhead over bare Python, not single runs. Budget: `cronplus next` under 150 ms.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

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
    from cronplus.crontab import parse_schedule
    from cronplus.schedule import next_fire

    schedules = [parse_schedule(e) for e in ("*/5 * * * *", "30 2 * * *", "0 0 13 * 5", "0 9 * * 1-5", "@monthly")]
    after = datetime(2025, 3, 30, 0, 30, tzinfo=timezone.utc)
    t0 = time.perf_counter()
    for i in range(n):
        next_fire(schedules[i % len(schedules)], after, "Europe/Berlin")
    return (time.perf_counter() - t0) / n


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
    print(f"(for scale: `import croniter` alone adds ~{croniter_import_cost() * 1000:.0f} ms; cronplus next does not import it)")


if __name__ == "__main__":
    main()
