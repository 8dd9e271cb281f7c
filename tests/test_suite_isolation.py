"""The suite's own guarantees: temp files go to the session's $TMPDIR (conftest), and the
--sleep-after-collect plugin really waits between collection and the first test."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_this_process_and_its_children_use_the_sessions_tmpdir(session_tmpdir: Path) -> None:
    assert tempfile.gettempdir() == str(session_tmpdir)
    child = subprocess.run(["sh", "-c", 'printf %s "$TMPDIR"'], capture_output=True, text=True, timeout=60)
    assert child.stdout == str(session_tmpdir)
    assert session_tmpdir.resolve() != Path("/tmp").resolve()


def test_the_sleep_plugin_waits_between_collection_and_the_first_test(tmp_path: Path) -> None:
    (tmp_path / "test_stale.py").write_text(
        "import time\nCOLLECTED = time.monotonic()\n\n"
        "def test_now_is_later_than_collection():\n    assert time.monotonic() - COLLECTED >= 1.0\n"
    )
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
            "-p", "tests.plugins.sleep_after_collect", "--rootdir", str(tmp_path), str(tmp_path / "test_stale.py")]
    without = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert without.returncode == 1, without.stdout  # no sleep: the test sees a fresh collection
    slept = subprocess.run([*args, "--sleep-after-collect=1"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert slept.returncode == 0, slept.stdout
    assert "sleeping 1 s after collection" in slept.stdout
