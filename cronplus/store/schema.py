"""The history database's schema: ordered migrations keyed by `PRAGMA user_version`, and
`connect`, which every module opening the database uses (WAL, busy timeout, explicit
transactions; writers create the file 0600 and migrate it, readers open it read-only).
A file that is not an SQLite database, or a damaged one, raises `CorruptHistory` naming the
path and how to start afresh; `db_problem(path, exc)` is the one line for any other SQLite
error. Re-exported by cronplus.store.history, the shared API."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from cronplus.errors import CronplusError, escape

# The database's connection and error types under the store's own names: code outside store/
# (alerts, service, cli) names these and never imports sqlite3 itself.
Connection = sqlite3.Connection
StoreError = sqlite3.Error

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
        owner        TEXT,             -- id of the supervisor running it; cleared when the run ends
        log_bytes    INTEGER           -- size of the log file at the end; NULL: none, or evicted
    );
    CREATE INDEX runs_by_job ON runs (job, run_id);
    CREATE INDEX runs_by_status ON runs (status) WHERE status = 'running';
    -- last_final_run(job, at_or_before=tick): the dependency check the scheduler makes per tick.
    CREATE INDEX runs_by_tick ON runs (job, scheduled_at) WHERE final = 1;
    -- "When" a run happened: its start, or for runs that never started (skipped, missed,
    -- upstream_failed) the moment that was decided. --since/--until and age retention use it.
    CREATE INDEX runs_by_time ON runs (coalesce(started_at, ended_at));
    -- Per-job row count and finished-log bytes, kept by triggers, so that retention can check
    -- its limits in O(jobs) instead of scanning a million rows every few minutes.
    CREATE TABLE run_stats (
        job       TEXT PRIMARY KEY,
        runs      INTEGER NOT NULL,
        log_bytes INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TRIGGER run_stats_insert AFTER INSERT ON runs BEGIN
        INSERT INTO run_stats (job, runs, log_bytes) VALUES (NEW.job, 1, coalesce(NEW.log_bytes, 0))
        ON CONFLICT (job) DO UPDATE SET runs = runs + 1, log_bytes = log_bytes + excluded.log_bytes;
    END;
    CREATE TRIGGER run_stats_delete AFTER DELETE ON runs BEGIN
        UPDATE run_stats SET runs = runs - 1, log_bytes = log_bytes - coalesce(OLD.log_bytes, 0)
        WHERE job = OLD.job;
        DELETE FROM run_stats WHERE job = OLD.job AND runs <= 0;
    END;
    CREATE TRIGGER run_stats_log_bytes AFTER UPDATE OF log_bytes ON runs BEGIN
        UPDATE run_stats SET log_bytes = log_bytes - coalesce(OLD.log_bytes, 0) + coalesce(NEW.log_bytes, 0)
        WHERE job = NEW.job;
    END;
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
    # 2: which host ran a run (SPEC §9: runs carry `host`; NULL for rows written before), and the
    # signal that killed its shell (exit_code alone cannot tell `kill -9` from `exit 137`).
    """
    ALTER TABLE runs ADD COLUMN host TEXT;
    ALTER TABLE runs ADD COLUMN signal INTEGER;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


class CorruptHistory(CronplusError):
    """history.db is not a database, or a damaged one: one line naming it and the way out."""

    def __init__(self, path: str | os.PathLike[str], exc: BaseException) -> None:
        p = escape(os.fspath(path))
        super().__init__(f"history database {p} is corrupt ({exc}): move it aside (mv {p} {p}.bad) "
                         "and cronplus starts a new one")


def is_corrupt(exc: BaseException) -> bool:
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    return isinstance(exc, sqlite3.DatabaseError) and code in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def db_problem(path: str | os.PathLike[str], exc: BaseException) -> str:
    """One line for an SQLite error on the database at `path`."""
    if is_corrupt(exc):
        return str(CorruptHistory(path, exc))
    from cronplus.store.faults import storage_problem

    problem = storage_problem(exc, Path(path))  # full, read-only, I/O error
    if problem is not None:
        return problem
    p = escape(os.fspath(path))
    text = str(exc)
    if "unable to open" in text:
        return f"history database {p}: cannot open it (check that its directory exists and is yours)"
    if "locked" in text or "busy" in text:
        return f"history database {p}: {text} (another process holds it; run it again)"
    return f"history database {p}: {text}"


def connect(db_path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    """Open the history database. Writers create it (0600) and migrate it; readers never write.

    `isolation_level=None`: we issue BEGIN IMMEDIATE ourselves, so a transaction is exactly
    what the code says it is.
    """
    path = Path(db_path)
    try:
        return _connect(path, readonly=readonly)
    except sqlite3.DatabaseError as exc:
        if is_corrupt(exc):
            raise CorruptHistory(path, exc) from exc
        raise


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
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
