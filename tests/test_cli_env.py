"""The CLI's environment seam: `cronplus.cli.main(argv, env=...)` resolves everything the
environment decides (CRONPLUS_*, XDG_*, HOME, PATH, TMPDIR) from the mapping it is given, never
from os.environ, so a command can run in-process with an environment of its own."""

from __future__ import annotations

import os
from pathlib import Path

from cronplus import paths
from tests import incli


def test_resolve_reads_the_given_mapping_not_os_environ(tmp_path: Path) -> None:
    env = {"CRONPLUS_CRONTAB": str(tmp_path / "tab"), "CRONPLUS_STATE_DIR": str(tmp_path / "st")}
    assert "CRONPLUS_STATE_DIR" not in os.environ  # the developer's shell would make this test moot
    resolved = paths.resolve(env=env)
    assert (resolved.crontab, resolved.state_dir, resolved.log_dir) == (tmp_path / "tab", tmp_path / "st", tmp_path / "st" / "logs")


def test_a_tilde_is_the_home_of_the_given_environment(tmp_path: Path) -> None:
    resolved = paths.resolve(crontab="~/tab", state_dir="~", env={"HOME": str(tmp_path)})
    assert (resolved.crontab, resolved.state_dir) == (tmp_path / "tab", tmp_path)


def test_main_runs_a_command_with_the_environment_it_is_given(tmp_path: Path) -> None:
    (tmp_path / "tab").write_text("0 1 * * * echo from env\n")
    listed = incli.run(["list"], env=incli.base_env(HOME=str(tmp_path), CRONPLUS_CRONTAB="~/tab"))
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "0 1 * * * echo from env\n", "")
    listed = incli.run(["--crontab", "~/tab", "list"], env=incli.base_env(HOME=str(tmp_path)))
    assert (listed.returncode, listed.stdout) == (0, "0 1 * * * echo from env\n")


def test_without_env_main_reads_os_environ() -> None:
    # The real command's path: no mapping given means the process environment (here, the
    # session's, which has no CRONPLUS_STATE_DIR: resolution falls back to the defaults).
    from cronplus.cli import main

    assert main(["next", "0 0 1 1 *", "-n", "1", "--from", "2025-06-01T00:00", "--tz", "UTC"]) == 0
