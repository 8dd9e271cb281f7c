"""Tables on a real terminal: `log`, `jobs` and `alerts` run on a pseudo-terminal of 80 columns
(TIOCSWINSZ, no COLUMNS) print no line wider than that; in a pipe or with --wide, every column
in full. `log` on a dumb terminal does not stop in a pager. No --help text names a document that
does not ship."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from cronplus.status import RunStatus, Trigger
from cronplus.store import outbox
from cronplus.store.history import History

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
LONG_REASON = "exit 3; " + "the upstream service answered 503 Service Unavailable " * 3
NOW = time.time()


def on_pty(*args: str, cols: int = 80, rows: int = 24, env: dict[str, str] | None = None,
           timeout: float = 20) -> tuple[int, str]:
    """Run `cronplus ARGS` with a pseudo-terminal of cols x rows as its controlling terminal and
    stdin/stdout/stderr; returns (exit status, what it wrote). Fails if it does not end by
    itself within `timeout` (it would be waiting for input)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    base = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "PAGER", "CRONPLUS_PAGER", "LESS")}
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", *args], stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, env={**base, "TZ": "UTC", **(env or {})},
                            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed, the command has ended
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            proc.wait()
            pytest.fail(f"cronplus {' '.join(args)} did not end by itself (waiting for input?): {out.decode()[-300:]!r}")
        return proc.wait(timeout=5), out.decode().replace("\r\n", "\n")
    finally:
        os.close(master)


def widest(text: str) -> int:
    return max(len(ANSI.sub("", line)) for line in text.splitlines())


def fill_history(state: Path, n: int = 5) -> None:
    with History(state / "history.db") as h:
        for i in range(n):
            at = NOW - 3600 + i * 60
            rid = h.start_run(job="nightly-database-backup", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=at,
                              tz=None, started_at=at, log_path=None, owner="sup")
            h.finish_run(rid, status=RunStatus.FAILED, ended_at=at + 2, exit_code=3, reason=LONG_REASON, final=True)


def test_log_fits_an_80_column_terminal_and_shows_everything_in_a_pipe_or_with_wide(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_history(state)
    code, out = on_pty("log", "--state-dir", str(state), "--no-pager", env={"TERM": "xterm"})
    assert code == 0, out
    assert widest(out) <= 80, out
    header = out.splitlines()[0].split()
    assert header[:2] == ["RUN", "JOB"] and "STATUS" in header and "REASON" in header and "STARTED" in header
    assert "…" in out and LONG_REASON.strip() not in out
    piped = subprocess.run([sys.executable, "-m", "cronplus", "log", "--state-dir", str(state)],
                           capture_output=True, text=True, timeout=20, check=True).stdout
    assert LONG_REASON.strip() in piped and "TRIGGER" in piped.splitlines()[0] and widest(piped) > 80
    code, wide = on_pty("log", "--state-dir", str(state), "--no-pager", "--wide", env={"TERM": "xterm"})
    assert code == 0 and LONG_REASON.strip() in wide.replace("\n", "")


def test_log_follow_lines_fit_the_terminal_too(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_history(state, 2)
    master_args = ("log", "--state-dir", str(state), "-f")
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", *master_args], stdin=slave, stdout=slave, stderr=slave,
                            env={**env, "TERM": "xterm"})
    os.close(slave)
    try:
        out = b""
        deadline = time.monotonic() + 15
        while out.count(b"\n") < 3 and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                out += os.read(master, 65536)
        text = out.decode().replace("\r\n", "\n")
        assert text.count("\n") >= 3, text
        assert widest(text) <= 80, text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(master)


def test_log_on_a_dumb_terminal_prints_without_a_pager(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_history(state, 60)  # more than one screen: less would wait for a key
    code, out = on_pty("log", "--state-dir", str(state), "-n", "all", env={"TERM": "dumb"}, timeout=15)
    assert code == 0
    assert "Press RETURN" not in out and out.count("nightly-") == 60


def test_jobs_fits_80_columns_shows_after_and_the_running_run_s_own_start(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=extract-customer-records tz=America/Argentina/Buenos_Aires\n"
                       "*/15 8-18 * * mon-fri echo extract\n"
                       "# cronplus: name=transform-and-load after=extract-customer-records\n0 3 * * * echo load\n")
    state = tmp_path / "state"
    started = NOW - 1000
    with History(state / "history.db") as h:
        old = h.start_run(job="transform-and-load", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=NOW - 90000,
                          tz=None, started_at=NOW - 90000, log_path=None, owner="old")
        h.finish_run(old, status=RunStatus.SUCCESS, ended_at=NOW - 89000, exit_code=0, reason=None, final=True)
        h.start_run(job="transform-and-load", attempt=1, trigger=Trigger.MANUAL, scheduled_at=started, tz=None,
                    started_at=started, log_path=None, owner="live")
    args = ("--crontab", str(crontab), "--state-dir", str(state), "jobs")
    code, out = on_pty(*args, env={"TERM": "xterm"})
    assert code == 0, out
    assert widest(out) <= 80, out
    row = next(line for line in out.splitlines() if line.startswith("transform"))
    assert "running (run 2)" in row and time.strftime("%m-%d %H:%M", time.gmtime(started)) in row
    assert "AFTER" in out.splitlines()[0]
    piped = subprocess.run([sys.executable, "-m", "cronplus", *args], capture_output=True, text=True, timeout=20,
                           env={**os.environ, "TZ": "UTC"}, check=True).stdout
    row = next(line for line in piped.splitlines() if line.startswith("transform-and-load"))
    assert time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)) in row  # the running run's, not the last one's
    assert row.rstrip().endswith("extract-customer-records") and "+" in row  # after=, and elapsed so far


