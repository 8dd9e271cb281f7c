"""The SQLite schema rendered from the one description (store/schema.py VERSIONS) is the one the
released migrations made, so an existing history.db migrates unchanged: RELEASED below is the
text of the migrations as shipped before the description existed (never edit it), and each test
compares or opens a database it made."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from cronplus.status import RunStatus, Trigger
from cronplus.store import schema
from cronplus.store.history import History

RELEASED: tuple[str, ...] = (
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
    """
    ALTER TABLE runs ADD COLUMN params TEXT;
    ALTER TABLE runs ADD COLUMN outputs TEXT;
    ALTER TABLE runs ADD COLUMN queued_s REAL;
    ALTER TABLE runs ADD COLUMN sensor_s REAL;
    ALTER TABLE runs ADD COLUMN peak_memory_bytes INTEGER;
    ALTER TABLE runs ADD COLUMN cpu_s REAL;
    ALTER TABLE runs ADD COLUMN slow_at REAL;
    """,
    """
    ALTER TABLE runs ADD COLUMN claim TEXT;
    -- a tick's attempt is claimed once, cluster-wide
    CREATE UNIQUE INDEX runs_claim ON runs (job, scheduled_at, attempt, claim) WHERE claim IS NOT NULL;
    ALTER TABLE runs ADD COLUMN queue TEXT;
    ALTER TABLE runs ADD COLUMN output_head TEXT;
    ALTER TABLE runs ADD COLUMN output_tail TEXT;
    ALTER TABLE runs ADD COLUMN attempt_result TEXT;
    CREATE TABLE hosts (
        owner        TEXT PRIMARY KEY,
        host         TEXT NOT NULL,
        kind         TEXT NOT NULL DEFAULT 'supervisor',
        pid          INTEGER,
        started_at   REAL NOT NULL,
        heartbeat_at REAL NOT NULL,
        lease_s      REAL NOT NULL,
        skew_s       REAL,
        taken_by     TEXT,
        taken_at     REAL
    ) WITHOUT ROWID;
    """,
)


def _made_by(tmp_path: Path, name: str, scripts: tuple[str, ...]) -> Path:
    db = tmp_path / name
    conn = sqlite3.connect(db)
    for version, script in enumerate(scripts, start=1):
        conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    return db


def _shape(db: Path) -> dict[str, object]:
    """Everything SQLite knows of the schema: each object's SQL (comments and spacing aside),
    each table's columns and each index's columns."""
    conn = sqlite3.connect(db)
    try:
        objects = {}
        for kind, name, table, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"):
            text = re.sub(r"--[^\n]*", "", sql or "")
            text = re.sub(r"\s+", " ", text)
            objects[name] = (kind, table, re.sub(r"\s*([(),;])\s*", r"\1", text).strip())
        tables = {name for name, (kind, _, _) in objects.items() if kind == "table"}
        columns = {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}
        indexes = {n: conn.execute(f"PRAGMA index_xinfo({n})").fetchall()
                   for n, (kind, _, _) in objects.items() if kind == "index"}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()
    return {"objects": objects, "columns": columns, "indexes": indexes, "version": version}


def test_the_description_renders_the_released_sqlite_schema(tmp_path: Path) -> None:
    assert len(schema.MIGRATIONS) == len(RELEASED) == schema.SCHEMA_VERSION
    released = _shape(_made_by(tmp_path, "released.db", RELEASED))
    rendered = _shape(_made_by(tmp_path, "rendered.db", schema.MIGRATIONS))
    assert rendered == released
    History(tmp_path / "new" / "history.db").close()  # what `cronplus run` creates today
    assert _shape(tmp_path / "new" / "history.db") == released


def test_a_database_made_by_the_first_released_schema_migrates_and_keeps_its_rows(tmp_path: Path) -> None:
    db = _made_by(tmp_path, "history.db", RELEASED[:1])
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO runs (job, status, trigger, started_at, ended_at, exit_code, final, log_bytes)"
                 " VALUES ('old', 'success', 'schedule', 1.0, 2.0, 0, 1, 10)")
    conn.execute("INSERT INTO kv (key, value) VALUES ('scheduler.tick.old', '1.0')")
    conn.execute("INSERT INTO outbox (created_at, kind, event, target, format, payload, next_attempt_at)"
                 " VALUES (2.0, 'alert', 'failure', 'env:HOOK', 'json', '{}', 2.0)")
    conn.commit()
    conn.close()
    with History(db, host="box-a") as history:
        old = history.get_run(1)
        assert old is not None and (old.job, old.status, old.host, old.signal) == ("old", RunStatus.SUCCESS, None, None)
        assert history.kv_get("scheduler.tick.old") == "1.0"
        run_id = history.start_run(job="old", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=3.0, tz=None,
                                   started_at=3.0, log_path=None, owner="sup")
        assert run_id == 2 and history.get_run(run_id).host == "box-a"  # type: ignore[union-attr]
        stats = history.conn.execute("SELECT runs, log_bytes FROM run_stats WHERE job = 'old'").fetchone()
        assert tuple(stats) == (2, 10)  # the released triggers still count
    assert _shape(db) == _shape(_made_by(tmp_path, "released.db", RELEASED))


def test_a_database_at_the_released_version_is_opened_as_it_is(tmp_path: Path) -> None:
    db = _made_by(tmp_path, "history.db", RELEASED)
    before = _shape(db)
    with History(db) as history:
        assert history.last_run_id() == 0
    assert _shape(db) == before
