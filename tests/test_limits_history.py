"""A limited run's usage reaches history and `cronplus log --json`: `cronplus trigger` (no
supervisor: the run goes through the Scheduler in that process) started inside a test cgroup."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.test_limits_run import session_cgroup

__all__ = ["session_cgroup"]  # the fixture, used by name below


def test_a_limited_triggered_run_has_its_cpu_time_in_history_and_log_json(tmp_path: Path, session_cgroup: Path) -> None:
    crontab = tmp_path / "crontab"
    burn = f"{sys.executable} -c 'import time; t = time.process_time(); exec(\"while time.process_time() - t < 0.3: pass\")'"
    crontab.write_text(f"# cronplus: name=burn nice=3\n0 3 * * 0 {burn}\n# cronplus: name=plain\n0 3 * * 0 true\n")
    procs = str(session_cgroup / "cgroup.procs")

    def join() -> None:  # the CLI process is the supervisor here: it starts in the test cgroup
        fd = os.open(procs, os.O_WRONLY)
        os.write(fd, b"0")
        os.close(fd)

    base = [sys.executable, "-m", "cronplus", "--crontab", str(crontab), "--state-dir", str(tmp_path / "state")]
    for job in ("burn", "plain"):
        done = subprocess.run([*base, "trigger", job, "--wait"], capture_output=True, text=True, timeout=60,
                              preexec_fn=join, check=False)
        assert done.returncode == 0, done.stderr
    conn = sqlite3.connect(tmp_path / "state" / "history.db")
    rows = dict(conn.execute("SELECT job, cpu_s FROM runs").fetchall())
    assert 0.25 <= rows["burn"] < 30
    assert rows["plain"] is None  # no limit, no cgroup: the fast spawn path, nothing measured
    log = subprocess.run([*base, "log", "burn", "--json"], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(log.stdout.splitlines()[-1])["cpu_s"] >= 0.25
    assert not [p for p in session_cgroup.iterdir() if p.is_dir()]
