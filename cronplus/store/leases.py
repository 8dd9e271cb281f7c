"""The leases of the supervisors sharing a PostgreSQL store: the `hosts` table (schema 4), one
row per supervisor process (its owner id, as runs.owner names it). Every time in it is the
DATABASE's clock (`now()`), never a host's: the hosts' clocks do not decide who is alive.
docs/cluster.md states the rules for users.

- `Leases.connect() -> LeaseDb`: a connection of its own, for the heartbeat thread
  (service/heartbeat.py), so that neither the event loop nor the writer's transactions hold a
  beat back.
  - `register(owner, ...)`: the owner's row, heartbeat_at = now().
  - `beat(owner, local_time)`: heartbeat_at = now() and skew_s = local_time - now(), only while
    the lease holds: the row is not taken (taken_by NULL) and not expired (heartbeat_at >= now()
    - lease_s). Renewing nothing is `Beat.lost` (why): the host must fence itself. The
    UPDATE locks the row, so a beat and a take-over of the same row are ordered: the beat
    renews before the taker looks (the taker then skips it), or sees the row taken.
  - `expired(owner)`: the other supervisors' rows past their lease, not yet taken (a worker's
    row, kind 'worker', is the Celery executor's business: its attempts' polling reads it).
  - `leave(owner)`: a supervisor stopping cleanly removes its row (all its runs are recorded).
- `Leases.take(owner, taker) -> Taken | None`: ON THE WRITER'S CONNECTION, inside the caller's
  `history.transaction()` (engine/takeover.py ends the runs and publishes their RunEnded, whose
  alert decisions commit with it): the supervisor's row (kind 'supervisor' only) locked `FOR UPDATE SKIP LOCKED` and re-checked
  (still expired, not taken: None otherwise, and of two takers only one gets it), marked
  taken_by / taken_at, and its `running` rows returned (locked), for the caller to end with
  `finish_run(..., owner=that owner)`; its ended attempts with a retry to come (not final: such
  a row keeps its owner until its run is final) become the taker's (`own`), their retries with
  them. `own(run_ids, owner)` gives the taker the rows of the retries it runs.
- `RunWriter.finish_run(..., owner=X)` (both backends) is the fence: it updates the row only if X
  still owns it, so a late end from a host whose runs were taken is not recorded (RunTaken).

SQLite has one host and no leases: `leases_for` returns None, and nothing here runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cronplus.model import RunRecord

if TYPE_CHECKING:
    from cronplus.store.postgres_conn import Database
    from cronplus.store.postgres_history import PostgresHistory

_NOW = "extract(epoch FROM now())::float8"
TAKEN_KEPT_S = 7 * 86400.0  # a taken row is forgotten a week later (its runs' rows stay)


@dataclass(frozen=True, slots=True)
class Beat:
    """One heartbeat's answer: renewed (with this host's clock skew), or `lost` saying why."""

    skew_s: float | None = None
    lost: str | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    """A host's row just taken over: its name, its running rows (still `running`, locked) and its
    ended attempts whose retry it was to run (not final; now the taker's: `owner` moved)."""

    owner: str
    host: str
    running: list[RunRecord]
    retrying: list[RunRecord]


class LeaseDb:
    """The heartbeat thread's connection (postgres_conn.Database: a lost one is reopened by the
    next call, raising DatabaseUnavailable meanwhile)."""

    def __init__(self, db: Database, *, host: str) -> None:
        self.db = db
        self.host = host

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.db.guard():
            return self.db.conn().execute(sql, params).fetchall()

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self.db.guard():
            self.db.conn().execute(sql, params)

    def register(self, owner: str, *, lease_s: float, local_time: float, kind: str = "supervisor") -> Beat:
        """The owner's row, its lease begun now; the Beat says this host's clock skew."""
        self._execute(f"DELETE FROM hosts WHERE taken_at < {_NOW} - %s", (TAKEN_KEPT_S,))
        rows = self._rows(f"INSERT INTO hosts (owner, host, kind, pid, started_at, heartbeat_at, lease_s, skew_s)"
                          f" VALUES (%s, %s, %s, %s, {_NOW}, {_NOW}, %s, %s - {_NOW}) RETURNING skew_s",
                          (owner, self.host, kind, os.getpid(), lease_s, local_time))
        return Beat(skew_s=float(rows[0]["skew_s"]))

    def beat(self, owner: str, *, local_time: float) -> Beat:
        rows = self._rows(f"UPDATE hosts SET heartbeat_at = {_NOW}, skew_s = %s - {_NOW}"
                          f" WHERE owner = %s AND taken_by IS NULL AND heartbeat_at >= {_NOW} - lease_s"
                          " RETURNING skew_s", (local_time, owner))
        if rows:
            return Beat(skew_s=float(rows[0]["skew_s"]))
        row = self._rows(f"SELECT taken_by, {_NOW} - heartbeat_at AS silent FROM hosts WHERE owner = %s", (owner,))
        if not row:
            return Beat(lost="its row in the hosts table is gone")
        if row[0]["taken_by"]:
            return Beat(lost=f"its runs were taken over by {row[0]['taken_by']}")
        return Beat(lost=f"no heartbeat reached the database for {row[0]['silent']:.1f}s")

    def expired(self, owner: str) -> list[str]:
        return [str(row["owner"]) for row in self._rows(
            "SELECT owner FROM hosts WHERE kind = 'supervisor' AND taken_by IS NULL AND owner != %s"
            f" AND heartbeat_at < {_NOW} - lease_s"
            " ORDER BY heartbeat_at", (owner,))]

    def leave(self, owner: str) -> None:
        self._execute("DELETE FROM hosts WHERE owner = %s AND taken_by IS NULL", (owner,))

    def close(self) -> None:
        self.db.close()


class Leases:
    """The leases of one PostgreSQL store: `connect()` for the heartbeat thread, `take()` on the
    writer's connection."""

    def __init__(self, url: str, history: PostgresHistory) -> None:
        self._url = url
        self.history = history

    def connect(self) -> LeaseDb:
        from cronplus.store.postgres_conn import Database

        return LeaseDb(Database(self._url), host=self.history.host)

    def take(self, owner: str, *, taker: str) -> Taken | None:
        """Inside the caller's history.transaction(): see the module docstring."""
        rows = self.history._rows(  # the writer's connection: the caller's transaction
            "SELECT host FROM hosts WHERE owner = %s AND kind = 'supervisor' AND taken_by IS NULL"
            f" AND heartbeat_at < {_NOW} - lease_s"
            " FOR UPDATE SKIP LOCKED", (owner,))
        if not rows:
            return None  # renewed meanwhile, or another host is taking it right now
        self.history._rows(f"UPDATE hosts SET taken_by = %s, taken_at = {_NOW} WHERE owner = %s RETURNING owner",
                           (taker, owner))
        found = self.history._rows("SELECT run_id, status, final FROM runs WHERE owner = %s ORDER BY run_id FOR UPDATE",
                                   (owner,))
        running = [int(row["run_id"]) for row in found if row["status"] == "running"]
        retrying = [int(row["run_id"]) for row in found if row["status"] != "running" and not row["final"]]
        self.own(retrying, taker)
        return Taken(owner=owner, host=str(rows[0]["host"]), running=self.history.runs_by_id(running),
                     retrying=self.history.runs_by_id(retrying))

    def own(self, run_ids: list[int], owner: str) -> None:
        """Ended attempts whose retry `owner` now runs (a taker's; inside its transaction)."""
        if run_ids:
            self.history._rows("UPDATE runs SET owner = %s WHERE run_id = ANY(%s) RETURNING run_id", (owner, run_ids))


def leases_for(db: str | os.PathLike[str], history: object) -> Leases | None:
    """The leases of the supervisor's store (store/open.py's location and writer): None on SQLite
    (nothing more is imported then)."""
    from cronplus.store.open import POSTGRES_SCHEMES, scheme

    if scheme(db) not in POSTGRES_SCHEMES:
        return None
    from cronplus.store.postgres_history import PostgresHistory

    assert isinstance(history, PostgresHistory)
    return Leases(os.fspath(db), history)
