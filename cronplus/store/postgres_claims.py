"""A tick's `running` rows on PostgreSQL, claimed (store/claimed.py): `PostgresClaims`, a mixin
of PostgresHistory (apart from postgres_history.py: its line budget) with `start_runs` and
`unfinished` (every host's runs not finished), in PostgresHistory's unit of work.

Several supervisors insert the same ticks at the same time, so the rows go in sorted by their
claim's key `(job, scheduled_at, attempt, claim)`: an insert that meets another transaction's
uncommitted row of the same claim waits for that transaction's end, and with every transaction
taking its claims in one order no two wait for each other in a circle (a deadlock, which
PostgreSQL would end by failing one of them). Their run_ids are drawn first, in one query, so
each row goes in whole (its log path is named after its id) and the whole chunk is one
executemany (psycopg pipelines it: one round trip, not one per row).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from cronplus.model import RunRecord
from cronplus.store.api import RunStart
from cronplus.store.claimed import ON_CLAIMED, unfinished_sql
from cronplus.store.readhistory import COLUMNS

if TYPE_CHECKING:
    import psycopg

    from cronplus.store.postgres_conn import Database

_INSERT = ("INSERT INTO runs (run_id, job, attempt, status, trigger, scheduled_at, tz, started_at, log_path, owner, host,"
           " claim) VALUES (%s, %s, %s, 'running', %s, %s, %s, %s, %s, %s, %s, %s)" + ON_CLAIMED + " RETURNING run_id")
_IDS = "SELECT nextval(pg_get_serial_sequence('runs', 'run_id')) AS id FROM generate_series(1, %s)"
_KV_SET = "INSERT INTO kv (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def claim_key(start: RunStart) -> tuple[str, float, int, str]:
    return (start.job, -1.0 if start.scheduled_at is None else start.scheduled_at, start.attempt, start.claim or "")


def start_rows(conn: psycopg.Connection[dict[str, Any]], starts: Sequence[RunStart], *, host: str) -> list[int | None]:
    """Insert `starts` (no run_id given) in the caller's transaction -> their run_ids in the
    order given (increasing), None for a start whose claim is another row's."""
    if not starts:
        return []
    with conn.cursor() as cur:
        ids = sorted(int(row["id"]) for row in cur.execute(_IDS, (len(starts),)).fetchall())
        order = sorted(range(len(starts)), key=lambda i: claim_key(starts[i]))
        rows = []
        for i in order:
            start, run_id = starts[i], ids[i]
            log_path = start.log_path(run_id) if callable(start.log_path) else start.log_path
            rows.append((run_id, start.job, start.attempt, str(start.trigger), start.scheduled_at, start.tz,
                         start.started_at, log_path, start.owner, host, start.claim))
        cur.executemany(_INSERT, rows, returning=True)
        got: set[int] = set()
        while True:
            row = cur.fetchone()
            if row is not None:
                got.add(int(row["run_id"]))
            if not cur.nextset():
                break
    return [run_id if run_id in got else None for run_id in ids]


class PostgresClaims:
    db: Database
    host: str
    _high: int

    # PostgresHistory's
    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _insert_run(self, run_id: int | None, columns: str, values: tuple[Any, ...]) -> int | None:
        raise NotImplementedError

    def _records(self, sql: str, params: Sequence[Any] = ()) -> list[RunRecord]:
        raise NotImplementedError

    def start_runs(self, starts: Sequence[RunStart], *, kv: Sequence[tuple[str, str]] = ()) -> list[int | None]:
        """The rows of a tick (and `kv`) in one transaction; run_ids in the order given, None for
        a start whose claim another row holds (store/claimed.py). Several supervisors insert the
        same ticks at once: each transaction takes its locks (kv keys, then the claims' index
        entries) in one order, sorted, so two never wait for each other in a circle (a deadlock)."""
        with self.transaction():
            if kv:
                self._many(_KV_SET, sorted(kv))
            if any(start.run_id is not None for start in starts):  # storeguard's held rows: ids given
                got = {i: self._start_given(starts[i]) for i in sorted(range(len(starts)), key=lambda i: claim_key(starts[i]))}
                return [got[i] for i in range(len(starts))]
            with self.db.guard():
                run_ids = start_rows(self.db.conn(reconnect=False), starts, host=self.host)
        self._high = max([self._high, *(run_id for run_id in run_ids if run_id is not None)])
        return run_ids

    def _start_given(self, start: RunStart) -> int | None:
        log_path = start.log_path(start.run_id) if callable(start.log_path) and start.run_id else start.log_path
        return self._insert_run(start.run_id, "job, attempt, status, trigger, scheduled_at, tz, started_at, log_path, owner, host, claim",
                                (start.job, start.attempt, "running", str(start.trigger), start.scheduled_at, start.tz,
                                 start.started_at, log_path, start.owner, self.host, start.claim))

    def unfinished(self, *, since: float) -> list[RunRecord]:
        """Runs of any host not finished: `running`, or a retry pending (store/claimed.py)."""
        return self._records(unfinished_sql(COLUMNS, mark="%s", same="IS NOT DISTINCT FROM"), (since,))