def test_alerts_fit_80_columns(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with History(state / "history.db") as h:
        for i in range(3):
            row_id = outbox.enqueue(h.conn, kind="alert", event="failure", job="nightly-database-backup", run_id=i + 1,
                                    target="https://hooks.example.com/services/T000/B000/XXXXXXXXXXXX", format="slack",
                                    secret_ref=None, payload={}, now=NOW - 60 + i)
            outbox.mark_failed(h.conn, row_id, error="HTTP 404 from hooks.example.com: no_service " * 3, http_status=404)
    code, out = on_pty("alerts", "--state-dir", str(state), env={"TERM": "xterm"})
    assert code == 0, out
    assert widest(out) <= 80, out
    assert "failure" in out and "failed" in out


def test_no_help_text_names_a_document_that_does_not_ship() -> None:
    from cronplus.cli import COMMANDS, _top_parser, build_command_parser

    texts = [_top_parser().format_help()] + [build_command_parser(name)[0].format_help() for name in COMMANDS]
    for text in texts:
        assert not re.search(r"SPEC|CRON-NOTES|ARCHITECTURE|STYLE\.md|§", text), text


def test_the_fit_plan_shortens_free_text_then_drops_columns_in_order_then_cuts_to_the_minimum() -> None:
    from cronplus.cli.fit import Column, plan

    cols = [Column("A"), Column("B", drop=2), Column("C", drop=1), Column("TEXT", flex=10)]
    assert plan(cols, [10, 10, 10, 100], None) == ([0, 1, 2, 3], [10, 10, 10, 100])
    assert plan(cols, [10, 10, 10, 100], 60) == ([0, 1, 2, 3], [10, 10, 10, 24])  # text cut to fit, none dropped
    # C goes before the text is cut below twice its minimum; the room won goes back to the text
    assert plan(cols, [10, 10, 10, 100], 50) == ([0, 1, 3], [10, 10, 10, 26])
    assert plan(cols, [10, 10, 10, 100], 40) == ([0, 3], [10, 10, 10, 28])  # then B
    assert plan(cols, [10, 10, 10, 100], 22) == ([0, 3], [10, 10, 10, 10])  # nothing left to drop: text at its minimum


def test_log_follow_in_a_pipe_cuts_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    fill_history(state, 1)
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "log", "--state-dir", str(state), "-f"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        header, line = proc.stdout.readline(), proc.stdout.readline()
        assert "TRIGGER" in header and "nightly-database-backup" in line and LONG_REASON.strip() in line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
