"""State and log directories another user controls (issue 9 §6): refused before anything is
written there, as ssh's StrictModes refuses a writable ~/.ssh; no symlink is followed where
cronplus creates or writes a file."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.engine.output import open_log
from cronplus.errors import CronplusError
from cronplus.filechecks import ensure_private_dir
from cronplus.service.control import SupervisorLock

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: directories owned by another user")
JOB = "# cronplus: name=job\n0 0 1 1 * echo hello\n"


def cronplus(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    crontab = tmp_path / "crontab"
    if not crontab.exists():
        crontab.write_text(JOB)
    return subprocess.run([sys.executable, "-m", "cronplus", "--crontab", str(crontab), *args],
                          capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@root_only
def test_a_state_directory_owned_by_another_user_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    line = one_line_error(cronplus(tmp_path, "--state-dir", str(state), "run"))
    assert line.startswith(f"cronplus run: refusing state directory {state}: owned by uid {NOBODY} (nobody),"
                           " expected root")
    assert f"chown root {state}" in line
    assert list(state.iterdir()) == []


@root_only
def test_the_other_users_log_directory_with_a_planted_symlink_leaves_roots_file_untouched(tmp_path: Path) -> None:
    """The attack: a user creates the log directory root will use and plants the job's
    directory as a symlink to a directory of root's; the run's log would overwrite root's file."""
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    precious = victim / "1.log"
    precious.write_text("root's data\n")
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    (logs / "job").symlink_to(victim)
    os.lchown(logs / "job", NOBODY, NOBODY)
    os.chown(logs, NOBODY, NOBODY)
    line = one_line_error(cronplus(tmp_path, "--state-dir", str(tmp_path / "state"), "--log-dir", str(logs),
                                   "trigger", "job"))
    assert f"refusing log directory {logs}: owned by uid {NOBODY}" in line
    assert precious.read_text() == "root's data\n"


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_log_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    logs.chmod(mode)
    line = one_line_error(cronplus(tmp_path, "--state-dir", str(tmp_path / "state"), "--log-dir", str(logs),
                                   "trigger", "job"))
    who = "others" if mode & 0o002 else "its group"
    assert f"refusing log directory {logs}: writable by {who} (mode {mode:04o})" in line
    assert f"chmod go-w {logs}" in line


def test_a_parent_others_can_write_is_refused_but_a_sticky_one_like_tmp_is_not(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could rename our state directory away and put theirs in its place
    with pytest.raises(CronplusError, match=rf"its parent {shared} is writable by others \(mode 0777\)"):
        ensure_private_dir(shared / "state", "state directory")
    shared.chmod(0o1777)
    ensure_private_dir(shared / "state", "state directory")


def test_created_directories_and_their_missing_parents_are_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        ensure_private_dir(tmp_path / "a" / "b" / "state", "state directory")
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "state"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_a_symlink_in_place_of_a_jobs_log_directory_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "7.log").write_text("keep\n")
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o700)
    (logs / "job").symlink_to(victim)
    with pytest.raises(OSError) as caught:
        open_log(logs / "job" / "7.log")
    assert caught.value.errno in (errno.ELOOP, errno.ENOTDIR)  # Linux says ENOTDIR for O_DIRECTORY|O_NOFOLLOW
    assert (victim / "7.log").read_text() == "keep\n"


def test_a_symlink_in_place_of_the_supervisor_lock_is_refused_not_truncated(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (state / "supervisor.lock").symlink_to(victim)
    with pytest.raises(CronplusError, match=r"supervisor\.lock.*symlink"):
        SupervisorLock(state).acquire()
    assert victim.read_text() == "keep\n"


def test_a_fresh_trigger_still_works_and_its_directories_are_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = cronplus(tmp_path, "--state-dir", str(state), "trigger", "job")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "logs" / "job").stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a root-owned parent")
def test_a_root_owned_parent_writable_by_a_system_group_is_the_distributions_layout_and_accepted(
        tmp_path: Path) -> None:
    """Ubuntu's /var/log is root:syslog 0775; the log directory under it must still work."""
    var_log = tmp_path / "var-log"
    var_log.mkdir()
    os.chown(var_log, 0, NOBODY)
    var_log.chmod(0o775)
    ensure_private_dir(var_log / "cronplus", "log directory")
    logs = var_log / "cronplus"
    logs.chmod(0o770)
    os.chown(logs, 0, NOBODY)
    with pytest.raises(CronplusError, match=r"writable by its group \(mode 0770\)"):
        ensure_private_dir(logs, "log directory")  # the directory itself: no exception


def test_no_module_sets_the_process_umask() -> None:
    """The umask is the whole process's: while one thread had it at 077 to create a file, a file
    another thread created got 0600 too (the suite saw a crontab it wrote become unreadable to
    the user it ran a command as). Modes are given to os.open / chmod instead."""
    import ast

    root = Path(__file__).resolve().parent.parent / "cronplus"
    calls = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "umask":
                calls.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert calls == []
