"""A supervisor killed with SIGKILL leaves its jobs running; the next one stops them before it
schedules anything (real `cronplus run`, real processes), and never touches a process that is
not provably the run's."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from cronplus.status import Trigger
from cronplus.store.history import History
from tests.test_daemon import Supervisor, cli
from tests.waiting import alive


def wait_for(path: Path, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def reason_of(state: Path, run_id: int) -> tuple[str, str]:
    conn = sqlite3.connect(state / "history.db")
    try:
        status, reason = conn.execute("SELECT status, reason FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    finally:
        conn.close()
    return status, reason


def start_and_kill(supervisors, tmp_path: Path, crontab: str, job: str) -> int:
    sup = Supervisor(tmp_path, crontab)
    supervisors.append(sup)
    sup.wait_ready()
    assert cli(sup.state, sup.crontab, "trigger", job).returncode == 0
    child = int(wait_for(tmp_path / "child.pid"))
    sup.stop(signal.SIGKILL)
    time.sleep(0.2)
    assert alive(child), "the job should outlive a supervisor killed with SIGKILL"
    return child


def test_a_leftover_that_ignores_sigterm_is_killed_after_the_jobs_kill_grace(supervisors, tmp_path: Path) -> None:
    crontab = (f"# cronplus: name=stubborn kill-grace=1s\n"
               f"0 0 1 1 * trap '' TERM; sleep 60 & echo $! > {tmp_path}/child.pid; wait\n")
    child = start_and_kill(supervisors, tmp_path, crontab, "stubborn")
    again = Supervisor(tmp_path, crontab)
    supervisors.append(again)
    again.wait_ready()
    assert not alive(child)
    status, reason = reason_of(again.state, 1)
    assert status == "interrupted"
    assert "stopped while it ran; 2 process(es) still running were terminated (SIGKILL after 1s)" in reason
    assert "outlived its supervisor" in again.stderr
    assert again.stop() == 0


def test_a_leftover_that_honours_sigterm_ends_at_once(supervisors, tmp_path: Path) -> None:
    crontab = f"# cronplus: name=polite\n0 0 1 1 * sleep 60 & echo $! > {tmp_path}/child.pid; wait\n"
    child = start_and_kill(supervisors, tmp_path, crontab, "polite")
    started = time.monotonic()
    again = Supervisor(tmp_path, crontab)
    supervisors.append(again)
    again.wait_ready()
    assert time.monotonic() - started < 10  # no 10 s default grace spent
    assert not alive(child)
    assert reason_of(again.state, 1)[1].endswith("were terminated (SIGTERM)")
    assert again.stop() == 0


def test_a_process_that_took_the_recorded_pid_is_left_alone(supervisors, tmp_path: Path) -> None:
    """A session whose members do not carry the run's CRONPLUS_RUN_ID is not the run's."""
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        hist = History(tmp_path / "state" / "history.db")
        run_id = hist.start_run(job="ghost", attempt=1, trigger=Trigger.SCHEDULE, scheduled_at=time.time(),
                                tz=None, started_at=time.time(), log_path=None, owner="host:1:dead")
        hist.set_pid(run_id, stranger.pid)
        hist.close()
        sup = Supervisor(tmp_path, "# cronplus: name=ghost\n0 0 1 1 * true\n")
        supervisors.append(sup)
        sup.wait_ready()
        assert alive(stranger.pid)
        status, reason = reason_of(sup.state, run_id)
        assert status == "interrupted" and "terminated" not in reason
        assert sup.stop() == 0
    finally:
        stranger.kill()
        stranger.wait()
