"""`cronplus log` reading a database that the tests fill through History (the supervisor's
writer): in-process (tests/incli.py) for output and exit status, the real command in a
subprocess for what needs one (a local zone, a terminal, following, signals, a closed pipe).
Times are relative to the moment the test runs (`now`), never to when it was collected."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cronplus.status import RunStatus, Trigger
from cronplus.store.history import RUN_JSON_KEYS, History
from tests import incli


@pytest.fixture
def now() -> float:
    return time.time()


def cronplus(state: Path, *args: str, tz: str | None = None) -> incli.Completed[str] | subprocess.CompletedProcess[str]:
    """`cronplus log --state-dir STATE ARGS`; in-process unless a local zone `tz` is asked for,
    which only a new process can have (libc reads $TZ at start)."""
    argv = ["log", "--state-dir", str(state), *args]
    if tz is None:
        return incli.run(argv, env=incli.base_env())
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env["TZ"] = tz
    return subprocess.run([sys.executable, "-m", "cronplus", *argv],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def runs_json(state: Path, *args: str, tz: str | None = None) -> list[dict]:
    proc = cronplus(state, "--json", *args, tz=tz)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def add(h: History, job: str, at: float, status: RunStatus = RunStatus.SUCCESS, took: float = 1.0,
        exit_code: int | None = 0, reason: str | None = None) -> int:
    run_id = h.start_run(job=job, attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=at, tz=None,
                         started_at=at, log_path=None, owner="sup")
    h.finish_run(run_id, status=status, ended_at=at + took, exit_code=exit_code, reason=reason, final=True)
    return run_id


@pytest.mark.e2e
def test_json_lines_carry_exactly_the_spec_fields_newest_last(state: Path, history: History, now: float) -> None:
    first = add(history, "backup", now - 300, took=0.85)
    second = add(history, "backup", now - 200, RunStatus.FAILED, exit_code=3, reason="exit 3")
    rows = runs_json(state, tz="UTC")
    assert [r["run_id"] for r in rows] == [first, second]
    assert list(rows[0]) == list(RUN_JSON_KEYS)  # the documented keys plus signal, reason and host
    assert rows[0]["duration_s"] == 0.85 and rows[1]["status"] == "failed" and rows[1]["exit_code"] == 3
    assert rows[0]["started_at"].endswith("+00:00") and rows[0]["log_path"] is None


def test_it_shows_the_newest_20_by_default_and_all_or_n_on_request(state: Path, history: History, now: float) -> None:
    ids = [add(history, "tick", now - 1000 + i) for i in range(25)]
    assert [r["run_id"] for r in runs_json(state)] == ids[-20:]
    assert [r["run_id"] for r in runs_json(state, "-n", "all")] == ids
    assert [r["run_id"] for r in runs_json(state, "-n", "3", "-r")] == ids[-1:-4:-1]
    assert [r["run_id"] for r in runs_json(state, "-n", "all", "-r")] == ids[::-1]
    assert len(runs_json(state, "--since", "-1h")) == 25  # a bounded range shows all of it


def test_job_arguments_are_globs_on_job_names(state: Path, history: History, now: float) -> None:
    db = add(history, "db-backup", now - 30)
    web = add(history, "web-backup", now - 20)
    report = add(history, "report", now - 10)
    assert [r["run_id"] for r in runs_json(state, "*-backup")] == [db, web]
    assert [r["run_id"] for r in runs_json(state, "report", "db-*")] == [db, report]
    assert runs_json(state, "nope*") == []


def test_status_filters_take_comma_lists_and_repeats(state: Path, history: History, now: float) -> None:
    add(history, "a", now - 30)
    failed = add(history, "a", now - 20, RunStatus.FAILED, exit_code=1)
    timeout = add(history, "a", now - 10, RunStatus.TIMEOUT, exit_code=None)
    assert [r["run_id"] for r in runs_json(state, "--status", "failed,timeout")] == [failed, timeout]
    assert [r["run_id"] for r in runs_json(state, "--status", "failed", "--status", "timeout")] == [failed, timeout]


def test_an_unknown_status_is_a_usage_error_listing_the_valid_ones(state: Path, history: History) -> None:
    proc = cronplus(state, "--status", "success,bogus")
    assert proc.returncode == 2
    assert "bogus" in proc.stderr and "upstream_failed" in proc.stderr and "interrupted" in proc.stderr


def test_since_and_until_take_relative_and_absolute_times(state: Path, history: History, now: float) -> None:
    old = add(history, "a", now - 3 * 3600)
    mid = add(history, "a", now - 2 * 3600 + 600)  # 10 min for the command to start on a loaded machine
    new = add(history, "a", now - 60)
    assert [r["run_id"] for r in runs_json(state, "-S", "-2h")] == [mid, new]
    assert [r["run_id"] for r in runs_json(state, "--since", "150min ago", "-U", "-1h")] == [mid]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 2.5 * 3600))  # local, like the command
    assert [r["run_id"] for r in runs_json(state, "--until", stamp)] == [old]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now - 2.5 * 3600))
    assert [r["run_id"] for r in runs_json(state, "--since", iso)] == [mid, new]


def test_a_bad_time_is_a_usage_error(state: Path, history: History) -> None:
    proc = cronplus(state, "--since", "last tuesday-ish")
    assert proc.returncode == 2 and "cannot understand time" in proc.stderr


@pytest.mark.e2e
def test_the_table_shows_local_times_compact_durations_and_no_colour_off_a_terminal(state: Path, history: History) -> None:
    at = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC, 17:06:40 in Berlin (CEST)
    add(history, "train", at, took=3720, exit_code=0)
    add(history, "train", at + 7200, RunStatus.FAILED, took=0.85, exit_code=3, reason="exit 3")
    proc = cronplus(state, "-n", "all", tz="Europe/Berlin")
    assert proc.returncode == 0, proc.stderr
    header, first, second = proc.stdout.splitlines()
    assert header.split() == ["RUN", "JOB", "ATTEMPT", "STATUS", "TRIGGER", "SCHEDULED", "STARTED", "DURATION", "EXIT", "REASON"]
    assert "2025-06-15 17:06:40" in first and "1h 2min" in first
    assert "850ms" in second and "failed" in second and "exit 3" in second
    assert "\x1b[" not in proc.stdout


def test_runs_that_never_started_and_running_runs_render(state: Path, history: History, now: float) -> None:
    history.record_not_run(job="predict", status=RunStatus.UPSTREAM_FAILED, trigger=Trigger.SCHEDULE,
                           scheduled_at=now - 60, tz=None, at=now - 59, reason="upstream train failed")
    history.start_run(job="train", attempt=2, trigger=Trigger.RETRY, scheduled_at=now - 60, tz=None,
                      started_at=now - 30, log_path=None, owner="sup")
    proc = cronplus(state)
    assert "upstream_failed" in proc.stdout and "upstream train failed" in proc.stdout
    assert "running" in proc.stdout and "retry" in proc.stdout
    rows = runs_json(state)
    assert rows[0]["started_at"] is None and rows[1]["ended_at"] is None and rows[1]["duration_s"] is None


def test_without_a_database_it_says_there_is_no_history_yet(state: Path) -> None:
    proc = cronplus(state)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "no history yet" in proc.stderr
    assert not (state / "history.db").exists()


def test_no_matching_runs_is_empty_output_and_success(state: Path, history: History, now: float) -> None:
    add(history, "a", now - 10)
    proc = cronplus(state, "--json", "b")
    assert proc.returncode == 0 and proc.stdout == ""


def test_it_reads_while_the_supervisor_holds_a_write_transaction(state: Path, history: History, now: float) -> None:
    run_id = add(history, "a", now - 10)
    history.conn.execute("BEGIN IMMEDIATE")
    history.conn.execute("UPDATE runs SET status = 'failed' WHERE run_id = ?", (run_id,))
    try:
        started = time.monotonic()
        rows = runs_json(state)
        assert time.monotonic() - started < 9  # not waiting out the 10 s busy timeout
        assert [(r["run_id"], r["status"]) for r in rows] == [(run_id, "success")]
    finally:
        history.conn.execute("ROLLBACK")


class Lines:
    """The lines a child prints, read by a thread (select() cannot see Python's read buffer)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.queue.put(line) for line in proc.stdout], daemon=True).start()

    def next(self, timeout: float = 30.0) -> str:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no line from cronplus log -f") from None


@pytest.mark.e2e
def test_follow_prints_runs_as_they_end_and_exits_cleanly_on_sigterm(state: Path, history: History, now: float) -> None:
    backlog = add(history, "a", now - 10)
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "log", "--state-dir", str(state), "-f", "--json", "a*"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = Lines(proc)
    try:
        assert json.loads(lines.next())["run_id"] == backlog
        running = history.start_run(job="a", attempt=1, trigger=Trigger.MANUAL, scheduled_at=None, tz=None,
                                    started_at=time.time(), log_path=None, owner="sup")
        add(history, "other", time.time())  # not matching the glob: never printed
        time.sleep(0.7)  # a poll sees the running row: it must not be printed yet
        history.finish_run(running, status=RunStatus.FAILED, ended_at=time.time(), exit_code=2, reason="exit 2", final=True)
        line = json.loads(lines.next())
        assert (line["run_id"], line["status"]) == (running, "failed")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.e2e
def test_follow_waits_for_the_database_to_appear(state: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "log", "--state-dir", str(state), "-f"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = Lines(proc)
    try:
        time.sleep(0.6)
        h = History(state / "history.db")
        assert lines.next().split()[:2] == ["RUN", "JOB"]
        run_id = add(h, "late", time.time())
        assert lines.next().split()[:2] == [str(run_id), "late"]
        h.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "no history yet" in err and "Traceback" not in err


def _on_a_terminal(state: Path, env_extra: dict[str, str], *args: str) -> bytes:
    """Run `cronplus log` with stdout on a pseudo-terminal; returns what reached the terminal."""
    import pty

    master, slave = pty.openpty()
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    env.update({"TZ": "UTC", "TERM": "xterm", **env_extra})
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "log", "--state-dir", str(state), *args],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=20)
    os.close(master)
    return b"".join(chunks)


