"""A broken environment is one line naming the path, exit 1, never a traceback (issue 10 item 1).

Commands x environments: a state directory under /proc (nothing can be created there), a path
under a regular file, a parent the user cannot write (as uid 65534, like
test_security_other_user.py), a history.db of random bytes. Each cell says what the command
meets there; the few commands a broken environment does not concern keep working (exit 0),
also pinned, so a cell cannot pass by not running.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

NOBODY = 65534
CRONTAB = "# cronplus: name=job\n0 0 1 1 * echo hi\n"
COMMANDS = {
    "run": ["run"],
    "trigger": ["trigger", "job"],
    "log": ["log"],
    "output": ["output", "1"],
    "jobs": ["jobs"],
    "alerts": ["alerts"],
    "install": ["install", "new-crontab"],
    "edit": ["edit"],
    "list": ["list"],
}


def cronplus(cwd: Path, state: str, crontab: str, args: list[str], *,
             prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    editor = "./editor.sh"  # (relative: uid 65534 cannot reach the absolute path) an edit that changes the file
    return subprocess.run([*prefix, sys.executable, "-m", "cronplus", "--state-dir", state, "--crontab", crontab, *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "VISUAL": "", "EDITOR": editor, "TMPDIR": "tmp"})  # relative: uid 65534 cannot reach tmp_path by its absolute path


@pytest.fixture
def place(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    (tmp_path / "new-crontab").write_text(CRONTAB)
    (tmp_path / "editor.sh").write_text("#!/bin/sh\necho '0 0 1 1 * echo edited' >> \"$1\"\n")
    (tmp_path / "editor.sh").chmod(0o755)
    (tmp_path / "afile").write_text("a regular file\n")
    (tmp_path / "tmp").mkdir()  # edit's kept copies stay here, not in the session's $TMPDIR
    (tmp_path / "tmp").chmod(0o1777)  # writable by uid 65534 too, as /tmp is
    return tmp_path


def assert_one_line(result: subprocess.CompletedProcess[str], command: str, *needles: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    if command == "edit" and len(lines) == 2:  # nothing is lost: the edited text is kept
        assert lines[1].startswith("cronplus edit: your edits are saved in "), lines
        lines = lines[:1]
    assert len(lines) == 1, result.stderr
    # `list` words a missing crontab as crontab -l does: "no crontab for USER (PATH does not exist; ...)"
    assert lines[0].startswith((f"cronplus {command}: ", "no crontab for ")), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# (command, the path the line names, a word of the hint); None: the command does not touch it.
UNDER_PROC = {
    "run": ("/proc/nope/state", "choose another with --state-dir"),
    "trigger": ("/proc/nope/state", "choose another with --state-dir"),
    "log": None,  # "no history yet": reading nothing is not an error
    "output": ("/proc/nope/state/history.db", "no history yet"),
    "jobs": ("/proc/nope/crontab", "no such crontab file"),
    "alerts": None,
    "install": ("/proc/nope/crontab", "cannot install"),
    "edit": ("/proc/nope/crontab", ""),
    "list": ("/proc/nope/crontab", "does not exist"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_paths_under_proc(place: Path, command: str) -> None:
    result = cronplus(place, "/proc/nope/state", "/proc/nope/crontab", COMMANDS[command])
    expected = UNDER_PROC[command]
    if expected is None:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        return
    assert_one_line(result, command, *expected)


UNDER_A_FILE = {
    "run": ("afile/state", "a part of the path is a file"),
    "trigger": ("afile/state", "a part of the path is a file"),
    "log": None,
    "output": ("afile/state/history.db", "no history yet"),
    "jobs": ("afile/crontab", "Not a directory"),
    "alerts": None,
    "install": ("afile/crontab", "Not a directory"),
    "edit": ("afile/crontab", "Not a directory"),
    "list": ("afile/crontab", "Not a directory"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_paths_under_a_regular_file(place: Path, command: str) -> None:
    result = cronplus(place, "afile/state", "afile/crontab", COMMANDS[command])
    expected = UNDER_A_FILE[command]
    if expected is None:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
        return
    assert_one_line(result, command, *expected)


@pytest.mark.parametrize("command", ["run", "trigger"])
def test_a_state_directory_that_is_a_file(place: Path, command: str) -> None:
    (place / "crontab").write_text(CRONTAB)
    result = cronplus(place, "afile", "crontab", COMMANDS[command])
    assert_one_line(result, command, "/afile is a file, not a directory", "choose another with --state-dir")


CORRUPT = ["run", "trigger", "log", "output", "jobs", "alerts"]


@pytest.mark.parametrize("command", CORRUPT)
def test_a_corrupt_history_database(place: Path, command: str) -> None:
    (place / "crontab").write_text(CRONTAB)
    (place / "state").mkdir(mode=0o700)
    rng = random.Random(10)
    (place / "state" / "history.db").write_bytes(bytes(rng.randrange(256) for _ in range(8192)))
    result = cronplus(place, "state", "crontab", COMMANDS[command])
    assert_one_line(result, command, "history database state/history.db is corrupt",
                    "mv state/history.db state/history.db.bad")


@pytest.mark.parametrize("command", CORRUPT)
def test_a_damaged_history_database(place: Path, command: str) -> None:
    """A real database whose pages were overwritten: 'database disk image is malformed'."""
    (place / "crontab").write_text(CRONTAB)
    done = cronplus(place, "state", "crontab", ["trigger", "job"])
    assert done.returncode == 0, done.stderr
    db = place / "state" / "history.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[4096:] = b"\xa5" * (len(data) - 4096)  # every page after the header's
    db.write_bytes(bytes(data))
    result = cronplus(place, "state", "crontab", COMMANDS[command])
    assert_one_line(result, command, "state/history.db is corrupt", "mv state/history.db state/history.db.bad")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a command as another user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.parametrize("command", ["run", "trigger", "install", "edit"])
def test_an_unwritable_parent(place: Path, command: str) -> None:
    locked = place / "locked"  # root's 0755: nobody may not create anything in it
    locked.mkdir(mode=0o755)
    result = cronplus(place, "locked/state", "locked/crontab", COMMANDS[command],
                      prefix=("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"))
    assert_one_line(result, command, "locked/", "ermission denied")


def test_a_supervisor_on_a_missing_crontab_says_so_in_its_log_and_status(tmp_path: Path) -> None:
    addr = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    missing = tmp_path / "nonexistent" / "crontab"
    err = tmp_path / "supervisor.err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--crontab", str(missing), "--state-dir",
                                 str(tmp_path / "state"), "run"], stdout=subprocess.DEVNULL, stderr=stderr,
                                env={**os.environ, "NOTIFY_SOCKET": addr})
    try:
        warning = f"crontab {missing} does not exist: running 0 jobs until it appears"
        status = None
        deadline = time.monotonic() + 30
        while status is None and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = sock.recv(4096).decode()
            except TimeoutError:
                break
            status = next((m for m in message.splitlines() if m.startswith("STATUS=")), None)
        assert status is not None and warning in status, status
        assert warning in err.read_text()
        assert "warning" in err.read_text().lower()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sock.close()
    assert proc.returncode == 0
