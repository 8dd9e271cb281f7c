"""The writes and reads of runs whose attempt a worker carries out (`queue=`, docs/workers.md), on both
backends: a mixin of history.History (SQLite) and postgres_history.PostgresHistory, whose SQL
reads alike on both (`?` placeholders: SQLite's connection, PostgreSQL's QmarkConnection; row
values by column name; RETURNING, SQLite >= 3.35).

The run row is the fence between the supervisor and the workers (Celery redelivers a message
whose worker died, and Redis' visibility timeout re-delivers a long one: neither may run an
attempt twice):

* `send_to_queue(run_id, queue)`: the supervisor, after inserting the `running` row and before
  sending the message: `queue` set, `host` and `pid` emptied. `host IS NULL` on a running row
  with a queue means "in the broker, nobody has it".
* `claim_attempt(run_id, host=, started_at=)`: the one who sets `host` owns the attempt: a worker
  about to start it, or the supervisor giving up on it (queue-timeout, a cancel before any worker
  took it). True for exactly one caller; a redelivered message finds the row taken and is dropped.
* `report_attempt(run_id, host=, result=, head=, tail=, log_path=)`: the worker's result (JSON:
  engine/remote.py) and the output's head and tail, accepted from the host that holds the claim
  only, while the run is `running`. The supervisor then records the end as for any run.
* `request_cancel(run_id)`: `attempt_result` = CANCEL_REQUEST while no result is there; the
  worker watching its row terminates the job's group and reports (its report replaces it).
* `remote_states(run_ids)`: what the supervisor polls: status, host, pid, the report (or the
  cancel request) and the last heartbeat of the claiming worker (hosts, kind 'worker').
* `adopt_remote(live_owner=)`: a supervisor's start: the remote runs still `running` become its
  own (their owner), so recovery does not interrupt them; it awaits them instead. Not those of
  another host id's supervisor that holds its lease row (store/leases.py; PostgreSQL): they are
  that one's, or, once its lease runs out, its taker's (engine/takeover.py adopts them).
* `worker_heartbeat(...)`: a worker's row in `hosts` (kind 'worker'), renewed; its lease tells
  the supervisor when a worker that holds attempts is gone (their attempts are `interrupted`).
* `remote_output(run_id)`: (head, tail) of a remote run's output.
* `worker_pids(host, since=)`: (owner, pid) of the workers of a host id that beat at or after
  `since`: a worker refuses to start beside a live one of its host id (it would settle that
  one's running attempts as its own leftovers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

CANCEL_REQUEST = '{"cancel": true}'  # attempt_result while the supervisor asks the worker to stop


@dataclass(frozen=True, slots=True)
class RemoteState:
    """A remote run's row as the supervisor polls it."""

    run_id: int
    status: str
    host: str | None  # None: still in the broker
    pid: int | None
    report: str | None  # attempt_result: the worker's result JSON, or CANCEL_REQUEST
    heartbeat_at: float | None  # the claiming worker's last heartbeat (None: none known)
    lease_s: float | None


