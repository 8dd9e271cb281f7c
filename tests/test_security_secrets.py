"""Alert and ping URLs carry tokens (issue 9 §6): a malformed one is an error at parse time with
FILE:LINE:COL, one that only shows up at send time (`env:VAR`) fails with a redacted reason, and
no path prints the token: not `check`, `alerts`, `alerts --test`, the supervisor's log, the
outbox's error column, nor a traceback."""

from __future__ import annotations

import io
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronplus.service.systemd import setup_logging
from cronplus.store import history, outbox

TOKEN = "T0KEN5ECRET"


def cronplus(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"),
                           "--state-dir", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})})


def no_token_anywhere(tmp_path: Path, *results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert TOKEN not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    db = tmp_path / "state" / "history.db"
    if db.exists():
        conn = sqlite3.connect(db)
        try:
            for row in conn.execute("SELECT last_error FROM outbox"):
                assert TOKEN not in (row[0] or "")
        finally:
            conn.close()


@pytest.mark.parametrize(("value", "problem"), [
    (f"https://hooks.example.com:99999/T0/{TOKEN}", "https://hooks.example.com/… has a bad port: use 1-65535"),
    (f"https://hooks.example.com:0/T0/{TOKEN}", "https://hooks.example.com/… has a bad port: use 1-65535"),
    (f"https://hooks.example.com:x{TOKEN}/", "https://hooks.example.com/… has a bad port: use 1-65535"),
    (f"ftp://hooks.example.com/{TOKEN}", "ftp://hooks.example.com/… is not an http:// or https:// URL"),
    (f"https:///{TOKEN}", "the URL has no host"),
    (f'"https://hooks.example.com/T0/{TOKEN} x"', "https://hooks.example.com/… contains a space or a control character"),
    (f'"https://hooks.example.com/T0/\t{TOKEN}"', "https://hooks.example.com/… contains a space or a control character"),
])
@pytest.mark.parametrize("key", ["alert", "ping"])
def test_check_refuses_a_malformed_url_at_its_line_and_column_without_printing_it(
        tmp_path: Path, key: str, value: str, problem: str) -> None:
    line = f"# cronplus: name=job {key}={value}"
    (tmp_path / "crontab").write_text(f"{line}\n0 0 1 1 * true\n")
    result = cronplus(tmp_path, "check")
    assert result.returncode == 1
    col = line.index(f"{key}=") + len(key) + 2 + (1 if value.startswith('"') else 0)
    assert result.stderr.splitlines()[0] == f"{tmp_path / 'crontab'}:1:{col}: bad {key}: {problem}"
    no_token_anywhere(tmp_path, result)


def test_a_good_url_with_a_port_passes_check(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text(f"# cronplus: name=job alert=https://[::1]:8443/T0/{TOKEN} ping=http://h:65535/p\n"
                                      "0 0 1 1 * true\n")
    assert cronplus(tmp_path, "check").returncode == 0


@pytest.mark.parametrize(("url", "reason"), [
    (f"https://hooks.example.com:99999/T0/{TOKEN}", "https://hooks.example.com/… has a bad port: use 1-65535"),
    (f"https://hooks.example.com/T0/\u2028{TOKEN}", "https://hooks.example.com/… contains a space or a control"),
    (f"http://a..b/T0/{TOKEN}", "LocationParseError"),  # passes our checks; urllib3 refuses it raw
])
def test_alerts_test_with_a_bad_url_in_the_environment_fails_in_one_redacted_line(
        tmp_path: Path, url: str, reason: str) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=job alert=env:HOOK\n0 0 1 1 * true\n")
    sent = cronplus(tmp_path, "alerts", "--test", "job", env={"HOOK": url})
    assert sent.returncode == 1
    [line] = sent.stderr.splitlines()
    assert line.startswith("test alert 1 to env:HOOK (json): failed: ")
    assert reason in line
    listed = cronplus(tmp_path, "alerts")
    as_json = cronplus(tmp_path, "alerts", "--json")
    assert listed.returncode == as_json.returncode == 0
    assert '"target": "env:HOOK"' in as_json.stdout
    no_token_anywhere(tmp_path, sent, listed, as_json)


def test_alerts_lists_a_row_whose_url_has_a_bad_port_without_crashing(tmp_path: Path) -> None:
    """A row written by a cronplus that did not check ports (or by hand) is listed redacted."""
    (tmp_path / "crontab").write_text("")
    conn = history.connect(tmp_path / "state" / "history.db")
    outbox.enqueue(conn, kind="alert", event="failure", job="job", run_id=None,
                   target=f"https://hooks.example.com:99999/T0/{TOKEN}", format="json", secret_ref=None,
                   payload={"id": "msg_1"}, now=time.time())
    conn.close()
    listed = cronplus(tmp_path, "alerts")
    as_json = cronplus(tmp_path, "alerts", "--json")
    assert listed.returncode == as_json.returncode == 0, listed.stderr + as_json.stderr
    assert "https://hooks.example.com/…" in listed.stdout
    assert '"target": "https://hooks.example.com/…"' in as_json.stdout
    no_token_anywhere(tmp_path, listed, as_json)


def test_the_supervisor_logs_a_failed_delivery_to_a_bad_env_url_without_its_token(tmp_path: Path) -> None:
    (tmp_path / "crontab").write_text("# cronplus: name=job alert=env:HOOK\n0 0 1 1 * exit 3\n")
    err = tmp_path / "supervisor.err"
    env = {**os.environ, "HOOK": f"https://hooks.example.com:99999/T0/{TOKEN}"}
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(tmp_path / "crontab"),
                                 "--state-dir", str(tmp_path / "state"), "run"],
                                stdout=subprocess.DEVNULL, stderr=stderr, env=env)
    try:
        deadline = time.monotonic() + 20
        while "supervisor started" not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        assert cronplus(tmp_path, "trigger", "job", "--wait").returncode == 1
        while "has a bad port" not in err.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    log = err.read_text()
    assert "to env:HOOK failed: alert target env:HOOK: https://hooks.example.com/… has a bad port" in log
    assert TOKEN not in log and "Traceback" not in log
    no_token_anywhere(tmp_path)


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    """setup_logging changes the process-wide "cronplus" and root loggers: put them back."""
    logger, root = logging.getLogger("cronplus"), logging.getLogger()
    saved = (list(logger.handlers), logger.level, logger.propagate, list(root.handlers))
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]
    root.handlers[:] = saved[3]


def test_a_logged_traceback_quoting_a_url_shows_only_its_host(restore_loggers: None) -> None:
    stream = io.StringIO()
    log = setup_logging(stream)
    try:
        raise ValueError(f"Failed to parse: https://user:pw@hooks.example.com:99999/T0/{TOKEN}?k={TOKEN}")
    except ValueError:
        log.exception("delivery loop error")
    text = stream.getvalue()
    assert "ValueError: Failed to parse: https://hooks.example.com:99999/…" in text
    assert TOKEN not in text and "pw" not in text


@pytest.fixture
def restore_excepthook() -> Iterator[None]:
    saved = threading.excepthook
    yield
    threading.excepthook = saved


def test_a_threads_uncaught_exception_is_logged_redacted(restore_loggers: None, restore_excepthook: None) -> None:
    stream = io.StringIO()
    setup_logging(stream)

    def boom() -> None:
        raise RuntimeError(f"cannot POST https://hooks.example.com/T0/{TOKEN}")

    thread = threading.Thread(target=boom, name="sender")
    thread.start()
    thread.join()
    text = stream.getvalue()
    assert "uncaught exception in thread sender" in text
    assert "RuntimeError: cannot POST https://hooks.example.com/…" in text
    assert TOKEN not in text
