"""PostgresHistory: the store's HistoryStore (api.py) on PostgreSQL, what postgres.open_postgres
returns; the same behaviour as SQLite's History (tests/store_contract.py runs on both). One
thread, one connection (postgres.Database): each write is its own transaction, or part of the
caller's `transaction()` (nested: a savepoint). Times are Unix seconds (double precision), as in
SQLite; RunRecords are made by readhistory.record_from_row, so both backends read alike.

Where the SQL differs from SQLite's: `%s` placeholders; `IS NOT DISTINCT FROM` for SQLite's
`IS`; run_ids from the identity sequence, which an explicit run_id (storeguard's held rows)
moves past, so that the database never hands it out again (SQLite's AUTOINCREMENT does that by
itself); `iter_query` pages by run_id instead of holding a cursor open, so that other calls
may run on the connection between two rows. `prune` is retention.py's, whose SQL reads alike
on both (through QmarkConnection).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Self

from cronplus.errors import CronplusError
from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.api import HistoryStore, OutputExcerpt, RunStart, RunTaken
from cronplus.store.claimed import ON_CLAIMED
from cronplus.store.history import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_RUNS_PER_JOB,
)
from cronplus.store.postgres_claims import PostgresClaims
from cronplus.store.postgres_conn import Database, DatabaseUnavailable, QmarkConnection
from cronplus.store.readhistory import COLUMNS, file_size, pairs_json, record_from_row
from cronplus.store.remoteruns import RemoteRuns

_TIME = "coalesce(started_at, ended_at)"  # the runs_by_time index expression
_SEQ = "pg_get_serial_sequence('runs', 'run_id')::regclass"
_PAGE = 1000  # rows per query of iter_query
_KV_SET = "INSERT INTO kv (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


class PostgresHistory(RemoteRuns, PostgresClaims):  # queue= runs (store/remoteruns.py); claims (store/postgres_claims.py)
    shared = True  # several hosts' runs: a run's log is on the host that ran it (outputexcerpt.py)

    def __init__(self, db: Database, *, host: str) -> None:
        self.db = db
        self.host = host  # every row this writer inserts carries it
        self._depth = 0
        self._after_commit: list[Callable[[], None]] = []
        self._high = 0  # the highest run_id this store has seen handed out (next_run_id's fallback)
        if not db.readonly:
            self.next_run_id()

    def __repr__(self) -> str:
        return f"PostgresHistory({self.db.shown!r}, host={self.host!r})"

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the unit of work ----------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for several writes (a run's end and its alert decision: both or
        neither). Nested, a savepoint: an inner failure undoes only the inner part. It yields
        nothing: the connection stays inside the store."""
        outer = self._depth == 0
        conn = self.db.conn(reconnect=outer)
        self._depth += 1
        try:
            with self.db.guard(), conn.transaction():
                yield
        except BaseException:
            if outer:
                self._after_commit.clear()
            raise
        finally:
            self._depth -= 1
        if outer:
            callbacks, self._after_commit = self._after_commit, []
            for callback in callbacks:
                callback()

    def _transaction(self) -> AbstractContextManager[None]:
        """A transaction begun now (retention.py's batches; SQLite's History begins its
        `transaction()` lazily, at the first write): every one here is."""
        return self.transaction()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once what was written so far is committed (now, outside a transaction)."""
        if self._depth:
            self._after_commit.append(callback)
        else:
            callback()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.db.guard():
            return self.db.conn(reconnect=not self._depth).execute(sql, params).fetchall()

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    def _records(self, sql: str, params: Sequence[Any] = ()) -> list[RunRecord]:
        return [record_from_row(row) for row in self._rows(sql, params)]

    # ---- writing runs --------------------------------------------------------------------------

    def start_run(self, *, job: str, attempt: int, trigger: Trigger, scheduled_at: float | None, tz: str | None,
                  started_at: float, log_path: str | Callable[[int], str] | None, owner: str) -> int:
        """Insert the `running` row before the process is spawned; returns its run_id."""
        run_id = self.start_runs([RunStart(job=job, attempt=attempt, trigger=trigger, scheduled_at=scheduled_at,
                                           tz=tz, started_at=started_at, log_path=log_path, owner=owner)])[0]
        assert run_id is not None  # it claims nothing: always inserted
        return run_id

    def _insert_run(self, run_id: int | None, columns: str, values: tuple[Any, ...]) -> int | None:
        """The row's run_id; None when its claim (ON_CLAIMED in `columns`' statement) is another row's."""
        marks = ", ".join(["%s"] * len(values))
        conflict = ON_CLAIMED if columns.endswith("claim") else ""
        if run_id is None:
            got = self._value(f"INSERT INTO runs ({columns}) VALUES ({marks}){conflict} RETURNING run_id", values)
            if got is None:
                return None
            self._high = max(self._high, int(got))
            return int(got)
        if not self._rows(f"INSERT INTO runs (run_id, {columns}) VALUES (%s, {marks}){conflict} RETURNING run_id",
                          (run_id, *values)):
            return None
        self._high = max(self._high, run_id)
        # The sequence does not move for an explicit id: move it past, or it would hand it out again.
        self._rows(f"SELECT setval(s, %s) FROM (SELECT {_SEQ} AS s) AS q"
                   " WHERE coalesce(pg_sequence_last_value(s), 0) < %s", (run_id, run_id))
        return run_id

    def _many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        with self.db.guard(), self.db.conn(reconnect=not self._depth).cursor() as cur:
            cur.executemany(sql, params)

    def next_run_id(self) -> int:
        """Above every run_id handed out so far (the sequence's and the table's). With the
        database away (storeguard asks when it starts holding writes), above every run_id this
        store has seen: on one host the supervisor is the only writer, so none is taken meanwhile."""
        try:
            value = int(self._value(f"SELECT greatest(coalesce(pg_sequence_last_value(s), 0),"
                                    f" coalesce((SELECT max(run_id) FROM runs), 0)) + 1 FROM (SELECT {_SEQ} AS s) AS q"))
        except DatabaseUnavailable:
            return self._high + 1
        self._high = max(self._high, value - 1)
        return value

    def set_log_path(self, run_id: int, log_path: str) -> None:
        with self.transaction():
            self._rows("UPDATE runs SET log_path = %s WHERE run_id = %s RETURNING run_id", (log_path, run_id))

    def set_pid(self, run_id: int, pid: int) -> None:
        self.set_pids([(run_id, pid)])

    def set_pids(self, pids: Sequence[tuple[int, int]]) -> None:
        with self.transaction():
            self._many("UPDATE runs SET pid = %s WHERE run_id = %s", [(pid, run_id) for run_id, pid in pids])

    def set_slow_at(self, run_id: int, at: float) -> None:
        """The attempt ran past its expected duration at `at` (engine/slowness.py); the first mark stays."""
        with self.transaction():
            self._many("UPDATE runs SET slow_at = %s WHERE run_id = %s AND slow_at IS NULL", [(at, run_id)])

    def set_params(self, run_id: int, params: Sequence[tuple[str, str]]) -> None:
        with self.transaction():
            self._rows("UPDATE runs SET params = %s WHERE run_id = %s RETURNING run_id", (pairs_json(params), run_id))

    def set_outputs(self, run_id: int, outputs: Sequence[tuple[str, str]]) -> None:
        with self.transaction():
            self._rows("UPDATE runs SET outputs = %s WHERE run_id = %s RETURNING run_id", (pairs_json(outputs), run_id))

    def set_usage(self, run_id: int, *, peak_memory_bytes: int | None, cpu_s: float | None) -> None:
        with self.transaction():
            self._many("UPDATE runs SET peak_memory_bytes = %s, cpu_s = %s WHERE run_id = %s",
                       [(peak_memory_bytes, cpu_s, run_id)])

    def set_queued(self, run_id: int, queued_s: float) -> None:
        with self.transaction():
            self._many("UPDATE runs SET queued_s = %s WHERE run_id = %s", [(queued_s, run_id)])

    def set_sensor_s(self, run_id: int, seconds: float) -> None:
        with self.transaction():
            self._many("UPDATE runs SET sensor_s = %s WHERE run_id = %s", [(seconds, run_id)])

    def set_output_excerpt(self, run_id: int, head: str, tail: str) -> None:
        """The capped head and tail of the run's output (engine/outputexcerpt.py), before finish_run."""
        with self.transaction():
            self._many("UPDATE runs SET output_head = %s, output_tail = %s WHERE run_id = %s", [(head, tail, run_id)])

    def finish_run(self, run_id: int, *, status: RunStatus, ended_at: float, exit_code: int | None,
                   reason: str | None, final: bool, signal: int | None = None, owner: str | None = None) -> RunRecord:
        """Complete a row: status, end, exit code (and signal), reason; `final` when no attempt follows.
        With `owner`, only a row that owner holds (fencing: RunTaken, nothing written; store/leases.py)."""
        rows = self._rows("SELECT log_path FROM runs WHERE run_id = %s", (run_id,))
        if not rows:
            raise CronplusError(f"no run {run_id} in history")
        log_bytes = file_size(rows[0]["log_path"])
        fence, owned = "" if owner is None else " AND owner = %s", ", owner = NULL" if final else ""  # a retry stays its owner's
        with self.transaction():
            done = self._rows("UPDATE runs SET status = %s, ended_at = %s, exit_code = %s, signal = %s, reason = %s,"
                              f" final = %s, log_bytes = %s{owned} WHERE run_id = %s{fence} RETURNING run_id",
                              (str(status), ended_at, exit_code, signal, reason, int(final), log_bytes, run_id,
                               *(() if owner is None else (owner,))))
            if owner is not None and not done:
                raise RunTaken(f"run {run_id} is no longer {owner}'s")
        return self._got(run_id)

    def record_not_run(self, *, job: str, status: RunStatus, trigger: Trigger, scheduled_at: float | None,
                       tz: str | None, at: float, reason: str | None, run_id: int | None = None,
                       claim: str | None = None) -> RunRecord | None:
        """A final row for a run that never started (skipped, missed, upstream_failed); None when
        its claim is another row's (that tick was decided by another supervisor)."""
        with self.transaction():
            got = self._insert_run(run_id, "job, attempt, status, trigger, scheduled_at, tz, ended_at, reason, final, host, claim",
                                   (job, 1, str(status), str(trigger), scheduled_at, tz, at, reason, 1, self.host, claim))
        return None if got is None else self._got(got)

    def _got(self, run_id: int) -> RunRecord:
        record = self.get_run(run_id)
        if record is None:
            raise CronplusError(f"no run {run_id} in history")
        return record

    def _stale(self, live_owner: str) -> list[dict[str, Any]]:
        """This host's `running` rows of another owner (a supervisor of this host that is gone):
        another host's are its own, or the lease take-over's."""
        return self._rows("SELECT run_id, job, pid, log_path, owner FROM runs WHERE status = 'running'"
                          " AND (owner IS NULL OR owner != %s) AND host = %s ORDER BY run_id", (live_owner, self.host))

    def stale_running(self, *, live_owner: str) -> list[RunRecord]:
        """Rows left `running` by a supervisor that is gone."""
        return self.runs_by_id([row["run_id"] for row in self._stale(live_owner)])

    def mark_interrupted(self, *, live_owner: str, now: float, notes: dict[int, str] | None = None,
                         on_final: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
        """Rows left `running` by a supervisor that is gone become final `interrupted` runs;
        `on_final(record)` runs for each in the same transaction (see History.mark_interrupted)."""
        stale = self._stale(live_owner)
        if not stale:
            return []
        with self.transaction():
            for row in stale:
                reason = f"supervisor {row['owner']} stopped while it ran" if row["owner"] else "supervisor stopped while it ran"
                if notes and row["run_id"] in notes:
                    reason = f"{reason}; {notes[row['run_id']]}"
                self._rows("UPDATE runs SET status = 'interrupted', ended_at = %s, reason = %s, final = 1,"
                           " log_bytes = %s, owner = NULL WHERE run_id = %s AND status = 'running' RETURNING run_id",
                           (now, reason, file_size(row["log_path"]), row["run_id"]))
            records = self.runs_by_id([row["run_id"] for row in stale])
            if on_final is not None:
                for record in records:
                    on_final(record)
        return records

    def mark_final(self, run_id: int, reason: str) -> RunRecord:
        """An ended attempt whose retry will not happen becomes the run's final row, `reason` appended."""
        with self.transaction():
            self._rows("UPDATE runs SET final = 1, owner = NULL, reason = CASE WHEN reason IS NULL THEN %s ELSE reason || '; ' || %s END"
                       " WHERE run_id = %s AND final = 0 AND status != 'running' RETURNING run_id",
                       (reason, reason, run_id))
        return self._got(run_id)

    def mark_abandoned_retries(self, *, reason: str,
                               on_final: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
        """Ended, non-final attempts with no later attempt of the same run become final, each with
        its alert decision in its transaction (see History.mark_abandoned_retries)."""
        stale = [row["run_id"] for row in self._rows(
            "SELECT run_id FROM runs AS r WHERE final = 0 AND status != 'running' AND NOT EXISTS"
            " (SELECT 1 FROM runs AS n WHERE n.job = r.job AND n.scheduled_at IS NOT DISTINCT FROM r.scheduled_at"
            " AND n.run_id > r.run_id AND n.attempt > r.attempt) AND host = %s ORDER BY run_id", (self.host,))]  # this host's
        records = []
        for run_id in stale:
            with self.transaction():
                record = self.mark_final(run_id, reason)
                if on_final is not None:
                    on_final(record)
            records.append(record)
        return records

    @property
    def conn(self) -> QmarkConnection:
        """For retention.py only (its SQL reads alike on both backends)."""
        return QmarkConnection(self.db, in_transaction=lambda: self._depth > 0)

    def prune(self, *, now: float, log_dir: Path, max_age_s: float | None = DEFAULT_MAX_AGE_S,
              max_runs_per_job: int | None = DEFAULT_MAX_RUNS_PER_JOB, max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
              max_rows: int | None = -1) -> dict[str, int]:
        """Retention, as History.prune (store/retention.py's rules and defaults). Only this
        host's log files are unlinked (only files under `log_dir` ever are)."""
        from cronplus.store.retention import PRUNE_MAX_ROWS, prune

        return prune(self, now=now, log_dir=Path(log_dir), max_age_s=max_age_s, max_runs_per_job=max_runs_per_job,
                     max_log_bytes=max_log_bytes, max_rows=PRUNE_MAX_ROWS if max_rows == -1 else max_rows)

    def enqueue_outbox(self, *, kind: str, event: str, job: str | None, run_id: int | None, target: str,
                       format: str, secret_ref: str | None, payload: dict[str, Any], now: float) -> int:
        """One pending outbox row, due now; part of the caller's transaction if any."""
        return int(self._value(
            "INSERT INTO outbox (created_at, kind, event, job, run_id, target, format, secret_ref, payload,"
            " status, attempts, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s)"
            " RETURNING id",
            (now, kind, event, job, run_id, target, format, secret_ref, json.dumps(payload, ensure_ascii=False), now)))

    # ---- kv --------------------------------------------------------------------------------

    def kv_set(self, key: str, value: str) -> None:
        self.kv_set_many([(key, value)])

    def kv_set_many(self, items: Sequence[tuple[str, str]]) -> None:
        with self.transaction():
            self._many(_KV_SET, items)

    def kv_get(self, key: str) -> str | None:
        """In a transaction the key is locked first, until it ends (the read's snapshot comes after):
        a read-modify-write of a key (alerting's incident state) is one at a time across hosts."""
        if self._depth:
            self._rows("SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(%s))", ("kv:" + key,))
        value = self._value("SELECT value FROM kv WHERE key = %s", (key,))
        return None if value is None else str(value)

    def kv_prefixed(self, prefix: str) -> dict[str, str]:
        """Every kv entry whose key starts with `prefix` (a range of the "C"-collated key)."""
        rows = self._rows("SELECT key, value FROM kv WHERE key >= %s AND key < %s", (prefix, prefix + "\U0010ffff"))
        return {str(row["key"]): str(row["value"]) for row in rows}

    # ---- reading -------------------------------------------------------------------------------

    def output_excerpt(self, run_id: int) -> OutputExcerpt | None:
        """The capped head and tail of the run's output kept in its row, None if not kept."""
        rows = self._rows("SELECT output_head, output_tail, log_bytes FROM runs WHERE run_id = %s", (run_id,))
        if not rows or rows[0]["output_head"] is None:
            return None
        row = rows[0]
        return OutputExcerpt(str(row["output_head"]), str(row["output_tail"] or ""), row["log_bytes"])

    def get_run(self, run_id: int) -> RunRecord | None:
        rows = self._records(f"SELECT {COLUMNS} FROM runs WHERE run_id = %s", (run_id,))
        return rows[0] if rows else None

    def latest_runs(self, job: str, n: int = 20) -> list[RunRecord]:
        rows = self._records(f"SELECT {COLUMNS} FROM runs WHERE job = %s ORDER BY run_id DESC LIMIT %s", (job, n))
        rows.reverse()
        return rows

    def last_final_run(self, job: str, *, at_or_before: float | None = None) -> RunRecord | None:
        if at_or_before is None:
            rows = self._records(f"SELECT {COLUMNS} FROM runs WHERE job = %s AND final = 1"
                                 " ORDER BY run_id DESC LIMIT 1", (job,))
        else:
            rows = self._records(f"SELECT {COLUMNS} FROM runs WHERE job = %s AND final = 1 AND scheduled_at <= %s"
                                 " ORDER BY scheduled_at DESC, run_id DESC LIMIT 1", (job, at_or_before))
        return rows[0] if rows else None

    def running(self) -> list[RunRecord]:
        return self._records(f"SELECT {COLUMNS} FROM runs WHERE status = 'running' ORDER BY run_id")

    def job_names(self) -> list[str]:
        """Distinct job names, sorted by code point: a loose index scan of runs_by_job."""
        return [str(row["job"]) for row in self._rows(
            "WITH RECURSIVE names(job) AS (SELECT min(job) FROM runs UNION ALL"
            " SELECT (SELECT min(job) FROM runs WHERE job > names.job) FROM names WHERE job IS NOT NULL)"
            " SELECT job FROM names WHERE job IS NOT NULL")]

    def query(self, *, jobs: Sequence[str] = (), statuses: Sequence[str] = (), since: float | None = None,
              until: float | None = None, limit: int | None = None, after_run_id: int | None = None) -> list[RunRecord]:
        """Rows matching every filter, newest last; `limit` keeps the newest (see ReadHistory.query)."""
        rows = list(self.iter_query(jobs=jobs, statuses=statuses, since=since, until=until, limit=limit,
                                    after_run_id=after_run_id, newest_first=True))
        rows.reverse()
        return rows

    def iter_query(self, *, jobs: Sequence[str] = (), statuses: Sequence[str] = (), since: float | None = None,
                   until: float | None = None, limit: int | None = None, after_run_id: int | None = None,
                   newest_first: bool = False) -> Iterator[RunRecord]:
        """Like `query`, oldest first unless `newest_first`, fetched _PAGE rows at a time."""
        where: list[str] = []
        params: list[Any] = []
        if jobs:
            names = self._matching_jobs(jobs)
            if not names:
                return
            where.append("job = ANY(%s)")
            params.append(names)
        if statuses:
            where.append("status = ANY(%s)")
            params.append([str(status) for status in statuses])
        if since is not None:
            where.append(f"{_TIME} >= %s")
            params.append(since)
        if until is not None:
            where.append(f"{_TIME} <= %s")
            params.append(until)
        left = float("inf") if limit is None else limit
        lower, upper = after_run_id, None  # run_id > lower, run_id < upper: the pages still to read
        while left > 0:
            bounds = [("run_id > %s", lower), ("run_id < %s", upper)]
            conds = where + [cond for cond, bound in bounds if bound is not None]
            sql = f"SELECT {COLUMNS} FROM runs"
            if conds:
                sql += " WHERE " + " AND ".join(conds)
            size = int(min(left, _PAGE))
            sql += f" ORDER BY run_id {'DESC' if newest_first else 'ASC'} LIMIT {size}"
            records = self._records(sql, params + [bound for _, bound in bounds if bound is not None])
            yield from records
            left -= len(records)
            if len(records) < size:
                return
            if newest_first:
                upper = records[-1].run_id
            else:
                lower = records[-1].run_id

    def last_run_id(self) -> int:
        return int(self._value("SELECT coalesce(max(run_id), 0) FROM runs"))

    def runs_by_id(self, run_ids: Sequence[int]) -> list[RunRecord]:
        if not run_ids:
            return []
        return self._records(f"SELECT {COLUMNS} FROM runs WHERE run_id = ANY(%s) ORDER BY run_id", (list(run_ids),))

    def _matching_jobs(self, patterns: Sequence[str]) -> list[str]:
        from fnmatch import fnmatchcase

        if not any(c in p for p in patterns for c in "*?["):
            return list(dict.fromkeys(patterns))
        return [name for name in self.job_names() if any(fnmatchcase(name, p) for p in patterns)]



def _satisfies(store: PostgresHistory) -> HistoryStore:  # for mypy
    return store
