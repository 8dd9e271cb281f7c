"""The CLI's environment seam: `cronplus.cli.main(argv, env=...)` resolves everything the
environment decides (CRONPLUS_*, XDG_*, HOME, PATH, TMPDIR) from the mapping it is given, never
from os.environ, so a command can run in-process with an environment of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from cronplus import paths
from tests import incli


def test_resolve_reads_the_given_mapping_not_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Setting os.environ is the only way to show it is not read (monkeypatch puts it back).
    monkeypatch.setenv("CRONPLUS_STATE_DIR", str(tmp_path / "from-os-environ"))
    env = {"CRONPLUS_CRONTAB": str(tmp_path / "tab"), "CRONPLUS_STATE_DIR": str(tmp_path / "st")}
    resolved = paths.resolve(env=env)
    assert (resolved.crontab, resolved.state_dir, resolved.log_dir) == (tmp_path / "tab", tmp_path / "st", tmp_path / "st" / "logs")
    assert paths.resolve(env={"HOME": str(tmp_path)}).state_dir != tmp_path / "from-os-environ"
    assert paths.resolve().state_dir == tmp_path / "from-os-environ"  # no mapping: os.environ


def test_a_tilde_is_the_home_of_the_given_environment(tmp_path: Path) -> None:
    resolved = paths.resolve(crontab="~/tab", state_dir="~", env={"HOME": str(tmp_path)})
    assert (resolved.crontab, resolved.state_dir) == (tmp_path / "tab", tmp_path)


def test_main_runs_a_command_with_the_environment_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "tab").write_text("0 1 * * * echo from env\n")
    listed = incli.run(["list"], env=incli.base_env(HOME=str(tmp_path), CRONPLUS_CRONTAB="~/tab"))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "0 1 * * * echo from env\n", "")
    listed = incli.run(["--crontab", "~/tab", "list"], env=incli.base_env(HOME=str(tmp_path)))
    assert (listed.returncode, listed.stdout) == (0, "0 1 * * * echo from env\n")


def test_without_env_main_reads_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cronplus.cli import main

    (tmp_path / "tab").write_text("0 2 * * * echo from os.environ\n")
    monkeypatch.setenv("CRONPLUS_CRONTAB", str(tmp_path / "tab"))  # what the real command sees
    assert main(["list"]) == 0
    assert capsys.readouterr().out == "0 2 * * * echo from os.environ\n"
