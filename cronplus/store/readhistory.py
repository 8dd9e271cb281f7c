"""Reading the run history: RunRecords from rows, the queries behind `log`, `jobs` and `output`
(ReadHistory), and `open_readonly` for the CLI, which never blocks the supervisor's writes (WAL).
The writer, History, extends ReadHistory in cronplus.store.history."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, Self

from cronplus.errors import CronplusError
from cronplus.model import RunRecord
from cronplus.queuednote import queued_note
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import OutputExcerpt, RunReader
from cronplus.store.claimed import unfinished_sql
from cronplus.store.schema import SCHEMA_VERSION, connect, db_problem

_COLUMNS = ("run_id, job, attempt, status, trigger, scheduled_at, tz, started_at, ended_at, exit_code, log_path, pid,"
            " reason, signal, host, params, outputs, queued_s, sensor_s, peak_memory_bytes, cpu_s, slow_at, queue,"
            " log_bytes")
_TIME = "coalesce(started_at, ended_at)"  # must match the runs_by_time index expression
TIME_INDEX_ROWS = 50_000  # see ReadHistory._narrow_time_range


class NoHistoryError(CronplusError):
    """The database does not exist yet (the supervisor never ran with this state dir)."""


@lru_cache(maxsize=64)
def _zone(tz: str | None) -> tzinfo | None:
    if tz is None:
        return None
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        return None  # an unknown zone name: render in local time rather than fail


def _dt(ts: float | None, tz: str | None = None) -> datetime | None:
    """Unix seconds -> aware datetime: in `tz` when given, else in the local zone."""
    if ts is None:
        return None
    utc = datetime.fromtimestamp(ts, tz=UTC)
    zone = _zone(tz)
    return utc.astimezone(zone) if zone is not None else utc.astimezone()


class Row(Protocol):
    """A result row by column name: sqlite3.Row, or the PostgreSQL store's dict rows."""

    def __getitem__(self, key: str, /) -> Any: ...


COLUMNS = _COLUMNS  # the runs columns a RunRecord is made of (record_from_row), for other backends


def record_from_row(row: Row) -> RunRecord:
    """The RunRecord of a runs row selected with COLUMNS."""
    return _record(row)


def _record(row: Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"],
        job=row["job"],
        attempt=row["attempt"],
        status=RunStatus(row["status"]),
        trigger=Trigger(row["trigger"]),
        scheduled_at=_dt(row["scheduled_at"], row["tz"]),  # as the schedule's zone saw it
        started_at=_dt(row["started_at"]),
        ended_at=_dt(row["ended_at"]),
        exit_code=row["exit_code"],
        log_path=row["log_path"],
        pid=row["pid"],
        reason=row["reason"],
        signal=row["signal"],
        host=row["host"],
        params=_pairs(row["params"]),
        outputs=_pairs(row["outputs"]),
        queued_s=row["queued_s"],
        sensor_s=row["sensor_s"],
        peak_memory_bytes=row["peak_memory_bytes"],
        cpu_s=row["cpu_s"],
        slow_at=_dt(row["slow_at"]),
        queue=row["queue"],
        log_bytes=row["log_bytes"],
    )


def _pairs(text: str | None) -> tuple[tuple[str, str], ...]:
    """A JSON object of strings (params, outputs columns) as ordered pairs; () for NULL."""
    if not text:
        return ()
    return tuple((str(k), str(v)) for k, v in json.loads(text).items())


def pairs_json(pairs: Sequence[tuple[str, str]]) -> str | None:
    """The column text of ordered pairs (the writer's side of `_pairs`); None for none."""
    return json.dumps(dict(pairs), ensure_ascii=False) if pairs else None


RUN_JSON_KEYS = ("run_id", "job", "attempt", "status", "exit_code", "signal", "reason", "trigger", "host",
                 "scheduled_at", "started_at", "ended_at", "duration_s", "log_path",
                 "params", "outputs", "queued_s", "sensor_s", "peak_memory_bytes", "cpu_s", "slow_at", "queue")


