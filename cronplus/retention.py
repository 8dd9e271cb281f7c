"""Retention of run history and run logs (History.prune). Three independent limits, each None to
disable:

- age: rows whose time (start, or decision time for runs that never started) is older than
  `max_age_s` are deleted with their log files;
- count: each job keeps at most `max_runs_per_job` rows (attempts count as rows), oldest go first;
- disk: the finished runs' log files under `log_dir` together stay under `max_log_bytes`; the
  oldest logs are deleted first, their rows stay (`cronplus output` then says the log is gone).

A `running` row and its log are never touched. Deletes go in batches of PRUNE_BATCH rows, one
short transaction each, so CLI readers and the supervisor's own writes are never held up long.
Only files under `log_dir` are ever unlinked, whatever a row's log_path says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cronplus.history import History

_TIME = "coalesce(started_at, ended_at)"  # the runs_by_time index expression
PRUNE_BATCH = 2_000  # rows per delete transaction: the writer never holds the lock for long


def prune(
    history: History,
    *,
    now: float,
    log_dir: Path,
    max_age_s: float | None,
    max_runs_per_job: int | None,
    max_log_bytes: int | None,
) -> dict[str, int]:
    """Apply the limits; returns counts: rows_by_age, rows_by_count, logs_evicted, log_bytes_freed."""
    counts = {"rows_by_age": 0, "rows_by_count": 0, "logs_evicted": 0, "log_bytes_freed": 0}
    root = os.path.abspath(log_dir) + os.sep
    if max_age_s is not None:
        sql = f"SELECT run_id, log_path FROM runs WHERE {_TIME} < ? AND status != 'running' ORDER BY {_TIME}"
        counts["rows_by_age"] = _delete_rows(history, sql, (now - max_age_s,), root, counts)
    if max_runs_per_job is not None:
        counts["rows_by_count"] = _prune_counts(history, max(max_runs_per_job, 0), root, counts)
    if max_log_bytes is not None:
        _enforce_log_budget(history, max_log_bytes, root, counts)
    return counts


def _prune_counts(history: History, keep: int, root: str, counts: dict[str, int]) -> int:
    over = history.conn.execute("SELECT job FROM run_stats WHERE runs > ? ORDER BY job", (keep,)).fetchall()
    deleted = 0
    for (job,) in over:
        # The keep-th newest row of the job: everything older goes (O(keep) on runs_by_job).
        oldest_kept = _oldest_kept(history, job, keep)
        if oldest_kept is None:
            continue
        sql = "SELECT run_id, log_path FROM runs WHERE job = ? AND run_id < ? AND status != 'running' ORDER BY run_id"
        deleted += _delete_rows(history, sql, (job, oldest_kept), root, counts)
    return deleted


def _oldest_kept(history: History, job: str, keep: int) -> int | None:
    """run_id of the keep-th newest row of `job` (O(keep) on runs_by_job); None: nothing to cut."""
    if keep == 0:
        row = history.conn.execute("SELECT max(run_id) + 1 FROM runs WHERE job = ?", (job,)).fetchone()
    else:
        row = history.conn.execute(
            "SELECT run_id FROM runs WHERE job = ? ORDER BY run_id DESC LIMIT 1 OFFSET ?", (job, keep - 1)
        ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _delete_rows(history: History, select_sql: str, params: tuple[Any, ...], root: str, counts: dict[str, int]) -> int:
    conn = history.conn
    deleted = 0
    while True:
        rows = conn.execute(select_sql + " LIMIT ?", (*params, PRUNE_BATCH)).fetchall()
        if not rows:
            return deleted
        with history._tx():
            conn.executemany("DELETE FROM runs WHERE run_id = ?", [(row["run_id"],) for row in rows])
        deleted += len(rows)
        # Unlink after the commit: a crash in between leaves a stray file, never a row whose log
        # vanished without its row knowing.
        for row in rows:
            _unlink_log(row["log_path"], root, counts)


def _enforce_log_budget(history: History, budget: int, root: str, counts: dict[str, int]) -> None:
    conn = history.conn
    # run_stats sums log_bytes, which is only set once a run has ended (running logs excluded).
    total = conn.execute("SELECT total(log_bytes) FROM run_stats").fetchone()[0]
    last_id = 0
    while total > budget:
        rows = conn.execute(
            "SELECT run_id, log_path, log_bytes FROM runs WHERE log_bytes IS NOT NULL AND run_id > ?"
            " AND status != 'running' ORDER BY run_id LIMIT ?",
            (last_id, PRUNE_BATCH),
        ).fetchall()
        if not rows:
            return
        victims = []
        for row in rows:
            if total <= budget:
                break
            victims.append(row)
            total -= row["log_bytes"]
        with history._tx():
            conn.executemany("UPDATE runs SET log_bytes = NULL WHERE run_id = ?", [(row["run_id"],) for row in victims])
        for row in victims:
            _unlink_log(row["log_path"], root, counts)
        last_id = rows[-1]["run_id"]


def _unlink_log(path: str | None, root: str, counts: dict[str, int]) -> None:
    if not path or not os.path.abspath(path).startswith(root):
        return  # never delete outside the log directory, whatever the row says
    try:
        size = os.stat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError:
        return  # permissions, a directory...: leave it; retention must not crash the supervisor
    counts["logs_evicted"] += 1
    counts["log_bytes_freed"] += size