@pytest.mark.e2e
def test_on_a_terminal_status_is_coloured_and_a_pager_is_used(state: Path, history: History, tmp_path: Path, now: float) -> None:
    add(history, "a", now - 10, RunStatus.FAILED, exit_code=1)
    paged = tmp_path / "paged"
    screen = _on_a_terminal(state, {"PAGER": f"tee {paged}"})
    assert b"\x1b[31mfailed\x1b[0m" in screen
    assert b"failed" in paged.read_bytes()  # the table went through $PAGER


@pytest.mark.e2e
def test_no_color_and_no_pager_are_respected_on_a_terminal(state: Path, history: History, tmp_path: Path, now: float) -> None:
    add(history, "a", now - 10, RunStatus.FAILED, exit_code=1)
    paged = tmp_path / "paged"
    screen = _on_a_terminal(state, {"PAGER": f"tee {paged}", "NO_COLOR": "1"}, "--no-pager")
    assert b"failed" in screen and b"\x1b[" not in screen
    assert not paged.exists()


@pytest.mark.e2e
def test_a_reader_that_goes_away_early_is_not_an_error(state: Path, history: History, now: float) -> None:
    history.conn.execute("BEGIN")
    for i in range(3000):
        history.conn.execute(
            "INSERT INTO runs (job, attempt, status, trigger, scheduled_at, started_at, ended_at, final)"
            " VALUES ('bulk', 1, 'success', 'schedule', ?, ?, ?, 1)", (now - 5000 + i, now - 5000 + i, now - 4999 + i))
    history.conn.execute("COMMIT")
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "log", "--state-dir", str(state), "--json", "-n", "all"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(proc.stdout.readline())["job"] == "bulk"
    proc.stdout.close()  # like `cronplus log | head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=10) == 0
    assert b"Traceback" not in err and b"BrokenPipe" not in err