def run_json(record: RunRecord) -> dict[str, Any]:
    """The one JSON shape of a run, wherever one is printed or sent (`log --json`,
    `trigger --wait --json`, the control socket's done message, `alerts --json`, the API): the README's keys
    plus `signal`, `reason` and `host`, then what the pipeline features record (`params` and
    `outputs` as objects, `{}` for none; `queued_s`, `sensor_s`, `peak_memory_bytes`, `cpu_s`,
    `slow_at`), and `queue` (the worker queue, null for the supervisor's own) (RUN_JSON_KEYS, in that order); ISO 8601 times with offset; null where absent."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    duration = record.duration_s
    return {
        "run_id": record.run_id,
        "job": record.job,
        "attempt": record.attempt,
        "status": str(record.status),
        "exit_code": record.exit_code,
        "signal": record.signal,
        "reason": record.reason or queued_note(record),  # an attempt still in the broker says so (queuednote.py)
        "trigger": str(record.trigger),
        "host": record.host,
        "scheduled_at": iso(record.scheduled_at),
        "started_at": iso(record.started_at),
        "ended_at": iso(record.ended_at),
        "duration_s": round(duration, 3) if duration is not None else None,
        "log_path": record.log_path,
        "params": dict(record.params),
        "outputs": dict(record.outputs),
        "queued_s": _rounded(record.queued_s),
        "sensor_s": _rounded(record.sensor_s),
        "peak_memory_bytes": record.peak_memory_bytes,
        "cpu_s": _rounded(record.cpu_s),
        "slow_at": iso(record.slow_at),
        "queue": record.queue,
    }


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 3) if seconds is not None else None


class ReadHistory:
    """Queries over the runs table. The CLI gets one through `open_readonly`; History extends it."""

    shared = False  # one host's file: its run logs are all on this host (PostgresHistory: True)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _records(self, sql: str, params: Sequence[Any] = ()) -> list[RunRecord]:
        return [_record(row) for row in self.conn.execute(sql, params)]

    def output_excerpt(self, run_id: int) -> OutputExcerpt | None:
        """The capped head and tail of the run's output kept in its row (engine/outputexcerpt.py), None if not kept."""
        row = self.conn.execute("SELECT output_head, output_tail, log_bytes FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None or row[0] is None else OutputExcerpt(str(row[0]), str(row[1] or ""), row[2])

    def get_run(self, run_id: int) -> RunRecord | None:
        rows = self._records(f"SELECT {_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        return rows[0] if rows else None

    def latest_runs(self, job: str, n: int = 20) -> list[RunRecord]:
        """The job's last n rows (attempts included), newest last."""
        rows = self._records(
            f"SELECT {_COLUMNS} FROM runs WHERE job = ? ORDER BY run_id DESC LIMIT ?", (job, n)
        )
        rows.reverse()
        return rows

    def last_final_run(self, job: str, *, at_or_before: float | None = None) -> RunRecord | None:
        """The newest final row of `job`; with `at_or_before`, the newest whose tick is <= it."""
        if at_or_before is None:
            sql = f"SELECT {_COLUMNS} FROM runs WHERE job = ? AND final = 1 ORDER BY run_id DESC LIMIT 1"
            rows = self._records(sql, (job,))
        else:
            sql = (
                f"SELECT {_COLUMNS} FROM runs WHERE job = ? AND final = 1 AND scheduled_at <= ?"
                " ORDER BY scheduled_at DESC, run_id DESC LIMIT 1"
            )
            rows = self._records(sql, (job, at_or_before))
        return rows[0] if rows else None

    def running(self) -> list[RunRecord]:
        return self._records(f"SELECT {_COLUMNS} FROM runs WHERE status = 'running' ORDER BY run_id")

    def unfinished(self, *, since: float) -> list[RunRecord]:
        """Runs of any host not finished: `running`, or a retry pending (store/claimed.py)."""
        return self._records(unfinished_sql(_COLUMNS, mark="?", same="IS"), (since,))

    def kv_get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def kv_prefixed(self, prefix: str) -> dict[str, str]:
        """Every kv entry whose key starts with `prefix` (a range scan of the key index)."""
        rows = self.conn.execute("SELECT key, value FROM kv WHERE key >= ? AND key < ?", (prefix, prefix + "\U0010ffff"))
        return {str(key): str(value) for key, value in rows}

    def job_names(self) -> list[str]:
        """Distinct job names in history, sorted: a skip-scan of runs_by_job (O(jobs x log n))."""
        sql = """
            WITH RECURSIVE names(job) AS (
                SELECT min(job) FROM runs
                UNION ALL
                SELECT (SELECT min(job) FROM runs WHERE job > names.job) FROM names WHERE job IS NOT NULL
            )
            SELECT job FROM names WHERE job IS NOT NULL"""
        return [row[0] for row in self.conn.execute(sql)]

    def query(
        self,
        *,
        jobs: Sequence[str] = (),
        statuses: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        after_run_id: int | None = None,
    ) -> list[RunRecord]:
        """Rows matching every given filter, newest last; `limit` keeps the newest ones.

        `jobs` are fnmatch globs on job names (case-sensitive, like job names); a run's time is
        its start (or, for runs that never started, when that was decided), since <= t <= until.
        """
        rows = list(self.iter_query(jobs=jobs, statuses=statuses, since=since, until=until,
                                    limit=limit, after_run_id=after_run_id, newest_first=True))
        rows.reverse()
        return rows

    def iter_query(
        self,
        *,
        jobs: Sequence[str] = (),
        statuses: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
        after_run_id: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[RunRecord]:
        """Like `query`, but streamed from the cursor (a million rows never sit in memory);
        oldest first unless `newest_first`; `limit` takes from the start of that order."""
        where: list[str] = []
        params: list[Any] = []
        if jobs:
            names = self._matching_jobs(jobs)
            if not names:
                return
            where.append(f"job IN ({','.join('?' * len(names))})")
            params += names
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            params += [str(status) for status in statuses]
        if since is not None:
            where.append(f"{_TIME} >= ?")
            params.append(since)
        if until is not None:
            where.append(f"{_TIME} <= ?")
            params.append(until)
        if after_run_id is not None:
            where.append("run_id > ?")
            params.append(after_run_id)
        sql = f"SELECT {_COLUMNS} FROM runs"
        if (since is not None or until is not None) and self._narrow_time_range(since, until):
            sql += " INDEXED BY runs_by_time"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY run_id DESC" if newest_first else " ORDER BY run_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        for row in self.conn.execute(sql, params):
            yield _record(row)

    def last_run_id(self) -> int:
        """The highest run_id so far (0 for none); ids are never reused (AUTOINCREMENT)."""
        row = self.conn.execute("SELECT max(run_id) FROM runs").fetchone()
        return int(row[0] or 0)

    def _narrow_time_range(self, since: float | None, until: float | None) -> bool:
        """Whether at most TIME_INDEX_ROWS rows lie in [since, until] (a bounded index probe).

        Without range statistics SQLite prefers walking run_ids backwards (no sort), which reads
        the whole table when few rows match (`failed runs of the last day`); for a narrow time
        range the time index is the better path, for a wide one the backwards walk stops early.
        """
        probe = (
            f"SELECT count(*) FROM (SELECT 1 FROM runs INDEXED BY runs_by_time"
            f" WHERE {_TIME} >= ? AND {_TIME} <= ? LIMIT {TIME_INDEX_ROWS + 1})"
        )
        low = float("-inf") if since is None else since
        high = float("inf") if until is None else until
        return int(self.conn.execute(probe, (low, high)).fetchone()[0]) <= TIME_INDEX_ROWS

    def runs_by_id(self, run_ids: Sequence[int]) -> list[RunRecord]:
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        return self._records(f"SELECT {_COLUMNS} FROM runs WHERE run_id IN ({marks}) ORDER BY run_id", run_ids)

    def _matching_jobs(self, patterns: Sequence[str]) -> list[str]:
        from fnmatch import fnmatchcase

        if not any(_is_glob(p) for p in patterns):
            return list(dict.fromkeys(patterns))  # plain names: no need to list the jobs
        names = self.job_names()
        return [name for name in names if any(fnmatchcase(name, p) for p in patterns)]


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def open_readonly(db_path: str | os.PathLike[str]) -> ReadHistory:
    """A read-only view for the CLI; works while the supervisor writes (WAL readers never block).

    Raises NoHistoryError when there is no database yet, CronplusError when it is unreadable.
    """
    path = Path(db_path)
    if not path.exists():
        raise NoHistoryError(f"no history yet ({path} does not exist)")
    try:
        conn = connect(path, readonly=True)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        raise CronplusError(db_problem(path, exc)) from exc
    if version == 0:
        conn.close()
        raise NoHistoryError(f"no history yet ({path} is not initialised)")
    if version > SCHEMA_VERSION:
        conn.close()
        raise CronplusError(f"history database schema {version} is newer than this cronplus ({SCHEMA_VERSION})")
    return ReadHistory(conn)


def _satisfies(history: ReadHistory) -> RunReader:  # mypy: ReadHistory is a RunReader
    return history


def file_size(path: str | None) -> int | None:
    """A run log's size (runs.log_bytes when its run ends): both writers'. A log that is not there
    is 0 (logs are created at the first byte: its job wrote nothing); None: no log path, or
    unreadable. Retention's eviction sets NULL, so 0 and NULL tell "wrote nothing" from "deleted"."""
    if not path:
        return None
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
    except OSError:
        return None
