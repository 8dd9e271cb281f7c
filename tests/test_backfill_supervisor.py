"""`cronplus backfill` with real processes: through a running supervisor (its control socket,
progress streamed), and interrupted (Ctrl-C of an in-process backfill, Ctrl-C of the client of a
supervisor's, the supervisor stopping): what finished is recorded, a second call resumes."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_daemon import cli, start

pytestmark = pytest.mark.e2e  # real supervisors and the real command

RANGE = ["--from", "2026-01-01T00:00Z", "--to", "2026-01-01T03:00Z"]


def slow_at_01(tmp_path: Path) -> str:
    """Job a: the 01:00 tick sleeps until the file `go` exists (60 s at most: a failed test must not
    leave it waiting, in its own session, past the supervisor it outlives); job b after it."""
    return (f"# cronplus: name=a kill-grace=1\n0 * * * * case $CRONPLUS_SCHEDULED_TIME in *T01:*) i=0; "
            f"while ! test -e {tmp_path}/go && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done;; esac\n"
            "# cronplus: name=b after=a\n0 * * * * true\n")


def rows(state: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(f"file:{state / 'history.db'}?mode=ro", uri=True)  # never creates it
    try:
        return [tuple(r) for r in conn.execute(
            "SELECT job, status, trigger, strftime('%H:%M', scheduled_at, 'unixepoch') FROM runs ORDER BY run_id")]
    finally:
        conn.close()


def wait_for_row(state: Path, row: tuple[str, str, str, str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if row in rows(state):
                return
        except sqlite3.OperationalError:  # no file or no schema yet: the store is being made
            pass
        time.sleep(0.05)
    raise AssertionError(f"no row {row}: {rows(state) if (state / 'history.db').exists() else 'no history'}")


def backfill_process(state: Path, crontab: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(state),
                             "backfill", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_backfill_through_the_supervisor_streams_progress_and_records_backfill_runs(supervisors, tmp_path: Path) -> None:
    (tmp_path / "go").touch()
    sup = start(supervisors, tmp_path, slow_at_01(tmp_path))
    out = cli(sup.state, sup.crontab, "backfill", "a", *RANGE, "--parallel", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith(", 2 at a time (by the supervisor)")
    assert "4/4 ticks done, 0 failed" in out.stdout and "backfill of a done: 4 tick(s) run, 0 failed" in out.stdout
    assert sorted(rows(sup.state)) == sorted((job, "success", "backfill", f"0{h}:00") for job in "ab" for h in range(4))
    again = cli(sup.state, sup.crontab, "backfill", "a", *RANGE)
    assert again.returncode == 0 and "0 tick(s) from" in again.stdout and "4 already succeeded" in again.stdout
    refused = cli(sup.state, sup.crontab, "backfill", "aa", *RANGE)
    assert (refused.returncode, refused.stderr) == (1, "cronplus backfill: no job named 'aa' (did you mean 'a'?)\n")
    many = cli(sup.state, sup.crontab, "backfill", "a", "--from", "2026-01-01T00:00Z", "--to", "2026-03-01T00:00Z")
    assert many.returncode == 2 and "1,417 ticks of a from" in many.stderr and "add --yes" in many.stderr
    assert len(rows(sup.state)) == 8


def test_ctrl_c_of_an_in_process_backfill_records_what_ran_and_a_second_call_resumes(tmp_path: Path) -> None:
    state, crontab = tmp_path / "state", tmp_path / "crontab"
    crontab.write_text(slow_at_01(tmp_path))
    proc = backfill_process(state, crontab, "a", *RANGE)
    try:
        wait_for_row(state, ("a", "running", "backfill", "01:00"))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "backfill of a stopped (backfill stopped by SIGINT) after 2/4 ticks, 1 failed: run the same command " \
           "again to resume" in out
    assert rows(state) == [("a", "success", "backfill", "00:00"), ("b", "success", "backfill", "00:00"),
                           ("a", "interrupted", "backfill", "01:00")]
    (tmp_path / "go").touch()
    resumed = cli(state, crontab, "backfill", "a", *RANGE)
    assert resumed.returncode == 0, resumed.stderr
    assert "3 tick(s) from" in resumed.stdout and "1 already succeeded" in resumed.stdout
    assert rows(state)[3:] == [("a", "success", "backfill", f"0{h}:00") if job == "a" else ("b", "success", "backfill", f"0{h}:00")
                               for h in (1, 2, 3) for job in "ab"]


def test_the_supervisor_stopping_mid_backfill_loses_nothing_and_a_second_call_resumes(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, slow_at_01(tmp_path), "--shutdown-grace", "0.2")
    proc = backfill_process(sup.state, sup.crontab, "a", *RANGE)
    try:
        wait_for_row(sup.state, ("a", "running", "backfill", "01:00"))
        assert sup.stop() == 0
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert "run the same command again to resume" in out + err
    assert rows(sup.state) == [("a", "success", "backfill", "00:00"), ("b", "success", "backfill", "00:00"),
                               ("a", "interrupted", "backfill", "01:00")]
    (tmp_path / "go").touch()
    resumed = cli(sup.state, sup.crontab, "backfill", "a", *RANGE)  # no supervisor now: in-process
    assert resumed.returncode == 0 and "(no supervisor running)" in resumed.stdout and "1 already succeeded" in resumed.stdout
    assert len(rows(sup.state)) == 9


def test_ctrl_c_of_the_client_stops_a_supervisors_backfill_and_the_run_under_way_finishes(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, slow_at_01(tmp_path))
    proc = backfill_process(sup.state, sup.crontab, "a", *RANGE)
    try:
        wait_for_row(sup.state, ("a", "running", "backfill", "01:00"))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130
    # the count is the last progress line the client got: at most 10 a second, so the 00:00 tick's
    # may still be on its way when the signal comes (it failed so once under load)
    assert re.search(r"backfill stopped after [01]/4 ticks done: no new tick starts; the runs under way finish in the"
                     r" supervisor", out), out
    (tmp_path / "go").touch()
    wait_for_row(sup.state, ("b", "success", "backfill", "01:00"))  # the chain under way goes on to its end
    time.sleep(1.0)  # a backfill still going would start 02:00 now
    assert rows(sup.state) == [("a", "success", "backfill", "00:00"), ("b", "success", "backfill", "00:00"),
                               ("a", "success", "backfill", "01:00"), ("b", "success", "backfill", "01:00")]
    assert sup.proc.poll() is None
