"""Crontab files cron would refuse to run (issue 9 §6): another user's file, one others can
write, a hard-linked one. `cronplus run`, a reload and `cronplus check` refuse them with cron's
words and what to do; nothing in them runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cronplus.filechecks import crontab_problem
from cronplus.service import control

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown to another user, run system crontabs")


def cronplus(tmp_path: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cronplus", "--state-dir", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=timeout)


def system_crontab(tmp_path: Path, marker: Path) -> Path:
    """A system-format crontab whose @reboot job (run at the first start) leaves a marker."""
    path = tmp_path / "crontab"
    path.write_text(f"# cronplus: name=boot\n@reboot root touch {marker}\n")
    path.chmod(0o644)
    return path


def refuses_to_run(tmp_path: Path, crontab: Path, marker: Path, *words: str) -> None:
    result = cronplus(tmp_path, "--crontab", str(crontab), "run", "--system")
    assert result.returncode == 1, result.stderr
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()  # the job never ran


@root_only
def test_a_system_crontab_owned_by_another_user_is_refused_with_wrong_file_owner(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crontab = system_crontab(tmp_path, marker)
    os.chown(crontab, NOBODY, NOBODY)
    refuses_to_run(tmp_path, crontab, marker, f"{crontab}: WRONG FILE OWNER: owned by uid {NOBODY}",
                   f"chown root {crontab}")


@root_only
@pytest.mark.parametrize("mode", [0o666, 0o664, 0o646])
def test_a_system_crontab_others_can_write_is_refused_with_bad_file_mode(tmp_path: Path, mode: int) -> None:
    marker = tmp_path / "ran"
    crontab = system_crontab(tmp_path, marker)
    crontab.chmod(mode)
    refuses_to_run(tmp_path, crontab, marker, f"{crontab}: BAD FILE MODE: {mode:04o}", f"chmod go-w {crontab}")


@root_only
def test_a_hard_linked_system_crontab_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    crontab = system_crontab(tmp_path, marker)
    os.link(crontab, tmp_path / "other-name")
    refuses_to_run(tmp_path, crontab, marker, f"{crontab}: NUMBER OF HARD LINKS > 1 (2)")


@root_only
def test_a_safe_system_crontab_still_runs(tmp_path: Path) -> None:
    """The same file, root's, 0644, one link: the supervisor starts and runs its @reboot job."""
    marker = tmp_path / "ran"
    crontab = system_crontab(tmp_path, marker)
    proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--state-dir", str(tmp_path / "state"),
                             "--crontab", str(crontab), "run", "--system"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)


@root_only
def test_check_reports_the_same_refusal_as_an_error(tmp_path: Path) -> None:
    crontab = system_crontab(tmp_path, tmp_path / "ran")
    crontab.chmod(0o666)
    result = cronplus(tmp_path, "--system", "check", str(crontab))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{crontab}: BAD FILE MODE: 0666 lets group and others write it, and whoever writes it runs commands as root"
        f" (chmod go-w {crontab})",
        "invalid: 1 error",
    ]


@root_only
def test_root_refuses_a_user_format_crontab_owned_by_another_user(tmp_path: Path) -> None:
    """Without a user field the jobs run as whoever runs cronplus: here root."""
    crontab = tmp_path / "crontab"
    crontab.write_text("* * * * * id\n")
    os.chown(crontab, NOBODY, NOBODY)
    result = cronplus(tmp_path, "check", str(crontab))
    assert result.returncode == 1
    assert f"{crontab}: WRONG FILE OWNER: owned by uid {NOBODY}" in result.stderr


def test_the_readme_quickstart_crontab_owned_by_its_user_is_accepted(tmp_path: Path) -> None:
    example = Path(__file__).parent.parent / "examples" / "crontab"
    own = tmp_path / "crontab"
    own.write_bytes(example.read_bytes())
    own.chmod(0o644)
    result = cronplus(tmp_path, "check", str(own))
    assert result.returncode == 0, result.stderr


def _stat(*, uid: int, gid: int, mode: int, nlink: int = 1) -> os.stat_result:
    return os.stat_result((mode, 0, 0, nlink, uid, gid, 0, 0, 0, 0))


def test_a_users_crontab_writable_by_their_private_group_is_accepted_but_not_by_a_shared_one() -> None:
    """umask 002 systems give a checkout's files to the user's private group, writable: that
    group is the user alone. root:root stands in for such a user and group (same name, no
    other member); the user running it is someone else (uid 4242), as in user mode."""
    import grp

    if grp.getgrgid(0).gr_mem:
        pytest.skip("this system's root group has members")
    ok = crontab_problem("c", _stat(uid=0, gid=0, mode=0o100664), system=False, euid=4242)
    assert ok is None
    shared = crontab_problem("c", _stat(uid=0, gid=NOBODY, mode=0o100664), system=False, euid=4242)
    assert shared is not None and shared.message.startswith("BAD FILE MODE: 0664 lets its group write it")
    strict = crontab_problem("c", _stat(uid=0, gid=0, mode=0o100664), system=True, euid=4242)
    assert strict is not None and strict.message.startswith("BAD FILE MODE")


@root_only
def test_a_reload_of_a_file_others_can_write_is_refused_and_the_old_crontab_kept(tmp_path: Path) -> None:
    state = tmp_path / "state"
    crontab = tmp_path / "crontab"
    crontab.write_text("# cronplus: name=old\n0 0 1 1 * root true\n")
    err = tmp_path / "supervisor.err"
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "cronplus", "--state-dir", str(state), "--crontab", str(crontab),
                                 "run", "--system"], stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        status = wait_status(state, proc, err)
        assert [j["name"] for j in status["jobs"]] == ["old"]
        crontab.write_text("# cronplus: name=evil\n* * * * * root id\n")
        crontab.chmod(0o666)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while "reload refused" not in err.read_text():
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
        assert f"{crontab}: BAD FILE MODE: 0666" in err.read_text()
        assert [j["name"] for j in wait_status(state, proc, err)["jobs"]] == ["old"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def wait_status(state: Path, proc: subprocess.Popen[bytes], err: Path) -> dict:
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, err.read_text()
        try:
            return next(control.request(state / "control.sock", {"cmd": "status"}))
        except (control.NoSupervisor, StopIteration, OSError):
            assert time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)


@root_only
def test_a_symlink_another_user_made_to_a_root_owned_file_is_refused(tmp_path: Path) -> None:
    """The target is root's, 0644, one link: only the link's owner gives the trick away."""
    marker = tmp_path / "ran"
    target = system_crontab(tmp_path, marker)
    link = tmp_path / "link"
    link.symlink_to(target)
    os.lchown(link, NOBODY, NOBODY)
    refuses_to_run(tmp_path, link, marker, f"{link}: WRONG FILE OWNER: it is a symlink made by uid {NOBODY}")
