"""Retention of run history and run logs (History.prune). Three independent limits, each None to
disable:

- age: rows whose time (start, or decision time for runs that never started) is older than
  `max_age_s` are deleted with their log files;
- count: each job keeps at most `max_runs_per_job` rows (attempts count as rows), oldest go first;
- disk: the finished runs' log files under `log_dir` together stay under `max_log_bytes`; the
  oldest logs are deleted first, their rows stay (`cronplus output` then says the log is gone).

A `running` row and its log are never touched. Only files under `log_dir` are ever unlinked,
whatever a row's log_path says.

Cost: checking the limits is O(jobs) (the run_stats table, kept by triggers) plus an index probe,
so a prune with nothing to do takes well under a millisecond on a 1M-row database. Deletes go in
batches of PRUNE_BATCH rows, one short transaction each, and one call does at most `max_rows`
deletions/evictions (default PRUNE_MAX_ROWS): the supervisor calls prune on its own loop every
few minutes, so a backlog (limits lowered, a long-stopped host) is worked off over several calls
instead of stalling scheduling for seconds.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

_TIME = "coalesce(started_at, ended_at)"  # the runs_by_time index expression
PRUNE_BATCH = 2_000  # rows per transaction: the writer never holds the lock for long
PRUNE_MAX_ROWS = 5_000  # per call: ~0.1-0.4 s on a busy 2-core machine; 5k per 5 min >> any insert rate
LOG_CURSOR_KEY = "retention:log_cursor"  # run_id below which every finished log is evicted


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Connection(Protocol):
    """The SQL this module speaks: `?` placeholders, rows read by column name (every selected
    value is named), nothing but what SQLite and PostgreSQL read alike. SQLite's connection is
    one; the PostgreSQL store gives an adapter (postgres_history.QmarkConnection)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Any, /) -> Any: ...


class History(Protocol):
    """What prune needs of the writer (history.History, postgres_history.PostgresHistory): said
    here, so that this module does not import the ones that call it."""

    @property
    def conn(self) -> Connection: ...

    def _transaction(self) -> AbstractContextManager[object]: ...  # begun now (history.py: transaction() begins at its first write)
    def kv_get(self, key: str) -> str | None: ...
    def kv_set(self, key: str, value: str) -> None: ...


def prune(
    history: History,
    *,
    now: float,
    log_dir: Path,
    max_age_s: float | None,
    max_runs_per_job: int | None,
    max_log_bytes: int | None,
    max_rows: int | None = PRUNE_MAX_ROWS,
) -> dict[str, int]:
    """Apply the limits; returns counts: rows_by_age, rows_by_count, logs_evicted, log_bytes_freed."""
    pruner = _Pruner(history, log_dir, max_rows)
    if max_age_s is not None:
        sql = f"SELECT run_id, log_path FROM runs WHERE {_TIME} < ? AND status != 'running' ORDER BY {_TIME}"
        pruner.counts["rows_by_age"] = pruner.delete_rows(sql, (now - max_age_s,))
    if max_runs_per_job is not None:
        pruner.counts["rows_by_count"] = pruner.prune_counts(max(max_runs_per_job, 0))
    if max_log_bytes is not None:
        pruner.enforce_log_budget(max(max_log_bytes, 0))
    return pruner.counts


