"""W6 parse: time `cronplus check` on a generated 10,000-job crontab, and `cronplus --help`.

Usage: python bench/bench_parse.py [--jobs N] [--runs R]
Prints medians (and min/max) of R subprocess runs each, plus the in-process parse time (later
runs reuse the parser's caches), and a bare `python -c pass` start-up as the floor. The
generated file mixes ~1,500 distinct schedules, annotations every 10th job with after= chains,
and CRON_TZ=Europe/Berlin. Machine is shared: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINUTES = ["*/5", "0", "15", "30", "*/15", "0-30/10", "5,35", "*", "{i}", "{i},{j}"]
HOURS = ["*", "3", "0-23/2", "9-17", "*/6", "1,13"]
DOMS = ["*", "1", "15", "1-7", "*/2"]
MONTHS = ["*", "jan-jun", "*/3", "1,7"]
DOWS = ["*", "mon-fri", "0", "sat,sun", "1-5/2"]


def generate(n: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    lines = ["SHELL=/bin/sh", "PATH=/usr/bin:/bin", "CRON_TZ=Europe/Berlin",  # a DST zone, so lint's DST checks run
             "# cronplus-defaults: retries=1 retry-delay=30s timeout=1h"]
    for i in range(n):
        if i % 10 == 0:
            after = f" after=job{i - 10}" if i >= 10 else ""
            lines.append(f"# cronplus: name=job{i} overlap=skip{after}")
        if i % 97 == 0:
            sched = rnd.choice(["@daily", "@hourly", "@weekly"])
        else:
            dom, dow = rnd.choice(DOMS), rnd.choice(DOWS)
            if dom != "*" and dow != "*":
                dow = "*"
            minute = rnd.choice(MINUTES).format(i=i % 60, j=(i * 7) % 60)
            sched = " ".join([minute, rnd.choice(HOURS), dom, rnd.choice(MONTHS), dow])
        lines.append(f"{sched} /usr/local/bin/task{i} --flag {i} >> /var/log/t{i}.log 2>&1")
    return "\n".join(lines) + "\n"


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out.append(time.perf_counter() - t0)
        if result.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} failed: {result.stderr[-500:]}")
    return out


def fmt(name: str, xs: list[float]) -> str:
    return f"{name:<34} median {statistics.median(xs) * 1000:7.1f} ms  (min {min(xs) * 1000:.1f}, max {max(xs) * 1000:.1f}, n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "crontab"
        path.write_text(generate(a.jobs))
        py = sys.executable
        floor = timed([py, "-c", "pass"], a.runs)
        helps = timed([py, "-m", "cronplus", "--help"], a.runs)
        checks = timed([py, "-m", "cronplus", "check", str(path)], a.runs)
        from cronplus.crontab import load_crontab

        inproc = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            ct = load_crontab(path, system=False)
            inproc.append(time.perf_counter() - t0)
        print(f"W6 parse: {a.jobs} jobs ({len(ct.jobs)} parsed, {len(ct.warnings)} warnings), {path.stat().st_size} bytes")
        print(fmt("python -c pass (floor)", floor))
        print(fmt("cronplus --help", helps))
        print(fmt(f"cronplus check ({a.jobs} jobs)", checks))
        print(fmt("load_crontab in-process", inproc))
        print(f"check per job (in-process): {statistics.median(inproc) / a.jobs * 1e6:.1f} us")


if __name__ == "__main__":
    main()
