"""What `journalctl -p warning` shows: a real supervisor logging in journald format (its stderr is
the file $JOURNAL_STREAM names) writes failed / timeout / upstream_failed runs at WARNING (<4>),
config errors at ERROR (<3>), successes at INFO (<6>)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.test_daemon import Supervisor, cli

JOBS = """\
# cronplus: name=ok
0 0 1 1 * true
# cronplus: name=bad
0 0 1 1 * exit 3
# cronplus: name=slow timeout=0.2 kill-grace=1
0 0 1 1 * sleep 30
# cronplus: name=child after=bad
0 0 1 1 * true
"""


class JournalSupervisor(Supervisor):
    """A supervisor whose stderr is the journal stream (JOURNAL_STREAM = its dev:inode)."""

    def __init__(self, tmp_path: Path, text: str) -> None:
        self.state = tmp_path / "state"
        self.crontab = tmp_path / "crontab"
        self.crontab.write_text(text)
        self.stderr_path = tmp_path / "journal.err"
        err = open(self.stderr_path, "w")  # noqa: SIM115 - the child owns it
        st = os.fstat(err.fileno())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cronplus", "--crontab", str(self.crontab), "--state-dir", str(self.state), "run"],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        err.close()


def wait_for(sup: Supervisor, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in sup.stderr:
        assert time.monotonic() < deadline, f"{text!r} not in {sup.stderr}"
        time.sleep(0.05)


def test_failures_are_warnings_config_errors_are_errors_successes_are_info(supervisors, tmp_path: Path) -> None:
    sup = JournalSupervisor(tmp_path, JOBS)
    supervisors.append(sup)
    sup.wait_ready()
    for job in ("ok", "bad", "slow"):
        cli(sup.state, sup.crontab, "trigger", job, "--wait")
    wait_for(sup, "child: run")  # bad's manual chain: child is upstream_failed
    sup.crontab.write_text(JOBS + "61 * * * * true\n")  # an invalid edit is refused
    wait_for(sup, "reload refused: keeping")
    assert sup.stop() == 0
    lines = sup.stderr.splitlines()

    def line(fragment: str) -> str:
        found = [entry for entry in lines if fragment in entry]
        assert found, f"{fragment!r} not in {lines}"
        return found[0]

    assert line("job ok: run 1 success").startswith("<6>")
    assert line("job bad: run 2 failed").startswith("<4>")
    assert line("job slow: run").startswith("<6>")  # its start
    assert line(" timeout in ").startswith("<4>")
    assert line("upstream_failed").startswith("<4>")
    assert line("reload refused: keeping").startswith("<3>")
