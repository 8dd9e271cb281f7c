"""The alert outbox: functions over the `outbox` table of history.db (schema in history.py).

An alert or ping is first a row here (`pending`), written on the scheduler's thread in the same
database as the run it is about; the delivery worker sends it later. Rows are never deleted by
delivery, only moved to `delivered` or `failed`, so `cronplus alerts` can show what happened.

At-least-once with a lease: `claim` moves a due row's `next_attempt_at` forward by `lease_s`
in one `BEGIN IMMEDIATE` transaction, so two workers (the supervisor's and `cronplus alerts
--test`) never send the same row at once, and a row whose sender died mid-request becomes due
again when the lease runs out. Every connection here is one from `history.connect`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from cronplus.status import DeliveryStatus
from cronplus.store.schema import connect


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    created_at: float
    kind: str  # 'alert' | 'ping' | 'mail' (target mailto:ADDRS, payload {recipients, message})
    event: str
    job: str | None
    run_id: int | None
    target: str  # URL or env:VAR, a secret: print only via redact.redact_url
    format: str
    secret_ref: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    http_status: int | None
    delivered_at: float | None


def _row(r: sqlite3.Row) -> OutboxRow:
    return OutboxRow(
        id=r["id"],
        created_at=r["created_at"],
        kind=r["kind"],
        event=r["event"],
        job=r["job"],
        run_id=r["run_id"],
        target=r["target"],
        format=r["format"],
        secret_ref=r["secret_ref"],
        payload=json.loads(r["payload"]),
        status=r["status"],
        attempts=r["attempts"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        http_status=r["http_status"],
        delivered_at=r["delivered_at"],
    )


def enqueue(
    conn: sqlite3.Connection,
    *,
    kind: str,
    event: str,
    job: str | None,
    run_id: int | None,
    target: str,
    format: str,
    secret_ref: str | None,
    payload: dict[str, Any],
    now: float,
) -> int:
    """Insert one pending row, due now; returns its id. One INSERT: cheap on the loop thread."""
    cur = conn.execute(
        "INSERT INTO outbox (created_at, kind, event, job, run_id, target, format, secret_ref, payload,"
        " status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
        (now, kind, event, job, run_id, target, format, secret_ref, json.dumps(payload, ensure_ascii=False), now),
    )
    return int(cur.lastrowid or 0)


def due(conn: sqlite3.Connection, *, now: float, limit: int = 200) -> list[OutboxRow]:
    """Pending rows whose time has come, oldest first (not yet claimed)."""
    rows = conn.execute(
        "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
        (now, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def due_targets(conn: sqlite3.Connection, *, now: float, limit: int = 500) -> list[tuple[int, str]]:
    """(id, target) of due pending rows, oldest first: cheap (no payload decoding)."""
    return [
        (int(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT id, target FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, id LIMIT ?",
            (now, limit),
        )
    ]


def claim(conn: sqlite3.Connection, ids: Sequence[int], *, now: float, lease_s: float) -> list[OutboxRow]:
    """Lease the given rows if they are still pending and due; returns the rows won."""
    if not ids:
        return []
    won: list[OutboxRow] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for row_id in ids:
            cur = conn.execute(
                "UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
                (now + lease_s, row_id, now),
            )
            if cur.rowcount:
                r = conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone()
                won.append(_row(r))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLITE_FULL at COMMIT may have rolled it back already
            conn.execute("ROLLBACK")
        raise
    return won


def mark_delivered(conn: sqlite3.Connection, row_id: int, *, now: float, http_status: int | None) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, http_status = ?,"
        " last_error = NULL WHERE id = ?",
        (now, http_status, row_id),
    )


def mark_retry(
    conn: sqlite3.Connection, row_id: int, *, next_attempt_at: float, error: str, http_status: int | None
) -> None:
    """A transient failure: stays pending, due again at `next_attempt_at`. `error` is redacted."""
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, http_status = ?"
        " WHERE id = ? AND status = 'pending'",
        (next_attempt_at, error, http_status, row_id),
    )


def mark_failed(
    conn: sqlite3.Connection, row_id: int, *, error: str, http_status: int | None, count_attempt: bool = True
) -> None:
    """Given up (permanent error or too old). `error` is redacted."""
    conn.execute(
        "UPDATE outbox SET status = 'failed', attempts = attempts + ?, last_error = ?, http_status = ?"
        " WHERE id = ? AND status = 'pending'",
        (int(count_attempt), error, http_status, row_id),
    )


def get(conn: sqlite3.Connection, row_id: int) -> OutboxRow | None:
    r = conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone()
    return _row(r) if r else None


def list_rows(
    conn: sqlite3.Connection, *, status: DeliveryStatus | str | None = None, limit: int | None = 50
) -> list[OutboxRow]:
    """The newest `limit` rows (all when None), optionally of one status; oldest first."""
    sql = "SELECT * FROM outbox"
    params: list[Any] = []
    if status:
        sql += " WHERE status = ?"
        params.append(str(status))
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_row(r) for r in reversed(conn.execute(sql, params).fetchall())]


def next_due_at(conn: sqlite3.Connection, *, exclude_targets: Sequence[str] = ()) -> float | None:
    """When the earliest pending row becomes due (None when nothing is pending), not counting
    the rows of `exclude_targets` (destinations a worker is busy with)."""
    sql = "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
    if exclude_targets:
        sql += f" AND target NOT IN ({','.join('?' * len(exclude_targets))})"
    r = conn.execute(sql, list(exclude_targets)).fetchone()
    return None if r is None or r[0] is None else float(r[0])


def hold_target(conn: sqlite3.Connection, target: str, *, until: float, except_id: int) -> None:
    """Per-destination backoff: the destination's other pending rows wait until `until` too
    (none is moved earlier), so its rows keep their order."""
    conn.execute(
        "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending' AND target = ? AND id != ?"
        " AND next_attempt_at < ?",
        (until, target, except_id, until),
    )


def release(conn: sqlite3.Connection, ids: Sequence[int], *, now: float) -> None:
    """Give back the leases of claimed rows that were not tried: due again at `now`."""
    conn.executemany("UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending'",
                     [(now, row_id) for row_id in ids])


@contextmanager
def batch(conn: sqlite3.Connection) -> Iterator[None]:
    """One `BEGIN IMMEDIATE` transaction for several of the writes above (a batch's outcomes)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLITE_FULL at COMMIT may have rolled it back already
            conn.execute("ROLLBACK")
        raise


def prune(conn: sqlite3.Connection, *, now: float, keep_s: float, keep_pings_s: float) -> int:
    """Delete finished rows: delivered pings older than `keep_pings_s`, any other delivered or
    failed row older than `keep_s`. Pending rows are never deleted. Returns rows removed."""
    cur = conn.execute(
        "DELETE FROM outbox WHERE status != 'pending' AND"
        " (created_at < ? OR (kind = 'ping' AND status = 'delivered' AND created_at < ?))",
        (now - keep_s, now - keep_pings_s),
    )
    return int(cur.rowcount or 0)


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {s: n for s, n in conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()}


class Outbox:
    """The functions above on one connection: the delivery side as an object (api.OutboxQueue),
    so that a backend other than SQLite can stand in for it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def due(self, *, now: float, limit: int = 200) -> list[OutboxRow]:
        return due(self.conn, now=now, limit=limit)

    def due_targets(self, *, now: float, limit: int = 500) -> list[tuple[int, str]]:
        return due_targets(self.conn, now=now, limit=limit)

    def claim(self, ids: Sequence[int], *, now: float, lease_s: float) -> list[OutboxRow]:
        return claim(self.conn, ids, now=now, lease_s=lease_s)

    def mark_delivered(self, row_id: int, *, now: float, http_status: int | None) -> None:
        mark_delivered(self.conn, row_id, now=now, http_status=http_status)

    def mark_retry(self, row_id: int, *, next_attempt_at: float, error: str, http_status: int | None) -> None:
        mark_retry(self.conn, row_id, next_attempt_at=next_attempt_at, error=error, http_status=http_status)

    def mark_failed(self, row_id: int, *, error: str, http_status: int | None, count_attempt: bool = True) -> None:
        mark_failed(self.conn, row_id, error=error, http_status=http_status, count_attempt=count_attempt)

    def get(self, row_id: int) -> OutboxRow | None:
        return get(self.conn, row_id)

    def list_rows(self, *, status: DeliveryStatus | str | None = None, limit: int | None = 50) -> list[OutboxRow]:
        return list_rows(self.conn, status=status, limit=limit)

    def next_due_at(self, *, exclude_targets: Sequence[str] = ()) -> float | None:
        return next_due_at(self.conn, exclude_targets=exclude_targets)

    def hold_target(self, target: str, *, until: float, except_id: int) -> None:
        hold_target(self.conn, target, until=until, except_id=except_id)

    def release(self, ids: Sequence[int], *, now: float) -> None:
        release(self.conn, ids, now=now)

    def batch(self) -> AbstractContextManager[None]:
        return batch(self.conn)

    def close(self) -> None:
        self.conn.close()

    def prune(self, *, now: float, keep_s: float, keep_pings_s: float) -> int:
        return prune(self.conn, now=now, keep_s=keep_s, keep_pings_s=keep_pings_s)

    def counts(self) -> dict[str, int]:
        return counts(self.conn)


def open_outbox(db_path: str | os.PathLike[str], *, readonly: bool = False) -> Outbox:
    """The outbox on a connection of its own (schema.connect: a writer creates and migrates)."""
    return Outbox(connect(db_path, readonly=readonly))
