"""The history database's schema, described once (VERSIONS: tables, columns, kinds, indexes,
triggers, per version, in ddl.py's words) and rendered for SQLite (MIGRATIONS, keyed by
`PRAGMA user_version`) and PostgreSQL (PG_MIGRATIONS, applied by postgres.py); and SQLite's
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
from cronplus.store.ddl import (
    AddColumn,
    Column,
    Index,
    Native,
    Step,
    Table,
    postgres_script,
    sqlite_script,
)

# The database's connection and error types under the store's own names: code outside store/
# (alerts, service, cli) names these and never imports sqlite3 itself.
Connection = sqlite3.Connection
StoreError = sqlite3.Error

# ---- The one description ---------------------------------------------------------------------
# Each entry of VERSIONS moves the schema from version i to i+1, on both backends (SQLite's
# `PRAGMA user_version`, PostgreSQL's cronplus_schema table). Never edit a released entry: append.
# Its SQLite rendering must stay what the released migrations said (tests/test_schema_versions.py
# compares them with a database made by the old text), so existing files migrate unchanged.

_RUNS = Table("runs", (
    Column("run_id", "id"),
    Column("job", "text", null=False),
    Column("attempt", "int", null=False, default="1"),
    Column("status", "text", null=False),
    Column("trigger", "text", null=False),
    Column("scheduled_at", "real", note="the logical tick (Unix s); NULL for none"),
    Column("tz", "text", note="zone of the schedule, to render scheduled_at as cron saw it"),
    Column("started_at", "real"),
    Column("ended_at", "real"),
    Column("exit_code", "int"),
    Column("log_path", "text"),
    Column("pid", "int"),
    Column("reason", "text", note='"exit 3", "timeout after 30s", "upstream train failed"'),
    Column("final", "int", null=False, default="0", note="1 when no further attempt follows for this tick"),
    Column("owner", "text", note="id of the supervisor running it; cleared when the run ends"),
    Column("log_bytes", "int", note="size of the log file at the end; NULL: none, or evicted"),
))

# Per-job row count and finished-log bytes, kept by triggers, so that retention can check its
# limits in O(jobs) instead of scanning a million rows every few minutes.
_RUN_STATS_TRIGGERS = Native(
    sqlite="""
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
    """,
    postgresql="""
    CREATE FUNCTION run_stats_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        INSERT INTO run_stats (job, runs, log_bytes) VALUES (NEW.job, 1, coalesce(NEW.log_bytes, 0))
        ON CONFLICT (job) DO UPDATE SET runs = run_stats.runs + 1,
                                        log_bytes = run_stats.log_bytes + excluded.log_bytes;
        RETURN NULL;
    END $$;
    CREATE TRIGGER run_stats_insert AFTER INSERT ON runs FOR EACH ROW EXECUTE FUNCTION run_stats_insert();
    CREATE FUNCTION run_stats_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        UPDATE run_stats SET runs = runs - 1, log_bytes = log_bytes - coalesce(OLD.log_bytes, 0)
        WHERE job = OLD.job;
        DELETE FROM run_stats WHERE job = OLD.job AND runs <= 0;
        RETURN NULL;
    END $$;
    CREATE TRIGGER run_stats_delete AFTER DELETE ON runs FOR EACH ROW EXECUTE FUNCTION run_stats_delete();
    CREATE FUNCTION run_stats_log_bytes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        UPDATE run_stats SET log_bytes = log_bytes - coalesce(OLD.log_bytes, 0) + coalesce(NEW.log_bytes, 0)
        WHERE job = NEW.job;
        RETURN NULL;
    END $$;
    CREATE TRIGGER run_stats_log_bytes AFTER UPDATE OF log_bytes ON runs
        FOR EACH ROW EXECUTE FUNCTION run_stats_log_bytes();
    """,
)

_OUTBOX = Table("outbox", (
    Column("id", "id"),
    Column("created_at", "real", null=False),
    Column("kind", "text", null=False, note="'alert' | 'ping'"),
    Column("event", "text", null=False, note="AlertEvent value, or ping: 'start' | 'success' | 'fail'"),
    Column("job", "text"),
    Column("run_id", "int"),
    Column("target", "text", null=False, note="URL or 'env:VAR' as configured; resolved at send time"),
    Column("format", "text", null=False, note="AlertFormat value ('json' for pings)"),
    Column("secret_ref", "text", note="'env:VAR' for the HMAC key, NULL for the default"),
    Column("payload", "text", null=False, note="JSON of the event data (format applied at send time)"),
    Column("status", "text", null=False, default="'pending'", note="DeliveryStatus"),
    Column("attempts", "int", null=False, default="0"),
    Column("next_attempt_at", "real", null=False),
    Column("last_error", "text", note="redacted: never a whole URL or token"),
    Column("http_status", "int"),
    Column("delivered_at", "real"),
))

VERSIONS: tuple[tuple[Step, ...], ...] = (
    (
        _RUNS,
        Index("runs_by_job", "runs", ("job", "run_id")),
        Index("runs_by_status", "runs", ("status",), where="status = 'running'"),
        Index("runs_by_tick", "runs", ("job", "scheduled_at"), where="final = 1",
              note="last_final_run(job, at_or_before=tick): the dependency check the scheduler makes per tick."),
        Index("runs_by_time", "runs", ("coalesce(started_at, ended_at)",),
              note='"When" a run happened: its start, or for runs that never started (skipped, missed,'
                   " upstream_failed) the moment that was decided. --since/--until and age retention use it."),
        Table("run_stats", (Column("job", "text"), Column("runs", "int", null=False),
                            Column("log_bytes", "int", null=False)), key="job"),
        _RUN_STATS_TRIGGERS,
        Table("kv", (Column("key", "text"), Column("value", "text", null=False)), key="key"),
        _OUTBOX,
        Index("outbox_due", "outbox", ("status", "next_attempt_at")),
    ),
    # 2: which host ran a run (runs carry `host` for a cluster; NULL for rows written before), and the
    # signal that killed its shell (exit_code alone cannot tell `kill -9` from `exit 137`).
    (
        AddColumn("runs", Column("host", "text")),
        AddColumn("runs", Column("signal", "int")),
    ),
    # 3: what the pipeline features (README "Pipeline features") record with a run: a manual
    # run's parameters and the outputs a run wrote to $CRONPLUS_OUTPUT (JSON objects of strings),
    # the seconds it waited queued for a pool slot and on its sensor (wait-for=) before its
    # command started, the peak memory and CPU time its processes used (cgroup v2 where the
    # supervisor has one), and when it was flagged slow (alert-on=slow); NULL when none applies.
    (
        AddColumn("runs", Column("params", "text")),
        AddColumn("runs", Column("outputs", "text")),
        AddColumn("runs", Column("queued_s", "real")),
        AddColumn("runs", Column("sensor_s", "real")),
        AddColumn("runs", Column("peak_memory_bytes", "int")),
        AddColumn("runs", Column("cpu_s", "real")),
        AddColumn("runs", Column("slow_at", "real")),
    ),
    # 4: beyond one host. `claim` makes a row the one claim of its (job, scheduled_at, attempt):
    # NULL for rows that claim nothing (manual runs, backfill), '' for a tick the cluster runs
    # once, a host name where each host runs its own (@reboot, run-on=all); the unique index is
    # the arbiter when several supervisors share the database (INSERT ... ON CONFLICT DO NOTHING).
    # `queue`: the worker queue an attempt was sent to (queue=; NULL: run by the supervisor).
    # `output_head` / `output_tail`: the capped start and end of a run's output, so `cronplus
    # output` works from a host other than the one holding the log file. `attempt_result`: what a
    # remote executor reports of an attempt (JSON) before the supervisor records its end.
    # `hosts`: one row per supervisor (and worker) sharing the database: its lease, renewed by a
    # heartbeat; a row past its lease is taken over (its running runs recorded interrupted).
    (
        AddColumn("runs", Column("claim", "text")),
        Index("runs_claim", "runs", ("job", "scheduled_at", "attempt", "claim"), where="claim IS NOT NULL",
              unique=True, note="a tick's attempt is claimed once, cluster-wide"),
        AddColumn("runs", Column("queue", "text")),
        AddColumn("runs", Column("output_head", "text")),
        AddColumn("runs", Column("output_tail", "text")),
        AddColumn("runs", Column("attempt_result", "text")),
        Table("hosts", (
            Column("owner", "text", note="the supervisor's (or worker's) id, as runs.owner names it"),
            Column("host", "text", null=False),
            Column("kind", "text", null=False, default="'supervisor'", note="'supervisor' | 'worker'"),
            Column("pid", "int"),
            Column("started_at", "real", null=False),
            Column("heartbeat_at", "real", null=False, note="the database's clock at the last heartbeat"),
            Column("lease_s", "real", null=False, note="silent longer than this: taken over"),
            Column("skew_s", "real", note="its clock minus the database's at the last heartbeat"),
            Column("taken_by", "text", note="the owner that took its runs over; NULL while alive"),
            Column("taken_at", "real"),
        ), key="owner"),
    ),
)

# The renderings: SQLite's (applied by `migrate` below) and PostgreSQL's (postgres.py).
MIGRATIONS: tuple[str, ...] = tuple(sqlite_script(steps) for steps in VERSIONS)
PG_MIGRATIONS: tuple[str, ...] = tuple(postgres_script(steps) for steps in VERSIONS)

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
    # The file is made 0600 here, not under os.umask (the process's, so a thread creating a file
    # meanwhile would get ours); SQLite gives its -wal and -shm files the database file's mode.
    # O_EXCL: only a file nobody has open yet is opened (and closed) here. Closing a descriptor
    # of a database this process already has open would drop the POSIX locks its connections
    # hold on it (fcntl(2)), and with them SQLite's view of who reads the log.
    if str(path) != ":memory:":  # SQLite's in-memory database: no file
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        except FileExistsError:
            pass
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
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
