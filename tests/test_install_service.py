"""`cronplus install-service`, run as a real command. No systemd runs here, so CRONPLUS_UNIT_DIR
redirects the unit file into tmp_path and CRONPLUS_SYSTEMCTL points at a small shell script that
records its arguments (a stand-in for the external systemctl, not a mock of our code)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.service.units import render_unit

VENV_CRONPLUS = Path(sys.executable).parent / "cronplus"
needs_script = pytest.mark.skipif(not os.access(VENV_CRONPLUS, os.X_OK), reason="cronplus script not installed")


def fake_systemctl(tmp_path: Path, *, exit_code: int = 0, message: str = "") -> Path:
    script = tmp_path / "bin" / "systemctl"
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{tmp_path}/systemctl.calls"\n'
        f"echo '{message}' >&2\n"
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return script


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "systemctl.calls"
    return log.read_text().splitlines() if log.exists() else []


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRONPLUS_", "XDG_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), **extra)
    return env


def install_service(tmp_path: Path, *args: str, env: dict[str, str], module: bool = False) -> subprocess.CompletedProcess[str]:
    program = [sys.executable, "-m", "cronplus"] if module else [str(VENV_CRONPLUS)]
    return subprocess.run(
        [*program, "install-service", *args], check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )


@needs_script
def test_dry_run_prints_the_unit_and_the_commands_and_changes_nothing(tmp_path: Path) -> None:
    units = tmp_path / "units"
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)))
    result = install_service(tmp_path, "--user", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"# would write {units}/cronplus.service:\n")
    assert render_unit(user=True, exec_start=[str(VENV_CRONPLUS), "run"]) in out
    assert f"ExecStart={VENV_CRONPLUS} run\n" in out
    assert "# would run: systemctl --user daemon-reload\n# would run: systemctl --user enable --now cronplus.service\n" in out
    assert "loginctl enable-linger" in out
    assert not units.exists()
    assert calls(tmp_path) == []


@needs_script
def test_dry_run_of_the_system_unit_defaults_to_etc_systemd_system(tmp_path: Path) -> None:
    result = install_service(tmp_path, "--dry-run", env=environment(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# would write /etc/systemd/system/cronplus.service:\n")
    assert "StateDirectory=cronplus" in result.stdout
    assert "# would run: systemctl daemon-reload\n# would run: systemctl enable --now cronplus.service\n" in result.stdout
    assert "enable-linger" not in result.stdout


def test_started_as_python_dash_m_the_unit_runs_the_same_interpreter(tmp_path: Path) -> None:
    result = install_service(tmp_path, "--user", "--dry-run", env=environment(tmp_path), module=True)
    assert result.returncode == 0, result.stderr
    assert f"ExecStart={sys.executable} -m cronplus run\n" in result.stdout


@needs_script
def test_path_overrides_become_absolute_arguments_of_run(tmp_path: Path) -> None:
    result = install_service(
        tmp_path, "--user", "--dry-run", "--crontab", "my tab", "--state-dir", "state", env=environment(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert f'ExecStart={VENV_CRONPLUS} run --crontab "{tmp_path}/my tab" --state-dir {tmp_path}/state\n' in result.stdout


@needs_script
def test_a_user_install_writes_the_unit_reloads_enables_and_starts_it(tmp_path: Path) -> None:
    units = tmp_path / "units"
    crontab = tmp_path / "crontab"
    crontab.write_text("* * * * * true\n")
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)))
    result = install_service(tmp_path, "--user", "--crontab", str(crontab), env=env)
    assert result.returncode == 0, result.stderr
    unit = units / "cronplus.service"
    assert unit.read_text() == render_unit(user=True, exec_start=[str(VENV_CRONPLUS), "run", "--crontab", str(crontab)])
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert calls(tmp_path) == ["--user daemon-reload", "--user enable --now cronplus.service"]
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        f"wrote {unit}",
        "ran: systemctl --user daemon-reload",
        "ran: systemctl --user enable --now cronplus.service",
    ]
    assert "loginctl enable-linger" in lines[3]
    assert list(units.iterdir()) == [unit]  # no temporary file left behind


@needs_script
def test_a_system_install_uses_the_system_manager(tmp_path: Path) -> None:
    units = tmp_path / "units"
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)))
    result = install_service(tmp_path, "--crontab", str(tmp_path / "none"), env=env)
    assert result.returncode == 0, result.stderr
    assert calls(tmp_path) == ["daemon-reload", "enable --now cronplus.service"]
    assert "LogsDirectory=cronplus" in (units / "cronplus.service").read_text()
    assert f"note: {tmp_path}/none does not exist yet" in result.stdout


@needs_script
def test_a_failing_systemctl_is_a_clear_error_after_the_unit_is_written(tmp_path: Path) -> None:
    units = tmp_path / "units"
    systemctl = fake_systemctl(tmp_path, exit_code=1, message="System has not been booted with systemd as init system (PID 1).")
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), CRONPLUS_SYSTEMCTL=str(systemctl))
    result = install_service(tmp_path, "--user", env=env)
    assert result.returncode == 1
    assert "`systemctl --user daemon-reload` failed: System has not been booted with systemd" in result.stderr
    assert (units / "cronplus.service").exists()
    assert calls(tmp_path) == ["--user daemon-reload"]  # stopped at the first failure


@needs_script
def test_without_systemctl_it_says_how_to_finish_by_hand(tmp_path: Path) -> None:
    units = tmp_path / "units"
    empty = tmp_path / "empty-path"
    empty.mkdir()
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), PATH=str(empty))
    result = install_service(tmp_path, "--user", env=env)
    assert result.returncode == 1
    assert "systemctl not found; the unit is written, start it with: systemctl --user daemon-reload && " in result.stderr
    assert (units / "cronplus.service").exists()


@needs_script
def test_an_unwritable_unit_directory_is_an_error_and_nothing_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(blocker / "units"), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)))
    result = install_service(tmp_path, "--user", env=env)
    assert result.returncode == 1
    assert f"cannot write {blocker}/units/cronplus.service" in result.stderr
    assert calls(tmp_path) == []


@needs_script
def test_reinstalling_a_changed_unit_says_how_to_apply_it_to_the_running_service(tmp_path: Path) -> None:
    units = tmp_path / "units"
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)))
    assert install_service(tmp_path, "--user", env=env).returncode == 0
    again = install_service(tmp_path, "--user", env=env)
    assert "restart" not in again.stdout  # same unit: nothing to apply
    changed = install_service(tmp_path, "--user", "--state-dir", "elsewhere", env=env)
    assert changed.returncode == 0, changed.stderr
    assert "apply it with: systemctl --user restart cronplus" in changed.stdout


@needs_script
@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("user", [False, True])
def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path: Path, user: bool) -> None:
    units = tmp_path / "units"
    env = environment(tmp_path, CRONPLUS_UNIT_DIR=str(units), CRONPLUS_SYSTEMCTL=str(fake_systemctl(tmp_path)))
    assert install_service(tmp_path, *(["--user"] if user else []), "--crontab", "c t", env=env).returncode == 0
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)

    def verify(unit: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemd-analyze", *(["--user"] if user else []), "verify", str(unit)],
            check=False, capture_output=True, text=True, timeout=60, env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
        )

    probe = tmp_path / "probe" / "cronplus.service"
    probe.parent.mkdir()
    probe.write_text("[Service]\nExecStart=/bin/sh -c true\n")
    if (probe_result := verify(probe)).stderr or probe_result.returncode:
        pytest.skip(f"systemd-analyze verify does not work here: {probe_result.stderr.strip()}")
    result = verify(units / "cronplus.service")
    assert (result.returncode, result.stderr) == (0, "")
