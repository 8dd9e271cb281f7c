"""W5 history benchmark: a history of 1,000,000 runs; the queries the CLI and the scheduler make.

    .venv/bin/python bench/bench_history.py [--rows 1000000] [--jobs 200] [--days 90] [--db PATH]

Builds the database through History's schema (connect + migrations), bulk-inserting the rows with
executemany in one transaction (a realistic mix: ~94% success, failures with a retry attempt,
timeouts, skipped and missed runs, log paths and sizes), then prints, as medians of several runs:
one job's last 20 runs, failed runs of the last day, a glob query, last_final_run (dependencies),
job names, the `running` lookup, a no-op prune at the default limits, a prune that deletes a day,
the real `cronplus log` command, and the database's bytes per run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cronplus.store.history import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_RUNS_PER_JOB,
    History,
    open_readonly,
)


def build(db: Path, *, rows: int, jobs: int, days: float, now: float) -> float:
    """Insert `rows` runs spread evenly over `days` before `now`; returns the seconds it took."""
    rng = random.Random(42)
    names = [f"job-{i:03d}" for i in range(jobs)]
    span = days * 86400.0
    step = span / rows
    started = time.perf_counter()
    h = History(db)

    def generate():  # type: ignore[no-untyped-def]
        t = now - span
        run = 0
        while run < rows:
            job = names[run % jobs]
            roll = rng.random()
            took = rng.uniform(0.05, 120.0)
            log = f"/var/log/cronplus/{job}/{run + 1}.log"
            if roll < 0.04:  # failure, then a successful retry attempt of the same tick
                yield (job, 1, "failed", "schedule", t, t, t + took, 1, log, 4000 + run % 30000, "exit 1", 0, 2048)
                run += 1
                t += step
                yield (job, 2, "success", "retry", t, t + 30, t + 30 + took, 0, log, 4000 + run % 30000, None, 1, 1024)
            elif roll < 0.05:
                yield (job, 1, "timeout", "schedule", t, t, t + 600, None, log, 4000 + run % 30000, "timeout after 10min", 1, 8192)
            elif roll < 0.06:
                yield (job, 1, "skipped", "schedule", t, None, t, None, None, None, "overlap: previous run still running", 1, None)
            else:
                yield (job, 1, "success", "schedule", t, t, t + took, 0, log, 4000 + run % 30000, None, 1, 512)
            run += 1
            t += step

    h.conn.execute("BEGIN")
    h.conn.executemany(
        "INSERT INTO runs (job, attempt, status, trigger, scheduled_at, started_at, ended_at, exit_code,"
        " log_path, pid, reason, final, log_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        generate(),
    )
    h.conn.execute("COMMIT")
    h.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    h.close()
    return time.perf_counter() - started


def space_by_object(db: Path) -> list[tuple[str, int]]:
    """Bytes per table and index (SQLite's dbstat virtual table), largest first."""
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC").fetchall()
    except sqlite3.OperationalError:
        rows = []  # SQLite built without dbstat
    conn.close()
    return [(name, int(size)) for name, size in rows if size > 4096 * 4]


def median_ms(fn: Callable[[], object], repeat: int = 7) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--days", type=float, default=89.0)
    p.add_argument("--db", type=Path, help="database to build (default: a temporary directory)")
    args = p.parse_args()
    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "state" / "history.db"
    if db.exists():
        sys.exit(f"{db} exists; pick a new path")
    now = time.time()
    took = build(db, rows=args.rows, jobs=args.jobs, days=args.days, now=now)
    size = os.path.getsize(db)
    print(f"built {args.rows:,} runs of {args.jobs} jobs over {args.days:g} days in {took:.1f} s "
          f"({args.rows / took:,.0f} rows/s)")
    print(f"database: {size / 1e6:.1f} MB, {size / args.rows:.0f} bytes/run (rows + indexes)")
    print("  " + ", ".join(f"{name} {nbytes / args.rows:.0f}" for name, nbytes in space_by_object(db)) + " (bytes/run)")

    reader = open_readonly(db)
    job = f"job-{args.jobs // 2:03d}"
    checks: list[tuple[str, Callable[[], object]]] = [
        ("last 20 runs of one job (latest_runs)", lambda: reader.latest_runs(job, 20)),
        ("last 20 runs of one job (query jobs=[job])", lambda: reader.query(jobs=[job], limit=20)),
        ("failed+timeout runs of the last day", lambda: reader.query(statuses=["failed", "timeout"], since=now - 86400)),
        ("failed runs of one job, last day", lambda: reader.query(jobs=[job], statuses=["failed"], since=now - 86400)),
        ("newest 20 runs, all jobs", lambda: reader.query(limit=20)),
        ("glob 'job-1*' newest 20", lambda: reader.query(jobs=["job-1*"], limit=20)),
        ("last_final_run(job, at_or_before)", lambda: reader.last_final_run(job, at_or_before=now - 3600)),
        ("job names (skip-scan)", reader.job_names),
        ("running()", reader.running),
        ("get_run", lambda: reader.get_run(args.rows // 2)),
    ]
    for label, fn in checks:
        ms, result = median_ms(fn)
        count = len(result) if isinstance(result, list) else 1
        print(f"  {label:<46} {ms:8.2f} ms  ({count} rows)")
    reader.close()

    writer = History(db)
    log_dir = Path(tmp.name) / "logs"  # no row's log lives here: prune never unlinks outside it
    ms, counts = median_ms(lambda: writer.prune(
        now=now, log_dir=log_dir, max_age_s=DEFAULT_MAX_AGE_S, max_runs_per_job=DEFAULT_MAX_RUNS_PER_JOB,
        max_log_bytes=DEFAULT_MAX_LOG_BYTES), repeat=3)
    print(f"  {'prune at the defaults (nothing to delete)':<46} {ms:8.2f} ms  {counts}")
    ms, counts = median_ms(lambda: writer.prune(
        now=now, log_dir=log_dir, max_age_s=(args.days - 1) * 86400, max_runs_per_job=None, max_log_bytes=None,
        max_rows=None), repeat=1)
    print(f"  {'prune: delete the oldest day (unbounded call)':<46} {ms:8.2f} ms  {counts}")
    ms, counts = median_ms(lambda: writer.prune(
        now=now, log_dir=log_dir, max_age_s=None, max_runs_per_job=DEFAULT_MAX_RUNS_PER_JOB // 4,
        max_log_bytes=None), repeat=1)
    print(f"  {'prune: runs/job cut to 2,500 (one bounded call)':<46} {ms:8.2f} ms  {counts}")
    writer.close()

    cli = [sys.executable, "-m", "cronplus", "--state-dir", str(db.parent), "log"]
    for label, extra in (("cronplus log JOB (20 rows, table)", [job, "--no-pager"]),
                         ("cronplus log --status failed -S -1d --json", ["--status", "failed", "-S", "-1d", "--json"])):
        ms, out = median_ms(lambda extra=extra: subprocess.run(cli + extra, capture_output=True, check=True).stdout, repeat=5)
        print(f"  {label:<46} {ms:8.2f} ms  ({len(out.splitlines())} lines, whole process)")
    ms, _ = median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeat=5)
    print(f"  {'(bare python start-up, for comparison)':<46} {ms:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
