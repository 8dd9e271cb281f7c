"""The run history: one SQLite file (WAL) in the state dir (schema and `connect` in
cronplus.store.schema, re-exported here); the supervisor is the only writer (History, one thread),
CLI readers use `open_readonly` (ReadHistory, in cronplus.store.readhistory; re-exported here) and never
block it or each other.

A run's row is inserted (status `running`) before its process starts and completed after it ends,
so a crash never loses a run: on start the supervisor marks any `running` row it does not own as
`interrupted`. Each attempt is a row of its own (same job and scheduled_at, attempt 1, 2, ...;
`final` = 1 on the last). Times are stored as Unix seconds (REAL); RunRecord carries aware
datetimes (scheduled_at in the schedule's zone, the rest local); retention is in
cronplus.store.retention.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cronplus.errors import CronplusError
from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store import claimed, outbox
from cronplus.store.api import (  # RunStart: the shared API, re-exported
    HistoryStore,
    OutboxQueue,
    RunStart,
    RunTaken,
)
from cronplus.store.checkpoint import Checkpointer
from cronplus.store.readhistory import (  # the shared API, re-exported
    COLUMNS,
    RUN_JSON_KEYS,
    NoHistoryError,
    ReadHistory,
    file_size,
    open_readonly,
    pairs_json,
    record_from_row,
    run_json,
)
from cronplus.store.remoteruns import RemoteRuns
from cronplus.store.rowdetails import RowDetails
from cronplus.store.schema import (  # the shared API, re-exported
    MIGRATIONS,
    SCHEMA_VERSION,
    connect,
    migrate,
)

__all__ = [
    "DEFAULT_MAX_AGE_S", "DEFAULT_MAX_LOG_BYTES", "DEFAULT_MAX_RUNS_PER_JOB", "MIGRATIONS", "RUN_JSON_KEYS", "SCHEMA_VERSION",
    "History", "NoHistoryError", "ReadHistory", "RunStart", "connect", "migrate", "open_readonly", "run_json",
]

# --- Retention defaults (the `cronplus run` flags use these) --------------------------------
# A busy host runs ~1,500 runs/day (a job every minute): 90 days is ~135k rows, ~25 MB of db.
# 10,000 runs/job bounds a per-minute job to ~1 week, so one chatty job cannot crowd out the
# history of weekly ones. 1 GiB of captured output is safe on any server disk and still keeps
# ~10,000 typical (100 KB) logs; the oldest logs go first, the rows (status, times) stay.
DEFAULT_MAX_AGE_S: float = 90 * 24 * 3600.0
DEFAULT_MAX_RUNS_PER_JOB: int = 10_000
DEFAULT_MAX_LOG_BYTES: int = 1024**3

_INSERT_RUNNING = ("INSERT INTO runs (run_id, job, attempt, status, trigger, scheduled_at, tz, started_at, log_path, owner, host,"
                   " claim) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?)" + claimed.ON_CLAIMED)


class History(RowDetails, ReadHistory, RemoteRuns):  # RemoteRuns: queue= runs (store/remoteruns.py)
    """The supervisor's writer. One thread; each method is one short explicit transaction, or
    part of the caller's when it runs inside `transaction()`."""

    def __init__(self, db_path: str | os.PathLike[str], *, host: str | None = None,
                 checkpoint_thread: bool = False) -> None:
        super().__init__(connect(db_path))
        self.db_path = Path(db_path)
        self.host = host or socket.gethostname()  # every row this writer inserts carries it
        self._savepoints = 0
        self._pending = False  # an outermost transaction() not begun yet: it has written nothing
        self._after_commit: list[Callable[[], None]] = []
        # The supervisor's writer (store/open.py): its commits never checkpoint, a thread does
        # (store/checkpoint.py), so the loop that commits never waits on the disk.
        self.checkpointer: Checkpointer | None = None
        if checkpoint_thread:
            self.checkpointer = Checkpointer(self.db_path)
            self.checkpointer.start(self.conn)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        super().close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for several writes (a run's end and its alerts: both or neither, even
        across a kill -9). Nested, it is a savepoint: an inner failure undoes only the inner part.
        It yields nothing: the connection stays inside the store (api.UnitOfWork).

        The outermost one begins at its first write (`_begin_pending`): one that writes nothing
        (a run's start with no ping to send, every run of a tick) takes no lock and commits
        nothing, so it never waits for another writer (the delivery worker) nor for the disk."""
        if self.conn.in_transaction or self._pending:
            with self._transaction():
                yield
            return
        self._pending = True
        try:
            yield
        except BaseException:
            self._pending = False
            self._rollback()
            raise
        self._pending = False
        if self.conn.in_transaction:
            self._commit()
        self._committed()

    def _begin_pending(self) -> None:
        """The first write of a `transaction()` that has not begun yet: begin it now."""
        if self._pending and not self.conn.in_transaction:
            self.conn.execute("BEGIN IMMEDIATE")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A transaction begun now (or a savepoint inside one): what every write of the store
        runs in, and retention's batches."""
        self._begin_pending()
        if self.conn.in_transaction:
            self._savepoints += 1
            name = f"nested_{self._savepoints}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield self.conn
            except BaseException:
                if self.conn.in_transaction:  # see _rollback: SQLite may have ended it already
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._savepoints -= 1
            self.conn.execute(f"RELEASE {name}")
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self._commit()
        except BaseException:
            self._rollback()
            raise
        self._committed()

    def _commit(self) -> None:
        try:
            self.conn.execute("COMMIT")  # a full disk shows here too (WAL frames are written at commit)
        except BaseException:
            self._rollback()
            raise
        if self.checkpointer is not None:
            self.checkpointer.poke()

    def _rollback(self) -> None:
        # On SQLITE_FULL / SQLITE_IOERR SQLite may roll the whole transaction back by itself
        # (sqlite.org/lang_transaction.html, "Response To Errors Within A Transaction"); a
        # second ROLLBACK would then hide the real error behind "no transaction is active".
        if self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
        self._after_commit.clear()

    def _committed(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` once what was written so far is committed (now, outside a transaction):
        another connection (the delivery worker) told to look before would not see it."""
        if self.conn.in_transaction or self._pending:
            self._after_commit.append(callback)
        else:
            callback()

    def start_run(
        self,
        *,
        job: str,
        attempt: int,
        trigger: Trigger,
        scheduled_at: float | None,
        tz: str | None,
        started_at: float,
        log_path: str | Callable[[int], str] | None,
        owner: str,
    ) -> int:
        """Insert the `running` row before the process is spawned; returns its run_id.

        `log_path` may be a function of the new run_id (logs are named after it); it is then
        filled in within the same transaction, so a start costs one commit, not two.
        """
        run_id = self.start_runs([RunStart(job=job, attempt=attempt, trigger=trigger, scheduled_at=scheduled_at,
                                           tz=tz, started_at=started_at, log_path=log_path, owner=owner)])[0]
        assert run_id is not None  # it claims nothing: always inserted
        return run_id

    def start_runs(self, starts: Sequence[RunStart], *, kv: Sequence[tuple[str, str]] = ()) -> list[int | None]:
        """`start_run` for many runs in one transaction (a tick's fan-out: one commit, not one per
        run); run_ids in the order given (None: its claim is another row's, store/claimed.py).
        `kv` entries are set in that transaction (the ticks these rows handle: ticks.py)."""
        with self._transaction() as conn:
            if kv:
                conn.executemany("INSERT INTO kv (key, value) VALUES (?, ?)"
                                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value", kv)
            if all(start.run_id is None for start in starts):
                # The write lock is ours (BEGIN IMMEDIATE), so the ids AUTOINCREMENT would give
                # are known now and each row goes in whole, its log path included: one INSERT a
                # run in one executemany, not an INSERT and an UPDATE each (CPU per run -45%).
                first = self.next_run_id()
                run_ids: list[int | None] = list(range(first, first + len(starts)))
                cur = conn.executemany(_INSERT_RUNNING, [self._running_row(start, run_id)
                                                         for run_id, start in zip(run_ids, starts, strict=True)])
                return run_ids if cur.rowcount == len(starts) else claimed.inserted(conn, run_ids)  # claims lost
            return [self._insert_running(conn, start) for start in starts]  # ids given: storeguard's held rows

    def _running_row(self, start: RunStart, run_id: int | None) -> tuple[Any, ...]:
        log_path = start.log_path
        if callable(log_path):
            log_path = log_path(run_id) if run_id is not None else None
        return (run_id, start.job, start.attempt, str(start.trigger), start.scheduled_at, start.tz, start.started_at,
                log_path, start.owner, self.host, start.claim)

    def _insert_running(self, conn: sqlite3.Connection, start: RunStart) -> int | None:
        cur = conn.execute(_INSERT_RUNNING, self._running_row(start, start.run_id))
        run_id = cur.lastrowid if cur.rowcount else None  # None: its claim is another row's
        if run_id is not None and callable(start.log_path) and start.run_id is None:
            conn.execute("UPDATE runs SET log_path = ? WHERE run_id = ?", (start.log_path(run_id), run_id))
        return run_id

    def next_run_id(self) -> int:
        """The run_id SQLite would give the next row: AUTOINCREMENT never reuses a deleted row's."""
        row = self.conn.execute(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'runs'), 0),"
            " coalesce((SELECT max(run_id) FROM runs), 0))").fetchone()
        return int(row[0]) + 1

    def set_log_path(self, run_id: int, log_path: str) -> None:
        """For callers that only know the log path once the run_id exists (<log_dir>/<job>/<id>.log)."""
        with self._transaction() as conn:
            conn.execute("UPDATE runs SET log_path = ? WHERE run_id = ?", (log_path, run_id))

    def set_pid(self, run_id: int, pid: int) -> None:
        self.set_pids([(run_id, pid)])

    def set_pids(self, pids: Sequence[tuple[int, int]]) -> None:
        """(run_id, pid) pairs in one transaction: a tick's chunk of spawns, one commit."""
        with self._transaction() as conn:
            conn.executemany("UPDATE runs SET pid = ? WHERE run_id = ?", [(pid, run_id) for run_id, pid in pids])

    # The pipeline features' columns of a run (schema 3), each one UPDATE of one attempt's row.
    def set_slow_at(self, run_id: int, at: float) -> None:  # alert-on=slow (engine/slowness.py); the first mark stays
        self._update("UPDATE runs SET slow_at = ? WHERE run_id = ? AND slow_at IS NULL", (at, run_id))

    def set_params(self, run_id: int, params: Sequence[tuple[str, str]]) -> None:  # trigger --param
        self._update("UPDATE runs SET params = ? WHERE run_id = ?", (pairs_json(params), run_id))

    def set_outputs(self, run_id: int, outputs: Sequence[tuple[str, str]]) -> None:  # $CRONPLUS_OUTPUT's, before finish_run
        self._update("UPDATE runs SET outputs = ? WHERE run_id = ?", (pairs_json(outputs), run_id))

    def set_usage(self, run_id: int, *, peak_memory_bytes: int | None, cpu_s: float | None) -> None:  # a run cgroup's
        self._update("UPDATE runs SET peak_memory_bytes = ?, cpu_s = ? WHERE run_id = ?", (peak_memory_bytes, cpu_s, run_id))

    def set_queued(self, run_id: int, queued_s: float) -> None:  # seconds it waited for a pool slot (engine/pools.py)
        self._update("UPDATE runs SET queued_s = ? WHERE run_id = ?", (queued_s, run_id))

    def set_sensor_s(self, run_id: int, seconds: float) -> None:  # a sensor's wait (wait-for=, engine/sensors.py)
        self._update("UPDATE runs SET sensor_s = ? WHERE run_id = ?", (seconds, run_id))

    def _update(self, sql: str, params: tuple[object, ...]) -> None:
        with self._transaction() as conn:
            conn.execute(sql, params)

    def kv_set_many(self, items: Sequence[tuple[str, str]]) -> None:
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                items,
            )

    def finish_run(self, run_id: int, *, status: RunStatus, ended_at: float, exit_code: int | None, reason: str | None,
                   final: bool, signal: int | None = None, owner: str | None = None) -> RunRecord:
        """Complete a row: status, end, exit code (and the signal that killed the shell), reason;
        `final` when no attempt follows. With `owner`, only a row that owner holds (fencing:
        RunTaken, nothing written, when another host took it over; store/leases.py)."""
        row = self.conn.execute("SELECT log_path FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise CronplusError(f"no run {run_id} in history")
        log_bytes = file_size(row["log_path"])
        fence, owned = "" if owner is None else " AND owner = ?", ", owner = NULL" if final else ""  # a retry stays its owner's
        with self._transaction() as conn:
            done = conn.execute(  # RETURNING: the record without a second query (SQLite >= 3.35)
                "UPDATE runs SET status = ?, ended_at = ?, exit_code = ?, signal = ?, reason = ?, final = ?,"
                f" log_bytes = ?{owned} WHERE run_id = ?{fence} RETURNING {COLUMNS}",
                (str(status), ended_at, exit_code, signal, reason, int(final), log_bytes, run_id,
                 *(() if owner is None else (owner,))),
            ).fetchall()  # stepped to its end inside the transaction: the commit finds no statement in progress
            if not done:
                if owner is not None:
                    raise RunTaken(f"run {run_id} is no longer {owner}'s")
                raise CronplusError(f"no run {run_id} in history")
        return record_from_row(done[0])

    def record_not_run(
        self,
        *,
        job: str,
        status: RunStatus,
        trigger: Trigger,
        scheduled_at: float | None,
        tz: str | None,
        at: float,
        reason: str | None,
        run_id: int | None = None,
        claim: str | None = None,
    ) -> RunRecord | None:
        """A final row for a run that never started (skipped, missed, upstream_failed): no process,
        no log; started_at stays NULL and ended_at is when it was decided. None: its claim is another row's."""
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (run_id, job, attempt, status, trigger, scheduled_at, tz, ended_at, reason, final, host,"
                " claim) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, 1, ?, ?)" + claimed.ON_CLAIMED,
                (run_id, job, str(status), str(trigger), scheduled_at, tz, at, reason, self.host, claim),
            )
            run_id = cur.lastrowid if cur.rowcount else None
        return None if run_id is None else self.get_run(run_id)

    def _stale(self, live_owner: str) -> list[sqlite3.Row]:
        return self.conn.execute(
            "SELECT run_id, job, pid, log_path, owner FROM runs WHERE status = 'running' AND (owner IS NULL OR owner != ?)",
            (live_owner,),
        ).fetchall()

    def stale_running(self, *, live_owner: str) -> list[RunRecord]:
        """Rows left `running` by a supervisor that is gone."""
        return self.runs_by_id([row["run_id"] for row in self._stale(live_owner)])

    def mark_interrupted(self, *, live_owner: str, now: float, notes: dict[int, str] | None = None,
                         on_final: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
        """Rows left `running` by a supervisor that is gone become final `interrupted` runs, with
        `notes[run_id]` added to the reason. Their output is kept: log_path is untouched and the
        log's size recorded. `on_final(record)` (the alert decision) runs for each in the same
        transaction."""
        stale = self._stale(live_owner)
        if not stale:
            return []
        with self._transaction() as conn:
            for row in stale:
                reason = f"supervisor {row['owner']} stopped while it ran" if row["owner"] else "supervisor stopped while it ran"
                if notes and row["run_id"] in notes:
                    reason = f"{reason}; {notes[row['run_id']]}"
                conn.execute(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?, reason = ?, final = 1,"
                    " log_bytes = ?, owner = NULL WHERE run_id = ? AND status = 'running'",
                    (now, reason, file_size(row["log_path"]), row["run_id"]),
                )
            records = self.runs_by_id([row["run_id"] for row in stale])
            if on_final is not None:
                for record in records:
                    on_final(record)
        return records

    def mark_final(self, run_id: int, reason: str) -> RunRecord:
        """An ended attempt whose retry will not happen (shutdown, replaced) becomes the run's final
        row; `reason` is appended to the attempt's own (e.g. "exit 3; retry abandoned: ...")."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET final = 1, owner = NULL, reason = CASE WHEN reason IS NULL THEN ? ELSE reason || '; ' || ? END"
                " WHERE run_id = ? AND final = 0 AND status != 'running'",
                (reason, reason, run_id),
            )
        record = self.get_run(run_id)
        if record is None:
            raise CronplusError(f"no run {run_id} in history")
        return record

    def mark_abandoned_retries(self, *, reason: str,
                               on_final: Callable[[RunRecord], None] | None = None) -> list[RunRecord]:
        """Ended, non-final attempts with no later attempt of the same run: a supervisor died while
        their retry was pending (kill -9). Each becomes final with `reason` appended, and
        `on_final(record)` (the alert decision held for the retry) runs in the same transaction.
        At start-up, before any run starts (one scan of the table: no index covers final = 0)."""
        stale = [row[0] for row in self.conn.execute(
            "SELECT run_id FROM runs AS r WHERE final = 0 AND status != 'running' AND NOT EXISTS"
            " (SELECT 1 FROM runs AS n WHERE n.job = r.job AND n.scheduled_at IS r.scheduled_at"
            " AND n.run_id > r.run_id AND n.attempt > r.attempt)"
        )]
        records = []
        for run_id in stale:
            with self.transaction():  # the final row and its alert: both or neither
                record = self.mark_final(run_id, reason)
                if on_final is not None:
                    on_final(record)
            records.append(record)
        return records

    def enqueue_outbox(self, *, kind: str, event: str, job: str | None, run_id: int | None, target: str,
                       format: str, secret_ref: str | None, payload: dict[str, Any], now: float) -> int:
        """One pending outbox row (outbox.enqueue), part of the caller's transaction if any."""
        self._begin_pending()
        return outbox.enqueue(self.conn, kind=kind, event=event, job=job, run_id=run_id, target=target,
                              format=format, secret_ref=secret_ref, payload=payload, now=now)

    def kv_set(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def prune(
        self,
        *,
        now: float,
        log_dir: Path,
        max_age_s: float | None = DEFAULT_MAX_AGE_S,
        max_runs_per_job: int | None = DEFAULT_MAX_RUNS_PER_JOB,
        max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES,
        max_rows: int | None = -1,
    ) -> dict[str, int]:
        """Apply retention; None disables a limit. See cronplus.store.retention for the rules.

        `max_rows` bounds the deletions/evictions of one call (default retention.PRUNE_MAX_ROWS,
        None: no bound) so a backlog is worked off over several calls, never in one long stall.
        """
        from cronplus.store.retention import PRUNE_MAX_ROWS, prune

        return prune(
            self, now=now, log_dir=Path(log_dir), max_age_s=max_age_s,
            max_runs_per_job=max_runs_per_job, max_log_bytes=max_log_bytes,
            max_rows=PRUNE_MAX_ROWS if max_rows == -1 else max_rows,
        )


def _satisfies(history: History, queue: outbox.Outbox) -> tuple[HistoryStore, OutboxQueue]:  # for mypy
    return history, queue
