#!/usr/bin/env python3
"""Cluster benchmarks (docs/cluster.md): what a shared PostgreSQL history costs a tick, against
SQLite, in the same run.

  W2 delay:  20 `* * * * *` jobs stamping their start (bench/supervised.py's tiny C program);
             delay from the minute boundary to each process's start, median and p95, for the real
             `cronplus run` with `--db postgresql://...` (a throw-away server on loopback) and with
             the state dir's SQLite; the ratio PostgreSQL / SQLite (goal: within 1.5x). Also the
             supervisor's CPU per run, the database server's CPU per run (PostgreSQL: every
             process of the server; SQLite has none, it is in the supervisor) and when all 20 runs
             were seen final (a 10 ms poll of the store, the same for both); a tick's first and
             last start (the first waits for its chunk's rows, the last for both chunks').
  Why:       the loopback round trip (`SELECT 1`, TCP with password authentication, as the
             supervisor connects) and a one-row insert's commit on each server; then one more tick
             per PostgreSQL side with `log_statement = all`, counting the statements the
             supervisor sent for the tick's 20 runs (its connections only: application_name).

Every tick is a fresh supervisor on a clock shifted so that its next minute boundary is 4 s away
(tests/shifted_run.py, bench/supervised.py), with a fresh schema (PostgreSQL) or state dir
(SQLite); the sides alternate tick by tick, so a change in the machine's load hits both alike.

The server is tests/pgserver.py's (initdb + postgres from Debian's `postgresql` in a temp dir,
scram-sha-256 over TCP on 127.0.0.1, so the supervisor goes through the credentials path),
started `durable` by default: fsync, synchronous_commit and full_page_writes at PostgreSQL's
defaults, as a production server has them (the tests' server turns them off). `--pg fast` adds a
side on a second server with the tests' settings, `--pg durable,fast` both.

W3 across 3 supervisors (1,000 jobs due at once, each exactly once) needs the cluster's claims:
bench/bench_cluster_claims.py measures it.

Usage: .venv/bin/python bench/bench_cluster.py [--ticks N] [--pg durable|fast|durable,fast] [--tree DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervised import (  # noqa: E402
    ROOT,
    compile_stamp,
    cpu_seconds,
    env_note,
    final_runs_sqlite,
    nice_ratio,
    offset_for,
    pct,
    read_stamps,
    sleep_until,
    start_cronplus,
    stop,
    write_crontab,
)

from tests.pgserver import PgServer, find_bindir  # noqa: E402

JOBS = 20
LEAD_S = 4.0
TREE = ROOT  # the checkout whose `cronplus run` every side runs (--tree)


@dataclass
class Tick:
    boundary: float  # real time of the tick
    late: bool = False  # the supervisor was not ready 0.8 s before the boundary
    starts: list[float] = field(default_factory=list)  # stamp - boundary
    recorded: float | None = None  # all JOBS runs seen final - boundary
    cpu: float = 0.0  # the supervisor's
    db_cpu: float = 0.0  # the database server's (all its processes)


@dataclass
class Side:
    """One way of keeping history: its name, the `run` options per tick, and how many runs are final."""

    name: str
    server: PgServer | None = None
    schema: str = ""

    def prepare(self, work: Path, tag: str) -> tuple[str, ...]:
        if self.server is None:
            return ()
        self.schema = self.server.new_schema()
        return ("--db", self.server.url(schema=self.schema), "--host-id", f"bench-{tag}")

    def final_runs(self, work: Path, tag: str) -> int:
        if self.server is None:
            return final_runs_sqlite(work / f"state-{tag}" / "history.db")
        rows = self.server.admin_sql(f"SELECT count(*) FROM {self.schema}.runs WHERE status != 'running'",
                                     "cronplus")
        return int(rows[0][0])  # type: ignore[call-overload]

    def server_cpu(self) -> float:
        return 0.0 if self.server is None or self.server.proc is None else tree_cpu(self.server.proc.pid)

    def finish(self) -> None:
        if self.server is not None and self.schema:
            self.server.drop_schema(self.schema)
            self.schema = ""


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its living descendants (PostgreSQL's backends)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        with contextlib.suppress(OSError, StopIteration, ValueError):
            total += cpu_seconds(p)[0]
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return total


def poll_until(check: Callable[[], bool], deadline: float) -> float | None:
    while time.time() < deadline:
        if check():
            return time.time()
        time.sleep(0.01)
    return None


def one_tick(work: Path, side: Side, crontab: Path, stamps: Path, tag: str) -> Tick:
    extra = side.prepare(work, tag)
    offset, boundary = offset_for(LEAD_S)
    proc = start_cronplus(work, crontab, work / f"state-{tag}", offset, tag, TREE, extra=extra)
    tick = Tick(boundary, late=time.time() > boundary - 0.8)
    sleep_until(boundary - 0.8)
    cpu0, db0 = cpu_seconds(proc.pid)[0], side.server_cpu()
    seen = poll_until(lambda: time.time() > boundary and side.final_runs(work, tag) >= JOBS, boundary + 60)
    tick.recorded = None if seen is None else seen - boundary
    time.sleep(0.3)  # what follows a record (after-commit work) belongs to the run too
    tick.cpu = cpu_seconds(proc.pid)[0] - cpu0
    tick.db_cpu = side.server_cpu() - db0
    stop(proc)
    tick.starts = [t - boundary for _, t in read_stamps(stamps)]
    stamps.unlink(missing_ok=True)
    side.finish()
    return tick


def round_trips(server: PgServer, n: int = 300) -> tuple[float, float]:
    """Median seconds of `SELECT 1` and of a one-row insert's commit, on one connection as the
    supervisor makes it (TCP, password)."""
    import psycopg

    schema = server.new_schema()
    try:
        with psycopg.connect(server.url(schema=schema), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x integer)")
            select, commit = [], []
            for i in range(n):
                t0 = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                t1 = time.perf_counter()
                conn.execute("INSERT INTO t VALUES (%s)", (i,))
                t2 = time.perf_counter()
                select.append(t1 - t0)
                commit.append(t2 - t1)
        return statistics.median(select), statistics.median(commit)
    finally:
        server.drop_schema(schema)


def count_statements(work: Path, side: Side, stamp: str) -> Counter[str]:
    """Statements the supervisor's connections sent for one tick of JOBS runs (start-up excluded:
    counted from 0.8 s before the boundary), from the server's log with log_statement = all."""
    server = side.server
    assert server is not None
    server.admin_sql("ALTER SYSTEM SET log_statement = 'all'")
    server.admin_sql("ALTER SYSTEM SET log_line_prefix = 'app=%a '")
    server.admin_sql("SELECT pg_reload_conf()")
    out, crontab = work / "count.stamps", work / "count.crontab"
    write_crontab(crontab, JOBS, f"{stamp} {out} {{i}}")
    tag = f"count-{side.name}"
    extra = side.prepare(work, tag)
    offset, boundary = offset_for(LEAD_S)
    proc = start_cronplus(work, crontab, work / f"state-{tag}", offset, tag, TREE, extra=extra)
    sleep_until(boundary - 0.8)
    before = server.log.stat().st_size
    poll_until(lambda: time.time() > boundary and side.final_runs(work, tag) >= JOBS, boundary + 60)
    time.sleep(0.3)
    with server.log.open("rb") as log:
        log.seek(before)
        text = log.read().decode(errors="replace")
    stop(proc)
    out.unlink(missing_ok=True)
    side.finish()
    server.admin_sql("ALTER SYSTEM RESET log_statement")
    server.admin_sql("ALTER SYSTEM RESET log_line_prefix")
    server.admin_sql("SELECT pg_reload_conf()")
    kinds: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("app=cronplus ") and (" statement: " in line or " execute " in line):
            sql = line.split(": ", 2)[-1]
            kinds[" ".join(re.sub(r"[(,].*", "", sql).split()[:4])] += 1  # e.g. "UPDATE runs SET pid"
    return kinds


