"""Another user's `cronplus log/output/trigger/...` on a state directory they may not read
(issue 9 §6): one line `permission denied: PATH`, exit 1, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NOBODY = 65534
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a command as another user"),
    # setpriv rather than Popen(user=): here Popen(user=) cannot exec an interpreter under /root.
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@pytest.fixture
def roots_state(tmp_path: Path) -> Path:
    """tmp_path (searchable by all) holding root's crontab and root's 0700 state with one run."""
    tmp_path.chmod(0o755)
    (tmp_path / "crontab").write_text("# cronplus: name=job\n0 0 1 1 * echo secret output\n")
    done = subprocess.run([sys.executable, "-m", "cronplus", "--crontab", "crontab", "--state-dir", "state",
                           "trigger", "job"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    return tmp_path


@pytest.mark.parametrize(("args", "path"), [
    (["log"], "state/history.db"),
    (["log", "--json", "job"], "state/history.db"),
    (["output", "1"], "state/history.db"),
    (["trigger", "job"], "state/control.sock"),
    (["trigger", "job", "--wait"], "state/control.sock"),
    (["alerts"], "state/history.db"),
    (["jobs"], "state/control.sock"),
])
def test_another_user_gets_one_line_permission_denied_naming_the_path(roots_state: Path, args: list[str],
                                                                      path: str) -> None:
    # Relative paths from a cwd entered before the user switch: nobody needs no other
    # directory on the way (pytest's tmp root is root's 0700).
    result = subprocess.run([*AS_NOBODY, sys.executable, "-m", "cronplus", "--crontab", "crontab", "--state-dir",
                             "state", *args], cwd=roots_state, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        f"cronplus {args[0]}: permission denied: {path} (run it as the user who owns it)"
    ]
    assert result.stdout == ""
