"""`cronplus trigger` with no supervisor running: the job runs in the trigger process through the
same Scheduler code path (history, runner, alerts, downstream chain)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_daemon import cli, start


def test_without_a_supervisor_trigger_runs_the_job_itself_and_the_chain_follows(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=train\n0 3 * * 0 true\n# cronplus: name=evaluate after=train\n"
                       "0 3 * * 0 exit 99\n# cronplus: name=deploy after=evaluate\n0 3 * * 0 true\n")
    out = cli(tmp_path / "state", crontab, "trigger", "train")
    assert out.returncode == 0 and "no supervisor running" in out.stdout
    conn = sqlite3.connect(tmp_path / "state" / "history.db")
    rows = [tuple(r) for r in conn.execute("SELECT job, status, trigger FROM runs ORDER BY run_id")]
    assert rows == [("train", "success", "manual"), ("evaluate", "skipped", "manual"), ("deploy", "skipped", "manual")]


def test_without_a_supervisor_a_failing_job_makes_trigger_wait_exit_1(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=bad\n0 3 * * 0 exit 4\n")
    out = cli(tmp_path / "state", crontab, "trigger", "bad", "--wait")
    assert out.returncode == 1 and "failed, exit 4" in out.stdout


def test_without_a_supervisor_an_unknown_job_gets_a_did_you_mean(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=train\n0 3 * * 0 true\n")
    out = cli(tmp_path / "state", crontab, "trigger", "trian")
    assert out.returncode == 1 and "did you mean 'train'" in out.stderr


def test_trigger_wait_through_the_supervisor_reports_the_final_attempt_after_retries(supervisors, tmp_path: Path) -> None:
    sup = start(supervisors, tmp_path, "# cronplus: name=flaky retries=1 retry-delay=0.1\n0 0 1 1 * exit 5\n")
    out = cli(sup.state, sup.crontab, "trigger", "flaky", "--wait")
    assert out.returncode == 1
    assert "flaky: run 1 attempt 1 failed, exit 5, retrying in 0.1s" in out.stdout
    assert "flaky: run 2 failed, exit 5" in out.stdout
    assert [r[2:4] for r in sup.rows()] == [("failed", "manual"), ("failed", "retry")]
    # the supervisor's log line names the attempt's trigger as its row does
    assert "run 2 started (attempt 2, retry)" in sup.stderr and "run 1 started (attempt 1, manual)" in sup.stderr


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_without_a_supervisor_ctrl_c_or_sigterm_kills_the_job_and_records_it_interrupted(
        tmp_path: Path, sig: int, code: int) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=nap kill-grace=1\n0 3 * * 0 sleep 30\n"
                       "# cronplus: name=after-nap after=nap\n0 3 * * 0 true\n")
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(state),
                             "trigger", "nap"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert "started (no supervisor running)" in proc.stdout.readline()
        conn = sqlite3.connect(state / "history.db")
        pid = None
        deadline = time.monotonic() + 5
        while pid is None and time.monotonic() < deadline:  # the job's pid is set just after its spawn
            pid = conn.execute("SELECT pid FROM runs WHERE job = 'nap'").fetchone()[0]
            time.sleep(0.02)
        assert pid is not None
        began = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - began < 3
        assert proc.returncode == code, err
        assert "interrupted" in out
        rows = [tuple(r) for r in conn.execute("SELECT job, status, reason, final FROM runs ORDER BY run_id")]
        name = signal.Signals(sig).name
        assert rows == [("nap", "interrupted", f"trigger stopped by {name}", 1)]
        with pytest.raises(ProcessLookupError):  # the job's process is gone, not orphaned
            os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
