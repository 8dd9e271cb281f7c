"""The history store, through its public functions, on a real SQLite file in tmp_path."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cronplus.model import RunRecord
from cronplus.status import RunStatus, Trigger
from cronplus.store.history import History, NoHistoryError, open_readonly, run_json

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z


@pytest.fixture
def history(tmp_path: Path) -> History:
    h = History(tmp_path / "state" / "history.db")
    yield h
    h.close()


def start(h: History, job: str = "backup", *, at: float = T0, attempt: int = 1, log_path: str | None = None,
          owner: str = "sup-1", scheduled_at: float | None = None) -> int:
    return h.start_run(job=job, attempt=attempt, trigger=Trigger.SCHEDULE,
                       scheduled_at=at if scheduled_at is None else scheduled_at, tz=None,
                       started_at=at, log_path=log_path, owner=owner)


def test_a_run_row_exists_as_running_before_it_finishes(history: History) -> None:
    run_id = start(history)
    record = history.get_run(run_id)
    assert record is not None
    assert record.status is RunStatus.RUNNING
    assert record.ended_at is None
    assert [r.run_id for r in history.running()] == [run_id]


def test_finish_run_completes_the_row_and_returns_it(history: History) -> None:
    run_id = start(history)
    history.set_pid(run_id, 4242)
    record = history.finish_run(run_id, status=RunStatus.FAILED, ended_at=T0 + 2.5, exit_code=3,
                                reason="exit 3", final=True)
    assert record.status is RunStatus.FAILED
    assert record.exit_code == 3
    assert record.reason == "exit 3"
    assert record.pid == 4242
    assert record.duration_s == pytest.approx(2.5)
    assert history.running() == []


def test_the_database_and_its_directory_are_private(tmp_path: Path) -> None:
    h = History(tmp_path / "st" / "history.db")
    start(h)
    h.close()
    assert stat.S_IMODE(os.stat(tmp_path / "st").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "st" / "history.db").st_mode) == 0o600


def test_attempts_are_rows_of_their_own_and_only_the_last_is_final(history: History) -> None:
    first = start(history, attempt=1)
    history.finish_run(first, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason="exit 1", final=False)
    second = start(history, at=T0 + 10, attempt=2, scheduled_at=T0)
    history.finish_run(second, status=RunStatus.SUCCESS, ended_at=T0 + 11, exit_code=0, reason=None, final=True)
    rows = history.latest_runs("backup")
    assert [(r.attempt, r.status) for r in rows] == [(1, RunStatus.FAILED), (2, RunStatus.SUCCESS)]
    assert rows[0].scheduled_at == rows[1].scheduled_at
    last = history.last_final_run("backup")
    assert last is not None and last.run_id == second


def test_last_final_run_ignores_ticks_after_the_given_one_and_non_final_rows(history: History) -> None:
    early = start(history, at=T0)
    history.finish_run(early, status=RunStatus.SUCCESS, ended_at=T0 + 1, exit_code=0, reason=None, final=True)
    late = start(history, at=T0 + 600)
    history.finish_run(late, status=RunStatus.FAILED, ended_at=T0 + 601, exit_code=1, reason=None, final=False)
    assert history.last_final_run("backup", at_or_before=T0 + 600).run_id == early
    assert history.last_final_run("backup", at_or_before=T0 - 1) is None
    assert history.last_final_run("other") is None


def test_latest_runs_returns_the_newest_n_with_the_newest_last(history: History) -> None:
    ids = [start(history, at=T0 + i) for i in range(30)]
    start(history, "other")
    rows = history.latest_runs("backup", 5)
    assert [r.run_id for r in rows] == ids[-5:]


def test_record_not_run_writes_a_final_row_without_process_or_log(history: History) -> None:
    record = history.record_not_run(job="predict", status=RunStatus.UPSTREAM_FAILED, trigger=Trigger.SCHEDULE,
                                    scheduled_at=T0, tz="Europe/Berlin", at=T0 + 1, reason="upstream train failed")
    assert record.status is RunStatus.UPSTREAM_FAILED
    assert record.started_at is None and record.log_path is None and record.duration_s is None
    assert record.ended_at is not None
    assert record.scheduled_at.utcoffset().total_seconds() == 7200  # rendered in the schedule's zone
    assert history.last_final_run("predict").run_id == record.run_id


def test_mark_interrupted_ends_rows_of_dead_supervisors_and_keeps_their_output(history: History, tmp_path: Path) -> None:
    log = tmp_path / "backup.log"
    log.write_bytes(b"half done\n")
    dead = start(history, log_path=str(log), owner="old-supervisor")
    live = start(history, "other", owner="new-supervisor")
    marked = history.mark_interrupted(live_owner="new-supervisor", now=T0 + 50)
    assert [r.run_id for r in marked] == [dead]
    record = history.get_run(dead)
    assert record.status is RunStatus.INTERRUPTED
    assert record.ended_at == datetime.fromtimestamp(T0 + 50, UTC)
    assert "stopped while it ran" in record.reason
    assert record.log_path == str(log) and log.read_bytes() == b"half done\n"
    assert history.last_final_run("backup").run_id == dead
    assert [r.run_id for r in history.running()] == [live]
    assert history.mark_interrupted(live_owner="new-supervisor", now=T0 + 60) == []


def test_kv_values_are_set_replaced_and_read(history: History) -> None:
    assert history.kv_get("reboot:boot_id") is None
    history.kv_set("reboot:boot_id", "abc")
    history.kv_set("reboot:boot_id", "def")
    assert history.kv_get("reboot:boot_id") == "def"


def test_run_json_has_the_spec_fields_plus_signal_reason_and_host_with_offsets(history: History) -> None:
    run_id = start(history, log_path="/x/1.log")
    record = history.finish_run(run_id, status=RunStatus.SUCCESS, ended_at=T0 + 0.85, exit_code=0, reason=None, final=True)
    obj = json.loads(json.dumps(run_json(record)))
    assert list(obj) == ["run_id", "job", "attempt", "status", "exit_code", "signal", "reason", "trigger", "host",
                         "scheduled_at", "started_at", "ended_at", "duration_s", "log_path",
        "params", "outputs", "queued_s", "sensor_s", "peak_memory_bytes", "cpu_s", "slow_at", "queue"]
    assert obj["status"] == "success" and obj["trigger"] == "schedule" and obj["duration_s"] == 0.85
    assert obj["params"] == {} and obj["outputs"] == {} and obj["queued_s"] is None and obj["slow_at"] is None
    assert datetime.fromisoformat(obj["started_at"]).timestamp() == T0
    assert datetime.fromisoformat(obj["started_at"]).tzinfo is not None


def test_open_readonly_on_a_missing_database_says_there_is_no_history(tmp_path: Path) -> None:
    with pytest.raises(NoHistoryError, match="no history yet"):
        open_readonly(tmp_path / "history.db")
    assert not (tmp_path / "history.db").exists()


def test_a_reader_sees_committed_runs_while_the_writer_holds_a_transaction(history: History) -> None:
    committed = start(history)
    reader = open_readonly(history.db_path)
    history.conn.execute("BEGIN IMMEDIATE")
    history.conn.execute("INSERT INTO kv (key, value) VALUES ('x', 'uncommitted')")
    try:
        assert [r.run_id for r in reader.query()] == [committed]
        assert reader.kv_get("x") is None
    finally:
        history.conn.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.conn.execute("INSERT INTO kv (key, value) VALUES ('y', 'z')")
    reader.close()


def test_query_filters_by_glob_status_and_time_newest_last(history: History) -> None:
    a = start(history, "db-backup", at=T0)
    history.finish_run(a, status=RunStatus.FAILED, ended_at=T0 + 1, exit_code=1, reason=None, final=True)
    b = start(history, "web-backup", at=T0 + 100)
    history.finish_run(b, status=RunStatus.SUCCESS, ended_at=T0 + 101, exit_code=0, reason=None, final=True)
    c = history.record_not_run(job="report", status=RunStatus.MISSED, trigger=Trigger.SCHEDULE,
                               scheduled_at=T0 + 200, tz=None, at=T0 + 200, reason="supervisor down").run_id
    def ids(rows: list[RunRecord]) -> list[int]:
        return [r.run_id for r in rows]

    assert ids(history.query()) == [a, b, c]
    assert ids(history.query(jobs=["*-backup"])) == [a, b]
    assert ids(history.query(jobs=["db-backup", "rep*"])) == [a, c]
    assert ids(history.query(jobs=["nothing*"])) == []
    assert ids(history.query(statuses=["failed", "missed"])) == [a, c]
    assert ids(history.query(since=T0 + 50)) == [b, c]
    assert ids(history.query(until=T0 + 100)) == [a, b]
    assert ids(history.query(limit=2)) == [b, c]
    assert history.job_names() == ["db-backup", "report", "web-backup"]


def test_start_run_names_the_log_after_the_new_run_id_in_the_same_insert(tmp_path: Path) -> None:
    h = History(tmp_path / "history.db")
    try:
        run_id = h.start_run(job="etl", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=1.0, tz=None,
                             started_at=1.0, owner="sup", log_path=lambda rid: f"/logs/etl/{rid}.log")
        record = h.get_run(run_id)
        assert record is not None
        assert record.log_path == f"/logs/etl/{run_id}.log"
    finally:
        h.close()


def test_start_runs_inserts_a_ticks_runs_in_one_transaction_in_order(tmp_path: Path) -> None:
    from cronplus.store.history import RunStart

    h = History(tmp_path / "history.db")
    try:
        starts = [RunStart(job=f"job{i}", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=60.0, tz=None,
                           started_at=60.5, owner="sup", log_path=lambda rid, i=i: f"/logs/job{i}/{rid}.log")
                  for i in range(3)]
        run_ids = h.start_runs(starts)
        assert run_ids == sorted(run_ids) and len(set(run_ids)) == 3
        records = [h.get_run(run_id) for run_id in run_ids]
        assert [(r.job, r.status, r.log_path) for r in records if r] == [
            (f"job{i}", RunStatus.RUNNING, f"/logs/job{i}/{run_id}.log") for i, run_id in enumerate(run_ids)
        ]
        assert h.start_runs([]) == []
    finally:
        h.close()


def test_a_process_killed_inside_a_transaction_leaves_none_of_its_writes(tmp_path: Path) -> None:
    """A run's end and its alert row are written in one transaction: a supervisor killed between
    them leaves the run `running` (the next start marks it interrupted) and no orphan alert."""
    import subprocess
    import sys
    import textwrap

    db = tmp_path / "history.db"
    script = textwrap.dedent(f"""
        import os
        from cronplus.store import outbox
        from cronplus.store.history import History
        from cronplus.status import RunStatus, Trigger
        h = History({str(db)!r})
        rid = h.start_run(job="j", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=1.0, tz=None, started_at=1.0,
                          log_path=None, owner="child")
        with h.transaction():
            h.finish_run(rid, status=RunStatus.FAILED, ended_at=2.0, exit_code=1, reason="exit 1", final=True)
            with h.transaction():
                outbox.enqueue(h.conn, kind="alert", event="failure", job="j", run_id=rid, target="http://x",
                               format="json", secret_ref=None, payload={{}}, now=2.0)
            os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert proc.returncode == -9, proc.stderr
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("running",)]
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    finally:
        conn.close()