class RemoteRuns:
    """Mixin: the store's remote-run methods (see the module docstring)."""

    def _remote_rows(self, sql: str, params: Sequence[Any], *, write: bool) -> list[Any]:
        store = cast(Any, self)  # History or PostgresHistory: conn and _transaction are theirs
        if not write:  # a read takes no write lock (SQLite's transactions BEGIN IMMEDIATE)
            return list(store.conn.execute(sql, tuple(params)).fetchall())
        with store._transaction():
            return list(store.conn.execute(sql, tuple(params)).fetchall())

    def send_to_queue(self, run_id: int, queue: str) -> None:
        self._remote_rows("UPDATE runs SET queue = ?, host = NULL, pid = NULL WHERE run_id = ? RETURNING run_id",
                          (queue, run_id), write=True)

    def claim_attempt(self, run_id: int, *, host: str, started_at: float) -> bool:
        rows = self._remote_rows(
            "UPDATE runs SET host = ?, started_at = ? WHERE run_id = ? AND host IS NULL AND status = 'running'"
            " AND queue IS NOT NULL RETURNING run_id", (host, started_at, run_id), write=True)
        return bool(rows)

    def report_attempt(self, run_id: int, *, host: str, result: str, head: str | None, tail: str | None,
                       log_path: str | None) -> bool:
        rows = self._remote_rows(
            "UPDATE runs SET attempt_result = ?, output_head = ?, output_tail = ?, log_path = coalesce(?, log_path)"
            " WHERE run_id = ? AND host = ? AND status = 'running' RETURNING run_id",
            (result, head, tail, log_path, run_id, host), write=True)
        return bool(rows)

    def request_cancel(self, run_id: int) -> None:
        self._remote_rows("UPDATE runs SET attempt_result = ? WHERE run_id = ? AND attempt_result IS NULL"
                          " AND status = 'running' RETURNING run_id", (CANCEL_REQUEST, run_id), write=True)

    def remote_states(self, run_ids: Sequence[int]) -> list[RemoteState]:
        if not run_ids:
            return []
        marks = ", ".join("?" * len(run_ids))
        rows = self._remote_rows(
            "SELECT r.run_id, r.status, r.host, r.pid, r.attempt_result,"
            " (SELECT max(h.heartbeat_at) FROM hosts h WHERE h.host = r.host AND h.kind = 'worker'"
            "  AND h.taken_by IS NULL) AS heartbeat_at,"
            " (SELECT max(h.lease_s) FROM hosts h WHERE h.host = r.host AND h.kind = 'worker') AS lease_s"
            f" FROM runs r WHERE r.run_id IN ({marks}) ORDER BY r.run_id", list(run_ids), write=False)
        return [RemoteState(row["run_id"], row["status"], row["host"], row["pid"], row["attempt_result"],
                            row["heartbeat_at"], row["lease_s"]) for row in rows]

    def remote_output(self, run_id: int) -> tuple[str | None, str | None]:
        rows = self._remote_rows("SELECT output_head, output_tail FROM runs WHERE run_id = ?", (run_id,), write=False)
        return (rows[0]["output_head"], rows[0]["output_tail"]) if rows else (None, None)

    def adopt_remote(self, *, live_owner: str) -> list[int]:
        host = cast(Any, self).host  # our host id: its earlier owners are our predecessors, live rows or not
        rows = self._remote_rows(
            "UPDATE runs SET owner = ? WHERE status = 'running' AND queue IS NOT NULL"
            " AND (owner IS NULL OR owner != ?) AND (owner IS NULL OR owner NOT IN (SELECT h.owner FROM hosts h"
            "  WHERE h.kind = 'supervisor' AND h.taken_by IS NULL AND h.host != ?)) RETURNING run_id",
            (live_owner, live_owner, host), write=True)
        return sorted(int(row["run_id"]) for row in rows)

    def worker_heartbeat(self, *, owner: str, host: str, pid: int, started_at: float, now: float,
                         lease_s: float) -> None:
        self._remote_rows(
            "INSERT INTO hosts (owner, host, kind, pid, started_at, heartbeat_at, lease_s)"
            " VALUES (?, ?, 'worker', ?, ?, ?, ?) ON CONFLICT (owner) DO UPDATE SET"
            " heartbeat_at = excluded.heartbeat_at, lease_s = excluded.lease_s RETURNING owner",
            (owner, host, pid, started_at, now, lease_s), write=True)

    def worker_pids(self, host: str, *, since: float) -> list[tuple[str, int | None]]:
        rows = self._remote_rows("SELECT owner, pid FROM hosts WHERE host = ? AND kind = 'worker' AND heartbeat_at >= ?"
                                 " ORDER BY owner", (host, since), write=False)
        return [(row["owner"], row["pid"]) for row in rows]