class _Pruner:
    def __init__(self, history: History, log_dir: Path, max_rows: int | None) -> None:
        self.history = history
        self.conn = history.conn
        self.root = os.path.abspath(log_dir) + os.sep
        self.remaining = float("inf") if max_rows is None else max_rows
        self.counts = {"rows_by_age": 0, "rows_by_count": 0, "logs_evicted": 0, "log_bytes_freed": 0}

    def _batch(self) -> int:
        return int(min(PRUNE_BATCH, self.remaining))

    def prune_counts(self, keep: int) -> int:
        over = self.conn.execute("SELECT job FROM run_stats WHERE runs > ? ORDER BY job", (keep,)).fetchall()
        deleted = 0
        for job in (row["job"] for row in over):
            oldest_kept = self._oldest_kept(job, keep)
            if oldest_kept is not None:
                sql = (
                    "SELECT run_id, log_path FROM runs WHERE job = ? AND run_id < ? AND status != 'running'"
                    " ORDER BY run_id"
                )
                deleted += self.delete_rows(sql, (job, oldest_kept))
        return deleted

    def _oldest_kept(self, job: str, keep: int) -> int | None:
        """run_id of the keep-th newest row of `job` (O(keep) on runs_by_job); None: nothing to cut."""
        if keep == 0:
            row = self.conn.execute("SELECT max(run_id) + 1 AS run_id FROM runs WHERE job = ?", (job,)).fetchone()
        else:
            row = self.conn.execute(
                "SELECT run_id FROM runs WHERE job = ? ORDER BY run_id DESC LIMIT 1 OFFSET ?", (job, keep - 1)
            ).fetchone()
        return None if row is None or row["run_id"] is None else int(row["run_id"])

    def delete_rows(self, select_sql: str, params: tuple[Any, ...]) -> int:
        deleted = 0
        while self.remaining > 0:
            rows = self.conn.execute(select_sql + " LIMIT ?", (*params, self._batch())).fetchall()
            if not rows:
                break
            with self.history._transaction():  # one statement: about twice as fast as executemany
                marks = ",".join("?" * len(rows))
                self.conn.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", [row["run_id"] for row in rows])
            deleted += len(rows)
            self.remaining -= len(rows)
            # Unlink after the commit: a crash in between leaves a stray file, never a row
            # whose log vanished without its row knowing.
            for row in rows:
                self._unlink(row["log_path"])
        return deleted

    def enforce_log_budget(self, budget: int) -> None:
        # run_stats sums log_bytes, which is set only once a run has ended (running logs excluded).
        total = float(self.conn.execute("SELECT coalesce(sum(log_bytes), 0) AS total FROM run_stats").fetchone()["total"])
        if total <= budget:
            return
        # Oldest first, resuming where the last eviction stopped, so rows whose logs are already
        # gone are not re-read on every call. The cursor never passes a run that is still
        # running (its log gets a size when it ends); a pass from 0 is the fallback.
        cursor = int(self.history.kv_get(LOG_CURSOR_KEY) or 0)
        for start in dict.fromkeys((cursor, 0)):
            total, cursor = self._evict_from(start, total, budget)
            if total <= budget or self.remaining <= 0:
                break
        oldest_running = self.conn.execute("SELECT min(run_id) AS run_id FROM runs WHERE status = 'running'").fetchone()["run_id"]
        if oldest_running is not None:
            cursor = min(cursor, oldest_running - 1)
        self.history.kv_set(LOG_CURSOR_KEY, str(cursor))

    def _evict_from(self, last_id: int, total: float, budget: int) -> tuple[float, int]:
        while total > budget and self.remaining > 0:
            rows = self.conn.execute(
                "SELECT run_id, log_path, log_bytes FROM runs WHERE run_id > ? AND log_bytes IS NOT NULL"
                " AND status != 'running' ORDER BY run_id LIMIT ?",
                (last_id, self._batch()),
            ).fetchall()
            if not rows:
                break
            victims = []
            for row in rows:
                if total <= budget:
                    break
                victims.append(row)
                total -= row["log_bytes"]
            with self.history._transaction():
                self.conn.executemany("UPDATE runs SET log_bytes = NULL WHERE run_id = ?", [(r["run_id"],) for r in victims])
            self.remaining -= len(victims)
            for row in victims:
                self._unlink(row["log_path"])
            last_id = victims[-1]["run_id"]
        return total, last_id

    def _unlink(self, path: str | None) -> None:
        if not path or not os.path.abspath(path).startswith(self.root):
            return  # never delete outside the log directory, whatever the row says
        try:
            size = os.stat(path).st_size
            os.unlink(path)
        except OSError:
            return  # gone already, permissions, a directory: retention must not crash the supervisor
        self.counts["logs_evicted"] += 1
        self.counts["log_bytes_freed"] += size
