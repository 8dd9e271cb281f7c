"""The unit files: what they must say, that the shipped copies are the rendered ones, quoting of
ExecStart=, and `systemd-analyze verify` on real files (skipped where systemd-analyze is missing)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cronplus.model import JobOptions
from cronplus.service.units import SHIPPED_BINARY, exec_line, exec_quote, render_unit, shipped_units

REPO = Path(__file__).resolve().parent.parent
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def settings(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values of the active (uncommented) lines."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[] "), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def real_executable(tmp_path: Path) -> Path:
    """The venv's cronplus when there is one; else a small executable standing in for it."""
    venv_cronplus = Path(sys.executable).parent / "cronplus"
    if os.access(venv_cronplus, os.X_OK):
        return venv_cronplus
    stub = tmp_path / "cronplus"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return stub


def verify(unit: Path, *, user: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    env = dict(os.environ)
    args = [SYSTEMD_ANALYZE]
    if user:
        # A user manager needs a runtime directory; a private one is enough for `verify`.
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        args.append("--user")
    return subprocess.run([*args, "verify", str(unit)], check=False, capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture(autouse=True)
def analyze_can_verify_here(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Skip the verify tests where systemd-analyze cannot verify even a trivial unit (e.g. a
    container without what a service manager needs): that says nothing about our units."""
    if SYSTEMD_ANALYZE is None or "verify" not in request.node.name:
        return
    probe = write_unit(tmp_path, "[Service]\nExecStart=/bin/sh -c true\n", subdir="probe")
    for user in (False, True):
        result = verify(probe, user=user, tmp_path=tmp_path)
        if result.returncode != 0 or result.stderr:
            pytest.skip(f"systemd-analyze{' --user' if user else ''} verify does not work here: {result.stderr.strip()}")


def write_unit(tmp_path: Path, text: str, *, subdir: str) -> Path:
    target = tmp_path / subdir / "cronplus.service"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


@pytest.mark.parametrize("rel", ["cronplus.service", "user/cronplus.service"])
def test_the_shipped_unit_files_are_exactly_what_render_unit_produces(rel: str) -> None:
    shipped = (REPO / "systemd" / rel).read_text()
    assert shipped == shipped_units()[rel], "regenerate with: python -m cronplus.service.units systemd/"


@pytest.mark.parametrize("user", [False, True])
def test_both_units_are_notify_services_with_reload_watchdog_and_restart(user: bool) -> None:
    service = settings(render_unit(user=user, exec_start=["/opt/cronplus/bin/cronplus", "run"]))["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["ExecStart"] == ["/opt/cronplus/bin/cronplus run"]
    assert service["ExecReload"] == ["/opt/cronplus/bin/cronplus reload"]
    assert service["WatchdogSec"] == ["60s"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartSec"] == ["10s"]
    assert service["IgnoreSIGPIPE"] == ["false"]
    assert service["SyslogIdentifier"] == ["cronplus"]


@pytest.mark.parametrize("user", [False, True])
def test_sigterm_reaches_only_the_supervisor_and_stragglers_are_killed_after_it(user: bool) -> None:
    service = settings(render_unit(user=user, exec_start=["/x", "run"]))["Service"]
    assert service["KillMode"] == ["mixed"]
    timeout = int(service["TimeoutStopSec"][0].removesuffix("s"))
    # Room for the supervisor's shutdown grace plus the default kill-grace of a job.
    assert timeout >= 60 + JobOptions().kill_grace


def test_the_system_unit_has_root_only_state_and_log_directories() -> None:
    unit = settings(render_unit(user=False, exec_start=["/x", "run"]))
    service = unit["Service"]
    assert service["StateDirectory"] == ["cronplus"] and service["StateDirectoryMode"] == ["0700"]
    assert service["LogsDirectory"] == ["cronplus"] and service["LogsDirectoryMode"] == ["0700"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert "nss-user-lookup.target" in unit["Unit"]["After"][0]


def test_the_user_unit_leaves_state_to_cronplus_and_starts_with_the_user_manager() -> None:
    unit = settings(render_unit(user=True, exec_start=["/x", "run"]))
    assert "StateDirectory" not in unit["Service"] and "LogsDirectory" not in unit["Service"]
    assert unit["Install"]["WantedBy"] == ["default.target"]


@pytest.mark.parametrize("user", [False, True])
def test_no_sandboxing_option_that_would_break_jobs_is_switched_on(user: bool) -> None:
    service = settings(render_unit(user=user, exec_start=["/x", "run"]))["Service"]
    forbidden = {
        "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateUsers", "PrivateDevices",
        "PrivateNetwork", "CapabilityBoundingSet", "RestrictAddressFamilies", "SystemCallFilter",
        "MemoryDenyWriteExecute", "User", "DynamicUser", "UMask", "RestrictSUIDSGID",
    }
    assert forbidden.isdisjoint(service)
    text = render_unit(user=user, exec_start=["/x", "run"])
    for name in ("NoNewPrivileges=", "ProtectSystem=", "PrivateUsers=", "PrivateTmp="):
        assert f"#   {name}" in text or f", {name}" in text or f" {name}" in text  # each one explained


@pytest.mark.parametrize(
    ("word", "quoted"),
    [
        ("run", "run"),
        ("/usr/local/bin/cronplus", "/usr/local/bin/cronplus"),
        ("/home/ann/my crontab", '"/home/ann/my crontab"'),
        ("100%", "100%%"),
        ("$HOME", "$$HOME"),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        (";", '";"'),
        ("", '""'),
    ],
)
def test_exec_words_are_quoted_for_systemds_command_line_syntax(word: str, quoted: str) -> None:
    assert exec_quote(word) == quoted


def test_the_program_path_keeps_its_dollar_signs_because_systemd_expands_none_there() -> None:
    assert exec_line(["/opt/$x/cronplus", "run", "$x"]) == "/opt/$x/cronplus run $$x"
    assert exec_line(["/opt/my apps/cronplus", "run"]) == '"/opt/my apps/cronplus" run'


@pytest.mark.parametrize("argv", [["cronplus", "run"], ["/opt/it's/cronplus"], ['/opt/a"b/cronplus'], ["/a\\b"]])
def test_a_relative_program_or_one_systemd_would_refuse_is_an_error(argv: list[str]) -> None:
    with pytest.raises(ValueError):
        exec_line(argv)


def test_a_control_character_is_refused() -> None:
    with pytest.raises(ValueError):
        exec_quote("a\nb")


@needs_analyze
@pytest.mark.parametrize(("rel", "user"), [("cronplus.service", False), ("user/cronplus.service", True)])
def test_systemd_analyze_verify_accepts_the_shipped_units_silently(rel: str, user: bool, tmp_path: Path) -> None:
    # verify insists that the Exec*= programs exist: point the shipped text at a real one.
    program = real_executable(tmp_path)
    text = (REPO / "systemd" / rel).read_text().replace(f"={SHIPPED_BINARY} ", f"={program} ")  # ExecStart=, ExecReload=
    assert f"ExecStart={program} run" in text
    result = verify(write_unit(tmp_path, text, subdir="user" if user else "system"), user=user, tmp_path=tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@needs_analyze
@pytest.mark.parametrize("user", [False, True])
def test_systemd_analyze_verify_accepts_a_rendered_unit_with_awkward_paths(user: bool, tmp_path: Path) -> None:
    odd = tmp_path / "my bin %d $x;"
    odd.mkdir()
    program = odd / "cronplus"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    text = render_unit(user=user, exec_start=[str(program), "run", "--crontab", "/etc/my 'tab' %h $x \\ \""])
    result = verify(write_unit(tmp_path, text, subdir="u"), user=user, tmp_path=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")


@needs_analyze
def test_systemd_analyze_verify_does_complain_about_a_missing_program(tmp_path: Path) -> None:
    # The check above can fail: the same verify reports a program that is not there.
    text = render_unit(user=False, exec_start=[str(tmp_path / "no-such-cronplus"), "run"])
    result = verify(write_unit(tmp_path, text, subdir="s"), user=False, tmp_path=tmp_path)
    assert "no-such-cronplus" in result.stderr