def ms(v: float) -> str:
    return f"{v * 1000:7.1f} ms"


def w2(work: Path, stamp: str, sides: list[Side], ticks: int) -> None:
    results: dict[str, list[Tick]] = {s.name: [] for s in sides}
    for i in range(ticks):
        for side in sides:
            out = work / f"w2.{side.name}.stamps"
            crontab = work / f"w2-{side.name}.crontab"
            write_crontab(crontab, JOBS, f"{stamp} {out} {{i}}")
            results[side.name].append(one_tick(work, side, crontab, out, f"w2-{side.name}-{i}"))
            print(".", end="", flush=True)
    print()
    width = max(len(s.name) for s in sides)
    print(f"W2 start delay, {JOBS} jobs * * * * *, {ticks} tick(s) a side, alternating:")
    summary: dict[str, tuple[float, float, float, float, float]] = {}
    for side in sides:
        ticks_of = results[side.name]
        d = [s for t in ticks_of for s in t.starts]
        rec = [t.recorded for t in ticks_of if t.recorded is not None]
        late = sum(t.late for t in ticks_of)
        if not d:
            print(f"  {side.name:<{width}}: no stamps")
            continue
        runs = max(1, len(d))
        cpu, db_cpu = sum(t.cpu for t in ticks_of) / runs, sum(t.db_cpu for t in ticks_of) / runs
        summary[side.name] = (statistics.median(d), pct(d, 95), cpu, db_cpu,
                              statistics.median(rec) if rec else float("nan"))
        m, p95, _, _, r = summary[side.name]
        first = statistics.median(min(t.starts) for t in ticks_of if t.starts)
        last = statistics.median(max(t.starts) for t in ticks_of if t.starts)
        print(f"  {side.name:<{width}}: a tick's first start (median) {ms(first)}, its last {ms(last)}")
        print(f"  {side.name:<{width}}: n={len(d):3d} delay median {ms(m)}, p95 {ms(p95)}; CPU/run supervisor"
              f" {ms(cpu)}, database {ms(db_cpu)}; all {JOBS} final (median) {ms(r)}"
              + (f"; not final in 60 s: {len(ticks_of) - len(rec)} tick(s)" if len(rec) < len(ticks_of) else "")
              + (f"  [{late} tick(s) started late]" if late else ""))
    base = summary.get("sqlite")
    for name, fig in summary.items():
        if name != "sqlite" and base is not None:
            print(f"  ratio {name}/sqlite: delay median {nice_ratio(fig[0], base[0])}, p95 {nice_ratio(fig[1], base[1])},"
                  f" CPU/run supervisor {nice_ratio(fig[2], base[2])}, supervisor+database"
                  f" {nice_ratio(fig[2] + fig[3], base[2] + base[3])}, all final {nice_ratio(fig[4], base[4])}"
                  + ("  (goal: delay within x1.5)" if name.startswith("postgresql") else ""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=10, help="W2 ticks a side (default 10)")
    ap.add_argument("--pg", default="durable", help="PostgreSQL sides: durable, fast or durable,fast")
    ap.add_argument("--tree", metavar="DIR", default=None,
                    help="run the cronplus of another checkout on every side (e.g. a branch's worktree)")
    args = ap.parse_args()
    global TREE
    if args.tree:
        TREE = Path(args.tree).resolve()
    modes = [m.strip() for m in args.pg.split(",") if m.strip()]
    if not modes or any(m not in ("durable", "fast") for m in modes):
        ap.error("--pg takes durable, fast or durable,fast")
    bindir = find_bindir()
    if bindir is None:
        print("bench_cluster: no PostgreSQL server binaries (initdb, postgres): apt-get install postgresql",
              file=sys.stderr)
        return 1
    print(f"bench_cluster: {time.strftime('%Y-%m-%d %H:%M %Z')}, {env_note()}, {sys.executable}, PostgreSQL {bindir},"
          f" cronplus of {TREE}")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        servers: list[PgServer] = []
        try:
            sides = [Side("sqlite")]
            for mode in modes:
                server = PgServer(work / f"pg-{mode}", bindir, durable=mode == "durable")
                servers.append(server)
                server.start()
                sides.append(Side(f"postgresql-{mode}", server))
            stamp = compile_stamp(work)
            began = time.monotonic()
            for side in sides[1:]:
                assert side.server is not None
                select, commit = round_trips(side.server)
                print(f"  {side.name}: loopback round trip (SELECT 1) {select * 1e6:.0f} us,"
                      f" one-row insert + commit {commit * 1e6:.0f} us (medians of 300)")
            w2(work, stamp, sides, args.ticks)
            for side in sides[1:]:
                kinds = count_statements(work, side, stamp)
                print(f"  {side.name}: statements sent for one tick of {JOBS} runs: {sum(kinds.values())}: "
                      + ", ".join(f"{n} {kind}" for kind, n in kinds.most_common()))
            print(f"  (W2: {time.monotonic() - began:.0f} s); {env_note()}")
        finally:
            for server in servers:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
