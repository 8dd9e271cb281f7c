#!/usr/bin/env python3
"""W3 across a cluster (engine/claims.py): 1,000 jobs due at one minute on 3 supervisors sharing
one PostgreSQL store (a throw-away server on loopback, tests/pgserver.py), each tick once.

  claims:   the store alone: 3 writers (threads, a connection each) insert the same 1,000
            `running` rows in chunks of launcher.INSERT_CHUNK, as 3 supervisors' launchers do;
            the time of each start_runs call (a chunk's claims: one transaction), median and p99,
            beside one writer alone on PostgreSQL and on SQLite (the baselines, same run); every
            row inserted once.
  fan-out:  the real thing: 3 `cronplus run --db postgresql://... --host-id a|b|c` on one crontab
            of 1,000 `* * * * *` jobs stamping their start (bench/supervised.py's stamp), on a clock
            shifted so the minute is a few seconds away: the last start after the minute, when all
            1,000 are recorded, each job started exactly once (stamps and rows); beside one
            supervisor on SQLite and one on PostgreSQL (the baselines, same run).

Usage: .venv/bin/python bench/bench_cluster_claims.py [--jobs N] [--repeat N] [--only claims,fanout]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervised import (  # noqa: E402
    ROOT,
    compile_stamp,
    cpu_seconds,
    env_note,
    offset_for,
    pct,
    read_stamps,
    sleep_until,
    stop,
)

from cronplus.engine.launcher import INSERT_CHUNK  # noqa: E402
from cronplus.status import Trigger  # noqa: E402
from cronplus.store.api import HistoryStore, RunStart  # noqa: E402

HOSTS = ("a", "b", "c")
TICK = 1_767_225_600.0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.2f} ms"


def starts(n: int, host: str, tick: float) -> list[RunStart]:
    return [RunStart(job=f"j{i:04d}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=tick, tz=None, started_at=tick,
                     log_path=lambda run_id, i=i: f"/logs/{host}/j{i:04d}/{run_id}.log", owner=f"{host}:1:0", claim="")
            for i in range(n)]


def insert_all(store: HistoryStore, mine: list[RunStart], times: list[float], won: list[str],
               barrier: threading.Barrier | None = None) -> None:
    if barrier is not None:
        barrier.wait(30)
    for i in range(0, len(mine), INSERT_CHUNK):
        chunk = mine[i:i + INSERT_CHUNK]
        kv = [(f"scheduler.tick.{s.job}", repr(s.scheduled_at)) for s in chunk]
        started = time.perf_counter()
        got = store.start_runs(chunk, kv=kv)
        times.append(time.perf_counter() - started)
        won.extend(s.job for s, run_id in zip(chunk, got, strict=True) if run_id is not None)


def claims(url_for: Any, work: Path, n: int, repeat: int) -> None:
    from cronplus.store.history import History
    from cronplus.store.postgres import open_postgres

    print(f"claims: {n} rows in chunks of {INSERT_CHUNK} (one start_runs call a chunk), {repeat} round(s):")
    rows: dict[str, list[float]] = {"sqlite, 1 writer": [], "postgresql, 1 writer": [], "postgresql, 3 writers": []}
    totals: dict[str, list[float]] = {name: [] for name in rows}
    for r in range(repeat):
        sqlite = History(work / f"claims-{r}.db", host="a")
        times: list[float] = []
        began = time.perf_counter()
        insert_all(sqlite, starts(n, "a", TICK), times, [])
        totals["sqlite, 1 writer"].append(time.perf_counter() - began)
        rows["sqlite, 1 writer"] += times
        sqlite.close()

        alone = open_postgres(url_for(), host="a")
        times = []
        began = time.perf_counter()
        insert_all(alone, starts(n, "a", TICK), times, [])
        totals["postgresql, 1 writer"].append(time.perf_counter() - began)
        rows["postgresql, 1 writer"] += times
        alone.close()

        url = url_for()
        stores = [open_postgres(url, host=host) for host in HOSTS]
        per = {host: ([], []) for host in HOSTS}  # host -> (times, won)
        barrier = threading.Barrier(len(HOSTS))
        threads = [threading.Thread(target=insert_all, args=(store, starts(n, host, TICK), *per[host], barrier))
                   for store, host in zip(stores, HOSTS, strict=True)]
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        totals["postgresql, 3 writers"].append(time.perf_counter() - began)
        won = Counter(job for _, jobs in per.values() for job in jobs)
        inserted = stores[0].query(limit=None)
        once = len(won) == n and set(won.values()) == {1} and len(inserted) == n
        shares = " ".join(f"{host}={len(per[host][1])}" for host in HOSTS)
        print(f"  round {r + 1}: 3 writers: every row once: {once} (won: {shares})")
        for host in HOSTS:
            rows["postgresql, 3 writers"] += per[host][0]
        for store in stores:
            store.close()
    for name, values in rows.items():
        print(f"  {name:<22}: per chunk median {ms(statistics.median(values))}, p99 {ms(pct(values, 99))},"
              f" max {ms(max(values))}; all {n} rows {statistics.median(totals[name]):6.3f} s (median of rounds)")


def supervisors(work: Path, tag: str, crontab: Path, n: int, dbs: list[tuple[str, list[str]]], lead: float) -> dict[str, Any]:
    """One tick: start the supervisors (`dbs`: host id, extra args) on one shifted clock, wait
    until the n runs are recorded, stop them; -> the tick's real time and the procs' errors."""
    offset, boundary = offset_for(lead)
    procs = []
    for host, extra in dbs:
        state = work / f"{tag}-{host}"
        err = work / f"{tag}-{host}.err"
        import subprocess

        procs.append((subprocess.Popen(
            [sys.executable, "-m", "tests.shifted_run", repr(offset), "--crontab", str(crontab), "--state-dir",
             str(state), "run", *extra], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(err, "w")), err))  # noqa: SIM115
    deadline = time.time() + 60
    for (proc, err), (host, _) in zip(procs, dbs, strict=True):
        while not (work / f"{tag}-{host}" / "control.sock").exists():
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"cronplus did not start: {err.read_text()}")
            time.sleep(0.02)
    if time.time() > boundary - 0.5:
        print(f"  [{tag}: the supervisors took longer to start than the lead of {lead} s]")
    sleep_until(boundary - 0.5)
    cpu = sum(cpu_seconds(proc.pid)[0] for proc, _ in procs)  # from just before the minute
    sleep_until(boundary)
    return {"boundary": boundary, "procs": procs, "cpu": cpu}


def recorded(count: Any, n: int, timeout: float) -> float | None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if count() >= n:
            return time.time()
        time.sleep(0.05)
    return None


def fanout(url_for: Any, work: Path, n: int, repeat: int) -> None:
    import psycopg

    stamp = compile_stamp(work)
    print(f"fan-out: {n} jobs due at one minute, {repeat} tick(s) a side (medians):")
    results: dict[str, list[tuple[float, float | None, bool, float]]] = {"sqlite, 1 supervisor": [],
                                                                   "postgresql, 1 supervisor": [],
                                                                   "postgresql, 3 supervisors": []}
    for r in range(repeat):
        for side in results:
            out = work / f"{side.replace(', ', '-').replace(' ', '')}-{r}.stamps"
            crontab = work / f"fanout-{r}.crontab"
            crontab.write_text("".join(f"# cronplus: name=j{i:04d}\n* * * * * {stamp} {out} j{i:04d}\n" for i in range(n)))
            if side.startswith("sqlite"):
                db = work / f"fanout-{r}.db"
                dbs = [("a", ["--db", str(db)])]
            else:
                url = url_for()
                dbs = [(host, ["--db", url, "--host-id", host]) for host in HOSTS[:int(side.split(", ")[1][0])]]
            tick = supervisors(work, f"{side[:6]}{len(dbs)}-{r}", crontab, n, dbs, lead=6.0 + n / 250)
            if side.startswith("sqlite"):
                import sqlite3

                def count(db: Path = db) -> int:
                    with sqlite3.connect(db) as conn:
                        return int(conn.execute("SELECT count(*) FROM runs WHERE status != 'running'").fetchone()[0])
            else:
                def count(url: str = url) -> int:
                    with psycopg.connect(url) as conn:
                        return int(conn.execute("SELECT count(*) FROM runs WHERE status != 'running'").fetchone()[0])
            done = recorded(count, n, 120)
            cpu = sum(cpu_seconds(proc.pid)[0] for proc, _ in tick["procs"]) - tick["cpu"]
            for proc, _ in tick["procs"]:
                stop(proc)
            stamps = read_stamps(out)
            per_job = Counter(name for name, _ in stamps)
            once = len(per_job) == n and set(per_job.values()) == {1}
            if not side.startswith("sqlite"):
                with psycopg.connect(url) as conn:
                    rows = conn.execute("SELECT job, count(*) FROM runs GROUP BY job").fetchall()
                    hosts = dict(conn.execute("SELECT host, count(*) FROM runs GROUP BY host").fetchall())
                once = once and len(rows) == n and {c for _, c in rows} == {1}
                print(f"  tick {r + 1}: runs per host {hosts}")
            last = max(t for _, t in stamps) - tick["boundary"] if stamps else float("nan")
            results[side].append((last, None if done is None else done - tick["boundary"], once, cpu))
    for side, ticks in results.items():
        last = statistics.median(t[0] for t in ticks)
        rec = statistics.median(t[1] if t[1] is not None else float("nan") for t in ticks)
        once = all(t[2] for t in ticks)
        cpu = statistics.median(t[3] for t in ticks)
        print(f"  {side:<26}: last start {last:6.2f} s after the minute, all recorded {rec:6.2f} s,"
              f" supervisors' CPU {cpu:5.2f} s, each job started exactly once: {once}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="claims,fanout")
    args = parser.parse_args()
    from tests.pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise SystemExit("no PostgreSQL server binaries (apt-get install postgresql)")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        server = PgServer(work / "pg", bindir)
        (work / "pg").mkdir()
        server.start()
        try:
            print(f"bench_cluster_claims: {env_note()}, PostgreSQL on 127.0.0.1 (loopback)")

            def url_for() -> str:
                return server.url(schema=server.new_schema())

            only = set(args.only.split(","))
            if "claims" in only:
                claims(url_for, work, args.jobs, args.repeat)
            if "fanout" in only:
                fanout(url_for, work, args.jobs, args.repeat)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
