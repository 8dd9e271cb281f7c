"""`cronplus install` / `cronplus list` and the installer: validation first, atomic 0600 write,
backup of the replaced version, a change summary with next run times, SIGHUP to a live supervisor."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from datetime import UTC
from pathlib import Path

import pytest

from cronplus.crontab.parser import parse_crontab
from cronplus.service import installer
from tests import incli

GOOD = "# nightly\nMAILTO=\"\"\n# cronplus: name=backup retries=2\n30 2 * * * /bin/true\n*/5 * * * * echo hi\n"
CHANGED = "# cronplus: name=backup retries=3\n30 2 * * * /bin/true\n# cronplus: name=fresh\n0 9 * * 1 echo new\n"
BAD = "30 2 * * * /bin/true\n61 * * * * echo bad minute\n"


def cli(tmp_path: Path, *args: str, stdin: str | None = None) -> incli.Completed[str]:
    env = incli.base_env(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        # explicit: under root the default would be the system crontab in /etc
        CRONPLUS_CRONTAB=str(tmp_path / "config" / "cronplus" / "crontab"),
        XDG_STATE_HOME=str(tmp_path / "xstate"),
        CRONPLUS_STATE_DIR=str(tmp_path / "state"),
    )
    return incli.run(list(args), env=env, stdin=stdin)


def target(tmp_path: Path) -> Path:
    return tmp_path / "config" / "cronplus" / "crontab"


def test_install_writes_the_file_owner_only_in_a_new_0700_directory(tmp_path: Path) -> None:
    src = tmp_path / "mine.crontab"
    src.write_text(GOOD)
    proc = cli(tmp_path, "install", str(src))
    assert proc.returncode == 0, proc.stderr
    assert target(tmp_path).read_text() == GOOD
    assert stat.S_IMODE(target(tmp_path).stat().st_mode) == 0o600
    assert stat.S_IMODE(target(tmp_path).parent.stat().st_mode) == 0o700
    assert "+ added   backup" in proc.stdout and "next: " in proc.stdout and "(in " in proc.stdout
    assert sorted(p.name for p in target(tmp_path).parent.iterdir()) == ["crontab"]  # no temp left


def test_reinstall_keeps_the_previous_version_as_bak_and_names_the_changes(tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_text(GOOD)
    assert cli(tmp_path, "install", str(src)).returncode == 0
    src.write_text(CHANGED)
    proc = cli(tmp_path, "install", str(src))
    assert proc.returncode == 0, proc.stderr
    backup = target(tmp_path).with_name("crontab.bak")
    assert backup.read_text() == GOOD
    assert target(tmp_path).read_text() == CHANGED
    lines = proc.stdout.splitlines()
    assert any(line.strip().startswith("~ changed backup") for line in lines), proc.stdout
    assert any(line.strip().startswith("+ added   fresh") for line in lines), proc.stdout
    assert any(line.strip().startswith("- removed") for line in lines), proc.stdout
    assert "previous version kept as" in proc.stdout


def test_an_invalid_file_is_reported_with_line_and_column_and_nothing_is_installed(tmp_path: Path) -> None:
    src = tmp_path / "first"
    src.write_text(GOOD)
    cli(tmp_path, "install", str(src))
    bad = tmp_path / "bad.crontab"
    bad.write_text(BAD)
    proc = cli(tmp_path, "install", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:2:1:" in proc.stderr
    assert "nothing installed" in proc.stderr
    assert target(tmp_path).read_text() == GOOD
    assert not target(tmp_path).with_name("crontab.bak").exists()


def test_install_dash_reads_stdin_and_list_prints_it_back_exactly(tmp_path: Path) -> None:
    proc = cli(tmp_path, "install", "-", stdin=GOOD)
    assert proc.returncode == 0, proc.stderr
    listed = cli(tmp_path, "list")
    assert listed.returncode == 0
    assert listed.stdout == GOOD


def test_errors_from_stdin_are_named_stdin(tmp_path: Path) -> None:
    proc = cli(tmp_path, "install", "-", stdin=BAD)
    assert proc.returncode == 1
    assert "<stdin>:2:1:" in proc.stderr
    assert not target(tmp_path).exists()


def test_list_without_a_crontab_says_so_on_stderr_and_exits_1(tmp_path: Path) -> None:
    proc = cli(tmp_path, "list")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "no crontab for" in proc.stderr


def test_installing_the_same_text_again_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_text(GOOD)
    cli(tmp_path, "install", str(src))
    proc = cli(tmp_path, "install", str(src))
    assert proc.returncode == 0
    assert "nothing to install" in proc.stdout
    assert not target(tmp_path).with_name("crontab.bak").exists()


def test_a_live_supervisor_named_in_the_pid_file_gets_sighup(tmp_path: Path) -> None:
    marker = tmp_path / "got-hup"
    fake = tmp_path / "fake-cronplus-supervisor.py"
    fake.write_text(
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGHUP, lambda *a: (pathlib.Path({str(marker)!r}).write_text('hup'), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(20)\n"
    )
    proc = subprocess.Popen([sys.executable, str(fake)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        (tmp_path / "state").mkdir(mode=0o700)
        (tmp_path / "state" / "supervisor.pid").write_text(f"{proc.pid}\n")
        result = cli(tmp_path, "install", "-", stdin=GOOD)
        assert result.returncode == 0, result.stderr
        assert f"pid {proc.pid}" in result.stdout
        assert proc.wait(timeout=5) == 0
        assert marker.read_text() == "hup"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_pid_file_naming_a_foreign_process_is_left_alone(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "10"])
    try:
        pid_file = tmp_path / "supervisor.pid"
        pid_file.write_text(str(sleeper.pid))
        assert installer.signal_supervisor(pid_file) is None
        time.sleep(0.1)
        assert sleeper.poll() is None
    finally:
        sleeper.send_signal(signal.SIGTERM)
        sleeper.wait()


def test_diff_ignores_moved_lines_but_sees_changed_options() -> None:
    old = parse_crontab("# cronplus: name=a\n* * * * * x\n# cronplus: name=b\n0 * * * * y\n", path="old", system=False)
    moved = parse_crontab("\n\n# cronplus: name=b\n0 * * * * y\n# cronplus: name=a\n* * * * * x\n", path="new", system=False)
    assert installer.diff_jobs(old, moved) == []
    retuned = parse_crontab("# cronplus: name=a timeout=5m\n* * * * * x\n# cronplus: name=b\n0 * * * * y\n", path="n", system=False)
    assert [(c.kind, c.job.name) for c in installer.diff_jobs(old, retuned)] == [("changed", "a")]


@pytest.mark.parametrize(
    ("delta", "text"),
    [(30, "in 30s"), (240, "in 4min"), (3 * 3600 + 300, "in 3h05m"), (-2 * 86400, "2d00h ago")],
)
def test_relative_times_read_short(delta: int, text: str) -> None:
    from datetime import datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert installer.format_relative(now + timedelta(seconds=delta), now) == text


def test_a_symlinked_crontab_stays_a_symlink_and_its_target_is_replaced(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "crontab"
    real.write_text(GOOD)
    target(tmp_path).parent.mkdir(parents=True)
    target(tmp_path).symlink_to(real)
    proc = cli(tmp_path, "install", "-", stdin=CHANGED)
    assert proc.returncode == 0, proc.stderr
    assert target(tmp_path).is_symlink()
    assert real.read_text() == CHANGED
    assert (dotfiles / "crontab.bak").read_text() == GOOD


def test_a_huge_change_summary_is_cut_with_the_totals(tmp_path: Path) -> None:
    many = "".join(f"# cronplus: name=j{i}\n*/5 * * * * echo {i}\n" for i in range(100))
    proc = cli(tmp_path, "install", "-", stdin=many)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) < 50
    assert "... and 61 more (100 added, 0 changed, 0 removed in all)" in proc.stdout
    assert lines[-1] == "100 jobs in total"
