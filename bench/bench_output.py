"""W4 (shared BENCH.md): one job writing 200 MB and 1 GB to stdout.

For each size, in the same run: a bare subprocess given the log file directly as stdout, and
`runner.run_attempt` (pipe -> event-loop pump -> log file) with the cap above the size (whole
capture) and with the default 100 MiB cap (head + tail kept, the rest drained and dropped).
Modes run round-robin with a sync before each run. Reports the median wall time until the run is finished, the ratio to bare, the supervisor's CPU
seconds, and its peak RSS growth (VmHWM, reset through /proc/self/clear_refs before each run).

    .venv/bin/python bench/bench_output.py [--repeat 3] [--sizes 200M,1G] [--dir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cronplus.errors import SourceLoc
from cronplus.model import JobOptions, JobSpec, Schedule

MB = 1000 * 1000
MiB = 1024 * 1024


def parse_size(text: str) -> int:
    units = {"K": 1024, "M": MiB, "G": 1024 * MiB}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def job(command: str, cap: int, home: Path) -> JobSpec:
    schedule = Schedule(
        text="@yearly", minutes=frozenset({0}), hours=frozenset({0}), days=frozenset({1}), months=frozenset({1}),
        weekdays=frozenset(range(7)), dom_star=False, dow_star=True, minute_star=False, hour_star=False,
    )  # fmt: skip
    return JobSpec(
        loc=SourceLoc(path="bench", line=1), name="w4", schedule=schedule, command=command, stdin=None,
        env=(("HOME", str(home)),), options=JobOptions(max_log_size=cap),
    )  # fmt: skip


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := VmRSS


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bare(command: str, log: Path) -> dict[str, float]:
    reset_peak_rss()
    base, cpu = rss_kb("VmRSS"), cpu_self()
    t = time.perf_counter()
    with open(log, "wb") as out:
        subprocess.run(["/bin/sh", "-c", command], stdout=out, stderr=out, check=True)
    return {"wall": time.perf_counter() - t, "cpu": cpu_self() - cpu, "rss_mb": (rss_kb("VmHWM") - base) / 1024}


def with_runner(command: str, log: Path, cap: int, home: Path) -> dict[str, float]:
    from cronplus.engine.runner import run_attempt

    async def main() -> dict[str, float]:
        reset_peak_rss()
        base, cpu = rss_kb("VmRSS"), cpu_self()
        t = time.perf_counter()
        result = await run_attempt(job(command, cap, home), run_id=1, attempt=1, scheduled_at=datetime.now(UTC), log_path=log)
        wall = time.perf_counter() - t
        assert result.exit_code == 0, result
        return {
            "wall": wall,
            "cpu": cpu_self() - cpu,
            "rss_mb": (rss_kb("VmHWM") - base) / 1024,
            "bytes": result.output_bytes,
            "kept": log.stat().st_size,
        }

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="200M,1G")
    ap.add_argument("--writer", choices=["head", "dd"], default="head", help="head -c (8 KiB writes) or dd bs=1M")
    ap.add_argument("--dir", default=None, help="where log files go (default: a temp dir)")
    args = ap.parse_args()
    made = None if args.dir else tempfile.mkdtemp(prefix="bench-w4-")
    base = Path(args.dir or made)
    base.mkdir(parents=True, exist_ok=True)
    print(f"W4 output: writer {args.writer}, median of {args.repeat}; logs in {base}; {os.cpu_count()} CPUs")
    print(f"{'size':>6} {'mode':<22} {'wall s':>7} {'x bare':>7} {'cpu s':>6} {'rss+ MB':>8} {'MB/s':>7} {'kept MB':>8}")
    for text in args.sizes.split(","):
        size = parse_size(text)
        command = f"head -c {size} /dev/zero"
        if args.writer == "dd":
            command = f"dd if=/dev/zero bs=1M count={size // MiB} status=none"
        modes = {
            "bare (file as stdout)": lambda log, c=command: bare(c, log),
            "runner, whole capture": lambda log, c=command, s=size: with_runner(c, log, s + 1, base),
            "runner, 100MiB cap": lambda log, c=command: with_runner(c, log, 100 * MiB, base),
        }
        results: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
        for i in range(args.repeat):  # round-robin, so page-cache writeback hits every mode alike
            for name, fn in modes.items():
                log = base / f"{text}-{i}.log"
                os.sync()  # start each run with no dirty pages from the previous one
                run = fn(log)
                run["kept"] = log.stat().st_size
                log.unlink()
                results[name].append(run)
        bare_wall = statistics.median(r["wall"] for r in results["bare (file as stdout)"])
        for name, runs in results.items():
            wall = statistics.median(r["wall"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            rss = max(r["rss_mb"] for r in runs)
            kept = runs[0]["kept"]
            print(
                f"{text:>6} {name:<22} {wall:7.3f} {wall / bare_wall:7.2f} {cpu:6.2f} {rss:8.1f} {size / MB / wall:7.0f} {kept / MB:8.1f}"
            )
    if made is not None:
        os.rmdir(made)  # each log was removed after its run


if __name__ == "__main__":
    main()
