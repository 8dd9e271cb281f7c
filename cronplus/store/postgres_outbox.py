"""PostgresOutbox: the alert outbox's delivery side (api.OutboxQueue) on PostgreSQL, on a
connection of its own (postgres.open_postgres_outbox): the same rows and the same behaviour as
outbox.Outbox on SQLite (tests/store_contract.py runs on both).

`claim` is one UPDATE of the rows still pending and due, locked `FOR UPDATE SKIP LOCKED`: the
delivery workers of the supervisors of a cluster share the outbox, and a row another worker is
claiming (or writing the outcome of, in its `batch()`) is skipped rather than waited for; it is
not due once that one commits (its lease), so a row is leased once (at-least-once: a lease that
runs out makes the row due again). Each call is its own transaction unless inside `batch()`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cronplus.status import DeliveryStatus
from cronplus.store.api import OutboxQueue
from cronplus.store.outbox import OutboxRow
from cronplus.store.postgres_conn import Database


def _row(r: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=r["id"], created_at=r["created_at"], kind=r["kind"], event=r["event"], job=r["job"],
        run_id=r["run_id"], target=r["target"], format=r["format"], secret_ref=r["secret_ref"],
        payload=json.loads(r["payload"]), status=r["status"], attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"], last_error=r["last_error"], http_status=r["http_status"],
        delivered_at=r["delivered_at"],
    )


class PostgresOutbox:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._in_batch = False  # a connection lost in a batch is not replaced until it ends

    def __repr__(self) -> str:
        return f"PostgresOutbox({self.db.shown!r})"

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.db.guard():
            cur = self.db.conn(reconnect=not self._in_batch).execute(sql, params)
            return cur.fetchall() if cur.description else []

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self.db.guard():
            return self.db.conn(reconnect=not self._in_batch).execute(sql, params).rowcount

    def due(self, *, now: float, limit: int = 200) -> list[OutboxRow]:
        """Pending rows whose time has come, oldest first (not yet claimed)."""
        return [_row(r) for r in self._rows(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, id LIMIT %s", (now, limit))]

    def due_targets(self, *, now: float, limit: int = 500) -> list[tuple[int, str]]:
        return [(int(r["id"]), str(r["target"])) for r in self._rows(
            "SELECT id, target FROM outbox WHERE status = 'pending' AND next_attempt_at <= %s"
            " ORDER BY next_attempt_at, id LIMIT %s", (now, limit))]

    def claim(self, ids: Sequence[int], *, now: float, lease_s: float) -> list[OutboxRow]:
        """Lease the given rows if they are still pending and due; the rows won, in the order given."""
        if not ids:
            return []
        won = {r["id"]: _row(r) for r in self._rows(
            "WITH free AS (SELECT id FROM outbox WHERE id = ANY(%s) AND status = 'pending' AND next_attempt_at <= %s"
            " FOR UPDATE SKIP LOCKED) UPDATE outbox AS o SET next_attempt_at = %s FROM free WHERE o.id = free.id"
            " RETURNING o.*", (list(ids), now, now + lease_s))}
        return [won[row_id] for row_id in dict.fromkeys(ids) if row_id in won]

    def mark_delivered(self, row_id: int, *, now: float, http_status: int | None) -> None:
        self._count("UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = %s,"
                    " http_status = %s, last_error = NULL WHERE id = %s", (now, http_status, row_id))

    def mark_retry(self, row_id: int, *, next_attempt_at: float, error: str, http_status: int | None) -> None:
        """A transient failure: stays pending, due again at `next_attempt_at`. `error` is redacted."""
        self._count("UPDATE outbox SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s,"
                    " http_status = %s WHERE id = %s AND status = 'pending'",
                    (next_attempt_at, error, http_status, row_id))

    def mark_failed(self, row_id: int, *, error: str, http_status: int | None, count_attempt: bool = True) -> None:
        """Given up (permanent error or too old). `error` is redacted."""
        self._count("UPDATE outbox SET status = 'failed', attempts = attempts + %s, last_error = %s,"
                    " http_status = %s WHERE id = %s AND status = 'pending'",
                    (int(count_attempt), error, http_status, row_id))

    def get(self, row_id: int) -> OutboxRow | None:
        rows = self._rows("SELECT * FROM outbox WHERE id = %s", (row_id,))
        return _row(rows[0]) if rows else None

    def list_rows(self, *, status: DeliveryStatus | str | None = None, limit: int | None = 50) -> list[OutboxRow]:
        """The newest `limit` rows (all when None), optionally of one status; oldest first."""
        sql = "SELECT * FROM outbox"
        params: list[Any] = []
        if status:
            sql += " WHERE status = %s"
            params.append(str(status))
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [_row(r) for r in reversed(self._rows(sql, params))]

    def next_due_at(self, *, exclude_targets: Sequence[str] = ()) -> float | None:
        sql = "SELECT min(next_attempt_at) AS at FROM outbox WHERE status = 'pending'"
        params: list[Any] = []
        if exclude_targets:
            sql += " AND NOT (target = ANY(%s))"
            params.append(list(exclude_targets))
        rows = self._rows(sql, params)
        return None if not rows or rows[0]["at"] is None else float(rows[0]["at"])

    def hold_target(self, target: str, *, until: float, except_id: int) -> None:
        """Per-destination backoff: the destination's other pending rows wait until `until` too."""
        self._count("UPDATE outbox SET next_attempt_at = %s WHERE status = 'pending' AND target = %s AND id != %s"
                    " AND next_attempt_at < %s", (until, target, except_id, until))

    def release(self, ids: Sequence[int], *, now: float) -> None:
        """Give back the leases of claimed rows that were not tried: due again at `now`."""
        if ids:
            self._count("UPDATE outbox SET next_attempt_at = %s WHERE id = ANY(%s) AND status = 'pending'",
                        (now, list(ids)))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for several of the writes above (a batch's outcomes)."""
        with self.db.guard(), self.db.conn().transaction():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    def close(self) -> None:
        self.db.close()

    def prune(self, *, now: float, keep_s: float, keep_pings_s: float) -> int:
        """Delete finished rows older than their keep time; never a pending one (see outbox.prune)."""
        return self._count("DELETE FROM outbox WHERE status != 'pending' AND"
                           " (created_at < %s OR (kind = 'ping' AND status = 'delivered' AND created_at < %s))",
                           (now - keep_s, now - keep_pings_s))

    def counts(self) -> dict[str, int]:
        return {str(r["status"]): int(r["n"]) for r in
                self._rows("SELECT status, count(*) AS n FROM outbox GROUP BY status")}


def _satisfies(queue: PostgresOutbox) -> OutboxQueue:  # for mypy
    return queue
