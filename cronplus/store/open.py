"""One way to open a store: the supervisor and every command open history, its readers and the
alert outbox here, from a location; no module outside store/ builds an SQLite store or holds a
connection.

A location (`paths.Paths.db`: `--db URL|PATH`, else $CRONPLUS_DB, else the state dir's
history.db) is
- a path, or `sqlite:///ABSOLUTE/PATH`: SQLite (history.History, readhistory.ReadHistory,
  outbox.Outbox);
- `postgresql://...` (or `postgres://...`): PostgreSQL, from `cronplus.store.postgres`, imported
  only then (its driver is the `cluster` extra). That module provides, with the same Protocols
  (store/api.py) and passing tests/store_contract.py:

      open_postgres(url: str, *, host: str | None, readonly: bool) -> HistoryStore
      open_postgres_outbox(url: str, *, readonly: bool) -> OutboxQueue

  (`host`: stamped on the rows a writer inserts, default the host name; `readonly`: a reader
  for one thread, whose writes fail.) Missing module or driver: one line, POSTGRES_MISSING.
- anything else with a scheme: UsageError naming the two that are.

Openers:
- `open_writer(db, *, host=None) -> HistoryStore`: the supervisor's store (one writer, one
  thread; the scheduler fronts it with storeguard.Store). Creates and migrates. Its commits
  never wait on the disk: SQLite's checkpoints run on a thread of their own (checkpoint.py).
- `open_reader(db) -> RunReader`: read-only, one per thread (log, output, jobs, the web page);
  never blocks the writer. NoHistoryError when there is no history yet; `empty_reader()` is
  one with no runs, for a command that then answers from nothing (`why`).
- `open_outbox(db, *, readonly=False) -> OutboxQueue`: the delivery side on its own
  connection (alerts/delivery.py's worker thread, `cronplus alerts`).
- `shown(db)`: the location for a message or a log line: a URL's user, password, path and
  query never appear (redact.redact_url).
- `sqlite_path(db)`: the SQLite file of a location, None for another backend (for db_problem).

May import: foundation, store.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cronplus.errors import CronplusError, UsageError

if TYPE_CHECKING:
    from cronplus.store.api import HistoryStore, OutboxQueue, RunReader

Db = str | os.PathLike[str]

POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_MISSING = "PostgreSQL needs cronplus[cluster]: pip install 'cronplus[cluster]'"
_POSTGRES_MODULE = "cronplus.store.postgres"
_DRIVERS = ("psycopg", "psycopg_pool", "psycopg2")  # an ImportError naming one: the extra is missing


def scheme(db: Db) -> str | None:
    """The URL scheme of a location, lower case; None for a plain path."""
    text = os.fspath(db)
    head, sep, _ = text.partition("://")
    if not sep or not head or not all(c.isalnum() or c in "+.-" for c in head):
        return None
    return head.lower()


def sqlite_path(db: Db) -> Path | None:
    """The SQLite file a location names; None when it is another backend's URL."""
    kind = scheme(db)
    if kind is None:
        return Path(os.fspath(db))
    if kind == "sqlite":
        rest = os.fspath(db)[len("sqlite://"):]
        if not rest.startswith("/") or len(rest) < 2:
            raise UsageError(f"--db {shown(db)}: an SQLite URL names an absolute file: sqlite:///PATH")
        return Path(rest)
    if kind in POSTGRES_SCHEMES:
        return None
    raise UsageError(f"--db {shown(db)}: unknown kind of database '{kind}' "
                     "(a path, sqlite:///PATH or postgresql://...)")


def shown(db: Db) -> str:
    """The location as it may be printed: a path as it is, a URL as scheme://host[:port]/…"""
    from cronplus.errors import escape
    from cronplus.redact import redact_url

    text = os.fspath(db)
    if scheme(text) in (None, "sqlite"):
        return escape(text)
    cut = redact_url(text)
    if cut == "<redacted>" and scheme(text) in ("postgresql", "postgres"):
        # a libpq URL naming no host (a service file's, the local socket's): its place, no secret
        from cronplus.redact import redact_db_url

        return redact_db_url(text)
    return cut


def open_writer(db: Db, *, host: str | None = None) -> HistoryStore:
    path = sqlite_path(db)
    if path is None:
        with _needs_cluster():
            store: HistoryStore = _postgres().open_postgres(os.fspath(db), host=host, readonly=False)
        return store
    from cronplus.store.history import History

    return History(path, host=host, checkpoint_thread=True)  # the loop's commits never wait on the disk


def open_reader(db: Db) -> RunReader:
    path = sqlite_path(db)
    if path is None:
        with _needs_cluster():
            reader: RunReader = _postgres().open_postgres(os.fspath(db), host=None, readonly=True)
        return reader
    from cronplus.store.readhistory import open_readonly

    return open_readonly(path)


def empty_reader() -> RunReader:
    """A history with no runs (the schema, in memory): what a command reads where no supervisor
    ever wrote one."""
    from cronplus.store.readhistory import ReadHistory
    from cronplus.store.schema import connect

    return ReadHistory(connect(":memory:"))


def open_outbox(db: Db, *, readonly: bool = False) -> OutboxQueue:
    path = sqlite_path(db)
    if path is None:
        with _needs_cluster():
            queue: OutboxQueue = _postgres().open_postgres_outbox(os.fspath(db), readonly=readonly)
        return queue
    from cronplus.store import outbox

    return outbox.open_outbox(path, readonly=readonly)


def exists(db: Db) -> bool:
    """Whether there can be history there yet (an SQLite file that is not there has none)."""
    path = sqlite_path(db)
    return path is None or path.exists()


def _postgres() -> _PostgresModule:
    return importlib.import_module(_POSTGRES_MODULE)  # a ModuleType; its entry points: the module docstring


@contextmanager
def _needs_cluster() -> Iterator[None]:
    """The module, or its driver (imported at its top or inside an entry point), not installed:
    the one line that says how to get them."""
    try:
        yield
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if name == _POSTGRES_MODULE or name.split(".")[0] in _DRIVERS:
            raise CronplusError(POSTGRES_MISSING) from None
        raise


if TYPE_CHECKING:
    from typing import Protocol

    class _PostgresModule(Protocol):
        def open_postgres(self, url: str, *, host: str | None, readonly: bool) -> HistoryStore: ...
        def open_postgres_outbox(self, url: str, *, readonly: bool) -> OutboxQueue: ...
else:
    _PostgresModule = object
