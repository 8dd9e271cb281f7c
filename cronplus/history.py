"""The run history: one SQLite file (WAL) in the state dir. Schema + ordered migrations keyed by
`PRAGMA user_version`; the supervisor is the only writer, CLI readers open it read-only.

A run's row is inserted (status `running`) before its process starts and completed after it ends,
so a crash never loses a run: on start the supervisor marks any `running` row it does not own as
`interrupted`. Times are stored as Unix seconds (REAL); the CLI renders them in local time.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

# Each entry moves the schema from version i to i+1. Never edit a released entry: append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        run_id       INTEGER PRIMARY KEY AUTOINCREMENT,
        job          TEXT    NOT NULL,
        attempt      INTEGER NOT NULL DEFAULT 1,
        status       TEXT    NOT NULL,
        trigger      TEXT    NOT NULL,
        scheduled_at REAL,             -- the logical tick (Unix s); NULL for none
        tz           TEXT,             -- zone of the schedule, to render scheduled_at as cron saw it
        started_at   REAL,
        ended_at     REAL,
        exit_code    INTEGER,
        log_path     TEXT,
        pid          INTEGER,
        reason       TEXT,             -- "exit 3", "timeout after 30s", "upstream train failed"
        final        INTEGER NOT NULL DEFAULT 0, -- 1 when no further attempt follows for this tick
        owner        TEXT              -- id of the supervisor process that runs it
    );
    CREATE INDEX runs_by_job ON runs (job, run_id);
    CREATE INDEX runs_by_status ON runs (status) WHERE status = 'running';
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE TABLE kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at      REAL    NOT NULL,
        kind            TEXT    NOT NULL,  -- 'alert' | 'ping'
        event           TEXT    NOT NULL,  -- AlertEvent value, or ping: 'start' | 'success' | 'fail'
        job             TEXT,
        run_id          INTEGER,
        target          TEXT    NOT NULL,  -- URL or 'env:VAR' as configured; resolved at send time
        format          TEXT    NOT NULL,  -- AlertFormat value ('json' for pings)
        secret_ref      TEXT,              -- 'env:VAR' for the HMAC key, NULL for the default
        payload         TEXT    NOT NULL,  -- JSON of the event data (format applied at send time)
        status          TEXT    NOT NULL DEFAULT 'pending',  -- DeliveryStatus
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        last_error      TEXT,              -- redacted: never a whole URL or token
        http_status     INTEGER,
        delivered_at    REAL
    );
    CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def connect(db_path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    """Open the history database. Writers create it (0600) and migrate it; readers never write.

    `isolation_level=None`: we issue BEGIN IMMEDIATE ourselves, so a transaction is exactly
    what the code says it is.
    """
    path = Path(db_path)
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA query_only = ON")
        conn.row_factory = sqlite3.Row
        return conn
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    old_umask = os.umask(0o077)
    try:
        conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        os.umask(old_umask)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        from cronplus.errors import CronplusError

        raise CronplusError(f"history database schema {version} is newer than this cronplus ({SCHEMA_VERSION})")
    for index in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[index]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {index + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    if current.strip():
        statements.append(current)
    return statements
